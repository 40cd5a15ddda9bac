"""Real guests under ``novacron run`` and the controller: a killed QEMU and a stopped guest are healed.

Each test boots the tiny guest under QEMU (KVM when usable, TCG otherwise); the
deadlines allow for a TCG boot on a busy machine.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil
import yaml

from novacron.actuators.qemu_guest import Guest
from novacron.runtime.controller import Controller
from novacron.settings import parse_spec
from tests.cli.runner import cli, cli_json, controller, spawn, stop, wait_for
from tests.vm.fleet import BOOT_S, healthy, until, vm_spec


def test_run_boots_a_guest_and_restarts_it_when_its_qemu_is_killed(tmp_path: Path, guest: Guest) -> None:
    path = tmp_path / "fleet.yaml"
    data = vm_spec(tmp_path, guest, name="vm-test", hosts=("a", "b"))
    path.write_text(yaml.safe_dump(data))
    port = data["targets"][0]["port"]
    with controller(path):
        first = wait_for(lambda: healthy(path), "the guest healthy", timeout=BOOT_S)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).text == "ok\n"
        os.kill(first["pid"], signal.SIGKILL)
        again = wait_for(lambda: healthy(path, not_pid=first["pid"]), "the guest healthy again", timeout=BOOT_S)
        assert again["restarts"] >= 1
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).text == "ok\n"
        # The new QEMU appended to the console: the killed one's boot is still there to read.
        console = (tmp_path / "work" / "logs" / "web-0.serial").read_text(errors="replace")
        assert console.count("novacron-guest ready") == 2, console[-2000:]
        # An operator moves it, naming the destination host.
        moved = cli_json("heal", "web", "--action", "vm_migrate", "--param", "to=b", "--wait", "120", "-c", str(path))
        assert moved["status"] == "verified", moved
        assert "live-migrated web#0 a → b" in moved["detail"]
        bad = cli("heal", "web", "--action", "vm_migrate", "--param", "to", "-c", str(path))
        assert bad.returncode == 2
        assert "--param" in bad.stderr


def test_a_controller_killed_with_sigkill_leaves_its_guest_running_and_the_next_one_adopts_it(
    tmp_path: Path, guest: Guest
) -> None:
    path = tmp_path / "fleet.yaml"
    data = vm_spec(tmp_path, guest, name="vm-test", hosts=("a", "b"))
    path.write_text(yaml.safe_dump(data))
    port = data["targets"][0]["port"]
    run = spawn(path)
    try:
        first = wait_for(lambda: healthy(path), "the guest healthy", timeout=BOOT_S)
        boot = httpx.get(f"http://127.0.0.1:{port}/cgi-bin/boot", timeout=5).text
        run.proc.kill()  # SIGKILL: no clean-up at all
        run.proc.wait()
        assert psutil.pid_exists(first["pid"]), "the guest's QEMU outlives its controller"
        run = spawn(path)
        again = wait_for(lambda: healthy(path), "the guest healthy under the new controller", timeout=BOOT_S)
        assert again["pid"] == first["pid"], "the new controller reattached to the running QEMU"
        assert httpx.get(f"http://127.0.0.1:{port}/cgi-bin/boot", timeout=5).text == boot, "no reboot"
        assert [line for line in run.lines() if line.get("event") == "adopted guest"]
        workdir = str(tmp_path / "work")
        qemus = [p for p in psutil.process_iter(["cmdline"]) if workdir in " ".join(p.info["cmdline"] or [])]
        assert [p.pid for p in qemus] == [first["pid"]], "no second QEMU for the guest"
        os.kill(first["pid"], signal.SIGKILL)  # the adopted QEMU's end is seen and healed
        wait_for(lambda: healthy(path, not_pid=first["pid"]), "the guest restarted", timeout=BOOT_S)
    finally:
        stop(run)


async def test_a_guest_paused_through_qmp_is_a_fault_healed_by_system_reset(tmp_path: Path, guest: Guest) -> None:
    ctl = Controller(parse_spec(vm_spec(tmp_path, guest, name="vm-test", hosts=("a", "b"))))
    await ctl.start()
    try:
        await until(lambda: ctl.status()[0].health.value == "healthy", "healthy")
        pid = ctl.actuator.pids("web")[0]
        await ctl.actuator.vms.process("web").execute("stop")
        await until(lambda: ctl.status()[0].last_fault is not None, "a fault", timeout=10)
        fault = ctl.status()[0].last_fault
        assert fault is not None
        assert "QMP STOP" in fault["detail"]
        await until(lambda: ctl.status()[0].state == "healthy" and ctl.status()[0].restarts >= 1, "healed")
        assert ctl.actuator.pids("web") == (pid,), "a warm reset keeps the QEMU process"
        [action] = [a for a in ctl.store.actions() if a.action.kind == "restart"]
        assert "system_reset" in (action.detail or "")
    finally:
        await ctl.stop()


async def test_a_guest_pushes_heartbeats_and_their_loss_is_a_fault(tmp_path: Path, guest: Guest) -> None:
    """The guest's heartbeats reach the controller as a check; cut off, they are a heartbeat_lost fault."""
    spec = vm_spec(tmp_path, guest, name="vm-test", hosts=("a", "b"))
    # A guest under TCG on a busy machine can leave one health request unanswered for seconds:
    # the HTTP check is made patient here so that only the cut-off heartbeats raise the fault.
    spec["targets"][0]["checks"][0].update(timeout_s=10.0, failures=5)
    ctl = Controller(parse_spec(spec))
    await ctl.start()
    try:
        await until(lambda: ctl.status()[0].health.value == "healthy", "healthy")
        await until(lambda: ctl.heartbeats.last_beat("web") is not None, "a heartbeat", timeout=60)
        first = ctl.heartbeats.last_beat("web")
        await until(lambda: ctl.heartbeats.last_beat("web") != first, "a second heartbeat", timeout=60)
        qemu = ctl.actuator.vms.process("web")
        # The guest keeps serving HTTP; only its heartbeats stop reaching the controller.
        await qemu.execute("chardev-change", {"id": "hb0", "backend": {"type": "null", "data": {}}})
        await until(lambda: ctl.status()[0].last_fault is not None, "a fault", timeout=60)
        fault = ctl.status()[0].last_fault
        assert fault is not None
        assert fault["kind"] == "heartbeat_lost", fault
        assert "phi" in fault["detail"]
        udp = {"remote": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(ctl.heartbeats.port)}}}
        await qemu.execute("chardev-change", {"id": "hb0", "backend": {"type": "udp", "data": udp}})
        await until(lambda: ctl.status()[0].state == "healthy" and ctl.status()[0].restarts >= 1, "healed")
        beat = ctl.heartbeats.last_beat("web")
        await until(lambda: ctl.heartbeats.last_beat("web") not in (None, beat), "heartbeats again", timeout=60)
    finally:
        await ctl.stop()
