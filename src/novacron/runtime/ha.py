"""Several controllers on one store: this node's heartbeat, its shard leases, and the fence.

Every controller is a *node* (``--node-id``, default the hostname) with a heartbeat row.
Remote targets hash into shards; each shard belongs to the live node that rendezvous
hashing picks, and that node holds the shard's lease (with an epoch that every new
holder raises). Every ``renew_s`` the node beats, renews its leases, hands back the
shards another node should have (graceful: that node takes them on its next tick) and
takes the free or expired shards it should have. A node that dies or stops (SIGKILL,
SIGSTOP, a cut link) loses its shards when its leases expire and the others take them
over, with the open incidents of their targets.

:class:`HaMember` is also the executor's :class:`~novacron.healing.fencing.Fence`: a
claim, an actuator call and a status change on a remote target carry the epoch and are
refused in the store's transaction when it moved on. A paused node that wakes acts on
nothing until it holds a lease again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from novacron.clock import Clock
from novacron.errors import ConfigError, StoreError
from novacron.healing.fencing import ClaimResult
from novacron.model import Action, ActionStatus, Incident
from novacron.runtime.looplag import LoopLag
from novacron.settings import FleetSpec, HaSettings
from novacron.store import leases, nodes
from novacron.store.guard import GuardedStore
from novacron.store.leases import Budget, FenceToken, HaDb
from novacron.store.nodes import NodeRow
from novacron.store.rails import RailRepository
from novacron.store.records import incident_values
from novacron.telemetry import Metrics, get_logger

if TYPE_CHECKING:
    from novacron.runtime.controller import Controller

__all__ = ["HaMember", "attach", "default_node_id", "local_spec"]

_REGISTER_TRIES = 10  # over ~5 s
_TAKEOVER_PROBES_PER_S = 1000.0  # first probes of targets taken over, spread at this rate
_PAST_STALE_S = 0.01  # wake this long after a silent node's heartbeat goes stale (strictly past it)
_TERMINAL = {
    ActionStatus.VERIFIED,
    ActionStatus.FAILED,
    ActionStatus.ROLLED_BACK,
    ActionStatus.BLOCKED,
    ActionStatus.DRY_RUN,
}


def default_node_id() -> str:
    """The hostname: one controller per host needs no flag."""
    return socket.gethostname()


@dataclass(frozen=True, slots=True)
class _Tick:
    state: str | None  # the node's state in the store; None: the row is no longer this process's
    held: dict[int, int]
    autonomous: bool = True  # the fleet's kill switch as stored
    live: frozenset[str] = frozenset()  # every node beating now (this one included)
    stale_at: float | None = None  # wall clock: when the next live node goes stale unless it beats again


class HaMember(Collector):
    """This controller as one node among several: heartbeat, leases, fencing."""

    def __init__(
        self,
        store: GuardedStore,
        settings: HaSettings,
        *,
        node_id: str,
        clock: Clock,
        remote_targets: Iterable[str],
        version: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.node_id = node_id
        self.incarnation = uuid.uuid4().hex[:16]
        self.settings = settings
        self.clock = clock
        self.version = version
        self.api_url: str | None = None
        self.on_gained: Callable[[list[str]], None] = lambda _targets: None
        self.on_lost: Callable[[list[str]], None] = lambda _targets: None
        self.on_resume: Callable[[list[str]], None] = lambda _targets: None
        self.on_kill_switch: Callable[[bool], None] = lambda _on: None
        self.unbound: list[str] = []  # process targets without host: (this node's own; refused beside others)
        self.on_nodes: Callable[[set[str]], None] = lambda _live: None  # the live nodes, every tick
        self.fenced_refusals = 0
        self.state = "active"
        self._store = store
        # A transaction left open by a node stopped mid-way (SIGSTOP, a cut link) is ended by
        # the server after a lease. Not sooner: on a loaded machine a heartbeat round can
        # take over a second, and ending it would turn a late renewal into a lost lease.
        self._db = HaDb(store, idle_s=settings.lease_s)
        self._by_shard: dict[int, list[str]] = {}
        for target in remote_targets:
            self._by_shard.setdefault(leases.shard_of(target, settings.shards), []).append(target)
        self._remote = {t for ts in self._by_shard.values() for t in ts}
        self._held: dict[int, int] = {}
        self._valid_until = float("-inf")  # monotonic: the leases are ours until then
        self._tokens: dict[str, FenceToken] = {}  # action id → the token it was claimed under
        self._deadlines: dict[str, float] = {}  # action id → wall-clock time its apply was vouched for
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._store_failing = False
        self._fenced: set[str] = set()
        self._log = get_logger(component="ha", node=node_id)
        self.budget: Budget | None = None  # the fleet-wide blast radius, decided with each claim
        self.loop_lag: LoopLag | None = None  # the loop's lateness, measured while the node runs
        if metrics is not None:
            metrics.registry.register(self)
            self.loop_lag = LoopLag(metrics)

    @property
    def margin_s(self) -> float:
        """A step needs this much of its lease left: the lease must outlast the step's effect."""
        return self.settings.lease_s / 4

    # -- lifecycle ---------------------------------------------------------------------
    def register(self) -> None:
        """Record this node (refusing a node id a live controller holds) and the shard rows."""
        now = self.clock.now()
        row = NodeRow(
            self.node_id, self.incarnation, socket.gethostname(), os.getpid(), self.version, None, now, now, "active"
        )

        def step(conn: Any) -> None:
            try:
                nodes.register(conn, row, stale_s=self.settings.node_stale_s, pid_alive=_pid_alive)
            except nodes.NodeIdTakenError as exc:
                raise self._already_running(exc, row) from None
            if self.unbound:
                self._refuse_unbound(conn, now, self.unbound)
            leases.ensure_shards(conn, self.settings.shards)

        for attempt in range(_REGISTER_TRIES):  # a store restarting, or a session ended under us
            try:
                self._db.run_sync(step)
            except StoreError as exc:
                if attempt == _REGISTER_TRIES - 1:
                    raise
                self._log.warning("cannot register with the store yet; retrying", error=str(exc))
                time.sleep(0.5)
            else:
                return

    def _already_running(self, exc: nodes.NodeIdTakenError, row: NodeRow) -> ConfigError:
        """What to tell the user whose node id a live controller holds.

        With process targets of its own (no ``host:``) the spec is not a multi-node one: a
        second node id would be refused beside the first, so the fix is not ``--node-id``
        but the controller already running here.
        """
        held = exc.holder
        if not self.unbound or held.host != row.host:
            return exc
        return ConfigError(
            f"a controller is already running for this spec on this host (pid {held.pid}, node {held.node_id!r}, "
            f"heartbeat {row.started_at - held.heartbeat_at:.1f}s ago); see it with `novacron status`, "
            f"stop it with `kill {held.pid}` (SIGTERM) before starting another"
        )

    async def check_unbound(self, names: list[str]) -> None:
        """Refuse process targets without ``host:`` (a reloaded spec's new ones) while other nodes are live.

        A store that does not answer within a lease refuses the reload (StoreError) rather
        than let it start a target that may be another node's.
        """
        if not names:
            return
        now = self.clock.now()
        try:
            async with asyncio.timeout(self.settings.lease_s):
                await self._db.run(lambda conn: self._refuse_unbound(conn, now, names))
        except TimeoutError:
            raise StoreError("the store did not answer which nodes are live; nothing was applied") from None

    def _refuse_unbound(self, conn: Any, now: float, unbound: list[str]) -> None:
        """Process targets without ``host:`` are this controller's own: refused when others share the store.

        Two controllers with the same spec would both run the same process target under one
        name in one store (two owners of its status, incidents and actions). With several
        controllers each process target names the node that runs it.
        """
        others = sorted(
            n.node_id
            for n in nodes.nodes(conn)
            if n.node_id != self.node_id and n.live(now, self.settings.node_stale_s)
        )
        if others:
            name = unbound[0]
            raise ConfigError(
                f"process target {name!r} has no `host:`, but controller node(s) {', '.join(others)} share this "
                f"store; give every process target host: NODE_ID (the node that runs it)",
                where=f"targets.{name}.host",
            )

    def start(self) -> None:
        """Beat and hold leases every ``renew_s`` until stopped.

        On PostgreSQL the heartbeat runs on a thread of its own with its own connection: a
        loop kept busy by thousands of probes (or a slow store write) must not let the
        leases run out and flap between nodes. Its results are applied on the loop.
        """
        loop = asyncio.get_running_loop()
        if self._db.threaded:
            self._halt.clear()
            self._thread = threading.Thread(target=self._renew_forever, args=(loop,), name="ha-renew", daemon=True)
            self._thread.start()
        else:
            self._task = loop.create_task(self._run(), name="ha")
        if self.loop_lag is not None:
            self.loop_lag.start()

    async def stop(self) -> None:
        """Stop beating, hand every shard back at once and record a clean stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            self._halt.set()
            await asyncio.to_thread(self._thread.join, 10.0)
        if self.loop_lag is not None:
            await self.loop_lag.stop()
        held, self._held = list(self._held), {}
        with contextlib.suppress(StoreError):

            def step(conn: Any) -> None:
                leases.release(conn, self.node_id, self.incarnation, held)
                nodes.mark(conn, self.node_id, "stopped", incarnation=self.incarnation)

            await self._db.run(step)
        await self._db.close()

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(await self.tick())

    def _renew_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        """The heartbeat thread: one round every ``renew_s``, each handed to the loop to apply."""
        while not self._halt.is_set():
            started, now = self.clock.monotonic(), self.clock.now()
            result: _Tick | None = None
            error: StoreError | None = None
            try:
                result = self._db.run_blocking(functools.partial(self._step, now=now))
            except StoreError as exc:
                error = exc
            if result is not None and result.state is not None:
                # At once, not when the loop gets to it: fencing's pre-filter reads it.
                self._valid_until = max(self._valid_until, started + self.settings.lease_s)
            try:
                loop.call_soon_threadsafe(self._after, started, result, error)
            except RuntimeError:  # the loop closed under us
                return
            self._halt.wait(self._pause(started, result))

    def _pause(self, started: float, result: _Tick | None) -> float:
        """Until the next round: ``renew_s`` after this one began, or just after a silent node goes stale.

        A node that stopped beating is dead for the assignment (and its leases expire) at
        its last heartbeat plus ``node_stale_s``; waking then rather than up to ``renew_s``
        later takes its shards over that much sooner.
        """
        pause = self.settings.renew_s - (self.clock.monotonic() - started)
        if result is not None and result.stale_at is not None:
            pause = min(pause, result.stale_at + _PAST_STALE_S - self.clock.now())
        return max(0.0, pause)

    async def tick(self) -> float:
        """One round: beat, renew, hand back, take; the seconds until the next one is due."""
        started, now = self.clock.monotonic(), self.clock.now()
        result: _Tick | None = None
        try:
            result = await self._db.run(lambda conn: self._step(conn, now))
        except StoreError as exc:
            self._after(started, None, exc)
        else:
            self._after(started, result, None)
        return self._pause(started, result)

    def _after(self, started: float, result: _Tick | None, error: StoreError | None) -> None:
        """Apply one round's outcome (on the loop): the leases held, the kill switch, resumed targets."""
        if result is None:
            if not self._store_failing:
                self._store_failing = True
                self._log.error("cannot reach the store to renew leases", error=str(error))
            if self.clock.monotonic() > self._valid_until and self._held:
                self._apply({})  # our leases ran out: someone else may hold them now
            return
        if self._store_failing:
            self._store_failing = False
            self._log.info("store reachable again; leases renewed")
        if result.state is None:
            self._log.error("another controller took this node id over; acting on nothing", node=self.node_id)
            self._valid_until = float("-inf")
            self._apply({})
            return
        self.state = result.state
        self._valid_until = max(self._valid_until, started + self.settings.lease_s)
        self.on_kill_switch(result.autonomous)
        self.on_nodes(set(result.live))
        self._apply(result.held)
        if self._fenced:  # a step refused while the lease was in doubt: carry on if it is still ours
            again = sorted(t for t in self._fenced if self.owns(t))
            self._fenced.clear()
            if again:
                self.on_resume(again)

    def _step(self, conn: Any, now: float) -> _Tick:
        s = self.settings
        owned = len(self.owned())
        state = nodes.beat(conn, self.node_id, self.incarnation, now=now, targets=owned, api_url=self.api_url)
        if state is None:
            return _Tick(None, {})
        rows = nodes.nodes(conn)
        live = frozenset(n.node_id for n in rows if n.live(now, s.node_stale_s))
        stale_at = min(
            (n.heartbeat_at + s.node_stale_s for n in rows if n.node_id in live and n.node_id != self.node_id),
            default=None,
        )
        active = sorted(n.node_id for n in rows if n.state == "active" and n.node_id in live)
        held = leases.renew(conn, self.node_id, self.incarnation, now=now, lease_s=s.lease_s)
        others = [n for n in active if n != self.node_id]
        if state == "active":
            pool = sorted({*active, self.node_id})
            want = {sh for sh, node in leases.assignment(s.shards, tuple(pool)).items() if node == self.node_id}
        else:  # draining: hand everything to the others; with nobody to take it, keep it
            want = set() if others else set(held)
        give = [sh for sh in held if sh not in want]
        leases.release(conn, self.node_id, self.incarnation, give)
        got = leases.acquire(conn, self.node_id, self.incarnation, sorted(want - set(held)), now=now, lease_s=s.lease_s)
        kept = {sh: ep for sh, ep in held.items() if sh in want}
        return _Tick(state, kept | got, nodes.autonomous(conn), live, stale_at)

    def _apply(self, held: dict[int, int]) -> None:
        before, self._held = self._held, held
        lost = [t for sh in before if sh not in held for t in self._by_shard.get(sh, [])]
        gained = [t for sh in held if sh not in before for t in self._by_shard.get(sh, [])]
        if lost:
            self._log.info("handing over targets", targets=len(lost), shards=len(before) - len(set(before) & set(held)))
            self.on_lost(lost)
        if gained:
            self._log.info("taking over targets", targets=len(gained), shards=len(set(held) - set(before)))
            self.on_gained(gained)

    # -- ownership ---------------------------------------------------------------------
    def guards(self, target: str) -> bool:
        """Remote targets are leased (fenced); host-bound ones are not."""
        return target in self._remote

    def owns(self, target: str) -> bool:
        """This node holds the lease of ``target``'s shard, with time to act left on it."""
        return self._token(target) is not None

    def owned(self) -> list[str]:
        """The remote targets this node owns now."""
        return sorted(t for sh in self._held for t in self._by_shard.get(sh, []))

    @property
    def shards(self) -> dict[int, int]:
        """The shards held, with their epochs."""
        return dict(self._held)

    def _token(self, target: str) -> FenceToken | None:
        shard = leases.shard_of(target, self.settings.shards)
        epoch = self._held.get(shard)
        # Only a pre-filter: the store checks the lease (with its margin) in the step's transaction.
        if epoch is None or self.clock.monotonic() > self._valid_until:
            return None
        return FenceToken(self.node_id, self.incarnation, shard, epoch)

    # -- the Fence the executor asks -------------------------------------------------
    async def claim(
        self, action: Action, status: ActionStatus, *, now: float, incident: Incident | None = None
    ) -> ClaimResult:
        """Claim the key under the target's current epoch (refused when it is not ours).

        The claim references its incident, whose row may still wait in this node's
        write-behind queue (behind the writes of a restart, or retried after the server
        ended the store's session): the claim writes the row itself when it is missing,
        rather than fail on the reference or wait for the queue.
        """
        token = self._token(action.target)
        if token is None:
            return self._refused(action, "claim")
        row = incident_values(incident) if incident is not None and incident.id == action.incident_id else None
        if row is None and action.incident_id is not None:
            await self._store.settle()  # the incident is not at hand: land what was queued first
        valid_until, budget = now + self.margin_s, self.budget
        result: ClaimResult = await self._db.run(
            lambda conn: leases.fenced_claim(
                conn, token, action, status, now=now, valid_until=valid_until, budget=budget, incident=row
            )
        )
        if result == "fenced":
            return self._refused(action, "claim")
        if result == "claimed":
            self._tokens[action.id] = token
        return result

    async def may_apply(self, action: Action, *, now: float) -> bool:
        """Whether the action may reach the actuator: the epoch it was claimed under still holds."""
        token = self._tokens.get(action.id) or self._token(action.target)
        if token is None:
            self._refused(action, "apply")
            return False
        valid_until, asked = now + self.margin_s, self.clock.monotonic()
        expires = await self._db.run(
            lambda conn: leases.fenced_apply(conn, token, action, now=now, valid_until=valid_until)
        )
        # The store vouched for the lease until it expires; an answer that arrives too late to
        # act within it (a paused process, a link that came back) vouches for nothing.
        ok = expires is not None and self.clock.monotonic() - asked < expires - now - self.margin_s
        if ok and expires is not None:
            self._deadlines[action.id] = expires  # the lease ends then: the endpoint refuses it later
        if not ok:
            self._refused(action, "apply")
        return ok

    async def adopt(self, action: Action, *, now: float) -> bool:
        """Take over a step an earlier holder claimed and never applied (see :func:`leases.fenced_adopt`)."""
        token = self._token(action.target)
        if token is None:
            return False
        valid_until = now + self.margin_s
        adopted = await self._db.run(
            lambda conn: leases.fenced_adopt(conn, token, action, now=now, valid_until=valid_until)
        )
        if adopted:
            self._tokens[action.id] = token
            self._log.info("taking over a step claimed but never applied", target=action.target, action=action.id)
        return adopted

    def set_status(
        self,
        action: Action,
        status: ActionStatus,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        detail: str | None = None,
    ) -> None:
        """Queue the status change; the store refuses it if the epoch moved on."""
        token = self._tokens.get(action.id) or self._token(action.target)
        if status in _TERMINAL:
            self._tokens.pop(action.id, None)
        if token is None:
            self._refused(action, f"status {status}")
            return
        values: dict[str, Any] = {"status": status.value}
        for name, value in (("started_at", started_at), ("finished_at", finished_at), ("detail", detail)):
            if value is not None:
                values[name] = value

        def write(conn: Any) -> None:
            if not leases.fenced_status(conn, token, action.id, values):
                self._refused(action, f"status {status}")

        self._store.write("set_action_status", write)

    def token_of(self, action: Action) -> FenceToken | None:
        """The token an action carries to the world (the remote actuator sends it along)."""
        return self._tokens.get(action.id) or self._token(action.target)

    def deadline_of(self, action: Action) -> float | None:
        """Until when (wall clock) the store vouched for the action's lease at its apply check."""
        return self._deadlines.pop(action.id, None)

    def _refused(self, action: Action, step: str) -> ClaimResult:
        self.fenced_refusals += 1
        self._fenced.add(action.target)  # its healer stops; resumed if the lease turns out to be ours
        self._log.warning("step refused: the target's lease is not this controller's", target=action.target, step=step)
        return "fenced"

    # -- metrics -----------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Prometheus' collector protocol."""
        yield GaugeMetricFamily("novacron_ha_shards_held", "Shard leases this node holds.", value=len(self._held))
        yield GaugeMetricFamily("novacron_ha_targets_owned", "Remote targets this node owns.", value=len(self.owned()))
        yield CounterMetricFamily(
            "novacron_ha_fenced_refusals", "Steps refused because the lease had moved on.", value=self.fenced_refusals
        )


def local_spec(spec: FleetSpec, node_id: str) -> FleetSpec:
    """The part of ``spec`` this node runs as processes: process targets on no host or on this one.

    A process target without ``host:`` is the controller's own; a controller that would run
    one beside other live nodes on the same store is refused at start (:meth:`HaMember.register`).
    """
    mine = [t for t in spec.targets if t.kind == "process" and t.host in (None, node_id)]
    return spec.model_copy(update={"targets": mine})


def attach(controller: Controller, *, version: str) -> HaMember:
    """Make ``controller`` one node among several: leases, fencing, and take-over of remote targets."""
    c = controller
    assert isinstance(c.store, GuardedStore)
    member = HaMember(
        c.store,
        c.spec.controller.ha,
        node_id=c.node_id,
        clock=c.clock,
        remote_targets=[t.name for t in c.spec.targets if t.kind == "remote"],
        version=version,
        metrics=c.metrics,
    )
    c.executor.fence = member
    member.unbound = [t.name for t in c.spec.targets if t.kind == "process" and t.host is None]
    policy = c.spec.policy
    member.budget = Budget(cap=c.gate.blast_cap, horizon_s=max(30.0, 4 * policy.verify_timeout_s))

    def gained(targets: list[str]) -> None:
        names = set(targets)
        for row in RailRepository(c.store).rows():  # quarantine, rate limit, backoff follow the target
            if row.target in names:
                c.gate._load(row)
        # Probe what was taken over at once (its old owner may have gone silent mid-fault),
        # at most _TAKEOVER_PROBES_PER_S first probes a second so a large take-over is no burst.
        within = len(targets) / _TAKEOVER_PROBES_PER_S
        for name in targets:
            c._configure_replica(c.spec.target(name), 0, start_within=within)
            c.health.adopt(name, 0)
        c.flow.take_over(targets)

    def lost(targets: list[str]) -> None:
        stopped: list[asyncio.Task[None]] = []
        for name in targets:
            c.flow.hand_over(name)
            c.health.remove(name, 0)
            stopped += c.prober.stop(name, 0)  # now: the target may come back before a task would run
        winding_down = asyncio.gather(*stopped, return_exceptions=True)
        _pending.add(winding_down)
        winding_down.add_done_callback(_pending.discard)

    stored = [c.gate.enabled]

    def kill_switch(on: bool) -> None:  # thrown on any node's API: every node follows
        # Follow a change of the stored switch, not every round's value: a round read before
        # this node's own switch landed would otherwise throw it back until the next round.
        if stored[0] != on:
            stored[0] = on
            c.gate.enabled = on
            c.metrics.autonomous.set(int(on))

    member.on_gained, member.on_lost, member.on_kill_switch = gained, lost, kill_switch
    member.on_resume = c.flow.take_over
    return member


_pending: set[asyncio.Future[list[BaseException | None]]] = set()  # stopped probes winding down (kept referenced)


def _pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
