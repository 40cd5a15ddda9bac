"""Printing a twin run's summary (shared by ``twin run`` with and without the controller)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from novacron.twin import RunSummary

__all__ = ["print_summary"]


def print_summary(s: RunSummary, wall: float) -> None:
    """Print a twin run's summary tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{s.sim_seconds / 3600:.1f} h simulated in {wall:.1f} s "
        f"({s.sim_seconds / max(wall, 1e-9):,.0f}× real time)[/]"
    )
    console.print(
        f"faults {s.faults} · healed {s.healed} · prevented {s.prevented} · open {s.open} · "
        f"availability {s.availability:.5f}"
    )
    table = Table(title="Faults")
    for col in ("kind", "count", "mean downtime s"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind, count in s.faults_by_kind.items():
        mttr = s.mttr_by_kind.get(kind)
        table.add_row(kind, str(count), "—" if mttr is None else f"{mttr:.1f}")
    console.print(table)
    dist = Table(title="Time to detect / repair (s)")
    for col in ("", "mean", "p50", "p90", "p99", "max"):
        dist.add_column(col, justify="right")
    for label, stats in (("MTTD", s.mttd_s), ("MTTR", s.mttr_s)):
        dist.add_row(label, *(f"{stats[k]:.1f}" if k in stats else "—" for k in ("mean", "p50", "p90", "p99", "max")))
    console.print(dist)
    acts = Table(title="Actions")
    acts.add_column("kind")
    acts.add_column("count", justify="right")
    for kind, count in s.actions_by_kind.items():
        acts.add_row(kind, str(count))
    console.print(acts)
