"""Root-cause ranking with every signal: the graph, time order and the target's own crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.diagnosis.crashlog import classify_crash, log_templates, read_tail
from novacron.diagnosis.rootcause import rank_root_causes

GRAPH = {"db": [], "auth": ["db"], "api": ["auth"], "cache": []}


def test_the_deepest_failing_dependency_is_the_root() -> None:
    causes = rank_root_causes("api", GRAPH, {"db", "auth", "api"})
    assert causes[0].target == "db"
    assert [c.target for c in causes][-1] == "api"


def test_a_healthy_upstream_leaves_a_local_fault() -> None:
    assert rank_root_causes("api", GRAPH, {"api"})[0].target == "api"


def test_an_upstream_that_failed_first_gains_one_that_failed_much_later_loses() -> None:
    first = rank_root_causes("auth", GRAPH, {"db", "auth"}, first_failed={"db": 10.0, "auth": 10.2})
    assert first[0].target == "db"
    assert "failed first" in first[0].reason
    late = rank_root_causes("auth", GRAPH, {"db", "auth"}, first_failed={"db": 20.0, "auth": 10.0})
    assert late[0].target == "auth"


def test_a_local_crash_is_the_targets_own_even_with_a_failing_upstream() -> None:
    causes = rank_root_causes("auth", GRAPH, {"db", "auth"}, crash="local")
    assert causes[0].target == "auth"
    assert "local cause" in causes[0].reason


def test_a_refused_dependency_points_upstream() -> None:
    causes = rank_root_causes("auth", GRAPH, {"db", "auth"}, crash="dependency")
    assert causes[0].target == "db"
    assert "refused" in causes[0].reason


def test_a_dependency_still_starting_is_called_starting_not_failing() -> None:
    causes = rank_root_causes("api", GRAPH, {"db", "auth", "api"}, starting={"db"})
    assert causes[0].target == "db"  # ranked as a failing one would be
    assert causes[0].reason.startswith("db is still starting (not yet healthy since its start) with healthy")
    by_target = {c.target: c.reason for c in causes}
    assert by_target["api"] == (
        "api fails, but so do its dependencies ['auth'], "
        "and its dependencies ['db'] are still starting (not yet healthy since their start)"
    )


@pytest.mark.parametrize(
    ("code", "tail", "name", "local"),
    [
        (1, ["OSError: [Errno 98] Address already in use"], "port_in_use", True),
        (1, ["Traceback (most recent call last):", "MemoryError"], "out_of_memory", True),
        (1, ["FileNotFoundError: [Errno 2] No such file or directory: '/etc/x.conf'"], "missing_file", True),
        (1, ["PermissionError: [Errno 13] Permission denied: '/var/x'"], "permission", True),
        (1, ["ConnectionRefusedError: [Errno 111] Connection refused"], "dependency_refused", False),
        (1, ["Traceback (most recent call last):", "KeyError: 'db_url'"], "python:KeyError", True),
        (1, ["json.decoder.JSONDecodeError: Expecting value"], "python:JSONDecodeError", True),
        (127, [], "missing_binary", True),
        (-9, [], "signal:SIGKILL", False),
        (3, ["bye"], "exit:3", False),
    ],
)
def test_crash_classes(code: int, tail: list[str], name: str, local: bool) -> None:
    report = classify_crash(code, tail)
    assert report.crash_class == name
    assert report.local is local
    assert report.data()["log_tail"] == tail


def test_templates_fold_repeated_lines() -> None:
    lines = [f"connect to 127.0.0.1:{p} refused" for p in (5432, 5433, 5434)] + ["giving up"]
    assert log_templates(lines) == ["connect to <*> refused", "giving up"]


def test_read_tail_starts_at_the_processes_own_lines(tmp_path: Path) -> None:
    log = tmp_path / "web-0.log"
    log.write_text("old run\nKeyError: x\n")
    start = log.stat().st_size
    with log.open("a") as f:
        f.write("\nnew run\nPermissionError: denied\n")
    assert read_tail(log, start=start) == ["new run", "PermissionError: denied"]
    assert read_tail(tmp_path / "missing.log") == []
