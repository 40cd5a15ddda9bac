"""VM hosts without QEMU: placement by free memory, capacity refusals, per-host blast radius."""

from __future__ import annotations

from novacron.actuators.qemu_hosts import HostBook
from novacron.settings import VmHostSpec
from tests.cli.runner import cli


def _book() -> HostBook:
    hosts = [
        VmHostSpec(name="a", memory_mib=1024),
        VmHostSpec(name="b", memory_mib=512),
        VmHostSpec(name="c", memory_mib=768),
    ]
    return HostBook(hosts, blast_radius=0.5)


def test_placement_prefers_the_most_free_memory_and_skips_failed_hosts() -> None:
    book = _book()
    book.place("g0#0", "a", 512, 1)
    assert book.pick(256, 1) == "c"  # a has 512 left, c 768
    book.mark_failed("c")
    assert book.pick(256, 1, exclude=["a"]) == "b"
    assert book.why_not("c", 256, 1) == "host c has failed"
    assert book.why_not("b", 1024, 1) == "host b has 512 MiB free, the guest needs 1024 MiB"
    assert book.pick(2048, 1) is None


def test_a_migration_takes_a_slot_on_both_hosts() -> None:
    book = _book()
    for i in range(4):
        book.place(f"g{i}#0", "a", 128, 1)
    assert book.cap("a") == 2
    assert book.acquire("g0#0", ["a", "b"]) is None
    assert book.acquire("g1#0", ["a", "c"]) is None
    refused = book.acquire("g2#0", ["a", "c"])
    assert refused is not None
    assert refused.startswith("blast radius of host a: 2 of its guests already disturbed (g0#0, g1#0; cap 2)")
    assert book.acquire("g2#0", ["b"]) is not None, "b holds g0's incoming migration (cap 1)"
    book.release("g0#0", ["a", "b"])
    assert book.acquire("g2#0", ["a", "b"]) is None


def test_bench_vm_names_a_bad_count() -> None:
    res = cli("bench", "vm", "--guests", "0")
    assert res.returncode == 2
    assert "--guests: must be between 1 and 50, got 0" in res.stderr
