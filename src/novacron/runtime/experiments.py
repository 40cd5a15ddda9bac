"""The experiment runner: canaries on real traffic, decided by the always-valid test.

For each experiment the runner starts the variant, adds it to the target's HAProxy
backend at weight 0, and moves traffic with ``reroute`` actions through the one executor
(safety gate, read-back verification, inverse). HAProxy's request log feeds a
:class:`~novacron.experiments.Tally` per experiment; every ``look_interval_s`` the canary
judge decides (hold, advance, promote, roll back, halt) and every look is stored, so the
dashboard can show the confidence sequence over time and a restarted controller resumes
the experiment from its stored state and tallies.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novacron.actuators.haproxy import HaproxyActuator
from novacron.clock import Clock
from novacron.errors import InputError, NotFoundError
from novacron.experiments import ArmWindow, CanaryPolicy, CanaryState, Move, Phase, Tally, judge
from novacron.experiments.canary import fixed_horizon_report
from novacron.experiments.routing import share_of, weights_for
from novacron.healing.catalog import new_action
from novacron.healing.executor import ExecResult, Executor
from novacron.model import ActionKind, ActionStatus, TargetId
from novacron.runtime.bandit_runs import BanditRun
from novacron.runtime.variants import Variant
from novacron.settings import ExperimentSpec, FleetSpec, load_spec, spec_to_yaml
from novacron.store import Store
from novacron.store.experiments import ExperimentStore, public_view
from novacron.telemetry import get_logger

__all__ = ["ExperimentRunner"]

BASELINE = "a"
_APPLIED = (ActionStatus.VERIFIED, ActionStatus.APPLIED)
_ACTS = {Move.ADVANCE, Move.PROMOTE, Move.ROLLBACK, Move.HALT}


def policy_of(spec: ExperimentSpec) -> CanaryPolicy:
    """The canary policy an experiment's spec sets."""
    return CanaryPolicy(
        steps=tuple(spec.steps),
        alpha=spec.alpha,
        power=spec.power,
        mde=spec.mde,
        latency_mde=spec.latency_mde,
        base_rate=spec.base_rate,
        min_samples=spec.min_samples,
        max_samples=max(spec.min_samples, spec.max_samples),
    )


@dataclass
class _Live:
    spec: ExperimentSpec
    policy: CanaryPolicy
    state: CanaryState
    tally: Tally
    variant: Variant
    started_at: float
    weights: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    decided_at: float | None = None
    applied_at: float | None = None

    @property
    def server(self) -> str:
        return f"v_{self.spec.arm}"


class ExperimentRunner:
    """Runs the fleet's experiments behind HAProxy; every traffic change goes through the executor."""

    def __init__(
        self,
        *,
        spec: FleetSpec,
        haproxy: HaproxyActuator,
        executor: Executor,
        store: Store,
        clock: Clock,
        workdir: Path,
        config_version: int = 0,
    ) -> None:
        self.spec, self.haproxy, self.executor, self.clock = spec, haproxy, executor, clock
        self.store = store
        self.repo = ExperimentStore(store)
        self._log_dir = workdir / "logs"
        self.live: dict[str, _Live] = {}
        self.bandits: dict[str, BanditRun] = {}
        self.config_version = config_version
        self._log = get_logger(component="experiments")
        haproxy.listeners.append(self._on_request)

    # -- lifecycle ---------------------------------------------------------------------
    async def start_all(self) -> None:
        """Resume stored experiments that were running (or promoted), then start the spec's new ones."""
        stored = {row["name"]: row for row in self.repo.all()}
        for row in stored.values():
            if row["phase"] in (Phase.RUNNING.value, Phase.PROMOTED.value) and self.haproxy.fronted(row["target"]):
                try:
                    await self._resume(row)
                except InputError as exc:
                    self._log.warning("experiment not resumed", experiment=row["name"], error=str(exc))
        for i, espec in enumerate(self.spec.experiments):
            if espec.name not in stored:
                try:
                    await self.start(espec, who="spec")
                except InputError as exc:  # named by its place in the spec, not as an API field
                    raise InputError(exc.reason, where=f"experiments[{i}].{exc.where or 'name'}") from exc

    async def close(self) -> None:
        """Stop looking and stop the variants; the store keeps each experiment's state for the next controller."""
        for live in self.live.values():
            if live.task is not None:
                live.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await live.task
            self._save(live)
            await live.variant.stop()
        self.live.clear()
        for run in self.bandits.values():  # a bandit run is not resumed: it ends with its controller
            run.phase, run.reason = "stopped", "the controller stopped"
            if run.task is not None:
                run.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run.task
            self.save_bandit(run)
            await run.tear_down()
        self.bandits.clear()

    # -- start, stop, status -----------------------------------------------------------
    async def start(self, espec: ExperimentSpec, *, who: str) -> dict[str, Any]:
        """Start an experiment: variant up, added at weight 0, then the first step through the executor.

        Any failure leaves HAProxy as it was and nothing running.
        """
        self._check_new(espec)
        if espec.allocation != "canary":
            return await self._start_bandit(espec, who=who)
        live = _Live(espec, policy_of(espec), CanaryState(), self._tally(espec), self._variant(espec), self.clock.now())
        await self._bring_up(live)
        try:
            await self._route(live, live.policy.steps[0], why=f"experiment {espec.name} started by {who}")
        except InputError:
            await self._tear_down(live)
            raise
        self.live[espec.name] = live
        self._save(live)
        self._spawn_loop(live)
        return self.describe(espec.name)

    async def _start_bandit(self, espec: ExperimentSpec, *, who: str) -> dict[str, Any]:
        run = BanditRun(espec, runner=self, clock=self.clock, log_dir=self._log_dir)
        await run.start(who=who)
        self.bandits[espec.name] = run
        self.save_bandit(run)
        return self.describe(espec.name)

    def save_bandit(self, run: BanditRun) -> None:
        """Store a bandit run's row."""
        self.repo.save(run.row())

    def _check_new(self, espec: ExperimentSpec) -> None:
        if not self.haproxy.fronted(espec.target):
            raise InputError(f"{espec.target!r} is not a target with a frontend", where="target")
        if espec.name in self.live or espec.name in self.bandits:
            raise InputError(f"experiment {espec.name!r} is already running", where="name")
        with contextlib.suppress(NotFoundError):
            self.repo.get(espec.name)
            raise InputError(f"experiment {espec.name!r} already exists", where="name")
        running = [*((n, v.spec) for n, v in self.live.items()), *((n, b.spec) for n, b in self.bandits.items())]
        busy = [n for n, spec in running if spec.target == espec.target]
        if busy:
            raise InputError(f"{espec.target} already runs experiment {busy[0]!r}", where="target")

    async def stop(self, name: str, *, who: str) -> dict[str, Any]:
        """Stop an experiment by hand: all traffic back to the baseline, the variant stopped."""
        if name in self.bandits:
            run = self.bandits.pop(name)
            await run.stop(who=who)
            self.save_bandit(run)
            return self.describe(name)
        live = self.live.get(name)
        if live is None:
            self.repo.get(name)  # NotFoundError for an unknown name
            raise InputError(f"experiment {name!r} is not running", where="name")
        if live.state.phase is Phase.RUNNING:
            await self._route(live, 0.0, why=f"experiment {name} stopped by {who}")
        live.state = CanaryState(
            Phase.STOPPED, live.state.step, live.state.step_base, f"stopped by {who}", live.state.looks
        )
        await self._retire(live)
        return self.describe(name)

    def describe(self, name: str) -> dict[str, Any]:
        """An experiment as the API shows it: spec, phase, split, arms, decision times."""
        live = self.live.get(name)
        bandit = self.bandits.get(name)
        row = self._row(live) if live is not None else bandit.row() if bandit is not None else self.repo.get(name)
        out = public_view(row)
        arms = {a: ArmWindow.from_json(w) for a, w in row["arms"].items()}
        out["fixed_horizon"] = fixed_horizon_report(arms[BASELINE], arms[row["arm"]])
        return out

    def all(self) -> list[dict[str, Any]]:
        """Every stored experiment (live ones with their current counts)."""
        rows = {r["name"]: r for r in self.repo.all()}
        rows.update({n: self._row(live) for n, live in self.live.items()})
        rows.update({n: run.row() for n, run in self.bandits.items()})
        return [public_view(r) for r in sorted(rows.values(), key=lambda r: -float(r["started_at"]))]

    # -- looks -------------------------------------------------------------------------
    def _spawn_loop(self, live: _Live) -> None:
        if live.state.phase is Phase.RUNNING:
            live.task = asyncio.get_running_loop().create_task(self._loop(live))

    async def _loop(self, live: _Live) -> None:
        while live.state.phase is Phase.RUNNING:
            await self.clock.sleep(live.spec.look_interval_s)
            if self.live.get(live.spec.name) is not live:  # stopped by hand while asleep
                return
            try:
                await self.look(live.spec.name)
            except InputError as exc:  # a refused step is retried at the next look
                self._log.warning("experiment step refused", experiment=live.spec.name, error=str(exc))

    async def look(self, name: str) -> Move:
        """One look at a running experiment; act on the verdict through the executor."""
        live = self.live[name]
        arms = live.tally.arms
        verdict = judge(
            live.policy, live.state, arms[BASELINE], arms[live.spec.arm], share=share_of(live.weights, live.server)
        )
        now = self.clock.now()
        look = {"arms": {a: w.to_json() for a, w in arms.items()}, **verdict.to_json()}
        self.repo.add_look(name, time=now, split=verdict.split, move=verdict.move.value, data=look)
        if verdict.move in _ACTS:
            if verdict.move is not Move.ADVANCE:  # the final decision: its time and how long it took to apply
                live.decided_at = now
            await self._act(live, verdict.move, verdict.split, verdict.reason)
        live.state = verdict.state if verdict.move not in _ACTS else live.state
        self._save(live)
        return verdict.move

    async def _act(self, live: _Live, move: Move, split: float, reason: str) -> None:
        """Apply a verdict; the state moves on only once the traffic change is in force."""
        kind = ActionKind.PROMOTE if move is Move.PROMOTE else ActionKind.REROUTE
        await self._route(live, split, why=reason, kind=kind)
        if move is not Move.ADVANCE:
            live.applied_at = self.clock.now()
        live.state = judge_state_after(live, move, reason)
        if move is Move.PROMOTE:
            self._save_promoted_spec(live)
        if move in (Move.ROLLBACK, Move.HALT):
            await self._retire(live)

    async def _route(self, live: _Live, split: float, *, why: str, kind: ActionKind = ActionKind.REROUTE) -> ExecResult:
        replicas = await self.replicas(live.spec.target)
        weights = weights_for(split, replicas, live.server)
        result = await self.route(live.spec, weights, why=why, kind=kind, split=split)
        live.weights = weights
        return result

    async def replicas(self, target: str) -> list[str]:
        """The baseline's servers (the target's replicas) behind its frontend."""
        return sorted(s for s in await self.haproxy.servers(target) if s.startswith("r"))

    async def route(
        self, espec: ExperimentSpec, weights: dict[str, int], *, why: str, kind: ActionKind, split: float
    ) -> ExecResult:
        """Put ``weights`` in force through the executor; InputError when the gate or HAProxy refused."""
        servers = await self.haproxy.servers(espec.target)
        before = {s: int(servers[s]["weight"]) for s in weights if s in servers}
        action = new_action(
            kind,
            TargetId(espec.target),
            key=f"experiment/{espec.name}/{uuid.uuid4().hex[:12]}",
            params={"weights": weights, "from_weights": before, "experiment": espec.name, "split": split},
            reason=why,
            requested_by=f"experiment:{espec.name}",
        )
        result = await self.executor.execute(action)
        if result.status not in _APPLIED:
            raise InputError(f"{kind} to {split:g} % not applied ({result.status}): {result.detail}", where="split")
        return result

    # -- variants and HAProxy servers --------------------------------------------------
    def _tally(self, espec: ExperimentSpec) -> Tally:
        return Tally([BASELINE, espec.arm], BASELINE, quantile=0.95)

    def _variant(self, espec: ExperimentSpec) -> Variant:
        return Variant(espec, log_dir=self._log_dir, clock=self.clock)

    async def _bring_up(self, live: _Live) -> None:
        port = await live.variant.start()
        try:
            await self.haproxy.add_server(live.spec.target, live.server, f"127.0.0.1:{port}", weight=0)
        except Exception:
            await live.variant.stop()
            raise

    async def _tear_down(self, live: _Live) -> None:
        with contextlib.suppress(Exception):  # best effort: the server may never have been added
            await self.haproxy.remove_server(live.spec.target, live.server)
        await live.variant.stop()

    async def _retire(self, live: _Live) -> None:
        """A finished (rolled back, halted, stopped) experiment: server out of HAProxy, variant stopped."""
        await self._tear_down(live)
        self._save(live)
        self.live.pop(live.spec.name, None)

    async def _resume(self, row: dict[str, Any]) -> None:
        espec = ExperimentSpec.model_validate(row["spec"])
        live = _Live(
            espec,
            policy_of(espec),
            CanaryState.from_json(row["state"]),
            self._tally(espec),
            self._variant(espec),
            float(row["started_at"]),
        )
        live.tally.restore({a: ArmWindow.from_json(w) for a, w in row["arms"].items()}, row["threshold_s"])
        await self._bring_up(live)
        await self._route(live, live.state.split(live.policy), why=f"experiment {espec.name} resumed after a restart")
        self.live[espec.name] = live
        self._spawn_loop(live)

    def _save_promoted_spec(self, live: _Live) -> None:
        """Promotion is a new spec version: the target runs the variant's command from now on."""
        latest = self.store.latest_config()
        if latest is None:
            return
        spec = load_spec(latest.body)
        targets = [
            t.model_copy(update={"command": list(live.spec.command)}) if t.name == live.spec.target else t
            for t in spec.targets
        ]
        body = spec_to_yaml(spec.model_copy(update={"targets": targets}))
        cfg = self.store.save_config(body, source=f"experiment {live.spec.name}", now=self.clock.now())
        self.config_version = cfg.version

    # -- bookkeeping -------------------------------------------------------------------
    def _on_request(self, target: str, server: str, status: int, seconds: float) -> None:
        for run in self.bandits.values():
            if run.spec.target == target:
                run.on_request(server, status, seconds)
        for live in self.live.values():
            if live.spec.target != target or live.state.phase is not Phase.RUNNING:
                continue
            arm = BASELINE if server.startswith("r") else live.spec.arm if server == live.server else None
            if arm is not None:
                live.tally.add(arm, error=status >= 500, latency_s=seconds)

    def _row(self, live: _Live) -> dict[str, Any]:
        return {
            "name": live.spec.name,
            "target": live.spec.target,
            "arm": live.spec.arm,
            "spec": live.spec.model_dump(mode="json"),
            "phase": live.state.phase.value,
            "state": {
                **live.state.to_json(),
                "weights": live.weights,
                "decided_at": live.decided_at,
                "applied_at": live.applied_at,
                "port": live.variant.port,
            },
            "arms": {a: w.to_json() for a, w in live.tally.arms.items()},
            "threshold_s": live.tally.threshold_s,
            "started_at": live.started_at,
            "updated_at": self.clock.now(),
            "reason": live.state.reason,
        }

    def _save(self, live: _Live) -> None:
        self.repo.save(self._row(live))


def judge_state_after(live: _Live, move: Move, reason: str) -> CanaryState:
    """The canary's state once a move's traffic change is in force."""
    s = live.state
    if move is Move.ADVANCE:
        arms = live.tally.arms
        return CanaryState(
            Phase.RUNNING, s.step + 1, (arms[BASELINE].requests, arms[live.spec.arm].requests), "", s.looks
        )
    phase = {Move.PROMOTE: Phase.PROMOTED, Move.ROLLBACK: Phase.ROLLED_BACK, Move.HALT: Phase.HALTED}[move]
    step = len(live.policy.steps) - 1 if move is Move.PROMOTE else s.step
    return CanaryState(phase, step, s.step_base, reason, s.looks)
