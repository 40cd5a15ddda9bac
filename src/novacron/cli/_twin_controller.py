"""``novacron twin run --controller``: the real controller flow on the twin, with a progress bar."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["run_with_controller"]


def run_with_controller(
    hosts: int,
    vms: int,
    fault_rate: float,
    horizon: float,
    seed: int,
    probe_interval: float,
    *,
    as_json: bool,
    what_if: bool,
) -> None:
    """Run the fleet under the controller; print a summary (or JSON)."""
    import io
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from novacron.benchmarks.twin_controller import ControllerRun, run_twin_controller
    from novacron.telemetry import configure_logging

    configure_logging(stream=io.StringIO(), level=logging.ERROR)  # incidents go to the summary, not the tty
    setup = ControllerRun(
        hosts=hosts,
        vms=vms,
        fault_rate_per_hour=fault_rate,
        horizon_s=horizon,
        seed=seed,
        probe_interval_s=probe_interval,
        progress_every_s=max(1.0, min(600.0, horizon / 100)),
        what_if=what_if,
    )
    columns = (TextColumn("[bold]twin+controller"), BarColumn(), TextColumn("{task.fields[sim]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
        task = bar.add_task("run", total=horizon, sim="")

        def progress(now: float, faults: int) -> None:
            bar.update(task, completed=now, sim=f"{now / 3600:.2f} h, {faults} faults")

        result = run_twin_controller(setup, on_progress=progress)
    if as_json:
        print(json.dumps(result))
        return
    _print_controller_summary(result)


def _print_controller_summary(result: dict[str, Any]) -> None:
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from novacron.twin import RunSummary

    names = {f.name for f in dataclasses.fields(RunSummary)}
    twin = {k: v for k, v in result["twin"].items() if k in names}
    from novacron.cli._twin_output import print_summary

    print_summary(RunSummary(**twin), float(result["wall_s"]))
    ctl = result["controller"]
    console = Console()
    console.print(
        f"[bold]controller[/]: {ctl['incidents']} incidents "
        + " · ".join(f"{k} {v}" for k, v in ctl["incidents_by_status"].items())
        + f" · MTTD p50 {ctl['mttd_s'].get('p50', '—')} s · MTTR p50 {ctl['mttr_s'].get('p50', '—')} s"
    )
    table = Table(title="Controller actions (store)")
    table.add_column("kind:status")
    table.add_column("count", justify="right")
    for key, count in ctl["actions_by_outcome"].items():
        table.add_row(key, str(count))
    console.print(table)
    if result.get("what_if"):
        console.print("what-if: " + " · ".join(f"{k} {v}" for k, v in result["what_if"].items()))
