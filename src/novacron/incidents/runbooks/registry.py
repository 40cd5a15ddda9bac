"""A registry of runbooks, matching them to incidents; Python runbooks register by decorator.

The registry is an ordinary object (pass one in, or use :data:`DEFAULT_REGISTRY`), so
tests and embedders never share global state by accident. Matching returns every runbook
that applies, in registration order; the first is the one to run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from novacron.errors import ConfigError
from novacron.incidents.runbooks.compiled import YamlRunbook
from novacron.incidents.runbooks.contract import PythonRunbook, Runbook, RunbookFunction
from novacron.incidents.runbooks.spec import MatchSpec, load_runbook_specs, parse_runbook_specs
from novacron.model import FaultKind, Incident

__all__ = [
    "DEFAULT_REGISTRY",
    "RunbookRegistry",
    "load_runbooks",
    "parse_runbooks",
    "runbook",
]


class RunbookRegistry:
    """Named runbooks; names are unique."""

    def __init__(self, runbooks: Iterable[Runbook] = ()) -> None:
        self._by_name: dict[str, Runbook] = {}
        for rb in runbooks:
            self.add(rb)

    def add(self, rb: Runbook) -> Runbook:
        """Register ``rb``; a second runbook with the same name is refused."""
        if rb.name in self._by_name:
            raise ConfigError(f"a runbook named '{rb.name}' is already registered", where="runbooks")
        self._by_name[rb.name] = rb
        return rb

    def get(self, name: str) -> Runbook:
        """The runbook called ``name`` (KeyError if absent)."""
        return self._by_name[name]

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def matching(self, incident: Incident, labels: Mapping[str, str]) -> list[Runbook]:
        """Every runbook that applies to ``incident`` on a target with ``labels``."""
        return [rb for rb in self._by_name.values() if rb.matches(incident, labels)]


DEFAULT_REGISTRY = RunbookRegistry()
"""Where :func:`runbook` registers when no registry is given."""


def runbook(
    name: str | None = None,
    *,
    kinds: Iterable[FaultKind] = (),
    labels: Mapping[str, str] | None = None,
    registry: RunbookRegistry | None = None,
) -> Callable[[RunbookFunction], RunbookFunction]:
    """Register a generator function as a runbook matched by fault kinds and label patterns.

    The function is returned unchanged, so it stays callable (and testable) directly.
    """
    match = MatchSpec(kinds=list(kinds), labels=dict(labels or {}))
    target = DEFAULT_REGISTRY if registry is None else registry

    def register(func: RunbookFunction) -> RunbookFunction:
        target.add(
            PythonRunbook(
                name=name or func.__name__,
                func=func,
                matcher=lambda incident, lbls: match.matches(incident.kind, lbls),
                description=(func.__doc__ or "").strip().split("\n")[0],
            )
        )
        return func

    return register


def parse_runbooks(text: str, *, source: str = "runbook") -> list[YamlRunbook]:
    """Compile YAML text into runnable runbooks (all or nothing)."""
    return [YamlRunbook(spec) for spec in parse_runbook_specs(text, source=source)]


def load_runbooks(path: Path, registry: RunbookRegistry | None = None) -> list[YamlRunbook]:
    """Load and compile a file or directory of runbooks, registering them if asked.

    Everything is validated before anything is registered, so a bad file adds nothing.
    """
    books = [YamlRunbook(spec) for spec in load_runbook_specs(path)]
    if registry is not None:
        clash = [b.name for b in books if b.name in {r.name for r in registry}]
        if clash:
            raise ConfigError(f"runbook(s) already registered: {', '.join(clash)}", where=str(path))
        for book in books:
            registry.add(book)
    return books
