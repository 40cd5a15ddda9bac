"""Experiments in the store: one row per experiment (spec, canary state, tallies) and its looks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select

from novacron.errors import NotFoundError
from novacron.store import tables as t
from novacron.store.repo import Store, _jsonable

__all__ = ["ExperimentStore", "public_view"]

_COLS = ("name", "target", "arm", "spec", "phase", "state", "arms", "threshold_s", "started_at", "updated_at", "reason")


class ExperimentStore:
    """Repository over the ``experiments`` and ``experiment_looks`` tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one experiment."""
        self.store._upsert(t.experiments, {c: _jsonable(row[c]) for c in _COLS})

    def get(self, name: str) -> dict[str, Any]:
        """One experiment (NotFoundError if absent)."""
        rows = self.store._rows(select(t.experiments).where(t.experiments.c.name == name))
        if not rows:
            raise NotFoundError(f"no experiment {name!r}")
        return dict(rows[0])

    def all(self) -> list[dict[str, Any]]:
        """Every experiment, newest first."""
        stmt = select(t.experiments).order_by(t.experiments.c.started_at.desc())
        return [dict(r) for r in self.store._rows(stmt)]

    def add_look(self, name: str, *, time: float, split: float, move: str, data: Mapping[str, Any]) -> None:
        """Record one look."""
        values = {"experiment": name, "time": time, "split": split, "move": move, "data": _jsonable(data)}
        self.store._exec(insert(t.experiment_looks).values(**values))

    def looks(self, name: str, *, limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` looks of an experiment, oldest first."""
        stmt = (
            select(t.experiment_looks)
            .where(t.experiment_looks.c.experiment == name)
            .order_by(t.experiment_looks.c.id.desc())
            .limit(limit)
        )
        return [dict(r) for r in reversed(self.store._rows(stmt))]


def public_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment as the API and CLI show it: phase, split, arms, weights, decision times."""
    state = dict(row["state"])
    spec = row["spec"]
    steps = spec.get("steps", [])
    phase = row["phase"]
    split = 100.0 if phase == "promoted" else steps[state["step"]] if phase == "running" else 0.0
    if "split" in state:  # a bandit run: the variants' share its weights give
        split = float(state["split"])
    decided = state.get("decided_at")
    return {
        "name": row["name"],
        "target": row["target"],
        "arm": row["arm"],
        "phase": phase,
        "split": split,
        "step": state.get("step"),
        "steps": steps,
        "weights": state.get("weights", {}),
        "arms": row["arms"],
        "threshold_s": row["threshold_s"],
        "started_at": row["started_at"],
        "decided_at": decided,
        "applied_at": state.get("applied_at"),
        "decision_s": None if decided is None else round(float(decided) - float(row["started_at"]), 3),
        "reason": row["reason"],
        "looks": state.get("looks", 0),
        "command": spec.get("command"),
        "allocation": spec.get("allocation", "canary"),
    }
