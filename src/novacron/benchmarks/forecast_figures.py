"""PNG figures for capacity plans and exhaustion forecasts (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from novacron.extras import require
from novacron.forecasting._stats import FloatArray
from novacron.forecasting.capacity import DAY_S, CapacityPlan
from novacron.forecasting.exhaustion import ExhaustionAssessment

__all__ = ["capacity_figure", "exhaustion_figure", "write_figures"]

_UNITS = (("days", 86_400.0), ("hours", 3_600.0), ("minutes", 60.0), ("seconds", 1.0))


def _pyplot() -> Any:  # matplotlib's pyplot module, untyped here
    mpl = require("matplotlib", feature="forecast figures")

    mpl.use("Agg")  # files only, never a window
    return require("matplotlib.pyplot", feature="forecast figures")


def capacity_figure(plan: CapacityPlan, path: Path, title: str) -> Path:
    """History, forecast median, 80 % band, capacity line and the horizons."""
    plt = _pyplot()
    step_d = plan.step_s / DAY_S
    hist_t = (np.arange(plan.history.size) - plan.history.size + 1) * step_d
    fc_t = np.arange(1, plan.median.size + 1) * step_d
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(hist_t, plan.history, color="0.3", lw=0.8, label="history (hourly mean)")
    ax.plot(fc_t, plan.median, color="tab:blue", lw=1.2, label=f"forecast ({plan.model})")
    ax.fill_between(fc_t, plan.low, plan.high, color="tab:blue", alpha=0.2, label="80 % interval")
    ax.axhline(plan.capacity, color="tab:red", ls="--", lw=1, label="capacity")
    for h in plan.horizons:
        ax.axvline(h.days, color="0.6", ls=":", lw=0.8)
        ax.annotate(
            f"{h.days:.3g} d\nrisk {h.saturation_risk:.0%}",
            (h.days, plan.capacity),
            fontsize=8,
            ha="right",
            va="top",
            xytext=(-2, -3),
            textcoords="offset points",
        )
    ax.set_xlabel("days from last observation")
    ax.set_title(title if plan.horizon_scale == 1 else f"{title}\n{plan.note}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")  # at this very path: no ".png" added to it
    plt.close(fig)
    return path


def exhaustion_figure(
    t: FloatArray,
    y: FloatArray,
    verdict: ExhaustionAssessment,
    path: Path,
    title: str,
    future: tuple[FloatArray, FloatArray] | None = None,
) -> Path:
    """The series, the fitted trend over its window, the limit and the ETA with its interval.

    ``future`` (times, values), if given, is drawn faintly: what happened after the forecast.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    t0 = float(t[0])
    span = float((future[0][-1] if future is not None else t[-1]) - t0)
    unit, scale = next((u, f) for u, f in _UNITS if span >= 3 * f or f == 1.0)

    def x(v: FloatArray | float) -> FloatArray | float:
        return (v - t0) / scale

    if future is not None:
        ax.plot(x(future[0]), future[1], color="0.75", lw=0.6, label="what happened next")
    ax.plot(x(t), y, color="0.3", lw=0.8, label="usage (observed)")
    ax.axhline(verdict.limit, color="tab:red", ls="--", lw=1, label="limit")
    if verdict.leak and verdict.eta_s > 0:
        at_eta = verdict.at + verdict.eta_s
        xs = np.array([verdict.window[0], at_eta])
        ev = verdict.evidence
        label = f"trend ({verdict.mode})"
        if ev.get("trend_shape") == "accelerating":
            label = f"trend ({verdict.mode}, accelerating)"
            # The parabola that gave the ETA, from the window start to the ETA.
            xs = np.linspace(verdict.window[0], at_eta, 200)
            s = xs - verdict.at
            trend = float(ev["curve_level"]) + float(ev["curve_slope"]) * s + float(ev["acceleration"]) * s**2
        else:
            trend = verdict.level + verdict.slope * (xs - verdict.at)
        ax.plot(x(xs), trend, color="tab:orange", lw=1.4, label=label)
        low, high = verdict.interval
        ax.axvspan(x(verdict.at + low), x(verdict.at + high), color="tab:orange", alpha=0.15, label="ETA interval")
        ax.axvline(x(at_eta), color="tab:orange", ls=":", lw=1)
    ax.set_xlabel(f"{unit} from first observation")
    ax.set_title(f"{title}: {verdict.reason}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")  # at this very path: no ".png" added to it
    plt.close(fig)
    return path


def write_figures(data_dir: Path, out: Path) -> list[Path]:
    """The figures in ``docs/forecasting.md``: a capacity plan and two leak forecasts."""
    from novacron.benchmarks.forecast_data import TRACE_CONFIG, TRACES, read_series
    from novacron.forecasting.capacity import plan_capacity
    from novacron.forecasting.exhaustion import assess_exhaustion
    from novacron.forecasting.synthetic import make_series

    paths: list[Path] = []
    _, cpu = read_series(data_dir / "traces" / TRACES["google2019"], "avg_cpu")
    plan = plan_capacity(cpu, interval_s=300.0, capacity=round(1.1 * float(np.max(cpu)), 2))
    paths.append(capacity_figure(plan, out / "capacity_google_avg_cpu.png", "google2019 avg_cpu"))
    s = make_series("sawtooth_leak", seed=3)
    k = s.t.size // 5
    verdict = assess_exhaustion(s.t[:k], s.y[:k], s.limit)
    paths.append(
        exhaustion_figure(
            s.t[:k],
            s.y[:k],
            verdict,
            out / "exhaustion_sawtooth.png",
            "synthetic leak under GC, 20 % observed",
            future=(s.t[k:], s.y[k:]),
        )
    )
    _, net = read_series(data_dir / "traces" / TRACES["alibaba2018"], "net_in")
    t = np.arange(net.size, dtype=np.float64) * 300.0
    level = np.convolve(net, np.ones(288) / 288, mode="same")
    limit = float(level[int(0.9 * net.size)])
    k = int(0.2 * int(np.flatnonzero(level >= limit)[0]))
    verdict = assess_exhaustion(t[:k], net[:k], limit, TRACE_CONFIG)
    paths.append(
        exhaustion_figure(
            t[:k],
            net[:k],
            verdict,
            out / "exhaustion_alibaba_net_in.png",
            "alibaba2018 net_in, 20 % of the run-up observed",
            future=(t[k:], net[k:]),
        )
    )
    return paths
