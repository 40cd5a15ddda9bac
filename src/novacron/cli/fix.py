"""``novacron fix``: turn a crash into a tested patch on a new branch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from novacron.cli._app import app
from novacron.errors import InputError


@app.command("fix")
def fix_command(
    repo: Annotated[
        Path, typer.Option("--repo", help="The git repository to fix (left untouched but for a new branch).")
    ],
    test: Annotated[str, typer.Option("--test", help='The test command, e.g. "python -m pytest -q".')],
    log: Annotated[Path | None, typer.Option("--log", help="A log holding the crash's Python traceback.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds per run of the test command.")] = 120.0,
    budget: Annotated[float, typer.Option("--budget", min=1.0, help="Seconds to spend on candidates.")] = 900.0,
    max_candidates: Annotated[int, typer.Option("--max-candidates", min=1, help="Candidates to test at most.")] = 200,
    fix_id: Annotated[str | None, typer.Option("--id", help="Branch suffix (default: random).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Find the root cause, validate a patch in a sandbox, commit it to novacron/fix-<id>.

    Exit 0 with a branch, 1 when no candidate passed, 2 on bad input. A model provider is
    used when NOVACRON_FIX_LLM_URL (and _KEY, _MODEL) name an OpenAI-compatible endpoint.
    """
    from novacron.codegen import ChatProvider, FixRequest, SandboxLimits, fix

    log_text = None
    if log is not None:
        try:
            log_text = log.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read {log}: {exc.strerror}", where="--log") from exc
    if fix_id is not None and not fix_id.replace("-", "").isalnum():
        raise InputError("use letters, digits and dashes only", where="--id")
    req = FixRequest(
        repo=repo,
        test_command=test,
        log_text=log_text,
        limits=SandboxLimits(timeout_s=timeout, cpu_s=int(timeout * 2) + 10),
        time_budget_s=budget,
        max_candidates=max_candidates,
        llm=ChatProvider.from_env(os.environ),
        fix_id=fix_id,
    )
    report = fix(req)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        _print(report)
    raise typer.Exit(0 if report.fixed else 1)


def _print(report: object) -> None:
    from novacron.codegen import FixReport

    assert isinstance(report, FixReport)
    typer.echo(f"root cause: {report.root_cause} {report.exception}: {report.message}".rstrip(": "))
    for s in report.suspects[:5]:
        typer.echo(f"  suspect {s['file']}:{s['line']} score {s['score']} ({s['why']})")
    typer.echo(f"candidates tried: {report.candidates_tried} in {report.duration_s:.1f}s (network: {report.isolation})")
    if not report.fixed:
        for note in report.notes:
            typer.echo(f"no fix: {note}")
        return
    typer.echo(f"fixed by {report.strategy}: {report.description}")
    typer.echo(f"branch {report.branch} ({report.commit}), risk {report.risk}: {', '.join(report.risk_reasons)}")
    typer.echo(f"rollback: {report.rollback}")
    typer.echo(report.diff)
