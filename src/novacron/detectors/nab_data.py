"""Parsing NAB inputs from text (the CLI reads the files): series, results, label windows.

Every error is an :class:`InputError` naming the file and, for CSVs, the 1-based line.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from novacron.detectors.base import FloatArray
from novacron.errors import InputError

__all__ = ["Series", "parse_results", "parse_series", "parse_windows", "step_seconds", "window_rows"]


@dataclass(frozen=True)
class Series:
    """One NAB file: raw timestamp strings, parsed times (epoch seconds) and values."""

    raw_timestamps: list[str]
    raw_values: list[str]
    times: FloatArray
    values: FloatArray


def _parse_time(text: str, where: str) -> float:
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError as exc:
        raise InputError(f"bad timestamp {text!r}", where=where) from exc


def _parse_float(text: str, where: str, *, allow_empty: bool) -> float:
    s = text.strip()
    if s == "" and allow_empty:
        return math.nan  # a missing value: detectors score it 0 and skip it
    try:
        return float(s)
    except ValueError as exc:
        raise InputError(f"bad number {text!r}", where=where) from exc


def _read_csv(text: str, name: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InputError(f"not valid CSV ({exc})", where=name) from exc


def _rows(text: str, name: str, header: tuple[str, ...]) -> list[list[str]]:
    rows = _read_csv(text, name)
    if not rows:
        raise InputError("empty file (expected a header row)", where=name)
    got = tuple(c.strip() for c in rows[0])
    if got[: len(header)] != header:
        raise InputError(f"header must start with {','.join(header)}, got {','.join(got)}", where=f"{name}:1")
    body = rows[1:]
    if not body:
        raise InputError("no data rows", where=name)
    return body


def parse_series(text: str, name: str) -> Series:
    """Parse ``timestamp,value`` CSV text; empty values are missing (NaN)."""
    body = _rows(text, name, ("timestamp", "value"))
    stamps: list[str] = []
    texts: list[str] = []
    times = np.empty(len(body))
    values = np.empty(len(body))
    for i, row in enumerate(body):
        where = f"{name}:{i + 2}"
        if len(row) < 2:
            raise InputError(f"expected 2 fields, got {len(row)}", where=where)
        stamps.append(row[0].strip())
        texts.append(row[1].strip())
        times[i] = _parse_time(row[0], where)
        values[i] = _parse_float(row[1], where, allow_empty=True)
    return Series(stamps, texts, times, values)


def parse_results(text: str, name: str, expected_rows: int) -> FloatArray:
    """The ``anomaly_score`` column of a results CSV; must have ``expected_rows`` rows."""
    rows = _read_csv(text, name)
    if not rows:
        raise InputError("empty results file", where=name)
    header = [c.strip() for c in rows[0]]
    if "anomaly_score" not in header:
        raise InputError("no anomaly_score column", where=f"{name}:1")
    col = header.index("anomaly_score")
    body = rows[1:]
    if len(body) != expected_rows:
        raise InputError(f"{len(body)} rows, but the data file has {expected_rows}", where=name)
    out = np.empty(len(body))
    for i, row in enumerate(body):
        where = f"{name}:{i + 2}"
        if len(row) <= col:
            raise InputError("missing anomaly_score field", where=where)
        v = _parse_float(row[col], where, allow_empty=False)
        if not 0.0 <= v <= 1.0:
            raise InputError(f"anomaly_score {v} outside [0, 1]", where=where)
        out[i] = v
    return out


def parse_windows(raw: object, where: str) -> dict[str, list[tuple[float, float]]]:
    """``{"<category>/<file>.csv": [[start, end], ...]}`` → epoch-second windows."""
    if not isinstance(raw, Mapping):
        raise InputError("expected an object mapping file names to windows", where=where)
    out: dict[str, list[tuple[float, float]]] = {}
    for key, wins in raw.items():
        if not isinstance(wins, list):
            raise InputError("expected a list of [start, end]", where=f"{where}: {key}")
        parsed: list[tuple[float, float]] = []
        for j, w in enumerate(wins):
            at = f"{where}: {key}[{j}]"
            if not (isinstance(w, list) and len(w) == 2 and all(isinstance(s, str) for s in w)):
                raise InputError("expected [start, end] timestamps", where=at)
            lo, hi = _parse_time(w[0], at), _parse_time(w[1], at)
            if hi < lo:
                raise InputError("window ends before it starts", where=at)
            parsed.append((lo, hi))
        out[str(key)] = parsed
    return out


def window_rows(times: FloatArray, windows: list[tuple[float, float]], name: str) -> list[tuple[int, int]]:
    """Inclusive row ranges covered by each window; rows must be in time order."""
    if times.shape[0] > 1 and bool(np.any(np.diff(times) < 0)):
        row = int(np.argmax(np.diff(times) < 0)) + 3
        raise InputError("timestamps go backwards (scoring needs time order)", where=f"{name}:{row}")
    out: list[tuple[int, int]] = []
    for lo, hi in windows:
        a = int(np.searchsorted(times, lo, side="left"))
        b = int(np.searchsorted(times, hi, side="right")) - 1
        if b >= a:
            out.append((a, b))
    return out


def step_seconds(times: FloatArray) -> float:
    """Typical sampling step (median positive gap), 300 s if it cannot be told."""
    gaps = np.diff(times)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else 300.0
