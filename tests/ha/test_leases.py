"""Shard leases on a FakeClock: expiry and take-over, fencing of a stale epoch, racing claims, drain."""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import Connection, delete, select

from novacron.clock import FakeClock, MonotonicClock
from novacron.errors import ConfigError
from novacron.healing.catalog import new_action
from novacron.model import (
    ActionKind,
    ActionStatus,
    FaultKind,
    Incident,
    IncidentId,
    IncidentStatus,
    Priority,
    TargetId,
)
from novacron.runtime.ha import HaMember
from novacron.settings import HaSettings
from novacron.store import Store, leases, nodes
from novacron.store.guard import GuardedStore
from novacron.store.ha_tables import ha_leases
from novacron.store.leases import FenceToken
from novacron.store.records import incident_values
from novacron.store.repo import incident_insert
from tests.postgres import PG_ADMIN

SETTINGS = HaSettings(lease_s=2.0, renew_s=0.25, shards=8, node_stale_s=2.0)
TARGETS = [f"r{i}" for i in range(40)]

Make = Callable[[str], HaMember]


@pytest.fixture
async def members(store_url: str) -> AsyncIterator[tuple[FakeClock, Make]]:
    clock = FakeClock()
    made: list[tuple[HaMember, GuardedStore]] = []

    def make(node_id: str) -> HaMember:
        store = GuardedStore.open(store_url)
        m = HaMember(store, SETTINGS, node_id=node_id, clock=clock, remote_targets=TARGETS, version="t")
        m.register()
        made.append((m, store))
        return m

    yield clock, make
    for m, store in made:
        await m.stop()
        store.close()


async def _round(*ms: HaMember) -> None:
    for m in ms:
        await m.tick()


async def test_shards_are_split_then_taken_over_when_a_lease_expires(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b)
    await _round(a, b)
    assert set(a.shards) | set(b.shards) == set(range(SETTINGS.shards))
    assert not set(a.shards) & set(b.shards)
    assert a.shards
    assert b.shards
    a_had = dict(a.shards)
    gained: list[str] = []
    b.on_gained = gained.extend
    clock.advance(SETTINGS.lease_s / 2)
    await b.tick()  # a is silent (dead or paused), but its leases still run: nothing moves
    assert set(b.shards).isdisjoint(a_had)
    clock.advance(SETTINGS.lease_s)
    await b.tick()
    assert set(b.shards) == set(range(SETTINGS.shards))
    assert all(b.shards[s] == a_had[s] + 1 for s in a_had), "a new holder raises the epoch"
    assert sorted(gained) == sorted(t for t in TARGETS if leases.shard_of(t, SETTINGS.shards) in a_had)


async def test_the_next_round_comes_just_after_a_silent_node_goes_stale(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    a_had = set(a.shards)
    assert await b.tick() == pytest.approx(SETTINGS.renew_s)  # everyone beats: the regular period
    clock.advance(SETTINGS.node_stale_s - 0.1)  # a is silent (killed, paused, cut off)
    pause = await b.tick()
    assert 0 < pause < SETTINGS.renew_s, "b wakes when a goes stale, not up to a period later"
    assert set(b.shards).isdisjoint(a_had)
    clock.advance(pause)
    await b.tick()
    assert set(b.shards) == set(range(SETTINGS.shards)), "a's leases are taken the moment they are free"


async def test_a_paused_node_woken_after_take_over_is_fenced(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    target = next(t for t in TARGETS if a.owns(t))
    first = new_action(ActionKind.RESTART, TargetId(target), key="k-before")
    assert await a.claim(first, ActionStatus.PLANNED, now=clock.now()) == "claimed"
    stale = FenceToken(
        "a", a.incarnation, leases.shard_of(target, SETTINGS.shards), a.shards[leases.shard_of(target, 8)]
    )
    clock.advance(SETTINGS.lease_s + 0.1)  # a is paused past its lease
    await b.tick()
    assert b.owns(target)
    # a wakes: before its next heartbeat it still believes in its old epoch
    woke = new_action(ActionKind.RESTART, TargetId(target), key="k-after")
    assert not a.owns(target)
    assert await a.claim(woke, ActionStatus.PLANNED, now=clock.now()) == "fenced"
    assert not await a.may_apply(first, now=clock.now())
    # even with its old token forced through, the store refuses it in the transaction
    now = clock.now()
    assert (
        await a._db.run(lambda c: leases.fenced_claim(c, stale, woke, ActionStatus.PLANNED, now=now, valid_until=now))
        == "fenced"
    )
    assert not await a._db.run(lambda c: leases.fenced_status(c, stale, first.id, {"status": "verified"}))
    assert a.fenced_refusals >= 2
    await a.tick()  # its next heartbeat: it learns it holds nothing of b's
    assert not a.owns(target)


async def test_two_controllers_racing_for_one_key_apply_it_once(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    target = next(t for t in TARGETS if a.owns(t))
    action = new_action(ActionKind.RESTART, TargetId(target), key="one-key")
    twin = new_action(ActionKind.RESTART, TargetId(target), key="one-key")
    results = await asyncio.gather(
        a.claim(action, ActionStatus.PLANNED, now=clock.now()),
        a.claim(twin, ActionStatus.PLANNED, now=clock.now()),
        b.claim(twin, ActionStatus.PLANNED, now=clock.now()),
    )
    assert sorted(results) == ["claimed", "fenced", "taken"]


async def test_a_drained_node_hands_its_shards_over(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    assert a.shards
    await a._db.run(lambda c: nodes.mark(c, "a", "draining"))
    clock.advance(SETTINGS.renew_s)
    await _round(a, b)
    assert a.state == "draining"
    assert not a.shards
    assert set(b.shards) == set(range(SETTINGS.shards))


async def test_a_node_id_a_live_controller_holds_is_refused(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a = make("a")
    await a.tick()
    with pytest.raises(ConfigError, match="node id 'a' is in use by a live controller"):
        make("a")
    clock.advance(SETTINGS.node_stale_s + 1)
    make("a")  # the first one went quiet: its id may be taken again


async def test_the_blast_radius_is_one_budget_across_controllers(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    a.budget = b.budget = leases.Budget(cap=1, horizon_s=60.0)
    await _round(a, b, a, b)
    mine = next(t for t in TARGETS if a.owns(t))
    theirs = next(t for t in TARGETS if b.owns(t))
    first = new_action(ActionKind.RESTART, TargetId(mine), key="budget-1")
    assert await a.claim(first, ActionStatus.PLANNED, now=clock.now()) == "claimed"
    held_back = new_action(ActionKind.RESTART, TargetId(theirs), key="budget-2")
    assert await b.claim(held_back, ActionStatus.PLANNED, now=clock.now()) == "over_budget"
    a.set_status(first, ActionStatus.VERIFIED, finished_at=clock.now(), detail="ok")
    assert a._store.flush(5.0)
    assert await b.claim(held_back, ActionStatus.PLANNED, now=clock.now()) == "claimed"


async def test_the_kill_switch_thrown_anywhere_reaches_every_node(members: tuple[FakeClock, Make]) -> None:
    _clock, make = members
    a, b = make("a"), make("b")
    seen: list[bool] = []
    b.on_kill_switch = seen.append
    await _round(a, b)
    assert seen == [True]
    a._store.put_setting("autonomous_enabled", False, now=0.0)
    assert a._store.flush(5.0)
    await b.tick()
    assert seen[-1] is False


async def test_a_node_id_whose_controller_died_on_this_host_is_free_at_once(members: tuple[FakeClock, Make]) -> None:
    clock, make = members
    a = make("a")
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    alive = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    try:
        for node_id, pid in (("b", dead.pid), ("c", alive.pid)):
            now = clock.now()
            row = nodes.NodeRow(node_id, "killed", socket.gethostname(), pid, "t", None, now, now, "active")
            a._db.run_sync(functools.partial(nodes.register, row=row, stale_s=SETTINGS.node_stale_s))
        make("b")  # its controller was SIGKILLed a moment ago: a restart must not wait for the heartbeat to age
        with pytest.raises(ConfigError, match="node id 'c' is in use by a live controller"):
            make("c")
    finally:
        alive.kill()
        await alive.wait()


async def test_a_lease_row_a_stalled_session_holds_locked_is_skipped_not_waited_for(
    members: tuple[FakeClock, Make], store_url: str
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("row locks held by another session: PostgreSQL")
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    shard = next(iter(a.shards))
    # a's session was cut off mid-transaction, holding its lease row locked
    stalled = Store.open(store_url)
    conn = stalled.engine.connect()
    try:
        conn.execute(select(ha_leases).where(ha_leases.c.shard == shard).with_for_update())
        clock.advance(SETTINGS.lease_s + 0.1)
        await asyncio.wait_for(b.tick(), 10)  # would wait for the lock without SKIP LOCKED
        assert set(b.shards) == set(range(SETTINGS.shards)) - {shard}
        conn.rollback()  # the server ends the stalled transaction
        await b.tick()
        assert set(b.shards) == set(range(SETTINGS.shards))
    finally:
        conn.close()
        stalled.close()


def test_controllers_starting_at_once_on_a_new_store_both_create_the_shards(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("two writers at once: PostgreSQL")
    store = Store.open(store_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(delete(ha_leases))
        first = store.engine.connect()
        first.begin()
        leases.ensure_shards(first, 4)
        conn2 = store.engine.connect()
        conn2.begin()
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(leases.ensure_shards, conn2, 4)  # blocks on first's new rows
            first.commit()
            waiting.result(10)  # no duplicate key: the first insert won
            conn2.commit()
            conn2.close()
        first.close()
        with store.engine.connect() as conn:
            assert [r.shard for r in leases.leases(conn)] == [0, 1, 2, 3]
    finally:
        store.close()


async def test_a_process_target_without_host_is_refused_beside_another_live_node(
    members: tuple[FakeClock, Make], store_url: str
) -> None:
    clock, make = members
    a = make("a")
    await a.tick()
    store = GuardedStore.open(store_url)
    b = HaMember(store, SETTINGS, node_id="b", clock=clock, remote_targets=TARGETS, version="t")
    b.unbound = ["api"]  # a spec's process target without host:
    try:
        with pytest.raises(ConfigError, match="process target 'api' has no `host:`, but controller node") as err:
            b.register()
        assert err.value.where == "targets.api.host"
        with pytest.raises(ConfigError, match="process target 'web' has no `host:`, but controller node") as added:
            await b.check_unbound(["web"])  # a reloaded spec adding one is refused the same way
        assert added.value.where == "targets.web.host"
        clock.advance(SETTINGS.node_stale_s + 1)  # a went quiet: b runs its own process targets alone
        b.register()
        await b.check_unbound(["web"])
    finally:
        await b.stop()
        store.close()


async def test_leases_are_renewed_while_the_event_loop_is_starved(pg_url: str) -> None:
    # Thousands of probes (or a slow step) can keep the loop busy past a lease: the heartbeat
    # runs on a thread of its own with its own connection, so the leases do not flap.
    store = GuardedStore.open(pg_url)
    member = HaMember(store, SETTINGS, node_id="a", clock=MonotonicClock(), remote_targets=TARGETS, version="t")
    member.register()
    member.start()
    try:
        for _ in range(200):
            if len(member.shards) == SETTINGS.shards:
                break
            await asyncio.sleep(0.05)
        epochs = dict(member.shards)
        assert len(epochs) == SETTINGS.shards
        time.sleep(3 * SETTINGS.lease_s)  # noqa: ASYNC251 - the point: the loop does nothing for three leases
        with store.engine.connect() as conn:
            rows = leases.leases(conn)
        now = time.time()
        assert all(r.holder == "a" and r.epoch == epochs[r.shard] and r.expires_at > now for r in rows)
    finally:
        await member.stop()
        store.close()


async def test_a_step_claimed_but_never_applied_is_taken_over_and_an_applied_one_is_not(
    members: tuple[FakeClock, Make],
) -> None:
    clock, make = members
    a, b = make("a"), make("b")
    await _round(a, b, a, b)
    target, other = [t for t in TARGETS if a.owns(t)][:2]
    left = new_action(ActionKind.RESTART, TargetId(target), key="claimed-only")
    done = new_action(ActionKind.RESTART, TargetId(other), key="claimed-and-applied")
    for action in (left, done):
        assert await a.claim(action, ActionStatus.PLANNED, now=clock.now()) == "claimed"
    assert await a.may_apply(done, now=clock.now())  # a reached the actuator with this one, then stopped
    clock.advance(SETTINGS.lease_s + 0.1)
    await b.tick()
    assert b.owns(target)
    assert b.owns(other)
    assert await b.adopt(left, now=clock.now()), "never applied: the new holder applies it"
    assert not await b.adopt(done, now=clock.now()), "applied once: only judged, never applied again"
    assert not await a.may_apply(left, now=clock.now()), "its first claimer is fenced"
    assert not await a.adopt(left, now=clock.now())


def test_shards_are_assigned_to_live_nodes_at_most_one_apart() -> None:
    for count in range(1, 6):
        pool = tuple(f"node-{i}" for i in range(count))
        got = leases.assignment(64, pool)
        assert set(got) == set(range(64))
        loads = [sum(1 for n in got.values() if n == node) for node in pool]
        assert max(loads) - min(loads) <= 1, loads
        assert leases.assignment(64, tuple(reversed(pool))) == got  # every node computes the same
    three = leases.assignment(64, ("a", "b", "c"))
    two = leases.assignment(64, ("a", "b"))
    assert set(two.values()) == {"a", "b"}
    kept = sum(1 for s, n in three.items() if n != "c" and two[s] == n)
    assert kept >= 0.75 * sum(1 for n in three.values() if n != "c"), "a node leaving moves mostly its own shards"
    assert leases.assignment(64, ()) == {}


async def test_a_step_goes_on_after_the_server_ended_the_controllers_sessions(
    members: tuple[FakeClock, Make], store_url: str
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend: PostgreSQL")
    clock, make = members
    a = make("a")
    await _round(a, a)
    target = next(t for t in TARGETS if a.owns(t))
    db = store_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (db,)
        ).fetchone()
    assert ended is not None
    assert ended[0] >= 1
    action = new_action(ActionKind.RESTART, TargetId(target), key="after-terminate")
    assert await a.claim(action, ActionStatus.PLANNED, now=clock.now()) == "claimed"
    assert await a.may_apply(action, now=clock.now())


async def test_a_claim_writes_its_incident_row_when_the_nodes_own_write_of_it_lags(pg_url: str) -> None:
    # The incident's insert waits in the write-behind queue (behind the writes of a restart,
    # or retried after the server ended the store's session); the claim that references it
    # must neither fail on the reference nor wait for the queue, and the late insert must land.
    clock = FakeClock()
    store = GuardedStore.open(pg_url)
    a = HaMember(store, SETTINGS, node_id="a", clock=clock, remote_targets=TARGETS, version="t")
    a.register()
    try:
        await _round(a, a)
        target = TargetId(next(t for t in TARGETS if a.owns(t)))
        incident = Incident(
            IncidentId("inc-lagging"),
            target,
            FaultKind.HANG,
            IncidentStatus.OPEN,
            Priority.P2,
            clock.now(),
            clock.now(),
        )
        lagging = threading.Event()
        store.write("a write that lags", lambda _conn: lagging.wait(30))
        store.insert_incident(incident)
        action = new_action(ActionKind.RESTART, target, key="k-lagging", incident_id=incident.id)
        claimed = await asyncio.wait_for(a.claim(action, ActionStatus.PLANNED, now=clock.now(), incident=incident), 5)
        assert claimed == "claimed"
        reader = Store.open(pg_url, create=False)
        try:
            assert reader.incident(incident.id).status is IncidentStatus.OPEN
            rec = reader.action_by_key("k-lagging")
            assert rec is not None
            assert rec.action.incident_id == incident.id
            store.update_incident(replace(incident, status=IncidentStatus.MITIGATING))
            lagging.set()
            assert store.flush(10.0)
            assert store.condition.dropped == 0, store.condition.last_error
            assert reader.incident(incident.id).status is IncidentStatus.MITIGATING
        finally:
            reader.close()
    finally:
        await a.stop()
        store.close()


async def test_a_claim_waiting_for_its_incident_row_holds_up_no_other_claim_and_no_heartbeat(pg_url: str) -> None:
    # A's writer inserted the incident's row and its link was cut before the commit: the
    # server keeps that row locked. A's claim of a step on it waits for that insert; it must
    # wait holding nothing the fleet needs (the budget row, a lease row).
    clock = FakeClock()
    stores = [GuardedStore.open(pg_url), GuardedStore.open(pg_url)]
    a, b = (
        HaMember(s, SETTINGS, node_id=n, clock=clock, remote_targets=TARGETS, version="t")
        for s, n in zip(stores, "ab", strict=True)
    )
    for m in (a, b):
        m.register()
        m.budget = leases.Budget(cap=10, horizon_s=30.0)
    cut = threading.Event()
    try:
        await _round(a, b, a, b)
        mine, theirs = (TargetId(next(t for t in TARGETS if m.owns(t))) for m in (a, b))
        incident = Incident(
            IncidentId("inc-cut"), mine, FaultKind.HANG, IncidentStatus.OPEN, Priority.P2, clock.now(), clock.now()
        )

        def insert_then_hang(conn: Connection) -> None:
            conn.execute(incident_insert(conn.dialect.name, incident_values(incident)))
            cut.wait(30)

        stores[0].write("insert incidents", insert_then_hang)
        await asyncio.sleep(0.2)
        action = new_action(ActionKind.RESTART, mine, key="k-waits", incident_id=incident.id)
        waiting = asyncio.create_task(a.claim(action, ActionStatus.PLANNED, now=clock.now(), incident=incident))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        other = new_action(ActionKind.RESTART, theirs, key="k-other")
        assert await asyncio.wait_for(b.claim(other, ActionStatus.PLANNED, now=clock.now()), 5) == "claimed"
        await asyncio.wait_for(a.tick(), 5)
        assert mine in a.owned()
        cut.set()
        assert await asyncio.wait_for(waiting, 10) == "claimed"
    finally:
        cut.set()
        for m, s in zip((a, b), stores, strict=True):
            await m.stop()
            s.close()


async def test_a_claim_waiting_for_the_fleet_budget_lets_its_nodes_heartbeat_renew(pg_url: str) -> None:
    # Another controller was paused in the middle of a claim: it holds the budget lock until
    # the server ends its session. This node's claim waits for it, holding no lease row,
    # so this node's heartbeat still renews its leases meanwhile.
    clock = FakeClock()
    store = GuardedStore.open(pg_url)
    a = HaMember(store, SETTINGS, node_id="a", clock=clock, remote_targets=TARGETS, version="t")
    a.register()
    a.budget = leases.Budget(cap=10, horizon_s=30.0)
    try:
        await _round(a, a)
        target = TargetId(next(t for t in TARGETS if a.owns(t)))
        with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as paused:
            paused.execute("UPDATE ha_leases SET epoch = epoch + 1 WHERE shard = %s", (leases.BUDGET_ROW,))
            action = new_action(ActionKind.RESTART, target, key="k-budget-wait")
            waiting = asyncio.create_task(a.claim(action, ActionStatus.PLANNED, now=clock.now()))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            clock.advance(SETTINGS.renew_s)
            await asyncio.wait_for(a.tick(), 5)
            paused.rollback()
        assert await asyncio.wait_for(waiting, 10) == "claimed"
        with store.engine.connect() as conn:
            row = next(r for r in leases.leases(conn) if r.shard == leases.shard_of(target, SETTINGS.shards))
        assert row.holder == "a"
        assert row.expires_at == pytest.approx(clock.now() + SETTINGS.lease_s)
    finally:
        await a.stop()
        store.close()
