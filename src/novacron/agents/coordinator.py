"""The coordinator: runs agents on their schedules, deduplicates, routes, records.

Routing of each proposal, in order:

* ``deduplicated`` — another agent (or an earlier run) already has the same action on the
  same target in flight, or a low-risk action targets something with an open incident
  (the healer owns it);
* ``dry_run`` — the agent runs dry, or there is no executor (``novacron agents run``);
* ``proposed`` — circuit routing for a target without a load-balancer frontend;
* low risk — through the executor (its safety gate still applies): the executor's status;
* higher risk — through the executor with approval required: ``awaiting_approval`` until
  a human decides, then the executor's final status.

Findings that another agent reported for the same target and kind in the same round
are dropped as duplicates. Every output is stored and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from novacron.agents.base import Agent, AgentContext, AgentOutput, Finding, Proposal
from novacron.agents.metrics import AgentMetrics
from novacron.agents.registry import AgentRegistry
from novacron.clock import Clock
from novacron.errors import ConfigError, NovacronError
from novacron.model import Action, ActionKind, Incident, Observation, RiskLevel
from novacron.settings import AgentSchedule, FleetSpec
from novacron.store import Store
from novacron.telemetry import get_logger

__all__ = ["Coordinator", "ExecutorLike", "Scheduled"]

_CIRCUIT = (ActionKind.OPEN_CIRCUIT, ActionKind.CLOSE_CIRCUIT)


class ExecutorLike(Protocol):
    """The part of the executor the coordinator uses."""

    async def execute(self, action: Action, *, incident: Incident | None = None) -> Any:
        """Run one action end to end."""
        ...


@dataclass
class Scheduled:
    """One agent with its schedule."""

    agent: Agent
    interval_s: float
    dry_run: bool
    options: dict[str, Any]
    due: float = 0.0


class Coordinator:
    """Runs agents, routes their proposals through the one executor, stores every output."""

    def __init__(
        self,
        spec: FleetSpec,
        registry: AgentRegistry,
        *,
        store: Store,
        clock: Clock,
        executor: ExecutorLike | None = None,
        metrics: AgentMetrics | None = None,
        pids: Callable[[str], Sequence[int]] = lambda _t: (),
        logs: Callable[[str], str] = lambda _t: "",
        workdir: str = ".",
        frontend: Callable[[str], str | None] = lambda _t: None,
        only: Sequence[str] | None = None,
        dedup_window_s: float = 300.0,
    ) -> None:
        self.dedup_window_s = dedup_window_s
        self.spec, self.store, self.clock, self.executor = spec, store, clock, executor
        self.metrics, self._pids, self._logs, self._workdir, self._frontend = metrics, pids, logs, workdir, frontend
        self._obs: dict[str, deque[Observation]] = defaultdict(lambda: deque(maxlen=5000))
        self._inflight: set[tuple[str, str]] = set()
        self._recent: dict[tuple[str, str], tuple[str, float]] = {}
        self._quiet: dict[str, tuple[str, str]] = {}  # agent → (row id, summary) of its current quiet streak
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._log = get_logger(component="agents")
        unknown = sorted(set(spec.agents.agents) - set(registry.names()))
        if unknown:
            known = ", ".join(registry.names())
            raise ConfigError(f"no agent {unknown[0]!r} (known: {known})", where=f"agents.agents.{unknown[0]}")
        chosen = (self._schedule(registry, name) for name in (only or registry.names()))
        self.scheduled: list[Scheduled] = [s for s in chosen if s is not None]

    def _schedule(self, registry: AgentRegistry, name: str) -> Scheduled | None:
        sched = self.spec.agents.agents.get(name, AgentSchedule())
        if not sched.enabled:
            return None
        agent = registry.create(name)
        return Scheduled(agent, sched.interval_s or agent.interval_s, sched.dry_run, dict(sched.options))

    # -- inputs ------------------------------------------------------------------------
    def observe(self, obs: Observation) -> None:
        """Keep a probe or metrics observation for the agents (called by the controller)."""
        self._obs[obs.target].append(obs)

    def context(self, s: Scheduled) -> AgentContext:
        """What one agent may read."""
        return AgentContext(
            spec=self.spec,
            clock=self.clock,
            actions=lambda: self.store.actions(limit=1000),
            open_incidents=self.store.open_incidents,
            pids=self._pids,
            observations=lambda t: tuple(self._obs.get(t, ())),
            logs=self._logs,
            options=s.options,
            dry_run=s.dry_run or self.executor is None,
            workdir=self._workdir,
        )

    # -- running -----------------------------------------------------------------------
    async def run_once(self, names: Sequence[str] | None = None) -> list[AgentOutput]:
        """Run the named agents (all scheduled ones by default) once, now."""
        chosen = [s for s in self.scheduled if names is None or s.agent.name in names]
        return [out for s in chosen if (out := await self._run(s)) is not None]

    async def _run(self, s: Scheduled) -> AgentOutput | None:
        try:
            out = await asyncio.to_thread(s.agent.run, self.context(s))  # agents may take long: never stall the loop
        except (NovacronError, OSError, ValueError, RuntimeError) as exc:
            self._log.warning("agent failed", agent=s.agent.name, error=str(exc))
            if self.metrics is not None:
                self.metrics.errors.labels(agent=s.agent.name).inc()
            return None
        out = replace(out, findings=self._dedup_findings(out))
        out = await self._route(out)
        out = self._fold_quiet_repeat(out)
        self.store.save_agent_output(out.to_json())
        if self.metrics is not None:
            self.metrics.record(out)
        return out

    def _fold_quiet_repeat(self, out: AgentOutput) -> AgentOutput:
        """A run that finds and proposes nothing, saying what the agent's last stored run said, takes its row.

        The circuit agent runs every 0.1 s: one stored row per quiet run grew the store by
        36,000 rows an hour and filled the dashboard's table with "0 open circuit(s)". A quiet
        streak is one row whose ``run_at`` is the latest run; anything new starts a row.
        """
        last = self._quiet.get(out.agent)
        if out.findings or out.proposals:
            self._quiet.pop(out.agent, None)
            return out
        if last is not None and last[1] == out.summary:
            out = replace(out, id=last[0])
        self._quiet[out.agent] = (out.id, out.summary)
        return out

    def _dedup_findings(self, out: AgentOutput) -> tuple[Finding, ...]:
        """Drop findings another agent reported within the window; mark those an incident covers."""
        now = self.clock.now()
        incidents = {str(i.target): str(i.id) for i in self.store.open_incidents()}
        kept = []
        for f in out.findings:
            other = self._recent.get(f.key)
            if other is not None and other[0] != out.agent and now - other[1] <= self.dedup_window_s:
                continue
            self._recent[f.key] = (out.agent, now)
            kept.append(
                replace(f, evidence={**f.evidence, "open_incident": incidents[f.target]})
                if f.target in incidents
                else f
            )
        return tuple(kept)

    async def _route(self, out: AgentOutput) -> AgentOutput:
        incidents = {str(i.target): i for i in self.store.open_incidents()}
        routed = [await self._route_one(out, p, incidents) for p in out.proposals]
        applied = any(p.status in ("verified", "applied") for p in routed)
        return replace(out, proposals=tuple(routed), applied=applied)

    async def _route_one(self, out: AgentOutput, p: Proposal, incidents: dict[str, Incident]) -> Proposal:
        a = p.action
        key = (a.target, a.kind.value)
        incident = incidents.get(a.target)
        if key in self._inflight:
            return replace(p, status="deduplicated", detail="the same action on this target is already in flight")
        if out.dry_run:
            return replace(p, status="dry_run", detail="dry run: recorded, not applied")
        if a.kind in _CIRCUIT and self._frontend(a.target) is None:
            return replace(p, status="proposed", detail="no load-balancer frontend for this target: proposed only")
        assert self.executor is not None
        if a.kind in _CIRCUIT:  # traffic: a circuit protects clients beside the healer's repair, at once
            return await self._execute_now(p, key, incident)
        if a.risk is RiskLevel.LOW:
            if incident is not None:
                return replace(p, status="deduplicated", detail=f"incident {incident.id} is open: the healer owns it")
            self._inflight.add(key)
            try:
                result = await self.executor.execute(a, incident=None)
            finally:
                self._inflight.discard(key)
            return replace(p, status=str(result.status.value), detail=str(result.detail))
        gated = replace(a, params={**a.params, "approval": "required"})
        self._inflight.add(key)
        self._spawn(self._await_decision(out, gated, incident))
        return replace(p, action=gated, status="awaiting_approval", detail="sent to approval")

    async def _execute_now(self, p: Proposal, key: tuple[str, str], incident: Incident | None) -> Proposal:
        """Through the executor now (its gate still applies), on the incident's timeline if one is open."""
        assert self.executor is not None
        self._inflight.add(key)
        try:
            result = await self.executor.execute(p.action, incident=incident)
        finally:
            self._inflight.discard(key)
        return replace(p, status=str(result.status.value), detail=str(result.detail))

    async def _await_decision(self, out: AgentOutput, action: Action, incident: Incident | None) -> None:
        key = (action.target, action.kind.value)
        try:
            result = await self.executor.execute(action, incident=incident)  # type: ignore[union-attr]
            status, detail = str(result.status.value), str(result.detail)
        except NovacronError as exc:
            status, detail = "failed", str(exc)
        finally:
            self._inflight.discard(key)
        rows = self.store.agent_outputs(agent=out.agent, limit=200)
        row = next((r for r in rows if r["id"] == out.id), None)
        if row is not None:
            for prop in row["proposals"]:
                if prop["action_id"] == action.id:
                    prop.update(status=status, detail=detail)
            row["applied"] = row["applied"] or status in ("verified", "applied")
            self.store.save_agent_output(row)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- schedule loop -----------------------------------------------------------------
    def start(self) -> None:
        """Run every scheduled agent at its interval until :meth:`stop`."""
        if self._loop_task is None and self.scheduled:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            now = self.clock.monotonic()
            for s in self.scheduled:
                if s.due <= now:
                    s.due = now + s.interval_s
                    await self._run(s)
            await self.clock.sleep(min([0.5, *(s.interval_s for s in self.scheduled)]))

    async def stop(self) -> None:
        """Stop the schedule and any pending approval waits."""
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._loop_task = None
