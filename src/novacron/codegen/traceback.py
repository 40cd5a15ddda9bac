"""Python tracebacks out of logs, and the root-cause class they point to.

A log may hold many lines around a crash; :func:`find_traceback` takes the last complete
``Traceback (most recent call last):`` block (the innermost report of a chained error is
printed last) and :func:`classify` maps the exception to a :class:`RootCause`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from novacron.errors import InputError

__all__ = ["Frame", "ParsedTraceback", "RootCause", "classify", "find_traceback", "parse_traceback"]

_HEADER = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?')
_EXC = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration|Timeout)\w*)(?::\s?(?P<msg>.*))?$"
)
_EXC_ANY = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")


class RootCause(enum.StrEnum):
    """The bug classes the fixer knows templates for."""

    NONE_ATTRIBUTE = "none_attribute"
    KEY_INDEX = "key_index"
    TYPE = "type"
    VALUE_VALIDATION = "value_validation"
    TIMEOUT = "timeout"
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    OFF_BY_ONE = "off_by_one"
    WRONG_OPERATOR = "wrong_operator"
    INFINITE_LOOP = "infinite_loop"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Frame:
    """One ``File "…", line N, in func`` entry."""

    file: str
    line: int
    func: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class ParsedTraceback:
    """Exception type (without module), message and frames, outermost first."""

    exc_type: str
    message: str
    frames: tuple[Frame, ...]

    @property
    def innermost(self) -> Frame | None:
        """The frame where the exception was raised."""
        return self.frames[-1] if self.frames else None


def _blocks(text: str) -> list[list[str]]:
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().endswith(_HEADER)]
    blocks: list[list[str]] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        indent = len(lines[start]) - len(lines[start].lstrip())
        blocks.append([line[indent:] if line[:indent].isspace() else line for line in lines[start:end]])
    return blocks


def parse_traceback(block: str) -> ParsedTraceback:
    """Parse one traceback block (header, frames, exception line)."""
    frames: list[Frame] = []
    exc_type, message = "", ""
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        m = _FRAME.match(lines[i])
        if m:
            code = ""
            if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]) and lines[i + 1].startswith("    "):
                code = lines[i + 1].strip()
            frames.append(Frame(m["file"], int(m["line"]), m["func"] or "<module>", code))
        elif frames and not lines[i].startswith((" ", "\t")) and lines[i].strip():
            e = _EXC.match(lines[i].strip()) or _EXC_ANY.match(lines[i].strip())
            if e and not exc_type:
                exc_type = e["type"].rsplit(".", 1)[-1]
                message = (e["msg"] or "").strip()
        i += 1
    if not frames or not exc_type:
        raise InputError("no complete Python traceback (frames and an exception line) found", where="log")
    return ParsedTraceback(exc_type, message, tuple(frames))


def find_traceback(text: str, *, where: str = "log") -> ParsedTraceback:
    """The last complete traceback in a log; :class:`InputError` naming the log if none."""
    for block in reversed(_blocks(text)):
        try:
            return parse_traceback("\n".join(block))
        except InputError:
            continue
    raise InputError("no Python traceback (a 'Traceback (most recent call last):' block) in it", where=where)


_BY_TYPE: dict[str, RootCause] = {
    "AttributeError": RootCause.NONE_ATTRIBUTE,
    "KeyError": RootCause.KEY_INDEX,
    "IndexError": RootCause.KEY_INDEX,
    "TypeError": RootCause.TYPE,
    "ValueError": RootCause.VALUE_VALIDATION,
    "JSONDecodeError": RootCause.VALUE_VALIDATION,
    "UnicodeDecodeError": RootCause.VALUE_VALIDATION,
    "ZeroDivisionError": RootCause.VALUE_VALIDATION,
    "TimeoutError": RootCause.TIMEOUT,
    "TimeoutExpired": RootCause.TIMEOUT,
    "ReadTimeout": RootCause.TIMEOUT,
    "ConnectTimeout": RootCause.TIMEOUT,
    "FixProbeTimeoutError": RootCause.INFINITE_LOOP,  # the probe's per-test deadline
    "MemoryError": RootCause.RESOURCE_EXHAUSTION,
    "RecursionError": RootCause.RESOURCE_EXHAUSTION,
    "OSError": RootCause.RESOURCE_EXHAUSTION,
    "ResourceWarning": RootCause.RESOURCE_EXHAUSTION,
    "AssertionError": RootCause.WRONG_OPERATOR,
    "ConnectionError": RootCause.TIMEOUT,  # transient network failures share the retry/timeout repairs
    "ConnectionResetError": RootCause.TIMEOUT,
    "ConnectionRefusedError": RootCause.TIMEOUT,
    "BrokenPipeError": RootCause.TIMEOUT,
    "Empty": RootCause.TIMEOUT,
}
# A test stopped at its deadline inside one of these was blocked on I/O, not looping.
_BLOCKING_MODULES = ("socket.py", "ssl.py", "selectors.py", "subprocess.py", "queue.py", "threading.py", "client.py")


def classify(tb: ParsedTraceback) -> RootCause:
    """Map an exception (type and message) to the bug class most likely behind it."""
    msg = tb.message
    if tb.exc_type == "AttributeError" and "NoneType" not in msg:
        return RootCause.TYPE
    if tb.exc_type == "TypeError" and "NoneType" in msg:
        return RootCause.NONE_ATTRIBUTE
    if tb.exc_type == "IndexError" and "out of range" in msg:
        return RootCause.OFF_BY_ONE
    if tb.exc_type == "OSError" and "Too many open files" not in msg:
        return RootCause.UNKNOWN
    if tb.exc_type in {"Failed", "FixProbeTimeoutError"} and "Timeout" in msg:
        # The deadline's own signal handler is the innermost frame; the one before it is where the code was.
        frames = [f for f in tb.frames if not f.file.endswith("novacron_fixprobe.py")]
        blocked = bool(frames) and frames[-1].file.endswith(_BLOCKING_MODULES)
        return RootCause.TIMEOUT if blocked else RootCause.INFINITE_LOOP
    return _BY_TYPE.get(tb.exc_type, RootCause.UNKNOWN)
