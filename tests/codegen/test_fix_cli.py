"""``novacron fix`` as a user types it, on real repositories and real test runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .fake_openai import FakeChatServer
from .repos import NONE_BUG, PYTEST, git, make_repo

NOVACRON = [sys.executable, "-m", "novacron.cli"]


def fix(repo: Path | str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    args = [*NOVACRON, "fix", "--repo", str(repo), "--test", PYTEST, "--json", "--timeout", "60", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=env)


def test_a_crash_becomes_a_tested_patch_on_a_new_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, NONE_BUG)
    head = git(repo, "rev-parse", "HEAD")
    proc = fix(repo, "--id", "t1")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["fixed"]
    assert report["root_cause"] == "none_attribute"
    assert report["branch"] == "novacron/fix-t1"
    assert report["risk"] in {"low", "medium"}
    assert "git branch -D novacron/fix-t1" in report["rollback"]
    assert report["regression_test"] == "tests/test_novacron_regression_t1.py"
    # The user's checkout is exactly as it was: same HEAD, same branch, clean, no worktree left.
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    # One commit on the branch, with root cause, evidence and tests run; tests untouched.
    assert git(repo, "rev-list", "--count", "main..novacron/fix-t1").strip() == "1"
    message = git(repo, "log", "-1", "--format=%B", "novacron/fix-t1")
    assert "Root cause: none_attribute" in message
    assert "Evidence" in message
    assert "Tests run" in message
    changed = git(repo, "diff", "--name-status", "main", "novacron/fix-t1").split("\n")
    assert "M\tusers.py" in changed
    assert "A\ttests/test_novacron_regression_t1.py" in changed
    assert not any(line.startswith("M\ttests/") for line in changed)
    check = tmp_path / "check"
    git(repo, "worktree", "add", "-q", str(check), "novacron/fix-t1")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=check,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout


def test_not_a_git_repository(tmp_path: Path) -> None:
    proc = fix(tmp_path)
    assert proc.returncode == 2
    assert "--repo" in proc.stderr
    assert "not a git repository" in proc.stderr


def test_a_dirty_work_tree_is_refused_and_left_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, NONE_BUG)
    (repo / "users.py").write_text("# my unsaved work\n", encoding="utf-8")
    proc = fix(repo)
    assert proc.returncode == 2
    assert "error: --repo: the work tree has uncommitted changes (users.py …)" in proc.stderr
    assert (repo / "users.py").read_text(encoding="utf-8") == "# my unsaved work\n"
    assert git(repo, "branch", "--list", "novacron/*") == ""


def test_a_log_without_a_traceback(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, NONE_BUG)
    log = tmp_path / "app.log"
    log.write_text("INFO all fine\n", encoding="utf-8")
    proc = fix(repo, "--log", str(log))
    assert proc.returncode == 2
    assert "--log" in proc.stderr
    assert "no Python traceback" in proc.stderr


def test_a_test_command_that_fails_to_collect(tmp_path: Path) -> None:
    files = {**NONE_BUG, "tests/test_broken.py": "import no_such_module_anywhere\n"}
    repo = make_repo(tmp_path, files)
    proc = fix(repo)
    assert proc.returncode == 2
    assert "--test" in proc.stderr
    assert "collection error" in proc.stderr
    assert git(repo, "branch", "--list", "novacron/*") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_a_recent_change_is_reverted(tmp_path: Path) -> None:
    good = {
        "pytest.ini": "[pytest]\npythonpath = .\n",
        "ratio.py": "def share(part, whole):\n    return part / whole\n",
        "tests/test_ratio.py": "from ratio import share\n\n\ndef test_share():\n    assert share(1, 4) == 0.25\n",
    }
    repo = make_repo(tmp_path, good, then={"ratio.py": "def share(part, whole):\n    return whole / part\n"})
    proc = fix(repo, "--id", "rv")
    report = json.loads(proc.stdout)
    assert report["fixed"], report
    assert report["strategy"] in {"revert_hunk", "revert_file"}
    assert "return part / whole" in git(repo, "show", "novacron/fix-rv:ratio.py")


def test_security_findings_get_patched_when_no_test_fails(tmp_path: Path) -> None:
    files = {
        "pytest.ini": "[pytest]\npythonpath = .\n",
        "conf.py": "import yaml\n\n\ndef load(text):\n    return yaml.load(text, Loader=yaml.Loader)\n",
        "tests/test_conf.py": "from conf import load\n\n\ndef test_load():\n    assert load('a: 1') == {'a': 1}\n",
    }
    repo = make_repo(tmp_path, files)
    proc = fix(repo, "--id", "sec")
    report = json.loads(proc.stdout)
    assert report["fixed"], report
    assert report["root_cause"] == "security"
    assert [f["test"] for f in report["security"] if f["patched"]] == ["B506"]
    assert "yaml.safe_load(text)" in git(repo, "show", "novacron/fix-sec:conf.py")


def test_a_model_provider_proposes_what_templates_cannot(tmp_path: Path) -> None:
    # Two edits at once: beyond the single-edit templates, within a model's reach.
    files = {
        "pytest.ini": "[pytest]\npythonpath = .\n",
        "win.py": "def window(values, end, width):\n    return values[end - width:end]\n",
        "tests/test_win.py": (
            "from win import window\n\n\ndef test_w():\n    assert window([1, 2, 3, 4, 5], 3, 2) == [3, 4]\n"
        ),
    }
    repo = make_repo(tmp_path, files)
    fixed = "def window(values, end, width):\n    return values[end - width + 1:end + 1]\n"
    server = FakeChatServer(["Here it is:\n```python\n" + fixed + "```\n"])
    try:
        env = {**os.environ, "NOVACRON_FIX_LLM_URL": server.url, "NOVACRON_FIX_LLM_KEY": "test-key"}
        proc = fix(repo, "--id", "llm", env=env)
    finally:
        server.close()
    report = json.loads(proc.stdout)
    assert report["fixed"], report
    assert report["strategy"] == "llm"
    assert server.requests
    assert "win.py" in server.requests[0]["messages"][1]["content"]


def test_a_log_the_tests_do_not_reproduce(tmp_path: Path) -> None:
    files = {k: v for k, v in NONE_BUG.items() if k != "tests/test_users.py"}
    files["tests/test_users.py"] = (
        "from users import greeting\n\n\ndef test_known():\n    assert greeting([{'name': 'a'}], 'a')\n"
    )
    repo = make_repo(tmp_path, files)
    log = tmp_path / "crash.log"
    log.write_text(
        'Traceback (most recent call last):\n  File "/srv/users.py", line 9, in greeting\n'
        "    return 'hello ' + user['name'].upper()\nTypeError: 'NoneType' object is not subscriptable\n",
        encoding="utf-8",
    )
    proc = fix(repo, "--log", str(log))
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert not report["fixed"]
    assert "do not reproduce" in report["notes"][0]
