"""Real QEMU guests for the vm tests: built once per session from Debian's kernel and busybox.

A test that boots a guest is skipped, naming what is missing, on a machine without
``qemu-system-x86_64`` or the kernel and static busybox the guest is built from
(``.ci/debian-packages`` lists all three, so CI always has them).
"""

from __future__ import annotations

import shutil

import pytest

from novacron.actuators.qemu_guest import Guest, build_guest, guest_missing


@pytest.fixture(scope="session")
def guest() -> Guest:
    """The tiny guest (cached by content), or a skip naming the missing package."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)")
    missing = guest_missing()
    if missing is not None:
        pytest.skip(f"cannot build the test guest: {missing}")
    return build_guest()
