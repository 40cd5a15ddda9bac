"""Git for the fixer: checks, a temporary worktree, blame, and the fix branch.

The user's work tree, index and branches are never touched: candidates are tried in a
detached temporary worktree, and the only ref ever written is the new
``novacron/fix-<id>`` branch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from novacron.errors import InputError, PermanentError

__all__ = ["GIT", "BlameLine", "GitRepo", "Worktree"]

GIT = shutil.which("git") or "git"  # resolved once: the same git the user runs

_IDENT = ["-c", "user.name=NovaCron fixer", "-c", "user.email=fixer@novacron.invalid", "-c", "commit.gpgsign=false"]


@dataclass(frozen=True, slots=True)
class BlameLine:
    """Who last changed one line, and when."""

    commit: str
    line: int
    author_time: int
    summary: str


class GitRepo:
    """A user's repository, read-only except for new fix branches."""

    def __init__(self, path: Path) -> None:
        if shutil.which("git") is None:
            raise PermanentError("git is not installed; the fixer needs it")
        if not path.is_dir():
            raise InputError(f"{path} is not a directory", where="--repo")
        proc = self._run_in(path, "rev-parse", "--show-toplevel", check=False)
        if proc.returncode != 0:
            raise InputError(f"{path} is not a git repository", where="--repo")
        self.root = Path(proc.stdout.strip())
        if self._run_in(self.root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
            raise InputError(f"{path} has no commits yet", where="--repo")

    @staticmethod
    def _run_in(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([GIT, *_IDENT, *args], cwd=cwd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise PermanentError(f"git {args[0]} failed: {proc.stderr.strip()[:500]}")
        return proc

    def git(self, *args: str, check: bool = True) -> str:
        """Run git in the repository and return its output."""
        return self._run_in(self.root, *args, check=check).stdout

    def ensure_clean(self) -> None:
        """Refuse a work tree with uncommitted changes to tracked files."""
        # Each line is "XY PATH"; X is a space for a change not yet staged, so nothing is stripped
        # before the path is cut out (a stripped " M users.py" named "sers.py").
        dirty = [line for line in self.git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
        if dirty:
            first = dirty[0][3:]
            raise InputError(f"the work tree has uncommitted changes ({first} …); commit or stash them", where="--repo")

    def head(self) -> str:
        """The commit the fix is based on."""
        return self.git("rev-parse", "HEAD").strip()

    def blame(self, rel: str, lines: list[int]) -> list[BlameLine]:
        """``git blame --porcelain`` for the given lines of one file at HEAD."""
        out: list[BlameLine] = []
        for line in sorted(set(lines)):
            text = self.git("blame", "--porcelain", "-L", f"{line},{line}", "HEAD", "--", rel, check=False)
            m = re.match(r"^([0-9a-f]{40}) \d+ (\d+)", text)
            t = re.search(r"^author-time (\d+)$", text, re.M)
            s = re.search(r"^summary (.*)$", text, re.M)
            if m and t:
                out.append(BlameLine(m[1], int(m[2]), int(t[1]), s[1] if s else ""))
        return out

    def show(self, rev: str, rel: str) -> str | None:
        """File content at a revision, or None where it did not exist."""
        proc = self._run_in(self.root, "show", f"{rev}:{rel}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def parent(self, commit: str) -> str | None:
        """The first parent of a commit, or None for a root commit."""
        proc = self._run_in(self.root, "rev-parse", "-q", "--verify", f"{commit}^", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def branch_exists(self, name: str) -> bool:
        """Whether a local branch of that name exists."""
        return self._run_in(self.root, "rev-parse", "-q", "--verify", f"refs/heads/{name}", check=False).returncode == 0

    def worktree(self) -> Worktree:
        """A detached temporary worktree at HEAD (remove it with :meth:`Worktree.remove`)."""
        path = Path(tempfile.mkdtemp(prefix="novacron-fix-")) / "wt"
        self.git("worktree", "add", "--detach", str(path), "HEAD")
        return Worktree(self, path)


class Worktree:
    """A temporary checkout where candidates are applied and tested."""

    def __init__(self, repo: GitRepo, path: Path) -> None:
        self.repo = repo
        self.path = path

    def reset(self) -> None:
        """Back to HEAD, dropping every change and untracked file."""
        GitRepo._run_in(self.path, "checkout", "--", ".")
        GitRepo._run_in(self.path, "clean", "-fdq", "-e", "__pycache__")

    def commit_to_branch(self, branch: str, message: str) -> str:
        """Commit every change in the worktree and point a new branch at it."""
        GitRepo._run_in(self.path, "add", "-A", "--", ".", ":(exclude)*.pyc", ":(exclude)__pycache__")
        GitRepo._run_in(self.path, "commit", "-q", "--no-verify", "-m", message)
        sha = GitRepo._run_in(self.path, "rev-parse", "HEAD").stdout.strip()
        self.repo.git("branch", branch, sha)
        return sha

    def remove(self) -> None:
        """Delete the worktree and its bookkeeping in the repository."""
        self.repo.git("worktree", "remove", "--force", str(self.path), check=False)
        shutil.rmtree(self.path.parent, ignore_errors=True)
        self.repo.git("worktree", "prune", check=False)
