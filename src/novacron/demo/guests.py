"""``novacron demo --vms``: two QEMU guests join the demo fleet, one on each of two VM hosts.

The guests are the tiny ones built from Debian's kernel and busybox (``novacron vm
guest``). They are healed like the demo services (a killed QEMU is restarted) but the
chaos monkey leaves them alone: its faults are aimed at the demo services' own chaos
endpoints. Without QEMU or the two packages the demo runs without them and says why.
"""

from __future__ import annotations

import os
import shutil

from novacron.actuators.qemu_guest import Guest, guest_missing, guest_target
from novacron.settings import FleetSpec, VmHostSpec

__all__ = ["GUEST_HOSTS", "add_guests", "guests_unavailable"]

GUEST_HOSTS = ("a", "b")
_BOOT_S = 240.0  # a guest's boot under TCG on a busy machine: the verification waits this long


def guests_unavailable() -> str | None:
    """Why guests cannot join the demo here (no QEMU, no kernel or busybox), or None."""
    binary = os.environ.get("NOVACRON_QEMU", "qemu-system-x86_64")
    if shutil.which(binary) is None:
        return f"{binary} is not installed (Debian: apt-get install qemu-system-x86)"
    return guest_missing()


def add_guests(spec: FleetSpec, guest: Guest, base_port: int) -> FleetSpec:
    """``spec`` plus guests ``vm-a`` and ``vm-b`` on hosts a and b, serving HTTP on ``base_port`` and the next."""
    guests = [guest_target(f"vm-{h}", base_port + i, guest, host=h) for i, h in enumerate(GUEST_HOSTS)]
    hosts = [VmHostSpec(name=h, memory_mib=1024, cpus=4) for h in GUEST_HOSTS]
    data = spec.model_dump(mode="json")
    data["targets"] += [g.model_dump(mode="json") for g in guests]
    data["hosts"] = [h.model_dump(mode="json") for h in hosts]
    data["policy"]["verify_timeout_s"] = max(spec.policy.verify_timeout_s, _BOOT_S)
    return FleetSpec.model_validate(data)
