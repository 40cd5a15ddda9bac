"""Run a test command in a sandbox: own process group, timeout, CPU and memory limits, no network.

Network is refused by running the command in a fresh network namespace (``unshare
--net``; its loopback is brought up when ``ip`` exists so tests can still talk to
servers they start themselves). Where namespaces are not permitted, the probe directory
gains a ``sitecustomize`` that refuses every non-loopback ``connect`` instead, and
:attr:`SandboxResult.isolation` says which of the two was used.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxLimits", "SandboxResult", "network_isolation", "run_sandboxed"]

_SITECUSTOMIZE = """\
import socket as _s
_connect = _s.socket.connect
def _guard(self, address, *a):
    host = address[0] if isinstance(address, tuple) else ""
    if self.family in (_s.AF_INET, _s.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(101, "network refused by the NovaCron fix sandbox")
    return _connect(self, address, *a)
_s.socket.connect = _guard
"""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits for one run of the test command."""

    timeout_s: float = 120.0
    cpu_s: int = 300
    memory_bytes: int = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """How one sandboxed run ended."""

    returncode: int
    output: str
    timed_out: bool
    duration_s: float
    isolation: str  # "netns" or "socket-guard"


@functools.cache
def network_isolation() -> str:
    """``netns`` when ``unshare --net`` works here, else ``socket-guard``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "socket-guard"
    flags = ["--net"] if os.geteuid() == 0 else ["--net", "--map-root-user"]
    try:
        ok = subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return "netns" if ok else "socket-guard"


def _limit(limits: SandboxLimits) -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))


def _argv(command: str, isolation: str) -> list[str]:
    if isolation != "netns":
        return ["/bin/sh", "-c", command]
    flags = ["--net"] if os.geteuid() == 0 else ["--net", "--map-root-user"]
    lo = "ip link set lo up 2>/dev/null; " if shutil.which("ip") else ""
    return ["unshare", *flags, "/bin/sh", "-c", f"{lo}exec /bin/sh -c {_quote(command)}"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def run_sandboxed(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: SandboxLimits,
    probe_dir: Path | None = None,
) -> SandboxResult:
    """Run ``command`` in ``cwd``; kill its whole process group at the timeout."""
    isolation = network_isolation()
    full_env = dict(env)
    if probe_dir is not None:
        if isolation != "netns":
            (probe_dir / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(probe_dir), full_env.get("PYTHONPATH", "")) if p)
    start = time.monotonic()  # duration only, reported beside the result; logic never reads it
    proc = subprocess.Popen(
        _argv(command, isolation),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=functools.partial(_limit, limits),  # noqa: PLW1509 - only setrlimit, no locks
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return SandboxResult(
        proc.returncode, out.decode("utf-8", "replace")[-20000:], timed_out, time.monotonic() - start, isolation
    )
