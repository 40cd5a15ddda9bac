"""Tuning studies and trials in the store: a study survives its process and resumes from here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from novacron.errors import InputError, NotFoundError, StoreError
from novacron.store import tables as t
from novacron.store.repo import Store, _jsonable

__all__ = ["StudyRow", "StudyStore", "TrialRow"]


@dataclass(frozen=True, slots=True)
class StudyRow:
    """One study: its configuration, status and result."""

    name: str
    kind: str
    status: str
    created_at: float
    updated_at: float
    config: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrialRow:
    """One evaluated (or running) candidate of a study."""

    study: str
    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    feasible: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    generation: int | None = None
    updated_at: float = 0.0


class StudyStore:
    """Studies and trials over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open_study(self, name: str, kind: str, config: Mapping[str, Any], *, now: float) -> tuple[StudyRow, bool]:
        """Create the study, or return the stored one (resumed) when its configuration is the same.

        Returns (study, resumed). A study of that name with another configuration is an
        :class:`InputError`: resuming it would mix two searches.
        """
        plain = _jsonable(config)
        found = self.study_or_none(name)
        if found is None:
            row = {"name": name, "kind": kind, "status": "running", "created_at": now, "updated_at": now}
            try:
                self.store._exec(t.tune_studies.insert().values(**row, config=plain, result={}))
            except IntegrityError:  # another worker created it a moment ago: join it
                found = self.study(name)
            else:
                return StudyRow(name, kind, "running", now, now, plain), False
        if found.kind != kind or _canon(found.config) != _canon(plain):
            raise InputError(f"study {name!r} exists with another configuration; pick a new name", where="study")
        return found, True

    def study_or_none(self, name: str) -> StudyRow | None:
        """The study called ``name``, if any."""
        rows = self.store._rows(select(t.tune_studies).where(t.tune_studies.c.name == name))
        return StudyRow(**rows[0]) if rows else None

    def study(self, name: str) -> StudyRow:
        """The study called ``name`` (NotFoundError if absent)."""
        found = self.study_or_none(name)
        if found is None:
            raise NotFoundError(f"no study {name!r}")
        return found

    def studies(self, *, kind: str | None = None) -> list[StudyRow]:
        """Every study, newest first."""
        stmt = select(t.tune_studies).order_by(t.tune_studies.c.created_at.desc())
        if kind is not None:
            stmt = stmt.where(t.tune_studies.c.kind == kind)
        return [StudyRow(**r) for r in self.store._rows(stmt)]

    def finish(self, name: str, status: str, result: Mapping[str, Any], *, now: float) -> None:
        """Record how a study ended."""
        stmt = (
            update(t.tune_studies)
            .where(t.tune_studies.c.name == name)
            .values(status=status, result=_jsonable(result), updated_at=now)
        )
        self.store._exec(stmt)

    def put_trial(self, row: TrialRow) -> None:
        """Insert or replace one trial."""
        self.store._upsert(t.tune_trials, _values(row))

    def claim_trial(self, row: TrialRow) -> bool:
        """Insert a new trial; False when another worker of the study took that number first.

        The (study, number) primary key is the lock: of two workers claiming the same
        number at once, the database lets exactly one insert it, on SQLite and PostgreSQL alike.
        """
        try:
            self.store._exec(insert(t.tune_trials).values(**_values(row)))
        except IntegrityError as exc:
            cols = t.tune_trials.c
            taken = select(cols.number).where((cols.study == row.study) & (cols.number == row.number))
            if not self.store._rows(taken):  # not a number taken first: the study itself is gone
                raise StoreError(f"cannot add trial {row.number} to study {row.study!r}: {exc.orig}") from exc
            return False
        return True

    def reclaim_trial(self, study: str, number: int, *, was: str, by: str, now: float) -> bool:
        """Take over a running trial from worker ``was`` (gone); False when another worker was quicker."""
        cols = t.tune_trials.c
        stmt = (
            update(t.tune_trials)
            .where((cols.study == study) & (cols.number == number) & (cols.state == "running") & (cols.detail == was))
            .values(detail=by, updated_at=now)
        )
        return bool(self.store._exec(stmt).rowcount == 1)

    def touch_trials(self, study: str, worker: str, *, now: float) -> None:
        """Mark the running trials of ``worker`` as still being evaluated (its heartbeat)."""
        cols = t.tune_trials.c
        stmt = (
            update(t.tune_trials)
            .where((cols.study == study) & (cols.state == "running") & (cols.detail == worker))
            .values(updated_at=now)
        )
        self.store._exec(stmt)

    def trials(self, study: str) -> list[TrialRow]:
        """A study's trials in number order."""
        stmt = select(t.tune_trials).where(t.tune_trials.c.study == study).order_by(t.tune_trials.c.number)
        return [TrialRow(**r) for r in self.store._rows(stmt)]


def _values(row: TrialRow) -> dict[str, Any]:
    return {
        "study": row.study, "number": row.number, "generation": row.generation, "state": row.state,
        "params": _jsonable(row.params), "value": row.value, "feasible": row.feasible,
        "metrics": _jsonable(row.metrics), "detail": row.detail, "updated_at": row.updated_at,
    }  # fmt: skip


def _canon(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
