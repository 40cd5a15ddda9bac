"""The ``novacron`` command line: the only place that reads argv, env and config files.

Each group of commands lives in its own module and registers on the apps defined in
:mod:`novacron.cli._app`; heavy libraries are imported inside the commands so that
``novacron --help`` stays fast.
"""

from __future__ import annotations

import sys

from novacron.cli import (  # noqa: F401  (imported for their command registrations)
    agents,
    api,
    approval,
    bench_chaos,
    bench_core,
    bench_ha,
    core,
    demo,
    experiments,
    fix,
    forecast,
    learn,
    nab,
    node,
    operate,
    run,
    runbooks,
    schema,
    status,
    tune,
    twin,
    vm,
)
from novacron.cli._app import app
from novacron.cli._client import EXIT_FAILED, EXIT_INPUT, EXIT_UNREACHABLE, UnreachableError
from novacron.errors import InputError, NovacronError, StoreUnreachableError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: exit 2 for bad input, 3 when the controller is not reachable, 1 for other failures."""
    try:
        app()
    except InputError as exc:
        _say("error", exc)
        sys.exit(EXIT_INPUT)
    except (UnreachableError, StoreUnreachableError) as exc:
        _say("not reachable", exc)
        sys.exit(EXIT_UNREACHABLE)
    except NovacronError as exc:
        _say("failed", exc)
        sys.exit(EXIT_FAILED)


def _say(what: str, exc: Exception) -> None:
    from rich.markup import escape

    from novacron.cli._output import err_console

    # Escaped: field paths such as ``targets[api]`` must not be read as Rich markup.
    err_console().print(f"[bold red]{what}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
