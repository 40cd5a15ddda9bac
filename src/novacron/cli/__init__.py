"""The ``novacron`` command line: the only place that reads argv, env and config files.

Each group of commands lives in its own module and registers on the apps defined in
:mod:`novacron.cli._app`; heavy libraries are imported inside the commands so that
``novacron --help`` stays fast.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from novacron.cli import (  # noqa: F401  (imported for their command registrations)
    api,
    bench_core,
    core,
    demo,
    forecast,
    nab,
    runbooks,
    twin,
)
from novacron.cli._app import app
from novacron.errors import InputError, NovacronError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: bad input exits 2 with the reason, other known errors exit 1."""
    err = Console(stderr=True)
    try:
        app()
    except InputError as exc:
        # Escaped: field paths such as ``targets[api]`` must not be read as Rich markup.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except NovacronError as exc:
        err.print(f"[bold red]failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
