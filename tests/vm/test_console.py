"""A guest's serial console log: appended to by every QEMU of the guest, read back when adopting one."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from novacron.actuators.qemu_cmd import LaunchPlan, console_log, qemu_argv
from novacron.actuators.qemu_guest import Guest
from novacron.settings import VmSpec


def _plan(tmp_path: Path, log: Path) -> LaunchPlan:
    return LaunchPlan(tmp_path / "web-0-1.qmp", log, "tcg", ((18080, 80),), "console=ttyS0")


def test_the_console_log_is_read_back_from_the_command_line_in_both_forms(tmp_path: Path) -> None:
    log = tmp_path / "odd,dir" / "web-0.serial"  # a comma is doubled inside QEMU's option list
    vm = VmSpec(kernel="/boot/vmlinuz", memory_mib=256)
    argv = qemu_argv("qemu-system-x86_64", vm, _plan(tmp_path, log))
    assert "file:" not in " ".join(argv), "the console is a chardev that appends, not -serial file:"
    assert console_log(argv) == log
    # Guests launched by earlier versions run with -serial file:PATH; they are still adopted.
    assert console_log(["qemu-system-x86_64", "-serial", "file:/w/logs/web-0.serial", "-m", "256"]) == Path(
        "/w/logs/web-0.serial"
    )
    assert console_log(["qemu-system-x86_64", "-serial", "chardev:gone"]) is None
    assert console_log(["qemu-system-x86_64", "-serial", "stdio"]) is None
    assert console_log(["qemu-system-x86_64", "-m", "256"]) is None


def test_a_new_qemu_for_the_guest_appends_to_its_console_log(tmp_path: Path, guest: Guest) -> None:
    log = tmp_path / "web-0.serial"
    log.write_text("Kernel panic - the previous boot's last words\n")
    vm = VmSpec(kernel=str(guest.kernel), initrd=str(guest.initrd), append=guest.append, memory_mib=128)
    plan = _plan(tmp_path, log)
    qemu = subprocess.Popen(qemu_argv("qemu-system-x86_64", vm, plan), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not plan.qmp_socket.exists():  # QEMU opens its chardevs before its QMP socket listens
            assert qemu.poll() is None, qemu.stderr.read() if qemu.stderr else ""
            assert time.monotonic() < deadline, "QEMU did not open its QMP socket"
            time.sleep(0.05)
    finally:
        qemu.kill()
        qemu.wait()
    assert log.read_text(errors="replace").startswith("Kernel panic - the previous boot's last words\n")
