"""Warm restart (``vm.restart: warm``): a crashed guest resumes from the state saved once it was healthy.

The tests with real guests boot the tiny guest under QEMU (TCG where KVM is not usable);
the deadlines allow for a TCG boot on a busy machine. A restore is told from a boot by the
guest's boot id (a boot draws a new one) and by its serial console (every QEMU of the
guest appends to one console file: a boot adds a "ready" line there, a restore none).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from novacron.actuators.qemu_cmd import LaunchPlan
from novacron.actuators.qemu_guest import Guest
from novacron.actuators.qemu_warm import fingerprint, state_digest
from novacron.runtime.controller import Controller
from novacron.settings import TargetSpec, VmSpec, parse_spec
from tests.cli.runner import cli, cli_json, spawn, stop, wait_for
from tests.vm.fleet import BOOT_S, healthy, until, vm_spec


def _boots(workdir: Path) -> int:
    """How many times the guest printed its "ready" line on its consoles (once per boot, all QEMUs)."""
    return (workdir / "logs" / "web-0.serial").read_text(errors="replace").count("novacron-guest ready")


def _get(port: int, path: str) -> str:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text


async def _aget(port: int, path: str) -> str:
    """A read from the guest that leaves the controller's loop running (it may be saving the guest)."""
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://127.0.0.1:{port}{path}")).text


def test_run_resumes_a_warm_guest_from_its_saved_state_when_its_qemu_is_killed(tmp_path: Path, guest: Guest) -> None:
    path = tmp_path / "fleet.yaml"
    data = vm_spec(tmp_path, guest, name="vm-warm", restart="warm")
    path.write_text(yaml.safe_dump(data))
    port, workdir = data["targets"][0]["port"], tmp_path / "work"
    saved = workdir / "warm" / "web-0.json"
    run = spawn(path)
    try:
        first = wait_for(lambda: healthy(path), "the guest healthy", timeout=BOOT_S)
        wait_for(saved.is_file, "the guest's state saved", timeout=120)
        boot = _get(port, "/cgi-bin/boot")
        assert _boots(workdir) == 1
        os.kill(first["pid"], signal.SIGKILL)
        again = wait_for(lambda: healthy(path, not_pid=first["pid"]), "the guest healthy again", timeout=BOOT_S)
        assert again["restarts"] >= 1
        assert _get(port, "/cgi-bin/boot") == boot, "the same boot: resumed, not booted"
        assert _boots(workdir) == 1, "no boot on the new QEMU's console, the first boot's kept"
        assert _get(port, "/health") == "ok\n"
        [incident] = cli_json("incidents", "list", "--json", "-c", str(path))
        shown = cli_json("incidents", "show", incident["id"], "--json", "-c", str(path))
        [restart] = [a for a in shown["actions"] if a["kind"] == "restart"]
        assert restart["status"] == "verified"
        assert "0: warm restore from the state saved" in restart["detail"]
        finished = [e for e in shown["timeline"] if e["kind"] == "action_finished"]
        assert finished[0]["data"]["restarts"]["0"]["kind"] == "warm"

        # A controller killed and started again adopts the restored guest, and its saved
        # state still fits the guest: the next crash is restored warm too.
        run.proc.kill()
        run.proc.wait()
        run = spawn(path)
        adopted = wait_for(lambda: healthy(path), "the guest adopted", timeout=BOOT_S)
        assert adopted["pid"] == again["pid"]
        os.kill(adopted["pid"], signal.SIGKILL)
        wait_for(lambda: healthy(path, not_pid=adopted["pid"]), "the guest healthy again", timeout=BOOT_S)
        assert _get(port, "/cgi-bin/boot") == boot, "resumed again, not booted"
        incidents = cli_json("incidents", "list", "--json", "-c", str(path))
        latest = max(incidents, key=lambda i: i["opened_at"])
        shown = cli_json("incidents", "show", latest["id"], "--json", "-c", str(path))
        [restart] = [a for a in shown["actions"] if a["kind"] == "restart"]
        assert "0: warm restore from the state saved" in restart["detail"], restart["detail"]
    finally:
        stop(run)


async def _crash_and_restart(ctl: Controller) -> tuple[dict[str, Any], str]:
    """SIGKILL the guest's QEMU; once it is healthy again, the restart's kind and its detail."""
    [pid] = ctl.actuator.pids("web")
    before = len([a for a in ctl.store.actions() if a.action.kind == "restart"])
    os.kill(pid, signal.SIGKILL)

    def back() -> bool:
        view = ctl.status()[0]
        return ctl.actuator.pids("web") not in ((), (pid,)) and view.state == "healthy" and view.incident is None

    await until(back, "the guest healthy again")
    restarts = sorted((a for a in ctl.store.actions() if a.action.kind == "restart"), key=lambda a: a.created_at)
    assert len(restarts) == before + 1
    finished = [e for e in ctl.store.timeline(restarts[-1].action.incident_id or "") if e.kind == "action_finished"]
    return dict(finished[-1].data["restarts"]["0"]), restarts[-1].detail or ""


async def test_a_warm_guest_boots_cold_naming_why_when_its_saved_state_is_missing_corrupt_or_refused(
    tmp_path: Path, guest: Guest
) -> None:
    data = vm_spec(tmp_path, guest, name="vm-warm", restart="warm")
    port, workdir = data["targets"][0]["port"], tmp_path / "work"
    state = workdir / "warm" / "web-0.state"
    ctl = Controller(parse_spec(data))
    await ctl.start()
    try:
        await until(lambda: ctl.status()[0].health.value == "healthy", "healthy")
        assert await ctl.actuator.vms.warm.wait_saved("web") is not None
        boot = await _aget(port, "/cgi-bin/boot")

        # Missing: the state file removed.
        state.unlink()
        kind, detail = await _crash_and_restart(ctl)
        assert kind["kind"] == "cold"
        assert "is missing" in kind["fallback"]
        assert "cold start (warm restore not possible: the saved state" in detail
        assert await _aget(port, "/cgi-bin/boot") != boot, "booted afresh"
        assert _boots(workdir) == 2

        # Corrupt: bytes overwritten in the middle; the digest no longer matches.
        saved = await _saved_again(ctl)
        with state.open("r+b") as f:
            f.seek(saved.bytes // 2)
            f.write(os.urandom(4096))
        kind, _detail = await _crash_and_restart(ctl)
        assert kind["kind"] == "cold"
        assert "unreadable or corrupt" in kind["fallback"]
        assert _boots(workdir) == 3

        # Refused by QEMU: a stream that is not a guest's state, with a digest that matches it.
        saved = await _saved_again(ctl)
        state.write_bytes(os.urandom(1 << 16))
        meta = workdir / "warm" / "web-0.json"
        doc = json.loads(meta.read_text())
        meta.write_text(json.dumps({**doc, "digest": state_digest(state)}))
        kind, _detail = await _crash_and_restart(ctl)
        assert kind["kind"] == "cold"
        assert "QEMU did not load the saved state" in kind["fallback"]
        assert _boots(workdir) == 4

        # And a good state saved again restores warm.
        await _saved_again(ctl)
        boot = await _aget(port, "/cgi-bin/boot")
        kind, _detail = await _crash_and_restart(ctl)
        assert kind["kind"] == "warm", kind
        assert await _aget(port, "/cgi-bin/boot") == boot
        assert _boots(workdir) == 4, "restored: no boot added to the console"
    finally:
        await ctl.stop()


async def test_a_restored_guest_that_does_not_become_healthy_is_booted_cold_and_its_state_saved_anew(
    tmp_path: Path, guest: Guest
) -> None:
    data = vm_spec(tmp_path, guest, name="vm-warm", restart="warm")
    data["policy"]["verify_timeout_s"] = 30.0  # the failed verification of the restore ends after this long
    ctl = Controller(parse_spec(data))
    await ctl.start()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # heartbeats sent here reach nobody
    sink.bind(("127.0.0.1", 0))
    try:
        await until(lambda: ctl.status()[0].health.value == "healthy", "healthy")
        first = await ctl.actuator.vms.warm.wait_saved("web")
        assert first is not None
        vms = ctl.actuator.vms
        live = vms._heartbeat_port
        # The restored guest's heartbeats go astray: it never proves itself healthy.
        vms._heartbeat_port = lambda: int(sink.getsockname()[1])
        [pid] = ctl.actuator.pids("web")
        os.kill(pid, signal.SIGKILL)

        def restart_applied() -> bool:
            return any(a.action.kind == "restart" and a.status.value != "applying" for a in ctl.store.actions())

        await until(restart_applied, "the restore applied", timeout=60)
        vms._heartbeat_port = live  # the cold boot that follows beats to the controller again
        await until(lambda: ctl.status()[0].state == "healthy" and ctl.status()[0].incident is None, "healed")
        [restart] = [a for a in ctl.store.actions() if a.action.kind == "restart"]
        assert "warm restore" in restart.detail
        assert restart.status.value != "verified", restart.detail
        replaced = [a for a in ctl.store.actions() if a.action.kind == "replace"]
        assert [a.status.value for a in replaced] == ["verified"], [a.detail for a in replaced]
        # The state the bad restore came from was dropped; the cold-booted guest saved a new one.
        again = await _saved_again(ctl)
        assert again.saved_at > first.saved_at
    finally:
        sink.close()
        await ctl.stop()


async def _saved_again(ctl: Controller) -> Any:
    """The state the cold-booted guest saved once it was healthy again."""
    await until(lambda: ctl.actuator.vms.warm.saved("web") is not None, "the state saved again", timeout=120)
    saved = await ctl.actuator.vms.warm.wait_saved("web")
    assert saved is not None
    return saved


def test_warm_restart_is_refused_at_load_for_a_writable_disk_and_without_checks(tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"\0" * 512)
    target: dict[str, Any] = {
        "name": "db",
        "kind": "vm",
        "port": 18090,
        "vm": {"image": str(image), "restart": "warm", "forwards": [{"guest": 80}]},
        "checks": [{"type": "tcp", "port": 18090}],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"name": "f", "targets": [target]}))
    for command in ("validate", "run"):
        out = cli(command, "-c", str(path))
        assert out.returncode == 2, out
        assert "targets[0].vm" in out.stderr
        assert "restart: warm needs a guest without writable state" in out.stderr
        assert "image_readonly" in out.stderr
    target["vm"]["image_readonly"] = True
    path.write_text(yaml.safe_dump({"name": "f", "targets": [target]}))
    assert cli("validate", "-c", str(path)).returncode == 0
    target["checks"] = []
    path.write_text(yaml.safe_dump({"name": "f", "targets": [target]}))
    out = cli("validate", "-c", str(path))
    assert out.returncode == 2
    assert "vm.restart: warm needs at least one check" in out.stderr


def test_the_saved_state_fits_only_the_config_it_was_saved_for(tmp_path: Path) -> None:
    kernel, initrd = tmp_path / "vmlinux", tmp_path / "initrd"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    vm = VmSpec(kernel=str(kernel), initrd=str(initrd), append="quiet", restart="warm")
    plan = LaunchPlan(tmp_path / "a.qmp", tmp_path / "a.serial", "tcg", ((18080, 80),), "console=ttyS0", 4000)
    base = fingerprint("/bin/sh", vm, plan)
    # What differs between two launches of one guest does not count.
    relaunch = LaunchPlan(tmp_path / "b.qmp", tmp_path / "b.serial", "tcg", ((18081, 80),), "console=ttyS0", 4001)
    assert fingerprint("/bin/sh", vm, relaunch) == base
    for changed in ({"memory_mib": 128}, {"cpus": 2}, {"append": "loud"}, {"machine": "q35"}):
        assert fingerprint("/bin/sh", vm.model_copy(update=changed), plan) != base, changed
    assert fingerprint("/bin/sh", vm, LaunchPlan(plan.qmp_socket, plan.serial_log, "kvm", (), "console=ttyS0")) != base
    assert fingerprint("/bin/bash", vm, plan) != base, "another QEMU binary"
    kernel.write_bytes(b"another kernel")
    assert fingerprint("/bin/sh", vm, plan) != base, "the kernel file changed"


def test_a_changed_vm_spec_drops_the_saved_state(tmp_path: Path, guest: Guest) -> None:
    data = vm_spec(tmp_path, guest, name="vm-warm", restart="warm")
    data["targets"][0]["vm"]["accel"] = "tcg"
    ctl = Controller(parse_spec(data))
    warm = tmp_path / "work" / "warm"
    warm.mkdir(parents=True)
    for name in ("web-0.state", "web-0.json"):
        (warm / name).write_text("saved")
    tspec = ctl.actuator.vms.spec_of("web")
    ctl.actuator.vms.set_target_spec(tspec)  # the same spec: kept
    assert (warm / "web-0.state").is_file()
    assert tspec.vm is not None
    changed = tspec.model_copy(update={"vm": tspec.vm.model_copy(update={"memory_mib": 192})})
    ctl.actuator.vms.set_target_spec(TargetSpec.model_validate(changed.model_dump()))
    assert not (warm / "web-0.state").exists()
    assert not (warm / "web-0.json").exists()
    ctl.store.close()


def _guest_processes(workdir: Path) -> list[psutil.Process]:
    """Every live process started for the fleet's guests (QEMU and what QEMU ran), by its command line."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and str(workdir) in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def _hold_restores(held: str, hold: Path, bindir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make a warm restore wait at ``held`` while ``hold`` exists; the program that waits.

    ``starting``: QEMU itself, through a wrapper that waits before it runs the real one for
    a ``-incoming`` launch, so its QMP does not answer yet. ``loading``: the ``cat`` QEMU
    reads the saved state through, so QEMU runs and answers but is not yet the guest's.
    """
    wait = f"while [ -e {hold} ]; do sleep 0.05; done\n"
    bindir.mkdir()
    if held == "starting":
        real = shutil.which("qemu-system-x86_64")
        program = bindir / "qemu-system-x86_64"
        program.write_text(f'#!/bin/sh\ncase " $* " in *" -incoming "*) {wait};; esac\nexec {real} "$@"\n')
        monkeypatch.setenv("NOVACRON_QEMU", str(program))
    else:
        program = bindir / "cat"
        program.write_text(f'#!/bin/sh\n{wait}exec /bin/cat "$@"\n')
        monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    program.chmod(0o755)
    return program


@pytest.mark.parametrize("held", ["starting", "loading"])
async def test_a_controller_stopped_during_a_warm_restore_leaves_no_qemu_of_it_running(
    tmp_path: Path, guest: Guest, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    hold, workdir = tmp_path / "hold", tmp_path / "work"
    program = _hold_restores(held, hold, tmp_path / "bin", monkeypatch)
    ctl = Controller(parse_spec(vm_spec(tmp_path, guest, name="vm-warm", restart="warm")))
    await ctl.start()
    running = True
    try:
        await until(lambda: ctl.status()[0].health.value == "healthy", "healthy")
        assert await ctl.actuator.vms.warm.wait_saved("web") is not None
        [pid] = ctl.actuator.pids("web")
        hold.touch()
        os.kill(pid, signal.SIGKILL)

        def waiting() -> bool:
            return any(str(program) in " ".join(p.info["cmdline"]) for p in _guest_processes(workdir))

        await until(waiting, f"the restore's QEMU {held}", timeout=60)
        [restoring] = [p for p in _guest_processes(workdir) if "-incoming" in p.info["cmdline"]]
        running = False
        await ctl.stop()  # cancels the restart action midway through the restore
        await until(lambda: not _guest_processes(workdir), "no process of the guest left", timeout=10)
        assert not restoring.is_running() or restoring.status() == psutil.STATUS_ZOMBIE
    finally:
        hold.unlink(missing_ok=True)
        for p in _guest_processes(workdir):  # what the controller left behind, so no test inherits it
            p.kill()
        if running:
            await ctl.stop()
