"""Which accelerator QEMU can use here: KVM when ``/dev/kvm`` really works, TCG otherwise.

``/dev/kvm`` may exist and still be unusable (no permission, no nested virtualisation),
so the probe opens it and then has QEMU itself boot a machine with ``-accel kvm`` for a
moment and report ``info kvm``. The answer is computed once per QEMU binary and process.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from novacron.errors import ConfigError

__all__ = ["Accel", "detect_accel", "qemu_binary"]

_KVM = "/dev/kvm"


@dataclass(frozen=True, slots=True)
class Accel:
    """The accelerator chosen, and why."""

    name: str  # "kvm" or "tcg"
    reason: str


def qemu_binary() -> str:
    """The path of ``qemu-system-x86_64``, or a clear error naming the package to install."""
    found = shutil.which(os.environ.get("NOVACRON_QEMU", "qemu-system-x86_64"))
    if found is None:
        raise ConfigError("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)", where="vm")
    return found


@functools.cache
def detect_accel(binary: str) -> Accel:
    """KVM if ``/dev/kvm`` opens and the firmware finishes under KVM, else TCG with the reason.

    Opening the device is not enough: under some nested hypervisors KVM starts but the
    guest never gets past its firmware's timer loops. So QEMU boots its BIOS with no boot
    device under KVM, and KVM counts as usable once the vCPU reaches its final ``hlt``
    ("No bootable device") within a few seconds — TCG gets there in well under that.
    """
    try:
        fd = os.open(_KVM, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return Accel("tcg", f"{_KVM} unusable: {exc.strerror}")
    os.close(fd)
    try:
        halted, last = _firmware_halts_under_kvm(binary)
    except OSError as exc:
        return Accel("tcg", f"the KVM probe could not run: {exc}")
    if halted:
        return Accel("kvm", f"{_KVM} opened and a KVM guest ran its firmware to the end")
    return Accel("tcg", f"{_KVM} opens but a KVM guest does not get through its firmware ({last})")


def _firmware_halts_under_kvm(binary: str, *, polls: int = 10, every_s: float = 0.4) -> tuple[bool, str]:
    argv = [binary, "-accel", "kvm", "-M", "pc", "-nodefaults", "-display", "none", "-monitor", "stdio"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    try:
        for _ in range(polls):
            time.sleep(every_s)
            proc.stdin.write(b"info registers\n")
            proc.stdin.flush()
        proc.stdin.write(b"quit\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc.kill()
        proc.wait()
        return False, f"probe failed: {exc}"
    text = out.decode(errors="replace")
    if "HLT=1" in text:
        return True, "halted"
    if proc.returncode != 0:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return False, lines[-1] if lines else f"exit {proc.returncode}"
    return False, f"still busy after {polls * every_s:g}s"


def resolve_accel(wanted: str, binary: str) -> Accel:
    """The accelerator for a VM asking for ``wanted`` (auto, kvm or tcg)."""
    if wanted == "tcg":
        return Accel("tcg", "the spec asks for tcg")
    found = detect_accel(binary)
    if wanted == "kvm" and found.name != "kvm":
        raise ConfigError(f"the spec asks for kvm but {found.reason}", where="vm.accel")
    return found
