"""Tracebacks out of logs, and their root-cause classes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.codegen import RootCause, classify, find_traceback
from novacron.codegen.traceback import ParsedTraceback
from novacron.errors import InputError

LOG = """\
2026-01-01 12:00:00 INFO starting
Traceback (most recent call last):
  File "/srv/app/service.py", line 40, in <module>
    main()
  File "/srv/app/service.py", line 12, in main
    port = settings["port"]
KeyError: 'port'
2026-01-01 12:00:01 INFO exiting
"""


def test_frames_exception_and_message() -> None:
    tb = find_traceback(LOG)
    assert tb.exc_type == "KeyError"
    assert tb.message == "'port'"
    assert [(f.file, f.line, f.func) for f in tb.frames] == [
        ("/srv/app/service.py", 40, "<module>"),
        ("/srv/app/service.py", 12, "main"),
    ]
    assert tb.innermost is not None
    assert tb.innermost.code == 'port = settings["port"]'


def test_the_last_traceback_wins_and_module_prefixes_are_dropped() -> None:
    second = LOG.replace("KeyError: 'port'", "json.decoder.JSONDecodeError: Expecting value: line 1")
    tb = find_traceback(LOG + second)
    assert tb.exc_type == "JSONDecodeError"
    assert classify(tb) is RootCause.VALUE_VALIDATION


def test_a_log_without_a_traceback_names_the_flag() -> None:
    with pytest.raises(InputError, match="--log"):
        find_traceback("all good\nnothing here\n", where="--log")


@pytest.mark.parametrize(
    ("exc", "msg", "cause"),
    [
        ("AttributeError", "'NoneType' object has no attribute 'x'", RootCause.NONE_ATTRIBUTE),
        ("TypeError", "'NoneType' object is not subscriptable", RootCause.NONE_ATTRIBUTE),
        ("TypeError", 'can only concatenate str (not "int") to str', RootCause.TYPE),
        ("KeyError", "'a'", RootCause.KEY_INDEX),
        ("IndexError", "list index out of range", RootCause.OFF_BY_ONE),
        ("ValueError", "invalid literal for int()", RootCause.VALUE_VALIDATION),
        ("ZeroDivisionError", "division by zero", RootCause.VALUE_VALIDATION),
        ("TimeoutError", "timed out", RootCause.TIMEOUT),
        ("ConnectionResetError", "peer", RootCause.TIMEOUT),
        ("RecursionError", "maximum recursion depth exceeded", RootCause.RESOURCE_EXHAUSTION),
        ("MemoryError", "", RootCause.RESOURCE_EXHAUSTION),
        ("AssertionError", "", RootCause.WRONG_OPERATOR),
        ("FixProbeTimeoutError", "Timeout: test ran longer than 3s", RootCause.INFINITE_LOOP),
        ("StateError", "door", RootCause.UNKNOWN),
    ],
)
def test_classes(exc: str, msg: str, cause: RootCause) -> None:
    block = f'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    x()\n{exc}: {msg}\n'
    assert classify(find_traceback(block)) is cause


def test_a_deadline_inside_socket_io_is_a_timeout_not_a_loop() -> None:
    block = (
        'Traceback (most recent call last):\n  File "app.py", line 3, in fetch\n    urlopen(u)\n'
        '  File "/usr/lib/python3.11/socket.py", line 706, in readinto\n    return self._sock.recv_into(b)\n'
        '  File "/tmp/probe/novacron_fixprobe.py", line 30, in _on_alarm\n    raise FixProbeTimeoutError(m)\n'
        "FixProbeTimeoutError: Timeout: test ran longer than 3s\n"
    )
    assert classify(find_traceback(block)) is RootCause.TIMEOUT


@given(st.text(max_size=400))
def test_any_text_is_a_traceback_or_a_clear_error(text: str) -> None:
    if "Traceback (most recent call last):" not in text:
        with pytest.raises(InputError, match=r"^log: "):
            find_traceback(text)
        return
    try:
        tb = find_traceback(text)
    except InputError:
        return  # a header without a complete block: still a clear error
    assert isinstance(tb, ParsedTraceback)
    assert tb.frames
