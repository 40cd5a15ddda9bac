"""Experiments with more than two arms: traffic shares follow a bandit (Thompson or UCB1).

Every arm but the baseline is a variant process with its own HAProxy server ``v_<arm>``.
At each look the bandit is told what each arm earned since the last look (one per request
answered without a server error) and its belief becomes the servers' weights, through a
``reroute`` action of the one executor. Stopping sends all traffic back to the baseline and
stops the variants. Unlike a canary, a bandit run has no promotion: it shifts traffic to
the arms that serve best for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novacron.clock import Clock
from novacron.errors import InputError
from novacron.experiments import Tally, Thompson, Ucb1
from novacron.experiments.routing import share_of, weights_for_shares
from novacron.model import ActionKind
from novacron.runtime.variants import Variant
from novacron.settings import ExperimentSpec

if TYPE_CHECKING:
    from novacron.runtime.experiments import ExperimentRunner

__all__ = ["BanditRun"]

BASELINE = "a"


class BanditRun:
    """One bandit-allocated experiment."""

    def __init__(self, spec: ExperimentSpec, *, runner: ExperimentRunner, clock: Clock, log_dir: Path) -> None:
        self.spec, self.runner, self.clock = spec, runner, clock
        commands = {spec.arm: spec.command, **spec.arms}
        self.variants = {
            arm: Variant(spec.model_copy(update={"arm": arm, "command": cmd}), log_dir=log_dir, clock=clock)
            for arm, cmd in commands.items()
        }
        arms = [BASELINE, *self.variants]
        self.bandit: Thompson | Ucb1 = (Thompson if spec.allocation == "thompson" else Ucb1)(arms, seed=0)
        self.tally = Tally(arms, BASELINE)
        self._told = dict.fromkeys(arms, (0, 0))  # (requests, errors) already given to the bandit
        self.weights: dict[str, int] = {}
        self.phase = "running"
        self.reason = ""
        self.started_at = clock.now()
        self.task: asyncio.Task[None] | None = None

    async def start(self, *, who: str) -> None:
        """Every variant up and added at weight 0, then equal shares through the executor."""
        try:
            for arm, variant in self.variants.items():
                port = await variant.start()
                await self.runner.haproxy.add_server(self.spec.target, f"v_{arm}", f"127.0.0.1:{port}", weight=0)
            await self._apply(dict.fromkeys(self.tally.arms, 1.0), f"experiment {self.spec.name} started by {who}")
        except Exception:
            await self.tear_down()
            raise
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while self.phase == "running":
            await self.clock.sleep(self.spec.look_interval_s)
            if self.phase != "running":
                return
            with contextlib.suppress(InputError):  # a refused reroute is tried again at the next look
                await self.look()

    async def look(self) -> dict[str, float]:
        """Tell the bandit what each arm earned since the last look; route by its new belief."""
        for arm, w in self.tally.arms.items():
            seen, failed = self._told[arm]
            new, bad = w.requests - seen, w.errors - failed
            if new > 0:
                self.bandit.update(arm, float(new - bad), count=new)
                self._told[arm] = (w.requests, w.errors)
        shares = self.bandit.weights()
        await self._apply(shares, f"{self.spec.allocation} allocation")
        self.runner.save_bandit(self)
        return shares

    async def _apply(self, shares: dict[str, float], why: str) -> None:
        replicas = await self.runner.replicas(self.spec.target)
        weights = weights_for_shares(shares[BASELINE], {f"v_{a}": shares[a] for a in self.variants}, replicas)
        if weights == self.weights:
            return
        split = 100.0 - sum(share_of(weights, s) for s in replicas)
        await self.runner.route(self.spec, weights, why=why, kind=ActionKind.REROUTE, split=round(split, 2))
        self.weights = weights

    def on_request(self, server: str, status: int, seconds: float) -> None:
        """Count a request of one of this run's arms."""
        arm = BASELINE if server.startswith("r") else server.removeprefix("v_")
        if self.phase == "running" and arm in self.tally.arms:
            self.tally.add(arm, error=status >= 500, latency_s=seconds)

    async def stop(self, *, who: str) -> None:
        """All traffic back to the baseline, the variants stopped and their servers removed."""
        self.phase, self.reason = "stopped", f"stopped by {who}"
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        replicas = await self.runner.replicas(self.spec.target)
        back = {**dict.fromkeys(replicas, 100), **{f"v_{a}": 0 for a in self.variants}}
        await self.runner.route(self.spec, back, why=self.reason, kind=ActionKind.REROUTE, split=0.0)
        self.weights = back
        await self.tear_down()

    async def tear_down(self) -> None:
        """Remove every variant server and stop every variant (best effort, for a failed start too)."""
        for arm, variant in self.variants.items():
            with contextlib.suppress(Exception):
                await self.runner.haproxy.remove_server(self.spec.target, f"v_{arm}")
            await variant.stop()

    def row(self) -> dict[str, Any]:
        """The store's row for this run."""
        replicas = [s for s in self.weights if s.startswith("r")]
        split = 100.0 - sum(share_of(self.weights, s) for s in replicas) if self.weights else 0.0
        return {
            "name": self.spec.name,
            "target": self.spec.target,
            "arm": self.spec.arm,
            "spec": self.spec.model_dump(mode="json"),
            "phase": self.phase,
            "state": {"phase": self.phase, "step": 0, "weights": self.weights, "looks": 0, "split": round(split, 2)},
            "arms": {a: w.to_json() for a, w in self.tally.arms.items()},
            "threshold_s": self.tally.threshold_s,
            "started_at": self.started_at,
            "updated_at": self.clock.now(),
            "reason": self.reason,
        }
