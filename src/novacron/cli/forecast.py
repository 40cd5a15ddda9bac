"""``novacron forecast capacity|exhaustion|failures`` and ``novacron bench forecast``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from novacron.cli._app import app, bench_app
from novacron.cli._numbers import check_number
from novacron.cli._output import check_output, writing
from novacron.errors import InputError

forecast_app = typer.Typer(help="Predict exhaustion, capacity needs and component failures.", no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")

CsvOpt = Annotated[Path, typer.Option("--csv", help="CSV file with a header row.", dir_okay=False)]
ColumnOpt = Annotated[str, typer.Option("--column", help="Column to forecast.")]
IntervalOpt = Annotated[
    float, typer.Option("--interval-s", help="Seconds between rows (used when there is no time column).")
]


def _horizons(text: str) -> tuple[float, ...]:
    try:
        days = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"not a comma-separated list of days: {text!r}", where="--horizons") from None
    if not days or min(days) <= 0:
        raise InputError("need one or more positive numbers of days", where="--horizons")
    return days


@forecast_app.command("capacity")
def capacity(
    csv: CsvOpt,
    column: ColumnOpt,
    capacity: Annotated[float, typer.Option("--capacity", help="Capacity in the column's units.")],
    horizons: Annotated[str, typer.Option("--horizons", help="Days ahead, comma-separated.")] = "30,60,90",
    interval_s: IntervalOpt = 300.0,
    cost_per_unit: Annotated[
        float, typer.Option("--cost-per-unit", help="Cost of one unit of capacity for a year.")
    ] = 0.0,
    out: Annotated[Path | None, typer.Option("--out", help="PNG to write (default: next to the CSV).")] = None,
) -> None:
    """Forecast usage, saturation risk, capacity to add and its annual cost; write a PNG."""
    from rich.console import Console
    from rich.table import Table

    from novacron.benchmarks.forecast_data import read_series
    from novacron.benchmarks.forecast_figures import capacity_figure
    from novacron.forecasting.capacity import CostModel, plan_capacity

    check_number(capacity, "--capacity", positive=True)
    check_number(interval_s, "--interval-s", positive=True)
    check_number(cost_per_unit, "--cost-per-unit", positive=False)
    png_path = out or csv.with_suffix(f".{column}.capacity.png")
    check_output(png_path, flag="--out")
    _, values = read_series(csv, column)
    plan = plan_capacity(
        values,
        interval_s=interval_s,
        capacity=capacity,
        horizons_days=_horizons(horizons),
        cost=CostModel(cost_per_unit_year=cost_per_unit),
    )
    table = Table(title=f"{csv.name}:{column} — capacity {capacity:g}")
    for name in ("horizon (days)", "median", "80 % interval", "saturation risk", "capacity to add", "annual cost"):
        table.add_column(name, justify="right")
    for h in plan.horizons:
        shown = f"{h.days:.3g}" if h.days == h.requested_days else f"{h.days:.3g} (asked {h.requested_days:g})"
        table.add_row(
            shown,
            f"{h.mean:.4g}",
            f"{h.low:.4g} – {h.high:.4g}",
            f"{h.saturation_risk:.0%}",
            f"{h.capacity_to_add:.4g}",
            f"{h.annual_cost:,.2f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"model {plan.model} of {', '.join(n for n in plan.model_scores if n != plan.model)}; "
        f"{plan.history_days:.1f} days of history; current {plan.current:.4g}; "
        f"growth {plan.growth_per_day:+.4g}/day ({plan.growth_pct_per_30d:+.1f} % per 30 days); {plan.note}"
    )
    with writing(png_path, flag="--out"):
        png = capacity_figure(plan, png_path, f"{csv.name}:{column}")
    console.print(f"figure: {png}")


@forecast_app.command("exhaustion")
def exhaustion(
    csv: CsvOpt,
    column: ColumnOpt,
    limit: Annotated[float, typer.Option("--limit", help="The resource's limit in the column's units.")],
    interval_s: IntervalOpt = 300.0,
    min_window_s: Annotated[
        float, typer.Option("--min-window-s", help="Shortest trend window (one seasonal cycle, if any).")
    ] = 0.0,
    out: Annotated[Path | None, typer.Option("--out", help="Also write a PNG here.")] = None,
) -> None:
    """Is the resource leaking, and when does it reach its limit? Exit 2 if already there."""
    import numpy as np
    from rich.console import Console

    from novacron.benchmarks.forecast_data import read_series
    from novacron.forecasting.exhaustion import ExhaustionConfig, time_to_exhaustion

    check_number(limit, "--limit", positive=True)
    check_number(interval_s, "--interval-s", positive=True)
    check_number(min_window_s, "--min-window-s", positive=False)
    if out is not None:
        check_output(out, flag="--out")
    times, values = read_series(csv, column)
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        raise InputError("empty value (exhaustion needs every reading)", where=f"{csv}:{int(missing[0]) + 2}")
    t = times if times is not None else np.arange(values.size, dtype=np.float64) * interval_s
    verdict = time_to_exhaustion(t, values, limit, ExhaustionConfig(min_window_s=min_window_s))
    if verdict.reason == "constant series":
        raise InputError(f"constant series ({values[0]:g}): no trend to extrapolate", where=column)
    console = Console()
    if verdict.leak:
        low, high = verdict.interval
        console.print(
            f"[bold red]leak[/]: {column} reaches {limit:g} in {_duration(verdict.eta_s)} "
            f"(interval {_duration(low)} – {_duration(high)}), confidence {verdict.confidence:.3f}"
        )
    else:
        console.print(f"[green]no exhaustion predicted[/]: {verdict.reason}")
    console.print(
        f"level {verdict.level:.4g}, slope {verdict.slope:.4g}/s, Mann-Kendall p {verdict.p_value:.3g}, "
        f"tau {verdict.tau:.2f}, mode {verdict.mode}, window {verdict.points} points"
    )
    if out is not None:
        from novacron.benchmarks.forecast_figures import exhaustion_figure

        with writing(out, flag="--out"):
            png = exhaustion_figure(t, values, verdict, out, f"{csv.name}:{column}")
        console.print(f"figure: {png}")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


@forecast_app.command("failures")
def failures(
    data: Annotated[Path, typer.Option("--data", help="Backblaze drive-days CSV (.csv or .csv.gz).")],
    horizon_h: Annotated[float, typer.Option("--horizon-h", help="Predict failure within this many hours.")] = 72.0,
    split: Annotated[str, typer.Option("--split", help="'time' or 'drive' (never random rows).")] = "time",
) -> None:
    """Train and evaluate "fails within H hours" beside the SMART 5/187/197/198 > 0 rule."""
    from rich.console import Console
    from rich.table import Table

    from novacron.benchmarks.forecast_data import read_drive_days
    from novacron.forecasting.failure import evaluate_failure

    check_number(horizon_h, "--horizon-h", positive=True)
    if split not in ("time", "drive"):  # before the (large) file is read
        raise InputError(f"must be 'time' or 'drive', got {split!r}", where="--split")
    report = evaluate_failure(read_drive_days(data), horizon_h=horizon_h, split=split)
    table = Table(title=f"fails within {horizon_h:g} h — split by {split}, {report.test_failures} test failures")
    for name in ("", "precision", "recall (failures)", "recall (drive-days)", "AUC-PR", "alarms"):
        table.add_column(name, justify="right")
    for label, s in (("model", report.model), ("baseline", report.baseline)):

        def cell(metric: str, value: float, s: Any = s) -> str:
            lo, hi = s.intervals.get(metric, (value, value))
            return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"

        table.add_row(
            label,
            cell("precision", s.precision),
            cell("recall", s.recall),
            f"{s.row_recall:.3f}",
            cell("auc_pr", s.auc_pr),
            str(s.alarms),
        )
    Console().print(table)
    Console().print(
        f"baseline: any of SMART 5/187/197/198 raw > 0. train {report.train_rows} rows, "
        f"test {report.test_rows} rows, threshold {report.threshold:.3g}; "
        "[95 % bootstrap interval over test drives]"
    )


@bench_app.command("forecast")
def bench_forecast(
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Reference data directory.")] = Path("../shared/data"),
    figures: Annotated[Path | None, typer.Option("--figures", help="Write figures into this directory.")] = None,
) -> None:
    """Exhaustion, capacity and failure-prediction figures against their targets."""
    from rich.console import Console

    from novacron.benchmarks.forecast import run

    result = run(data_dir, figures=figures)
    if json_out:
        typer.echo(json.dumps(result))
    else:
        Console().print_json(json.dumps(result))
