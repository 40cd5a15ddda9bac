"""VM commands: ``novacron vm guest`` (build the tiny test guest) and ``novacron bench vm``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from novacron.cli._app import app, bench_app
from novacron.errors import InputError

vm_app = typer.Typer(help="QEMU guests (kind: vm targets).", no_args_is_help=True)
app.add_typer(vm_app, name="vm")


@vm_app.command("guest")
def vm_guest(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build (or find in the cache) the tiny guest from Debian's kernel and busybox; print its files."""
    from novacron.actuators.qemu_guest import build_guest

    guest = build_guest()
    out = {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "append": guest.append}
    typer.echo(json.dumps(out) if as_json else "\n".join(f"{k}: {v}" for k, v in out.items()))


@bench_app.command("vm")
def bench_vm(
    guests: Annotated[int, typer.Option(help="Guests on the host that fails.")] = 4,
    restarts: Annotated[int, typer.Option(help="QEMU kills to time crash → healthy.")] = 3,
    migrations: Annotated[int, typer.Option(help="Live migrations to time.")] = 6,
    workdir: Annotated[Path | None, typer.Option(help="Where logs and the store go (default: a temp dir).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the default output).")] = True,
) -> None:
    """Real guests: crash → healthy, live migration (total, downtime, bytes), host failover."""
    for name, value, low in (("--guests", guests, 1), ("--restarts", restarts, 1), ("--migrations", migrations, 1)):
        if not low <= value <= 50:
            raise InputError(f"must be between {low} and 50, got {value}", where=name)
    from novacron.benchmarks.vm import run_vm_bench

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_vm_bench(workdir, guests=guests, restarts=restarts, migrations=migrations)
    else:
        with tempfile.TemporaryDirectory(prefix="novacron-bench-vm-") as tmp:
            result = run_vm_bench(Path(tmp), guests=guests, restarts=restarts, migrations=migrations)
    typer.echo(json.dumps(result, indent=None if as_json else 2))
