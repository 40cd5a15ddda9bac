"""The fleet's static description: hosts, VMs and links as validated numpy arrays.

A :class:`Topology` is what a user (or a trace loader) hands the twin. It is checked once,
here, so the step loop can trust it: negative capacities, links to unknown hosts and VMs
without a host are refused with an :class:`~novacron.errors.InputError` naming the item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.errors import InputError

__all__ = ["FloatArray", "IntArray", "Topology", "build_fleet"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_HOST_FIELDS = ("cores", "mem_gb", "iops", "disk_gb", "net_gbps")
_VM_FIELDS = ("cpu", "mem_gb", "mem_limit_gb", "iops", "net_gbps")


def _floats(values: npt.ArrayLike, where: str, n: int | None = None) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise InputError(f"expected a 1-D array of length {n}, got shape {arr.shape}", where=where)
    return arr


def _check_nonneg(arr: FloatArray, where: str, *, strict: bool = False) -> None:
    bad = ~np.isfinite(arr) | ((arr <= 0) if strict else (arr < 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "> 0" if strict else ">= 0"
        raise InputError(f"must be finite and {rule}, got {arr[i]!r}", where=f"{where}[{i}]")


def _ints(values: npt.ArrayLike, where: str, n: int) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"expected a 1-D array of length {n}, got shape {arr.shape}", where=where)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"must hold integer indices (got {arr.dtype})", where=where)
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise InputError("must hold integer indices", where=where)
    limit = np.iinfo(np.int64).max
    if arr.dtype.kind != "i" and (arr > limit).any():
        i = int(np.flatnonzero(arr > limit)[0])
        raise InputError(f"{arr[i]} is not a known index", where=f"{where}[{i}]")
    return arr.astype(np.int64)


def _check_index(arr: IntArray, where: str, upper: int, what: str) -> None:
    bad = (arr < 0) | (arr >= upper)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{arr[i]} is not a known {what} (0..{upper - 1})", where=f"{where}[{i}]")


@dataclass(frozen=True, slots=True, eq=False)
class Topology:
    """Validated fleet arrays. Build with :meth:`create` (which checks) or :func:`build_fleet`."""

    host_cores: FloatArray
    host_mem_gb: FloatArray
    host_iops: FloatArray
    host_disk_gb: FloatArray
    host_net_gbps: FloatArray
    vm_host: IntArray
    vm_group: IntArray
    vm_cpu: FloatArray
    vm_mem_gb: FloatArray
    vm_mem_limit_gb: FloatArray
    vm_iops: FloatArray
    vm_net_gbps: FloatArray
    vm_priority: IntArray  # higher is placed first when its host fails
    link_src: IntArray
    link_dst: IntArray
    link_gbps: FloatArray
    n_groups: int

    @property
    def n_hosts(self) -> int:
        """Number of hosts."""
        return int(self.host_cores.shape[0])

    @property
    def n_vms(self) -> int:
        """Number of VMs (or services)."""
        return int(self.vm_host.shape[0])

    @property
    def n_links(self) -> int:
        """Number of host-to-host links."""
        return int(self.link_src.shape[0])

    @classmethod
    def create(
        cls,
        hosts: Mapping[str, npt.ArrayLike],
        vms: Mapping[str, npt.ArrayLike],
        links: Mapping[str, npt.ArrayLike],
        *,
        n_groups: int = 1,
    ) -> Topology:
        """Check and freeze a fleet given as column dicts (``hosts["cores"]``, ``vms["host"]`` …).

        VM columns ``mem_limit_gb``, ``group`` and ``priority`` are optional (defaults: 1.5 ×
        memory, group 0, priority 0).
        """
        if n_groups < 1:
            raise InputError(f"must be >= 1, got {n_groups}", where="n_groups")
        h_cols = {k: _check_col(hosts, "hosts", k, None) for k in _HOST_FIELDS}
        n_hosts = h_cols["cores"].shape[0]
        if n_hosts == 0:
            raise InputError("a fleet needs at least one host", where="hosts")
        for k in _HOST_FIELDS:
            _check_nonneg(_floats(h_cols[k], f"hosts.{k}", n_hosts), f"hosts.{k}", strict=True)
        n_vms = _column_len(vms, "vms", "host")
        vm_host = _ints(vms["host"], "vms.host", n_vms)
        if n_vms and (vm_host < 0).any():
            i = int(np.flatnonzero(vm_host < 0)[0])
            raise InputError("VM has no host", where=f"vms.host[{i}]")
        _check_index(vm_host, "vms.host", n_hosts, "host")
        v_cols = _vm_columns(vms, n_vms)
        group = _ints(vms.get("group", np.zeros(n_vms, dtype=np.int64)), "vms.group", n_vms)
        _check_index(group, "vms.group", n_groups, "workload group")
        priority = _ints(vms.get("priority", np.zeros(n_vms, dtype=np.int64)), "vms.priority", n_vms)
        n_links = _column_len(links, "links", "src")
        src = _ints(links["src"], "links.src", n_links)
        dst = _ints(links.get("dst", []), "links.dst", n_links)
        _check_index(src, "links.src", n_hosts, "host")
        _check_index(dst, "links.dst", n_hosts, "host")
        if (src == dst).any():
            i = int(np.flatnonzero(src == dst)[0])
            raise InputError(f"a link cannot join host {src[i]} to itself", where=f"links[{i}]")
        gbps = _floats(links.get("gbps", []), "links.gbps", n_links)
        _check_nonneg(gbps, "links.gbps", strict=True)
        return cls(
            host_cores=h_cols["cores"], host_mem_gb=h_cols["mem_gb"], host_iops=h_cols["iops"],
            host_disk_gb=h_cols["disk_gb"], host_net_gbps=h_cols["net_gbps"],
            vm_host=vm_host, vm_group=group, vm_cpu=v_cols["cpu"], vm_mem_gb=v_cols["mem_gb"],
            vm_mem_limit_gb=v_cols["mem_limit_gb"], vm_iops=v_cols["iops"],
            vm_net_gbps=v_cols["net_gbps"], vm_priority=priority, link_src=src, link_dst=dst, link_gbps=gbps,
            n_groups=n_groups,
        )  # fmt: skip


def _check_col(table: Mapping[str, npt.ArrayLike], name: str, key: str, n: int | None) -> FloatArray:
    if key not in table:
        raise InputError("missing column", where=f"{name}.{key}")
    return _floats(table[key], f"{name}.{key}", n)


def _column_len(table: Mapping[str, npt.ArrayLike], name: str, key: str) -> int:
    if key not in table:
        raise InputError("missing column", where=f"{name}.{key}")
    return int(np.asarray(table[key]).shape[0]) if np.ndim(table[key]) else 0


def _vm_columns(vms: Mapping[str, npt.ArrayLike], n_vms: int) -> dict[str, FloatArray]:
    cols: dict[str, FloatArray] = {}
    for k in ("cpu", "mem_gb", "iops", "net_gbps"):
        cols[k] = _check_col(vms, "vms", k, n_vms)
        _check_nonneg(cols[k], f"vms.{k}")
    limit = vms.get("mem_limit_gb", cols["mem_gb"] * 1.5)
    cols["mem_limit_gb"] = _floats(limit, "vms.mem_limit_gb", n_vms)
    _check_nonneg(cols["mem_limit_gb"], "vms.mem_limit_gb", strict=True)
    below = cols["mem_limit_gb"] < cols["mem_gb"]
    if below.any():
        i = int(np.flatnonzero(below)[0])
        raise InputError("memory limit is below the VM's memory", where=f"vms.mem_limit_gb[{i}]")
    return cols


def build_fleet(n_hosts: int, n_vms: int, *, seed: int = 0, n_groups: int = 8) -> Topology:
    """A synthetic fleet: identical hosts on a ring with chords, VMs spread evenly.

    Sizes are chosen so the fleet idles near 45 % CPU at workload multiplier 1.
    """
    if n_hosts < 1:
        raise InputError(f"must be >= 1, got {n_hosts}", where="hosts")
    if n_vms < 0:
        raise InputError(f"must be >= 0, got {n_vms}", where="vms")
    rng = np.random.default_rng(seed)
    per_host_vms = max(1.0, n_vms / n_hosts)
    hosts = {
        "cores": np.full(n_hosts, 32.0), "mem_gb": np.full(n_hosts, 512.0),
        "iops": np.full(n_hosts, 100_000.0), "disk_gb": np.full(n_hosts, 4000.0),
        "net_gbps": np.full(n_hosts, 25.0),
    }  # fmt: skip
    mem = rng.uniform(4.0, 28.0, n_vms) * (10.0 / per_host_vms)
    vms = {
        "host": np.arange(n_vms) % n_hosts,
        "group": rng.integers(0, n_groups, n_vms),
        "cpu": rng.uniform(0.5, 2.5, n_vms) * (10.0 / per_host_vms) * 0.96,
        "mem_gb": mem, "mem_limit_gb": mem * 1.5,
        "iops": rng.uniform(500.0, 5000.0, n_vms) * (10.0 / per_host_vms),
        "net_gbps": rng.uniform(0.05, 0.5, n_vms) * (10.0 / per_host_vms),
    }  # fmt: skip
    idx = np.arange(n_hosts)
    if n_hosts == 1:
        src, dst = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    elif n_hosts == 2:
        src, dst = np.array([0]), np.array([1])
    else:
        chord = idx[: n_hosts // 2] if n_hosts >= 4 else idx[:0]
        src = np.concatenate([idx, chord])
        dst = np.concatenate([(idx + 1) % n_hosts, (chord + n_hosts // 2) % n_hosts])
    links = {"src": src, "dst": dst, "gbps": np.full(src.shape[0], 10.0)}
    return Topology.create(hosts, vms, links, n_groups=n_groups)
