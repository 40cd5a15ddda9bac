"""The README's test command on a machine without apt: it names what to install and stops."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_without_apt_it_names_every_package_and_stops(tmp_path: Path) -> None:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / "run-tests", tmp_path / "run-tests")
    shutil.copy(ROOT / ".ci" / "debian-packages", tmp_path / ".ci" / "debian-packages")
    bin_dir = tmp_path / "bin"  # a PATH with neither apt-get nor dpkg (nor python3)
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")
    bash = shutil.which("bash") or "/bin/bash"
    res = subprocess.run(
        [bash, str(tmp_path / "run-tests")],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        timeout=30,
        check=False,
    )
    assert res.returncode == 1
    assert "no apt/dpkg" in res.stderr
    for pkg in (ROOT / ".ci" / "debian-packages").read_text().split():
        assert f"(Debian: {pkg})" in res.stderr
    assert "promtool" in res.stderr
    assert "PostgreSQL listening on 127.0.0.1:5432" in res.stderr
    assert not (tmp_path / ".venv").exists(), "nothing else is attempted"


def test_ci_calls_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\n./run-tests\n" in readme
    assert "./run-tests" in (ROOT / ".ci" / "run").read_text()
