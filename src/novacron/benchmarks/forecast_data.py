"""Reading forecasting inputs from files: metric CSVs and Backblaze drive-day tables.

The forecasting library itself does no I/O; the CLI and the benchmark read through here so
that bad files fail the same way everywhere, with the file, row and column named.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

import numpy as np

from novacron.errors import InputError
from novacron.extras import require
from novacron.forecasting._stats import FloatArray
from novacron.forecasting.exhaustion import ExhaustionConfig
from novacron.forecasting.failure import DriveDays

__all__ = ["TRACES", "TRACE_CONFIG", "read_drive_days", "read_series"]

# Columns of the reference traces (5-minute steps), as "<file key>/<column>".
TRACES: dict[str, str] = {
    "alibaba2018": "alibaba2018/machine_usage_days_1_to_8_grouped_300_seconds.csv",
    "google2019": "google2019/instance_usage_grouped_300_seconds_month.csv",
    "azure_v2": "azure_v2/vm_cpu_readings_month_aggregated_cpu_mem.csv",
}
_DAY = 86_400.0
TRACE_CONFIG = ExhaustionConfig(season_s=_DAY, min_drop_fraction=0.15, horizon_s=30 * _DAY)
"""How the reference traces are forecast: daily seasonality, a month ahead."""
_TIME_COLUMNS = ("timestamp", "time", "ts")


def _number(cell: str, where: str) -> float:
    if cell.strip() == "":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise InputError(f"not a number: {cell!r}", where=where) from None


def _time(cell: str, where: str) -> float:
    try:
        return float(cell)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(cell.strip()).timestamp()
    except ValueError:
        raise InputError(f"not a time (seconds or ISO 8601): {cell!r}", where=where) from None


def read_series(path: Path, column: str, *, time_column: str | None = None) -> tuple[FloatArray | None, FloatArray]:
    """Read one numeric column (empty cells become NaN) and, if present, a time column.

    The time column is ``time_column`` or, by default, the first of ``timestamp``/``time``/
    ``ts`` that exists; times are seconds or ISO 8601. Returns ``(times or None, values)``.
    """
    if not path.is_file():
        raise InputError("no such file", where=str(path))
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputError("empty file", where=str(path))
        names = [h.strip() for h in header]
        if column not in names:
            raise InputError(f"no column {column!r}; columns are {', '.join(names)}", where=str(path))
        tcol = time_column or next((c for c in _TIME_COLUMNS if c in names), None)
        if tcol is not None and tcol not in names:
            raise InputError(f"no time column {tcol!r}", where=str(path))
        vi = names.index(column)
        ti = names.index(tcol) if tcol is not None else None
        values: list[float] = []
        times: list[float] = []
        for row_no, row in enumerate(reader, start=2):
            where = f"{path}:{row_no}"
            if len(row) != len(names):
                raise InputError(f"has {len(row)} fields, expected {len(names)}", where=where)
            values.append(_number(row[vi], f"{where} column {column}"))
            if ti is not None:
                times.append(_time(row[ti], f"{where} column {tcol}"))
    t = np.asarray(times, dtype=np.float64) if ti is not None else None
    return t, np.asarray(values, dtype=np.float64)


def read_drive_days(path: Path) -> DriveDays:
    """Read a Backblaze drive-stats table (``.csv`` or ``.csv.gz``) into :class:`DriveDays`."""
    pd = require("pandas", feature="reading drive-stats tables")  # only used to parse fast

    if not path.is_file():
        raise InputError("no such file", where=str(path))
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read as CSV: {exc}", where=str(path)) from exc
    need = {"date", "serial_number", "model", "capacity_bytes", "failure"}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where=str(path))
    smart_cols = [c for c in frame.columns if c.startswith("smart_") and c.endswith("_raw")]
    if not smart_cols:
        raise InputError("no smart_<id>_raw columns", where=str(path))
    try:
        day = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
        smart = frame[smart_cols].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"bad date or SMART value: {exc}", where=str(path)) from exc
    return DriveDays(
        day=np.asarray(day, dtype=np.int64),
        drive=np.asarray(pd.factorize(frame["serial_number"])[0], dtype=np.int64),
        model=np.asarray(pd.factorize(frame["model"])[0], dtype=np.int64),
        capacity=frame["capacity_bytes"].to_numpy(dtype=np.float64),
        failure=frame["failure"].to_numpy(dtype=np.int64),
        smart=smart,
        smart_ids=tuple(int(c.split("_")[1]) for c in smart_cols),
    )
