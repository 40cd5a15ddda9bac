"""The host-failure plan shared by the twin and the real VM host failover.

The same function places the twin's VMs (:meth:`Simulator.evacuate`) and the real
guests of a failed QEMU host (``runtime/vmfailover.py`` over the actuator's host book):
highest priority first, each on the host with the most free memory that still fits it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from novacron.actuators.qemu_hosts import HostBook
from novacron.placement import Evacuee, Room, best_host, plan_evacuation
from novacron.settings import VmHostSpec
from novacron.twin import Simulator, Topology, VmStatus


def test_highest_priority_first_each_where_most_memory_is_free() -> None:
    guests = [Evacuee("lo", 300, 1, priority=1), Evacuee("hi", 300, 1, priority=9), Evacuee("mid", 300, 1, priority=5)]
    rooms = [Room("b", 500, 4), Room("c", 400, 4)]
    assert plan_evacuation(guests, rooms) == [("hi", "b"), ("mid", "c"), ("lo", None)]
    assert rooms == [Room("b", 500, 4), Room("c", 400, 4)], "the rooms given are left as they were"


def test_cpus_count_and_equal_rooms_go_to_the_first_listed() -> None:
    assert best_host([Room("a", 900, 1), Room("b", 500, 4)], 256, 2) == "b"
    assert best_host([Room("a", 500, 4), Room("b", 500, 4)], 256, 1) == "a"
    assert best_host([Room("a", 100, 4)], 256, 1) is None
    equal = [Evacuee(name, 100, 1) for name in ("x", "y", "z")]
    assert [g for g, _ in plan_evacuation(equal, [Room(0, 1000, 8)])] == ["x", "y", "z"]


def test_the_real_host_book_offers_its_healthy_hosts_free_room() -> None:
    book = HostBook([VmHostSpec(name=n, memory_mib=1024, cpus=4) for n in "abc"], blast_radius=0.5)
    book.place("web#0", "a", 256, 1)
    book.place("db#0", "b", 512, 2)
    book.mark_failed("c")
    assert book.rooms(exclude=["a"]) == [Room("b", 512, 2)]
    plan = plan_evacuation([Evacuee("web#0", 256, 1, 1), Evacuee("x#0", 600, 1, 2)], book.rooms(exclude=["a"]))
    assert plan == [("x#0", None), ("web#0", "b")]


def _topology(priority: list[int]) -> Topology:
    hosts: dict[str, npt.ArrayLike] = {
        "cores": [8.0, 8.0, 8.0],
        "mem_gb": [64.0, 30.0, 25.0],
        "iops": [1e5] * 3,
        "disk_gb": [1000.0] * 3,
        "net_gbps": [10.0] * 3,
    }
    n = len(priority)
    vms: dict[str, npt.ArrayLike] = {
        "host": [0] * n,
        "cpu": [1.0] * n,
        "mem_gb": [20.0] * n,
        "iops": [100.0] * n,
        "net_gbps": [0.1] * n,
        "priority": priority,
    }
    return Topology.create(hosts, vms, {"src": [0, 1], "dst": [1, 2], "gbps": [10.0, 10.0]})


def test_the_twin_evacuates_a_failed_host_by_the_same_plan() -> None:
    sim = Simulator(_topology([1, 7, 3]))
    sim.inject_fault(0, "host_failure")
    plan = sim.evacuate(0)
    # Host 1 has 30 GB free, host 2 25 GB: priority 7 takes host 1, priority 3 host 2, priority 1 nothing.
    assert plan == [(1, 1), (2, 2), (0, None)]
    rooms = [Room(1, 30.0, 8.0), Room(2, 25.0, 8.0)]
    assert plan == plan_evacuation([Evacuee(v, 20.0, 1.0, p) for v, p in enumerate([1, 7, 3])], rooms)
    assert sim.state.status[1] == VmStatus.ACTING
    assert sim.state.status[0] == VmStatus.UP, "no place: it waits on its host"
    sim.advance_to(sim.now + sim.healer_params.migrate_s + 1)
    assert list(sim.state.vm_host) == [0, 1, 2]
    assert np.isclose(sim.reserved_mem_gb, 0).all(), "the places held for the moves are given back"
