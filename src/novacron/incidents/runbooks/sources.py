"""The spec's ``runbooks:`` block: files loaded at start, and the runbook chosen for an incident.

Each entry names a YAML file (or a directory of them) or a Python file whose generator
functions register with ``@runbook``, relative to the spec's folder, and narrows what it
takes with ``match`` (fault kinds, targets, label patterns). For an incident the first
entry whose ``match`` applies, and within it the first runbook whose own match applies,
is the one that runs. A file that does not load stops ``validate`` and ``run`` with exit 2
naming ``runbooks[i].path``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from novacron.errors import ConfigError
from novacron.incidents.runbooks.contract import PythonRunbook, Runbook
from novacron.incidents.runbooks.registry import DEFAULT_REGISTRY, load_runbooks
from novacron.model import Incident
from novacron.settings import RunbookMatch, RunbookSource

__all__ = ["RunbookBook", "load_sources"]

_LOADED: dict[Path, list[Runbook]] = {}  # Python files run once per process: their @runbook registers globally


@dataclass(frozen=True, slots=True)
class _Entry:
    match: RunbookMatch
    runbooks: tuple[Runbook, ...]

    def applies(self, incident: Incident, labels: Mapping[str, str]) -> bool:
        m = self.match
        if m.kinds and incident.kind not in m.kinds:
            return False
        if m.targets and incident.target not in m.targets:
            return False
        return all(k in labels and fnmatch.fnmatchcase(labels[k], p) for k, p in m.labels.items())


class RunbookBook:
    """The runbooks of a spec, in order, with the rule that picks one for an incident."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return sum(len(e.runbooks) for e in self._entries)

    def select(self, incident: Incident, labels: Mapping[str, str]) -> Runbook | None:
        """The runbook that takes ``incident`` on a target with ``labels`` (None: the built-in ladder)."""
        for entry in self._entries:
            if entry.applies(incident, labels):
                for book in entry.runbooks:
                    if book.matches(incident, labels):
                        return book
        return None


def load_sources(sources: Sequence[RunbookSource], base: Path) -> RunbookBook:
    """Load every runbook file of the spec (paths relative to ``base``); errors name the entry."""
    entries = []
    for i, src in enumerate(sources):
        path = Path(src.path) if Path(src.path).is_absolute() else base / src.path
        try:
            books: list[Runbook] = _python(path) if path.suffix == ".py" else list(load_runbooks(path))
        except ConfigError as exc:
            raise ConfigError(exc.reason, where=f"runbooks[{i}].path ({exc.where})") from exc
        except (OSError, SyntaxError, ImportError) as exc:
            raise ConfigError(f"cannot load {path}: {exc}", where=f"runbooks[{i}].path") from exc
        if not books:
            raise ConfigError(f"{path} defines no runbook", where=f"runbooks[{i}].path")
        entries.append(_Entry(src.match, tuple(books)))
    return RunbookBook(entries)


def _python(path: Path) -> list[Runbook]:
    """Run a Python runbook file once and collect the runbooks its functions registered."""
    path = path.resolve()
    if path in _LOADED:
        return _LOADED[path]
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", where="path")
    name = "novacron_runbook_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"not a Python module: {path}", where="path")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    books: list[Runbook] = [
        rb for rb in DEFAULT_REGISTRY if isinstance(rb, PythonRunbook) and rb.func.__module__ == name
    ]
    _LOADED[path] = books
    return books
