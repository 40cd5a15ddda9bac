"""``novacron nab run|score`` (Numenta Anomaly Benchmark) and ``novacron bench detect``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from novacron.cli._app import app, bench_app
from novacron.errors import InputError

nab_app = typer.Typer(help="Run detectors on NAB-style data and score them.", no_args_is_help=True)
app.add_typer(nab_app, name="nab")

_RUN_META = "run.json"

DataOpt = Annotated[Path, typer.Option("--data", help="Folder of timestamp,value CSVs (searched recursively).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder for the result CSVs (same layout).")]
DetOpt = Annotated[str, typer.Option("--detector", help="Registered detector name.")]
StreamOpt = Annotated[
    bool, typer.Option("--streaming", help="Feed points one by one (score_one/learn_one) instead of score_many.")
]
CorpusOpt = Annotated[Path, typer.Option("--data", help="NAB folder holding data/ and labels/.")]
ResultsOpt = Annotated[Path, typer.Option("--results", help="Folder written by `nab run`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ThresholdOpt = Annotated[
    float | None, typer.Option("--threshold", help="Default threshold (else the one recorded by `nab run`).")
]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({exc})", where=str(path)) from exc


def _csvs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError("not a folder", where=str(root))
    files = sorted(p for p in root.rglob("*.csv") if p.is_file())
    if not files:
        raise InputError("no CSV files found", where=str(root))
    return files


@nab_app.command("run")
def run(data: DataOpt, out: OutOpt, detector: DetOpt = "ensemble", streaming: StreamOpt = False) -> None:
    """Stream every CSV through a fresh detector; write timestamp,value,anomaly_score."""
    from novacron.detectors import REGISTRY
    from novacron.detectors.nab_data import parse_series, step_seconds
    from novacron.detectors.nab_run import unit_scores
    from novacron.detectors.pipeline import series_detector

    if detector not in REGISTRY:
        raise InputError(f"unknown detector {detector!r} (known: {', '.join(REGISTRY)})", where="--detector")
    threshold = 0.0
    files = _csvs(data)
    for path in files:
        rel = path.relative_to(data)
        series = parse_series(_read(path), str(path))
        det = series_detector(detector, step_seconds(series.times))
        scores, threshold = unit_scores(det, series.values, streaming=streaming)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = ["timestamp,value,anomaly_score"]
        lines += [
            # + 0.0 turns a clipped -0.0 into 0.0 so the file never shows "-0.000000".
            f"{ts},{raw},{s + 0.0:.6f}"
            for ts, raw, s in zip(series.raw_timestamps, series.raw_values, scores.tolist(), strict=True)
        ]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / _RUN_META).write_text(json.dumps({"detector": detector, "threshold": threshold}) + "\n")
    typer.echo(f"wrote results for {len(files)} file(s) to {out}")


def _result_path(results: Path, key: str) -> Path:
    for cand in (results / key, results / "data" / key):
        if cand.is_file():
            return cand
    raise InputError("no result file for this data file", where=str(results / key))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}: {exc.msg}", where=str(path)) from exc


@nab_app.command("score")
def score(data: CorpusOpt, results: ResultsOpt, json_out: JsonOpt = False, threshold: ThresholdOpt = None) -> None:
    """Score results with NAB's rules: optimised and default thresholds, three profiles."""
    from novacron.detectors.nab import DEFAULT_PROFILES, FileCase, parse_profiles, score_corpus
    from novacron.detectors.nab_data import parse_results, parse_series, parse_windows, window_rows

    labels_path = data / "labels" / "combined_windows.json"
    windows = parse_windows(_load_json(labels_path), str(labels_path))
    prof_path = data / "profiles.json"
    profiles = parse_profiles(_load_json(prof_path), str(prof_path)) if prof_path.is_file() else DEFAULT_PROFILES
    t_default = threshold if threshold is not None else _recorded_threshold(results)
    cases = []
    data_root = data / "data"
    for path in _csvs(data_root):
        key = path.relative_to(data_root).as_posix()
        series = parse_series(_read(path), str(path))
        res_path = _result_path(results, key)
        scores = parse_results(_read(res_path), str(res_path), series.values.shape[0])
        cases.append(FileCase(key, scores, window_rows(series.times, windows.get(key, []), str(path))))
    default, best = score_corpus(cases, threshold=t_default, profiles=profiles)
    optimised: dict[str, Any] = {name: round(r.scores[name], 3) for name, r in best.items()}
    # One headline threshold (the standard profile's), plus each profile's own optimum.
    optimised["threshold"] = best.get("standard", next(iter(best.values()))).threshold
    optimised["thresholds"] = {name: r.threshold for name, r in best.items()}
    at_default: dict[str, Any] = {name: round(v, 3) for name, v in default.scores.items()}
    at_default["threshold"] = t_default
    report = {"optimised": optimised, "default_threshold": at_default, "per_file": default.per_file}
    if json_out:
        typer.echo(json.dumps(report))
        return
    _print_table(report, list(profiles))


def _cv_cases(data: Path) -> list[Any]:
    """Labelled files of every category folder under ``data/data``; an empty one is an error."""
    from novacron.detectors.nab_cv import Case
    from novacron.detectors.nab_data import parse_series, parse_windows, step_seconds, window_rows

    labels_path = data / "labels" / "combined_windows.json"
    windows = parse_windows(_load_json(labels_path), str(labels_path))
    root = data / "data"
    if not root.is_dir():
        raise InputError("no data/ folder of categories", where=str(data))
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise InputError(f"category {folder.name!r} has no CSV files", where=str(folder))
        for path in files:
            key = path.relative_to(root).as_posix()
            series = parse_series(_read(path), str(path))
            rows = window_rows(series.times, windows.get(key, []), str(path))
            cases.append(Case(key, series.values, step_seconds(series.times), tuple(rows)))
    if not cases:
        raise InputError("no category folders with CSV files", where=str(root))
    return cases


CandOpt = Annotated[
    str | None,
    typer.Option("--candidates", help="Ensemble candidates to choose among, e.g. zhc,zhc+rank (default: zhc+rank)."),
]


@nab_app.command("cv")
def cv(data: CorpusOpt, json_out: JsonOpt = False, detector: DetOpt = "ensemble", candidates: CandOpt = None) -> None:
    """Leave-one-category-out cross-validation: out-of-sample scores per category and pooled."""
    from novacron.detectors.nab_cv import cross_validate
    from novacron.detectors.nab_grid import DEFAULT_CANDIDATES, candidates_for

    names = tuple(c.strip() for c in candidates.split(",") if c.strip()) if candidates else DEFAULT_CANDIDATES
    if not names:
        raise InputError("name at least one candidate", where="--candidates")
    cands, scorer = candidates_for(detector, names)
    cases = _cv_cases(data)
    prof_path = data / "profiles.json"
    if prof_path.is_file():
        from novacron.detectors.nab import parse_profiles

        result = cross_validate(cases, cands, scorer, profiles=parse_profiles(_load_json(prof_path), str(prof_path)))
    else:
        result = cross_validate(cases, cands, scorer)
    report = {"detector": detector, **result.to_json()}
    if json_out:
        typer.echo(json.dumps(report))
        return
    _print_cv(report)


def _print_cv(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"NAB leave-one-category-out ({report['detector']}): out-of-sample scores")
    for col in ("held out", "standard", "low FP", "low FN", "threshold", "candidate", "hold"):
        table.add_column(col)

    def row(label: str, scores: dict[str, Any], choice: dict[str, Any]) -> list[str]:
        cells = [scores[k] for k in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")]
        return [
            label,
            *("-" if v is None else f"{v:.1f}" for v in cells),
            f"{scores['threshold']:.2f}",
            choice["candidate"],
            str(choice["hold"]),
        ]

    for cat, scores in report["by_category"].items():
        table.add_row(*row(cat, scores, scores))
    table.add_row(*row("pooled", report["pooled"], report["final"]))
    Console().print(table)


def _recorded_threshold(results: Path) -> float:
    meta = results / _RUN_META
    if not meta.is_file():
        raise InputError("no run.json; pass --threshold", where=str(results))
    raw = _load_json(meta)
    t = raw.get("threshold") if isinstance(raw, dict) else None
    if not isinstance(t, int | float):
        raise InputError("missing numeric 'threshold'", where=str(meta))
    return float(t)


def _print_table(report: dict[str, Any], profiles: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="NAB scores (100 = perfect, 0 = never fires)")
    table.add_column("threshold")
    for name in profiles:
        table.add_column(name, justify="right")
    for label, key in (("optimised", "optimised"), ("default", "default_threshold")):
        row = report[key]
        t = row["threshold"]
        table.add_row(f"{label} ({t:.4g})", *(f"{row[name]:.1f}" for name in profiles))
    Console().print(table)


@bench_app.command("detect")
def bench_detect(
    json_out: JsonOpt = False,
    points: Annotated[int, typer.Option("--points", help="Points per detector.")] = 1_000_000,
    only: Annotated[str | None, typer.Option("--only", help="Comma-separated detector names.")] = None,
) -> None:
    """Streaming and batch throughput of every registered detector."""
    from novacron.benchmarks.detect import run as run_bench

    if points < 1:
        raise InputError(f"must be >= 1, got {points}", where="--points")
    names = [n.strip() for n in only.split(",")] if only else None
    result = run_bench(points=points, names=names)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"load average {result['load_average_1m']}, numba {result['numba'] or 'not installed'}")
    for name, row in result["detectors"].items():
        stream, batch = row["streaming_points_per_cpu_s"], row["batch_points_per_cpu_s"]
        path = f"  ({row['path']} path, batch on {row['batch_threads']} threads)" if "path" in row else ""
        typer.echo(
            f"{name:14s} streaming {stream:>12,.0f}/CPU s  "
            f"batch {row['batch_points_per_s']:>14,.0f}/s {batch:>14,.0f}/CPU s{path}"
        )
