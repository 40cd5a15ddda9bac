"""Real server binaries from Debian packages for the tests: found or failed with the install
hint (never skipped), started on loopback, and always stopped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(*names: str, package: str) -> str:
    """The first of ``names`` on PATH, or fail naming the Debian package to install."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.fail(f"the {names[0]!r} binary is missing: apt-get install -y {package}")


@contextmanager
def running(argv: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with its output in ``log_path``; terminate (then kill) it on exit."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], log_path: Path, what: str, timeout: float
) -> None:
    """Poll ``ready()`` (HTTP errors count as not yet); fail with the log if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} never became ready:\n{log_path.read_text()[-2000:]}")


@contextmanager
def alertmanager(tmp: Path, webhook_config: str, *, group_wait: str = "0s") -> Iterator[str]:
    """A private Alertmanager routing every alert to one webhook; yields its base URL.

    ``webhook_config`` is the YAML list item under ``webhook_configs`` (indented six spaces).
    """
    binary = require("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    config = tmp / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: novacron\n"
        "  group_by: [alertname]\n"
        f"  group_wait: {group_wait}\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: novacron\n"
        "    webhook_configs:\n" + webhook_config
    )
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single, private instance
    ]
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "alertmanager.log"
    with running(argv, log_path) as proc:
        wait_until(lambda: httpx.get(f"{url}/-/ready").status_code == 200, proc, log_path, "alertmanager", 30)
        yield url
