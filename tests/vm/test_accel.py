"""The accelerator probe boots the guest's kernel: KVM only when KVM gets it through its start-up.

A stand-in ``qemu-system-x86_64`` (a script) plays each case: the kernel under TCG
always ends its start-up (it writes the kernel's panic at the missing root file system
to the console file and exits); under KVM it does the same, hangs, or fails at once.
A plain file plays ``/dev/kvm``. With the real QEMU and the test guest's kernel the
verdict must be one that boots the guest: the other vm tests run on it.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from novacron.actuators import qemu_accel
from novacron.actuators.qemu_accel import detect_accel, pvm_host, resolve_accel
from novacron.errors import ConfigError

_FAKE = """\
import os, sys, time
argv = sys.argv[1:]
accel = argv[argv.index("-accel") + 1]
console = argv[argv.index("-serial") + 1].removeprefix("file:")
mode = os.environ.get("FAKE_KVM", "boot") if accel == "kvm" else "boot"
if mode == "hang":
    time.sleep(300)
if mode == "fail":
    print("qemu-system-x86_64: error: failed to set MSR 0x10a", file=sys.stderr)
    sys.exit(1)
with open(console, "w") as f:
    f.write("[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs\\n")
"""


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """(binary, kernel, device) for a probe against the stand-in QEMU, with a private cache."""
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text(f"#!{sys.executable}\n{_FAKE}")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    kernel, device = tmp_path / "vmlinux", tmp_path / "kvm"
    kernel.write_bytes(b"\x7fELF")
    device.write_bytes(b"")
    monkeypatch.setenv("NOVACRON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(qemu_accel, "_verdicts", {})
    return str(binary), str(kernel), str(device)


def test_kvm_is_chosen_when_it_boots_the_kernel(fake_qemu: tuple[str, str, str]) -> None:
    found = detect_accel(*fake_qemu[:2], device=fake_qemu[2])
    assert found.name == "kvm"
    assert "booted the guest kernel" in found.reason


def test_a_kvm_that_never_finishes_the_kernel_start_up_means_tcg(
    fake_qemu: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KVM", "hang")
    found = detect_accel(*fake_qemu[:2], device=fake_qemu[2])
    assert found.name == "tcg"
    assert "had not finished starting" in found.reason
    assert "TCG took" in found.reason


def test_qemu_failing_under_kvm_means_tcg_with_its_message(
    fake_qemu: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KVM", "fail")
    found = detect_accel(*fake_qemu[:2], device=fake_qemu[2])
    assert found.name == "tcg"
    assert "failed to set MSR" in found.reason


def test_the_verdict_is_kept_until_the_machine_reboots(
    fake_qemu: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KVM", "hang")
    first = detect_accel(*fake_qemu[:2], device=fake_qemu[2])
    monkeypatch.setattr(qemu_accel, "_verdicts", {})  # a new controller process, same boot
    monkeypatch.setenv("FAKE_KVM", "boot")
    assert detect_accel(*fake_qemu[:2], device=fake_qemu[2]) == first


def test_an_unopenable_device_means_tcg(fake_qemu: tuple[str, str, str], tmp_path: Path) -> None:
    found = detect_accel(*fake_qemu[:2], device=str(tmp_path / "absent"))
    assert found.name == "tcg"
    assert "unusable" in found.reason


def test_pvm_is_recognised_from_the_loaded_modules(tmp_path: Path) -> None:
    (tmp_path / "kvm_pvm").mkdir()
    assert pvm_host(tmp_path)
    (tmp_path / "kvm_intel").mkdir()
    assert not pvm_host(tmp_path)


def test_asking_for_kvm_where_it_cannot_boot_the_kernel_is_refused(
    fake_qemu: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KVM", "fail")
    monkeypatch.setattr(qemu_accel, "_KVM", fake_qemu[2])
    with pytest.raises(ConfigError, match="asks for kvm"):
        resolve_accel("kvm", *fake_qemu[:2])
    assert resolve_accel("tcg", *fake_qemu[:2]).name == "tcg"
