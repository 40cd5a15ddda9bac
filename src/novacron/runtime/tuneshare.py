"""One tuning study shared by several ``novacron tune`` processes through the store.

Every process that runs the same study (same name, same setup) against the same store
database — SQLite on one machine, PostgreSQL across machines — works on one history:

- before each batch it rebuilds its optimiser from the stored trials, so it proposes
  knowing every other worker's results, and trials other workers are still evaluating
  count as pending (the GP's constant liar keeps a batch away from them);
- a new trial is claimed by inserting its row: the (study, number) primary key lets
  exactly one of two workers that asked for the same number at once have it, and the
  other asks again on the fresh history — no trial is evaluated twice and none is lost;
- a running trial carries its worker (``worker HOST:PID``) in its detail and a heartbeat in
  ``updated_at``; a trial whose worker is gone (the process no longer exists on this host,
  or no heartbeat from another host for ``stale_after_s``) is taken over and evaluated
  again, which is also how a killed study resumes;
- the study ends when ``budget`` trials are finished; a worker with nothing left to claim
  waits for the others' last trials, so every worker concludes on the whole history.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import psutil

from novacron.store.studies import StudyStore, TrialRow
from novacron.tuning import AskTell, Trial, TrialState

__all__ = ["WORKER_PREFIX", "SharedStudy", "this_worker"]

WORKER_PREFIX = "worker "

Evaluate = Callable[[AskTell, Sequence[Trial]], None]  # evaluates the trials and tells (or fails) them
Progress = Callable[[int, int, float | None], None]  # (finished, budget, best so far)


def this_worker() -> str:
    """This process as a study worker: ``worker HOST:PID``."""
    return f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}"


def trial_row(study: str, trial: Trial, now: float, *, worker: str = "", generation: int | None = None) -> TrialRow:
    """The stored form of a trial; a running one names its worker."""
    detail = worker if trial.state is TrialState.RUNNING else trial.detail
    return TrialRow(
        study, trial.number, trial.state.value, dict(trial.params), trial.value, trial.feasible,
        dict(trial.metrics), detail, generation, now,
    )  # fmt: skip


def as_trial(row: TrialRow) -> Trial:
    """A stored trial as the optimiser knows it."""
    return Trial(
        row.number, dict(row.params), TrialState(row.state), row.value, row.feasible, dict(row.metrics), row.detail
    )


@dataclass
class SharedStudy:
    """This process's part in a study stored in ``store``."""

    store: StudyStore
    study: str
    worker: str = ""
    stale_after_s: float = 120.0
    poll_s: float = 0.5
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    evaluated: int = 0  # trials this worker evaluated (its own and taken over)

    def __post_init__(self) -> None:
        self.worker = self.worker or this_worker()
        self._host = self.worker.removeprefix(WORKER_PREFIX).rpartition(":")[0]

    def run(
        self, fresh: Callable[[], AskTell], evaluate: Evaluate, *, budget: int, batch: int, on_progress: Progress | None
    ) -> AskTell:
        """Claim, evaluate and store trials until ``budget`` are finished; returns the whole history."""
        while True:
            opt, todo = self.sync(fresh)
            if opt.finished >= budget:
                return opt
            if not todo:
                room = budget - len(opt.trials)
                if room <= 0:  # every trial is claimed: the other workers are finishing theirs
                    self.sleep(self.poll_s)
                    continue
                todo = self.claim([opt.ask() for _ in range(min(batch, room))])
                if not todo:  # another worker took that number first: look again
                    continue
            with self.heartbeat():
                evaluate(opt, todo)
            self.evaluated += len(todo)
            for trial in todo:
                self.store.put_trial(trial_row(self.study, trial, self.now()))
            if on_progress is not None:
                best = opt.best()
                on_progress(opt.finished, budget, best.value if best else None)

    def sync(self, fresh: Callable[[], AskTell]) -> tuple[AskTell, list[Trial]]:
        """A new optimiser that has seen every stored trial, and the running ones this worker now owns."""
        rows = {r.number: r for r in self.store.trials(self.study)}
        opt = fresh()
        running = opt.replay(as_trial(r) for r in rows.values())
        return opt, [t for t in running if self._take(rows[t.number])]

    def claim(self, trials: Sequence[Trial]) -> list[Trial]:
        """Store new trials as running under this worker, in order, until one's number is already taken."""
        claimed: list[Trial] = []
        for trial in trials:
            if not self.store.claim_trial(trial_row(self.study, trial, self.now(), worker=self.worker)):
                break
            claimed.append(trial)
        return claimed

    def gone(self, row: TrialRow) -> bool:
        """Whether the worker of a running trial is no longer evaluating it."""
        host, _, pid = row.detail.removeprefix(WORKER_PREFIX).rpartition(":")
        if not row.detail.startswith(WORKER_PREFIX) or not pid.isdigit():
            return True  # stored without a worker: nobody is on it
        if host == self._host:
            return int(pid) != os.getpid() and not psutil.pid_exists(int(pid))
        return self.now() - row.updated_at > self.stale_after_s

    def _take(self, row: TrialRow) -> bool:
        if row.detail == self.worker:
            return True
        if not self.gone(row):
            return False
        return self.store.reclaim_trial(self.study, row.number, was=row.detail, by=self.worker, now=self.now())

    @contextlib.contextmanager
    def heartbeat(self) -> Iterator[None]:
        """While the body runs, refresh this worker's running trials so no other worker takes them over."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.stale_after_s / 4):
                with contextlib.suppress(Exception):  # a missed beat only risks a repeated evaluation
                    self.store.touch_trials(self.study, self.worker, now=self.now())

        thread = threading.Thread(target=beat, name="study-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
