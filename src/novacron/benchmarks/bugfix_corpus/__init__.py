"""The bug-fixing corpus: single-fault Python programs with tests and held-back tests.

Each ``*.yaml`` holds one program written from a bug class: its files, the tests the
fixer sees, a held-back test file it never sees (to catch patches that only satisfy the
visible tests), and optionally ``history`` — the files before the commit that introduced
the bug, so a revert is a possible repair.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from novacron.codegen.gitrepo import GIT
from novacron.errors import InputError

__all__ = ["CorpusBug", "load_corpus", "materialise"]

_IDENT = ["-c", "user.name=corpus", "-c", "user.email=corpus@novacron.invalid", "-c", "commit.gpgsign=false"]


@dataclass(frozen=True, slots=True)
class CorpusBug:
    """One program of the corpus."""

    name: str
    bug_class: str
    description: str
    files: dict[str, str]
    tests: str
    heldout: str
    history: dict[str, str] | None = None


def _bug(data: dict[str, Any]) -> CorpusBug:
    return CorpusBug(
        name=data["name"],
        bug_class=data["class"],
        description=data["description"],
        files=dict(data["files"]),
        tests=data["tests"],
        heldout=data["heldout"],
        history=dict(data["history"]) if data.get("history") else None,
    )


def load_corpus(names: list[str] | None = None) -> list[CorpusBug]:
    """Every program (sorted by name), or only the named ones."""
    root = resources.files(__name__)
    bugs = sorted(
        (_bug(yaml.safe_load(p.read_text(encoding="utf-8"))) for p in root.iterdir() if p.name.endswith(".yaml")),
        key=lambda b: b.name,
    )
    if names:
        known = {b.name for b in bugs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(f"no corpus program named {unknown[0]!r}", where="--only")
        bugs = [b for b in bugs if b.name in names]
    return bugs


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([GIT, *_IDENT, *args], cwd=cwd, check=True, capture_output=True)


def materialise(bug: CorpusBug, where: Path) -> Path:
    """Write the program as a git repository (history first, then the buggy commit)."""
    repo = where / bug.name
    (repo / "tests").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = .\n", encoding="utf-8")
    (repo / "tests" / f"test_{bug.name}.py").write_text(bug.tests, encoding="utf-8")
    for rel, text in (bug.history or bug.files).items():
        (repo / rel).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first version")
    if bug.history:
        for rel, text in bug.files.items():
            (repo / rel).write_text(text, encoding="utf-8")
        _git(repo, "commit", "-qam", "refactor")
    return repo
