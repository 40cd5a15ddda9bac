"""Several ``novacron tune`` processes on one store share one study: the budget once, no trial twice."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from novacron.errors import StoreError
from novacron.runtime.tuneshare import WORKER_PREFIX, SharedStudy
from novacron.store import Store
from novacron.store.studies import StudyStore, TrialRow
from tests.cli.runner import NOVACRON
from tests.postgres import pg_url  # noqa: F401 - a fixture
from tests.tuning.conftest import tuning_spec

BUDGET = 24


def _two_workers(spec: Path) -> list[dict[str, object]]:
    """Start two ``novacron tune`` processes on the same spec at once; their JSON results."""
    env = {k: v for k, v in os.environ.items() if k != "NOVACRON_TOKEN"}
    argv = [*NOVACRON, "tune", "-c", str(spec), "--workers", "1", "--json"]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        outs.append(json.loads(stdout))
    return outs


def _check_shared(url: str, outs: list[dict[str, object]]) -> None:
    studies = StudyStore(Store.open(url))
    try:
        trials = studies.trials("shop-tune-gp")
    finally:
        studies.store.close()
    assert [t.number for t in trials] == list(range(BUDGET))  # the budget once: no gap, nothing beyond it
    assert all(t.state == "complete" for t in trials)
    configs = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(configs) == BUDGET  # no configuration evaluated twice
    done_here = [int(str(o["evaluated_here"])) for o in outs]
    assert sum(done_here) == BUDGET
    assert all(n > 0 for n in done_here), done_here  # both processes worked on the one study
    assert all(o["trials"] == BUDGET for o in outs)
    assert {json.dumps(o["best"], sort_keys=True) for o in outs} == {json.dumps(outs[0]["best"], sort_keys=True)}


def _big_spec(tmp_path: Path, store_url: str | None = None) -> Path:
    spec = tuning_spec(tmp_path, budget=BUDGET, method="gp")
    if store_url is not None:
        data = yaml.safe_load(spec.read_text())
        data["controller"]["store_url"] = store_url
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def test_two_tune_processes_share_one_study_on_sqlite(tmp_path: Path) -> None:
    outs = _two_workers(_big_spec(tmp_path))
    _check_shared(f"sqlite:///{tmp_path / 'n.db'}", outs)


def test_two_tune_processes_share_one_study_on_postgresql(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    outs = _two_workers(_big_spec(tmp_path, pg_url))
    _check_shared(pg_url, outs)


@pytest.fixture
def studies(tmp_path: Path) -> StudyStore:
    """A store with one study, ``s``."""
    store = StudyStore(Store.open(f"sqlite:///{tmp_path / 's.db'}"))
    store.open_study("s", "tune", {"x": 1}, now=0.0)
    return store


def test_a_claimed_number_cannot_be_claimed_again(studies: StudyStore) -> None:
    row = TrialRow("s", 0, "running", {"a": 1}, detail=f"{WORKER_PREFIX}elsewhere:1", updated_at=0.0)
    assert studies.claim_trial(row) is True
    assert studies.claim_trial(row) is False
    assert studies.reclaim_trial("s", 0, was=row.detail, by=f"{WORKER_PREFIX}here:2", now=1.0) is True
    assert studies.reclaim_trial("s", 0, was=row.detail, by=f"{WORKER_PREFIX}here:3", now=1.0) is False
    studies.store.close()


def test_a_trial_is_taken_over_only_when_its_worker_is_gone(studies: StudyStore) -> None:
    clock = [1000.0]
    shared = SharedStudy(studies, "s", worker=f"{WORKER_PREFIX}here:{os.getpid()}", now=lambda: clock[0])

    def row(detail: str, updated_at: float) -> TrialRow:
        return TrialRow("s", 0, "running", {}, detail=detail, updated_at=updated_at)

    assert shared.gone(row("", 0.0))  # stored without a worker
    assert not shared.gone(row(f"{WORKER_PREFIX}here:{os.getppid()}", 0.0))  # alive on this host
    assert shared.gone(row(f"{WORKER_PREFIX}here:{_dead_pid()}", 999.0))
    assert not shared.gone(row(f"{WORKER_PREFIX}elsewhere:5", 999.0))  # another host, heartbeat fresh
    assert shared.gone(row(f"{WORKER_PREFIX}elsewhere:5", 1000.0 - shared.stale_after_s - 1))
    studies.store.close()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_trial_of_a_study_that_is_gone_is_an_error_not_a_lost_race(studies: StudyStore) -> None:
    row = TrialRow("nowhere", 0, "running", {}, detail=f"{WORKER_PREFIX}here:1", updated_at=0.0)
    with pytest.raises(StoreError, match="nowhere"):
        studies.claim_trial(row)
    studies.store.close()
