"""Output for people and for programs: Rich tables on a terminal, full values in pipes, JSON on request.

A table printed into a pipe (``novacron incidents list | grep``) must not cut ids to
``inc-3…``: off a terminal the console is as wide as the longest line, and id columns
fold rather than truncate on a narrow terminal. ``--json`` prints one JSON object (or
list) on one line, with the field names documented in docs/operations.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["JsonOpt", "check_output", "console", "emit_json", "err_console", "write_file", "writing"]

_PIPE_WIDTH = 100_000  # off a terminal nothing is cut: one table row is one line

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (stable field names) instead of a table.")]


def console() -> Console:
    """A console for stdout: the terminal's width on a terminal, unbounded in a pipe or file."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=_PIPE_WIDTH, soft_wrap=True)


def err_console() -> Console:
    """A console for messages on stderr."""
    from rich.console import Console

    return Console(stderr=True)


def emit_json(data: Any) -> None:
    """Print ``data`` as one line of JSON on stdout."""
    sys.stdout.write(json.dumps(data, separators=(",", ":"), default=str) + "\n")


def write_file(path: Path, text: str, *, flag: str) -> None:
    """Write ``text`` to ``path``; a path that cannot be written is bad input naming ``flag`` and the path."""
    from novacron.errors import InputError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", where=f"{flag} {path}") from exc


def check_output(path: Path, *, flag: str) -> None:
    """Refuse, before any work is done, an output path that cannot be a file (as :func:`write_file` would)."""
    from novacron.errors import InputError

    if path.is_dir():
        raise InputError("cannot write: Is a directory", where=f"{flag} {path}")
    if not path.parent.is_dir():
        raise InputError("cannot write: No such file or directory", where=f"{flag} {path}")


@contextmanager
def writing(path: Path, *, flag: str) -> Iterator[None]:
    """Around a write to ``path``: an OSError is bad input naming ``flag`` and the path, not a traceback."""
    from novacron.errors import InputError

    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", where=f"{flag} {path}") from exc
