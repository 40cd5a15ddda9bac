"""A tiny Linux guest built here from Debian's packages: the kernel and a static busybox.

The initramfs holds busybox, the kernel's own virtio-net, virtio console and balloon drivers
(with the modules they depend on) and an ``/init`` that brings up user-mode networking,
serves HTTP on port 80 (``/health``, ``/cgi-bin/clock`` for its clock and uptime, and
``/cgi-bin/boot`` for the boot id, which a live migration, a rollback or a warm restore
keeps and a reboot changes) and, when QEMU gives it a heartbeat port
(a virtio console port, ``/dev/hvc0``, that QEMU sends on as UDP datagrams to the controller), writes its
name there every ``novacron.hbi`` seconds (``novacron.name=TARGET#REPLICA`` on the kernel
command line). Nothing is downloaded: the guest is assembled from the files of the
``linux-image-amd64`` and ``busybox-static`` packages — installed, or unpacked under
``$NOVACRON_GUEST_ROOT`` — and cached by their content under the project's cache
directory (``$NOVACRON_CACHE``, default ``~/.cache/novacron``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import lzma
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novacron.errors import ConfigError
from novacron.settings import HeartbeatCheck, HttpCheck, TargetSpec, VmForward, VmSpec

__all__ = [
    "GUEST_HTTP_PORT",
    "Guest",
    "build_guest",
    "cache_dir",
    "guest_append",
    "guest_missing",
    "guest_target",
]

GUEST_HTTP_PORT = 80
_BUSYBOX = ("bin/busybox", "usr/bin/busybox")
# Network (virtio-net: an e1000 just migrated sometimes leaves new connections unanswered
# for seconds), the heartbeat port and the memory balloon; their dependencies are found from
# each module's own ``depends=`` (a package's modules.dep is only written at install).
_MODULES = ("virtio_pci", "virtio_net", "virtio_console", "virtio_balloon")
_LAYOUT = "vmlinux+initrd.gz/2"  # what a cache entry holds: a new layout is a new entry

_INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
NAME=guest HBI=0.5
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    novacron.name=*) NAME="${arg#novacron.name=}" ;;
    novacron.hbi=*) HBI="${arg#novacron.hbi=}" ;;
  esac
done
for m in $(cat /lib/modules.order); do insmod "/lib/$m.ko" 2>/dev/null; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
httpd -p 80 -h /www
(
  # The heartbeat port is the virtio port QEMU names novacron.heartbeat (its sysfs number
  # depends on the devices ahead of it); its name arrives from QEMU shortly after the driver.
  for _ in $(seq 50); do
    for p in /sys/class/virtio-ports/*; do
      [ "$(cat "$p/name" 2>/dev/null)" = novacron.heartbeat ] && exec sh -c \
        'while :; do printf "%s" "$1" > /dev/hvc0; sleep "$2"; done' beat "$NAME" "$HBI"
    done
    sleep 0.1
  done
) &
echo "novacron-guest ready $(cat /proc/sys/kernel/random/boot_id)"
while :; do sleep 3600; done
"""

_BOOT_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo
cat /proc/sys/kernel/random/boot_id
"""

# The guest's wall clock (seconds since the epoch) and its uptime: a guest resumed from a
# saved state keeps its uptime running on from the save, and its clock lags by the time since.
_CLOCK_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "$(date +%s) $(cut -d' ' -f1 /proc/uptime)"
"""


@dataclass(frozen=True, slots=True)
class Guest:
    """A bootable guest: kernel, initramfs and the command line it wants."""

    kernel: Path
    initrd: Path
    append: str


def guest_target(name: str, port: int, guest: Guest, *, host: str = "local", **vm: Any) -> TargetSpec:
    """A ``kind: vm`` target running ``guest`` with its HTTP port on ``port`` and its heartbeat.

    The timeouts allow for a guest booting without KVM on a busy machine (tens of seconds).
    """
    return TargetSpec(
        name=name,
        kind="vm",
        port=port,
        start_timeout_s=180.0,
        stop_timeout_s=5.0,
        vm=VmSpec(
            kernel=str(guest.kernel),
            initrd=str(guest.initrd),
            append=guest.append,
            host=host,
            forwards=[VmForward(guest=GUEST_HTTP_PORT)],
            **vm,
        ),
        checks=[
            HttpCheck(
                url=f"http://127.0.0.1:{port}/health", interval_s=0.5, timeout_s=3.0, failures=2, adaptive_timeout=False
            ),
            HeartbeatCheck(expected_interval_s=1.0, acceptable_pause_s=3.0),
        ],
    )


def cache_dir() -> Path:
    """Where built guests are kept (``$NOVACRON_CACHE`` or ``~/.cache/novacron``)."""
    root = os.environ.get("NOVACRON_CACHE") or str(Path.home() / ".cache" / "novacron")
    return Path(root) / "guests"


def guest_append() -> str:
    """The kernel command line the guest wants: quiet, reboot on panic, and nothing it can skip.

    Without KVM every instruction of the boot is emulated, so the start-up work the guest
    does not need goes: the crypto self-tests, the timer and delay-loop calibrations (the
    loops-per-jiffy is given), the speculative-execution mitigations' code patching, IPv6,
    audit and PS/2 probing. Under TCG this halves the time to the first health answer.
    ``acpi=noirq`` routes the PCI interrupts by the firmware's table instead of ACPI's
    interrupt links: enabling a link took about a second of emulated ACPI per virtio
    device (three of them), a third of the guest's boot.
    """
    return (
        "quiet panic=1 i8042.nokbd i8042.noaux i8042.nopnp cryptomgr.notests no_timer_check "
        "tsc=reliable lpj=5000000 mitigations=off ipv6.disable=1 audit=0 random.trust_cpu=on acpi=noirq"
    )


def guest_missing() -> str | None:
    """Why a guest cannot be built here (a missing package), or None when it can."""
    try:
        _sources()
    except ConfigError as exc:
        return str(exc)
    return None


def build_guest(root: Path | None = None) -> Guest:
    """Build (or reuse from the cache) the guest from the installed kernel and busybox."""
    kernel, modules, busybox = _sources()
    key = hashlib.sha256()
    for part in (kernel, *modules, busybox):
        st = part.stat()
        key.update(f"{part}:{st.st_size}:{st.st_mtime_ns}".encode())
    key.update((_LAYOUT + _INIT + _BOOT_CGI + _CLOCK_CGI).encode())
    out = (root or cache_dir()) / key.hexdigest()[:16]
    guest = Guest(out / "vmlinux", out / "initrd.gz", guest_append())
    if guest.kernel.exists() and guest.initrd.exists():
        return guest
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vmlinux").write_bytes(_vmlinux(kernel))
    (tmp / "initrd.gz").write_bytes(gzip.compress(_initramfs(busybox, modules), compresslevel=6))
    if out.exists():  # built meanwhile by another process: the same content
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    else:
        tmp.rename(out)
    return guest


def _sources() -> tuple[Path, list[Path], Path]:
    root = Path(os.environ.get("NOVACRON_GUEST_ROOT") or "/")
    kernels = sorted((root / "boot").glob("vmlinuz-*"), key=lambda p: _version_key(p.name))
    if not kernels:
        raise ConfigError(f"no kernel in {root / 'boot'} (Debian: apt-get install linux-image-amd64)", where="guest")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    module_dir = next(
        (d for d in (root / "lib/modules" / version, root / "usr/lib/modules" / version) if d.is_dir()), None
    )
    if module_dir is None:
        raise ConfigError(f"the modules of kernel {version} are missing under {root}", where="guest")
    busybox = next((root / p for p in _BUSYBOX if (root / p).exists() and _is_static(root / p)), None)
    if busybox is None:
        raise ConfigError(f"no static busybox under {root} (Debian: apt-get install busybox-static)", where="guest")
    return kernel, _with_dependencies(module_dir, _MODULES), busybox


def _with_dependencies(module_dir: Path, names: tuple[str, ...]) -> list[Path]:
    """The module files for ``names`` and everything they depend on, dependencies first."""
    index = {_module_name(p): p for p in (module_dir / "kernel").rglob("*.ko*")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = index.get(name.replace("-", "_"))
        if path is None:
            raise ConfigError(f"kernel module {name} is missing under {module_dir}", where="guest")
        if path in order:
            return
        for dep in _depends(_module_bytes(path)):
            visit(dep)
        order.append(path)

    for name in names:
        visit(name)
    return order


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _depends(module: bytes) -> list[str]:
    found = re.search(rb"\x00depends=([^\x00]*)\x00", module)
    return [d for d in found.group(1).decode().split(",") if d] if found else []


def _vmlinux(bzimage: Path) -> bytes:
    """The ELF kernel inside a compressed bzImage.

    QEMU boots an ELF kernel with a PVH entry point directly, skipping the firmware's
    Linux loader and the in-guest decompression: without KVM that is most of the boot.
    Falls back to the bzImage itself when no known compressed payload is found.
    """
    data = bzimage.read_bytes()
    for magic, decompress in ((b"\xfd7zXZ\x00", _unxz), (b"\x1f\x8b\x08\x00", _gunzip)):
        at = data.find(magic)
        if at < 0:
            continue
        with contextlib.suppress(lzma.LZMAError, OSError, EOFError):
            elf = decompress(data[at:])
            if elf.startswith(b"\x7fELF"):
                return elf
    return data


def _unxz(data: bytes) -> bytes:
    return lzma.LZMADecompressor().decompress(data)  # stops at the end of the stream


def _gunzip(data: bytes) -> bytes:
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def _version_key(name: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", name)]


def _is_static(path: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP) runs without libc."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, phentsize, phnum = struct.unpack_from("<Q", head, 32)[0], *struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.suffix == ".xz" else data


def _initramfs(busybox: Path, modules: list[Path]) -> bytes:
    """An uncompressed cpio (newc) archive of the guest's root file system."""
    out = io.BytesIO()
    ino = 1
    dirs = ["bin", "dev", "lib", "proc", "sys", "tmp", "www", "www/cgi-bin"]
    entries: list[tuple[str, int, bytes, int]] = [(d, stat.S_IFDIR | 0o755, b"", 0) for d in dirs]
    entries += [
        ("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)),
        ("init", stat.S_IFREG | 0o755, _INIT.encode(), 0),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), 0),
        ("bin/sh", stat.S_IFLNK | 0o777, b"busybox", 0),
        ("lib/modules.order", stat.S_IFREG | 0o644, "\n".join(_module_name(m) for m in modules).encode(), 0),
        *((f"lib/{_module_name(m)}.ko", stat.S_IFREG | 0o644, _module_bytes(m), 0) for m in modules),
        ("www/health", stat.S_IFREG | 0o644, b"ok\n", 0),
        ("www/index.html", stat.S_IFREG | 0o644, b"novacron guest\n", 0),
        ("www/cgi-bin/boot", stat.S_IFREG | 0o755, _BOOT_CGI.encode(), 0),
        ("www/cgi-bin/clock", stat.S_IFREG | 0o755, _CLOCK_CGI.encode(), 0),
    ]
    for name, mode, data, rdev in entries:
        _cpio_entry(out, name, mode, data, ino, rdev)
        ino += 1
    _cpio_entry(out, "TRAILER!!!", 0, b"", 0, 0)
    return out.getvalue()


def _cpio_entry(out: io.BytesIO, name: str, mode: int, data: bytes, ino: int, rdev: int) -> None:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, os.major(rdev), os.minor(rdev), len(name) + 1, 0]
    out.write(b"070701" + b"".join(f"{v:08x}".encode() for v in fields))
    out.write(name.encode() + b"\0")
    out.write(b"\0" * (-(110 + len(name) + 1) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))
