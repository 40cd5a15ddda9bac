"""Small git repositories with a seeded bug, for the fixer's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["PYTEST", "git", "make_repo"]

# The fixed-up programs need no third-party pytest plugins; skipping them keeps runs short.
PYTEST = f'PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "{sys.executable}" -m pytest -q tests'
_IDENT = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its output."""
    return subprocess.run(["git", *_IDENT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def make_repo(root: Path, files: dict[str, str], *, then: dict[str, str] | None = None) -> Path:
    """A repository with ``files`` committed (and ``then`` as a second commit)."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for commit in (files, then or {}):
        if not commit:
            continue
        for rel, text in commit.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text, encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "change")
    return repo


NONE_BUG = {
    "pytest.ini": "[pytest]\npythonpath = .\n",
    "users.py": (
        "def find(users, name):\n"
        "    for u in users:\n"
        "        if u['name'] == name:\n"
        "            return u\n"
        "    return None\n\n\n"
        "def greeting(users, name):\n"
        "    user = find(users, name)\n"
        "    return 'hello ' + user['name'].upper()\n"
    ),
    "tests/test_users.py": (
        "from users import greeting\n\n\n"
        "def test_known():\n    assert greeting([{'name': 'ann'}], 'ann') == 'hello ANN'\n\n\n"
        "def test_unknown():\n    assert greeting([{'name': 'ann'}], 'bob') is None\n"
    ),
}
