"""Which accelerator QEMU can use here: KVM when it really boots the guest, TCG otherwise.

``/dev/kvm`` may open and still be useless for a guest: no nested virtualisation, or a
KVM that runs only guests built for it. PVM (the ``kvm_pvm`` module, KVM without
hardware virtualisation, found inside some micro-VMs) is such a case: it runs PVM-aware
guest kernels natively and everything else — the firmware, a distribution kernel —
instruction by instruction, so a BIOS reaches its final ``hlt`` in a second while a
Debian kernel prints nothing for minutes. Opening the device or booting the firmware
therefore proves little. For a guest booted from a kernel, the probe boots *that kernel*
(no initramfs, ``panic=-1``, ``-no-reboot``: it runs its whole start-up, panics at the
missing root file system and QEMU exits) under KVM and under TCG side by side; KVM counts
only if it gets there, and not much later than TCG. The verdict holds until the machine
reboots, so it is kept on disk keyed by the boot id, the QEMU binary and the kernel.
For a disk image the firmware probe stays, and a PVM host means TCG.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from novacron.errors import ConfigError

__all__ = ["Accel", "detect_accel", "pvm_host", "qemu_binary", "resolve_accel"]

_KVM = "/dev/kvm"
_PROBE_VERSION = "kernel-race/1"  # a new probe is a new cache entry
_PANIC = b"Kernel panic"
# KVM must finish within this multiple of TCG's time (real KVM is many times faster).
_SLOWER_THAN_TCG = 2.0
_PROBE_CAP_S = 90.0

_verdicts: dict[tuple[str, str | None, str], Accel] = {}


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


def pvm_host(modules: Path = Path("/sys/module")) -> bool:
    """KVM here is PVM: ``kvm_pvm`` loaded, and neither ``kvm_intel`` nor ``kvm_amd``."""
    return (modules / "kvm_pvm").is_dir() and not any((modules / m).is_dir() for m in ("kvm_intel", "kvm_amd"))


def detect_accel(binary: str, kernel: str | None = None, *, device: str | None = None) -> Accel:
    """KVM if ``device`` (``/dev/kvm``) opens and KVM boots ``kernel`` (for images: the firmware), else TCG and why."""
    device = device or _KVM
    key = (binary, kernel, device)
    if key not in _verdicts:
        _verdicts[key] = _detect(binary, kernel, device)
    return _verdicts[key]


def _detect(binary: str, kernel: str | None, device: str) -> Accel:
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return Accel("tcg", f"{device} unusable: {exc.strerror}")
    os.close(fd)
    pvm = " (KVM here is PVM, kvm_pvm: guests not built for it run emulated)" if pvm_host() else ""
    if kernel is None:
        if pvm:
            return Accel("tcg", f"{device} opens but a disk image's guest would not run natively{pvm}")
        return _firmware_verdict(binary, device)
    cache = _cache_file(binary, kernel)
    if cache is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(cache.read_text())
            return Accel(str(data["name"]), str(data["reason"]))
    try:
        found = _kernel_race(binary, kernel)
    except OSError as exc:
        return Accel("tcg", f"the KVM probe could not run: {exc}")
    if found.name == "tcg":
        found = Accel("tcg", found.reason + pvm)
    if cache is not None:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"name": found.name, "reason": found.reason}))
            tmp.replace(cache)
    return found


def _cache_file(binary: str, kernel: str) -> Path | None:
    """Where the verdict for this QEMU and kernel is kept until the machine reboots."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stats = [(p, Path(p).stat()) for p in (binary, kernel)]
        parts = [f"{p}:{st.st_size}:{st.st_mtime_ns}" for p, st in stats]
    except OSError:
        return None
    digest = hashlib.sha256("\n".join([_PROBE_VERSION, boot, *parts]).encode()).hexdigest()[:20]
    root = os.environ.get("NOVACRON_CACHE") or str(Path.home() / ".cache" / "novacron")
    return Path(root) / "accel" / f"{digest}.json"


class _Boot:
    """One probe boot of the kernel under one accelerator, its console in a file."""

    def __init__(self, binary: str, kernel: str, accel: str, workdir: Path) -> None:
        self.accel = accel
        self.console = workdir / f"{accel}.serial"
        argv = [binary, "-accel", accel, "-M", "pc", "-m", "128", "-nodefaults", "-no-user-config"]
        # Truncated at launch, unlike a guest's console: the file is this boot's alone (a fresh
        # temporary directory per probe), and the verdict reads it for this boot's panic.
        argv += ["-display", "none", "-no-reboot", "-serial", f"file:{self.console}"]
        argv += ["-kernel", kernel, "-append", "console=ttyS0 quiet panic=-1"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        self.took: float | None = None  # seconds until the kernel's start-up ended, once it has

    def poll(self) -> str | None:
        """ "done" once the kernel ran its start-up to the end, "failed" if QEMU ended otherwise, else None."""
        if self.proc.poll() is None:
            return None
        if self.took is None and self._panicked():
            self.took = time.monotonic() - self.started
        return "done" if self.took is not None else "failed"

    def _panicked(self) -> bool:
        try:
            return _PANIC in self.console.read_bytes()
        except OSError:
            return False

    def last_words(self) -> str:
        """QEMU's own last line (an error at start)."""
        assert self.proc.stdout is not None
        lines = [ln for ln in self.proc.stdout.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit {self.proc.returncode}"

    def end(self) -> None:
        """Kill QEMU if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _kernel_race(binary: str, kernel: str, *, every_s: float = 0.05) -> Accel:
    """Boot ``kernel`` under KVM and TCG at once; KVM wins if it finishes, and not far behind TCG."""
    with tempfile.TemporaryDirectory(prefix="novacron-accel-") as tmp:
        kvm, tcg = _Boot(binary, kernel, "kvm", Path(tmp)), _Boot(binary, kernel, "tcg", Path(tmp))
        try:
            return _judge(kvm, tcg, every_s)
        finally:
            kvm.end()
            tcg.end()


def _judge(kvm: _Boot, tcg: _Boot, every_s: float) -> Accel:
    deadline = time.monotonic() + _PROBE_CAP_S
    while time.monotonic() < deadline:
        time.sleep(every_s)
        state = kvm.poll()
        if state == "done":
            return Accel("kvm", f"KVM booted the guest kernel through its start-up in {kvm.took:.1f}s")
        if state == "failed":
            return Accel("tcg", f"the guest kernel does not run under KVM: {kvm.last_words()}")
        if tcg.poll() == "done" and tcg.took is not None:
            waited = time.monotonic() - kvm.started
            if waited > max(_SLOWER_THAN_TCG * tcg.took, tcg.took + 1.0):
                return Accel(
                    "tcg",
                    f"under KVM the guest kernel had not finished starting after {waited:.1f}s; "
                    f"TCG took {tcg.took:.1f}s",
                )
    return Accel("tcg", f"the guest kernel did not finish starting under KVM within {_PROBE_CAP_S:g}s")


def _firmware_verdict(binary: str, device: str) -> Accel:
    try:
        halted, last = _firmware_halts_under_kvm(binary)
    except OSError as exc:
        return Accel("tcg", f"the KVM probe could not run: {exc}")
    if halted:
        return Accel("kvm", f"{device} opened and a KVM guest ran its firmware to the end")
    return Accel("tcg", f"{device} opens but a KVM guest does not get through its firmware ({last})")


def _firmware_halts_under_kvm(binary: str, *, polls: int = 10, every_s: float = 0.4) -> tuple[bool, str]:
    """QEMU's BIOS with no boot device under KVM reaches its final ``hlt`` ("No bootable device")."""
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


def resolve_accel(wanted: str, binary: str, kernel: str | None = None) -> Accel:
    """The accelerator for a VM asking for ``wanted`` (auto, kvm or tcg), booting ``kernel`` if given."""
    if wanted == "tcg":
        return Accel("tcg", "the spec asks for tcg")
    found = detect_accel(binary, kernel)
    if wanted == "kvm" and found.name != "kvm":
        raise ConfigError(f"the spec asks for kvm but {found.reason}", where="vm.accel")
    return found
