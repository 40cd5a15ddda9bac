"""The Pareto front of ``novacron evolve`` as a PNG: cost against unavailability, coloured by MTTR p95."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from novacron.extras import require

__all__ = ["plot_front"]


def plot_front(result: dict[str, Any], path: Path) -> None:
    """Draw the front (and the weighted pick) to ``path``."""
    matplotlib = require("matplotlib", feature="the Pareto plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", feature="the Pareto plot")
    front = result["front"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    cost = [p["cost_per_hour"] for p in front]
    unavail = [p["unavailability"] for p in front]
    mttr = [p["mttr_p95_s"] for p in front]
    points = ax.scatter(cost, unavail, c=mttr, cmap="viridis", s=40, edgecolors="black", linewidths=0.4)
    fig.colorbar(points, ax=ax, label="MTTR p95 (s)")
    pick = result.get("pick")
    if pick is not None:
        ax.scatter([pick["cost_per_hour"]], [pick["unavailability"]], marker="*", s=260, c="red", label="weighted pick")
        ax.legend(loc="upper right")
    ax.set_xlabel("cost per hour")
    ax.set_ylabel("unavailability (1 - availability)")
    ax.set_title(f"Pareto front: {len(front)} layouts after {result['generations']} generations")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")  # at this very path: no ".png" added to it
    plt.close(fig)
