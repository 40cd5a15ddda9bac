"""Where the bug is: traceback frames in the repository, ranked with Ochiai over coverage.

Ochiai suspiciousness of a line is ``failed(l) / sqrt(total_failed · (failed(l) + passed(l)))``
over the tests that covered it (coverage.py contexts, one per test). Frames of the crash's
traceback that lie in the repository's own non-test files are added with a high prior,
the innermost first, since that is where the exception was raised.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from novacron.codegen.testrun import TestRun, is_test_file
from novacron.codegen.traceback import ParsedTraceback

__all__ = ["Suspect", "from_traceback", "localise", "ochiai"]


@dataclass(frozen=True, slots=True)
class Suspect:
    """One suspicious line of one file (relative to the repository root)."""

    file: str
    line: int
    score: float
    why: str


def _relative(path: str, roots: Iterable[Path]) -> str | None:
    p = Path(path)
    for root in roots:
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    for root in roots:  # a log from another machine: match the longest path suffix
        for i in range(len(p.parts)):
            tail = Path(*p.parts[i:])
            if not tail.is_absolute() and (root / tail).is_file():
                return tail.as_posix()
    return None


def from_traceback(tb: ParsedTraceback, roots: list[Path], exists: Path) -> list[Suspect]:
    """Traceback frames inside the repository (not tests), innermost first."""
    out: list[Suspect] = []
    for depth, frame in enumerate(reversed(tb.frames)):
        rel = _relative(frame.file, roots)
        if rel is None or is_test_file(rel) or not (exists / rel).is_file():
            continue
        out.append(Suspect(rel, frame.line, 0.5 - 0.05 * min(depth, 8), f"traceback frame in {frame.func}"))
    return out


def ochiai(run: TestRun, root: Path) -> list[Suspect]:
    """Spectrum-based ranking of covered lines; empty without coverage or failing tests."""
    if run.coverage_file is None or not run.failed:
        return []
    try:
        from coverage import CoverageData  # noqa: PLC0415 - the `fix` extra
    except ImportError:
        return []
    data = CoverageData(basename=str(run.coverage_file))
    data.read()
    total_failed = len(run.failed)
    out: list[Suspect] = []
    for measured in data.measured_files():
        rel = _relative(measured, [root])
        if rel is None or is_test_file(rel):
            continue
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for line, contexts in data.contexts_by_lineno(measured).items():
            for ctx in contexts:
                if ctx in run.failed:
                    counts[line][0] += 1
                elif ctx in run.passed:
                    counts[line][1] += 1
        for line, (f, p) in counts.items():
            if f:
                out.append(Suspect(rel, line, f / math.sqrt(total_failed * (f + p)), f"ochiai {f} failing/{p} passing"))
    return out


def localise(run: TestRun, tb: ParsedTraceback | None, root: Path, *, limit: int = 12) -> list[Suspect]:
    """Merge traceback frames and Ochiai scores; best first, one entry per line."""
    best: dict[tuple[str, int], Suspect] = {}
    frames = from_traceback(tb, [root], root) if tb is not None else []
    for s in [*ochiai(run, root), *frames]:  # scores add: a covered frame outranks either alone
        key = (s.file, s.line)
        old = best.get(key)
        best[key] = s if old is None else Suspect(s.file, s.line, old.score + s.score, f"{old.why}; {s.why}")
    ranked = sorted(best.values(), key=lambda s: (-s.score, s.file, s.line))
    return ranked[:limit]
