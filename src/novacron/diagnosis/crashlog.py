"""Why a process died, from its exit status and the last lines of its output.

:func:`classify_crash` names a class — ``out_of_memory``, ``port_in_use``,
``missing_file``, ``missing_binary``, ``permission``, ``dependency_refused``,
``python:<ExceptionType>``, ``signal:<NAME>`` or ``exit:<code>`` — and says whether that
class is *local* (the process itself is broken: restarting a dependency will not help)
or points at a dependency. Log lines are folded into templates with drain3, so a post-mortem
shows ``connect to <*> refused`` once instead of a hundred near-identical lines.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

__all__ = ["CrashReport", "classify_crash", "log_templates", "read_tail"]

_TAIL_BYTES = 16_384
TAIL_LINES = 20

# (class, pattern), first match wins; checked from the newest line backwards.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("out_of_memory", re.compile(r"MemoryError|out of memory|Cannot allocate memory|OOM", re.IGNORECASE)),
    ("port_in_use", re.compile(r"address already in use|EADDRINUSE|Errno 98\b", re.IGNORECASE)),
    ("missing_binary", re.compile(r"command not found|exec format error|not found in PATH", re.IGNORECASE)),
    ("missing_file", re.compile(r"No such file or directory|FileNotFoundError|ModuleNotFoundError|ENOENT")),
    ("permission", re.compile(r"Permission denied|PermissionError|EACCES|Operation not permitted")),
    (
        "dependency_refused",
        re.compile(
            r"Connection refused|ConnectionRefusedError|ECONNREFUSED|could not connect|"
            r"connection reset|upstream .* (down|unavailable)|502 Bad Gateway",
            re.IGNORECASE,
        ),
    ),
)
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt|Warning))\b(?::|$)")
_LOCAL = frozenset({"out_of_memory", "port_in_use", "missing_binary", "missing_file", "permission"})


@dataclass(frozen=True, slots=True)
class CrashReport:
    """A crash's class, whether it is local to the process, and the evidence."""

    crash_class: str
    local: bool
    detail: str
    exit_code: int | None = None
    signal: str | None = None
    tail: tuple[str, ...] = ()
    templates: tuple[str, ...] = field(default_factory=tuple)

    def data(self) -> dict[str, Any]:
        """JSON-ready form for a timeline event and the post-mortem."""
        return {
            "crash_class": self.crash_class,
            "local": self.local,
            "crash_detail": self.detail,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "log_tail": list(self.tail),
            "log_templates": list(self.templates),
        }


def read_tail(path: Path, lines: int = TAIL_LINES, *, start: int = 0) -> list[str]:
    """The last ``lines`` non-empty lines of a log file from byte ``start`` on (empty if unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(start, size - _TAIL_BYTES))
            raw = f.read()
    except OSError:
        return []
    text = raw.decode("utf-8", errors="replace")
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()][-lines:]


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"SIG{-code}"


def classify_crash(exit_code: int | None, tail: Sequence[str]) -> CrashReport:
    """Name the crash from its exit status and log tail (newest lines weigh most)."""
    sig = _signal_name(exit_code)
    templates = tuple(log_templates(tail))
    for line in reversed(tail):
        for name, pattern in _RULES:
            if pattern.search(line):
                return CrashReport(name, name in _LOCAL, line.strip()[:300], exit_code, sig, tuple(tail), templates)
    for line in reversed(tail):
        match = _EXCEPTION.match(line.strip())
        if match:
            name = f"python:{match.group(1)}"
            return CrashReport(name, True, line.strip()[:300], exit_code, sig, tuple(tail), templates)
    if exit_code == 127:
        return CrashReport(
            "missing_binary", True, "exit 127: command not found", exit_code, sig, tuple(tail), templates
        )
    if exit_code == 126:
        return CrashReport("permission", True, "exit 126: not executable", exit_code, sig, tuple(tail), templates)
    if sig is not None:
        # SIGKILL without a word in the log is what the kernel's OOM killer leaves, or an operator.
        return CrashReport(f"signal:{sig}", False, f"killed by {sig}", exit_code, sig, tuple(tail), templates)
    detail = "exit status unknown" if exit_code is None else f"exited with {exit_code}"
    name = "unknown" if exit_code is None else f"exit:{exit_code}"
    return CrashReport(name, False, detail, exit_code, sig, tuple(tail), templates)


def log_templates(lines: Sequence[str]) -> list[str]:
    """Drain3's templates for ``lines``, in order of first appearance (variables as ``<*>``)."""
    if not lines:
        return []
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    order: list[int] = []
    for line in lines:
        result = miner.add_log_message(line)
        cid = int(result["cluster_id"])
        if cid not in order:
            order.append(cid)
    clusters = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return [clusters[cid] for cid in order if cid in clusters]
