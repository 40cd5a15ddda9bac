"""The QEMU command line for one guest, from its ``vm`` spec block.

Every guest gets a QMP socket, its serial console appended to a log file (a restart keeps
the previous boot's console, the evidence of a crash), user-mode networking
with its port forwards on 127.0.0.1 and ``-no-shutdown`` (a guest that powers off stays
visible to QMP as a fault instead of vanishing). A migration destination is the same
machine started with ``-incoming`` and without the forwards, which it takes over from
the source once the source has let go of the ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from novacron.settings import VmForward, VmSpec

__all__ = ["LaunchPlan", "console_log", "forward_rule", "qemu_argv", "resolve_forwards"]

_CONSOLE_ID = "console0"


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """Everything that differs between two launches of the same guest."""

    qmp_socket: Path
    serial_log: Path
    accel: str  # kvm | tcg
    forwards: tuple[tuple[int, int], ...]  # (host port, guest port) pairs
    append: str = ""
    heartbeat_port: int | None = None  # the controller's UDP heartbeat port on 127.0.0.1
    incoming: str | None = None  # "tcp:127.0.0.1:PORT" or "defer"
    memory_mib: int | None = None  # overrides the spec (after a resize)
    cpus: int | None = None


def forward_rule(host_port: int, guest_port: int) -> str:
    """A user-mode network forward of ``127.0.0.1:host_port`` to the guest's ``guest_port``."""
    return f"tcp:127.0.0.1:{host_port}-:{guest_port}"


def resolve_forwards(forwards: list[VmForward], base_port: int | None, replica: int) -> tuple[tuple[int, int], ...]:
    """Host ports for replica ``replica``: each forward's host port + replica (the first defaults to the target's)."""
    out = []
    for i, fwd in enumerate(forwards):
        host = fwd.host if fwd.host is not None else (base_port if i == 0 else None)
        if host is None:
            raise ValueError(f"vm.forwards[{i}].host: give a host port (only the first defaults to the target's port)")
        out.append((host + replica, fwd.guest))
    return tuple(out)


def qemu_argv(binary: str, vm: VmSpec, plan: LaunchPlan) -> list[str]:
    """The full argv for ``binary`` to run ``vm`` as ``plan`` says."""
    cpus = plan.cpus or vm.cpus
    max_cpus = max(vm.max_cpus or cpus, cpus)
    # An incoming QEMU takes the forwards over only once the old one has let go of the ports.
    forwards = plan.forwards if plan.incoming is None else ()
    netdev = "user,id=net0" + "".join(f",hostfwd={forward_rule(h, g)}" for h, g in forwards)
    argv = [
        binary,
        "-name",
        plan.qmp_socket.stem,
        "-machine",
        f"{vm.machine},accel={plan.accel}",
        "-m",
        str(plan.memory_mib or vm.memory_mib),
        "-smp",
        f"{cpus},maxcpus={max_cpus}",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-shutdown",
        "-qmp",
        f"unix:{plan.qmp_socket},server=on,wait=off",
        # A chardev rather than ``-serial file:``, which truncates the file at every launch.
        "-chardev",
        f"file,id={_CONSOLE_ID},path={_opt_escape(str(plan.serial_log))},append=on",
        "-serial",
        f"chardev:{_CONSOLE_ID}",
        "-netdev",
        netdev,
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-balloon-pci,id=balloon0",
    ]
    if plan.heartbeat_port:
        # A virtio console port whose every write QEMU sends as one UDP datagram: the guest's
        # heartbeat reaches the controller without touching the guest's network. A console
        # port, because QEMU opens it at once; a plain virtserialport waits for its UDP
        # backend to report "connected", which never comes, and the guest's writes block.
        argv += [
            "-device",
            "virtio-serial-pci,id=vser0",
            "-chardev",
            f"udp,id=hb0,host=127.0.0.1,port={plan.heartbeat_port}",
            "-device",
            "virtconsole,chardev=hb0,name=novacron.heartbeat",
        ]
    if vm.kernel is not None:
        argv += ["-kernel", vm.kernel, "-append", " ".join(p for p in (vm.append, plan.append) if p)]
        if vm.initrd is not None:
            argv += ["-initrd", vm.initrd]
    else:
        assert vm.image is not None
        mode = "readonly=on" if vm.image_readonly else "snapshot=on"
        argv += ["-drive", f"file={vm.image},if=virtio,{mode}"]
    if plan.incoming is not None:
        argv += ["-incoming", plan.incoming]
    return argv


def console_log(argv: list[str]) -> Path | None:
    """The serial console's log file of a QEMU launched with ``argv``, or None without one.

    Reads both forms: ``-chardev file,…,path=P -serial chardev:ID`` (what :func:`qemu_argv`
    writes) and ``-serial file:P`` (what guests launched by earlier versions still run with).
    """
    pairs = list(pairwise(argv))
    serial = next((value for flag, value in pairs if flag == "-serial"), None)
    if serial is None:
        return None
    if serial.startswith("file:"):
        return Path(serial.removeprefix("file:"))
    if not serial.startswith("chardev:"):
        return None
    wanted = serial.removeprefix("chardev:")
    for flag, value in pairs:
        if flag != "-chardev":
            continue
        backend, opts = _opt_split(value)
        if backend == "file" and opts.get("id") == wanted and "path" in opts:
            return Path(opts["path"])
    return None


def _opt_escape(value: str) -> str:
    """A value inside a QEMU option list, where a comma is written twice."""
    return value.replace(",", ",,")


def _opt_split(text: str) -> tuple[str, dict[str, str]]:
    """``backend,key=value,…`` (a doubled comma is a comma) as the backend and its options."""
    parts = [part.replace("\0", ",") for part in text.replace(",,", "\0").split(",")]
    options = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        options[key] = value
    return parts[0], options
