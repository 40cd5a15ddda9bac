"""A chaos monkey that injects real faults into running services and records each one.

Primitives act on the world directly: :meth:`ChaosMonkey.crash` (SIGKILL), :meth:`hang`
(SIGSTOP), slow answers, error bursts, latency creep and CPU spin through the demo
service's ``POST /chaos``, and a start that fails through its fail-start file. The
scheduler :meth:`ChaosMonkey.run` injects at a Poisson rate into a random healthy target,
with a seeded RNG so a run can be replayed. Every injection becomes an :class:`Injection`
stamped with the injected clock's ``now()``; the healing benchmark measures MTTD and MTTR
from those stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import random
import signal
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import structlog

from novacron.clock import Clock, MonotonicClock
from novacron.demo.fleet import LABEL_FAIL_START_FILE, LABEL_URL
from novacron.errors import TemporaryError
from novacron.settings import FleetSpec, HttpCheck, TargetSpec

__all__ = [
    "ChaosError",
    "ChaosKind",
    "ChaosMonkey",
    "ChaosTarget",
    "FaultShapes",
    "Injection",
    "chaos_targets",
]

_log = structlog.get_logger(__name__)
_EMPTY: Mapping[str, float] = MappingProxyType({})


class ChaosKind(enum.StrEnum):
    """The faults the monkey knows how to inject."""

    CRASH = "crash"  # SIGKILL
    HANG = "hang"  # SIGSTOP: alive, silent
    SLOW = "slow"  # answers after a delay longer than a probe's timeout
    ERRORS = "errors"  # 5xx burst
    CREEP = "creep"  # latency growing linearly, staying under the probe timeout
    SPIN = "spin"  # a CPU busy loop while still answering
    BREAK_START = "break_start"  # bad config: unhealthy now, and a restart fails

    @property
    def needs_pid(self) -> bool:
        """Whether the fault is a signal to a process."""
        return self in (ChaosKind.CRASH, ChaosKind.HANG)

    @property
    def needs_url(self) -> bool:
        """Whether the fault goes through the service's ``POST /chaos``."""
        return self in (ChaosKind.SLOW, ChaosKind.ERRORS, ChaosKind.CREEP, ChaosKind.SPIN)


class ChaosError(TemporaryError):
    """An injection could not be made (process gone, service not answering, no target)."""


@dataclass(frozen=True, slots=True)
class ChaosTarget:
    """What the monkey knows about one target besides its pids."""

    name: str
    url: str | None = None
    fail_start_file: Path | None = None

    def supports(self, kind: ChaosKind) -> bool:
        """Whether ``kind`` can be injected into this target."""
        if kind.needs_url:
            return self.url is not None
        if kind is ChaosKind.BREAK_START:
            return self.fail_start_file is not None
        return True

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> ChaosTarget:
        """Read the demo labels; without them fall back to the first HTTP check's origin."""
        url = spec.labels.get(LABEL_URL)
        if url is None:
            http = [c for c in spec.checks if isinstance(c, HttpCheck)]
            if http:
                scheme, _, rest = http[0].url.partition("://")
                url = f"{scheme}://{rest.split('/', 1)[0]}"
        fail = spec.labels.get(LABEL_FAIL_START_FILE)
        return cls(spec.name, url, Path(fail) if fail else None)


def chaos_targets(spec: FleetSpec) -> dict[str, ChaosTarget]:
    """A :class:`ChaosTarget` for every target of ``spec``, by name."""
    return {t.name: ChaosTarget.from_spec(t) for t in spec.targets}


@dataclass(frozen=True, slots=True)
class Injection:
    """One injected fault. ``duration_s`` is None for faults that last until healed."""

    kind: ChaosKind
    target: str
    pid: int | None
    injected_at: float
    duration_s: float | None = None
    params: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class FaultShapes:
    """Ranges (low, high) the scheduler draws each fault's parameters from.

    The defaults suit the demo fleet's probes (100 ms interval, 250 ms timeout): a slow
    answer is far past the timeout, while a creep tops out below it so that only the
    metric detectors can catch it.
    """

    slow_delay_s: tuple[float, float] = (0.6, 1.5)
    slow_duration_s: tuple[float, float] = (3.0, 6.0)
    errors_duration_s: tuple[float, float] = (2.0, 5.0)
    creep_max_delay_s: tuple[float, float] = (0.1, 0.2)
    creep_duration_s: tuple[float, float] = (20.0, 40.0)
    spin_duration_s: tuple[float, float] = (10.0, 20.0)
    break_start_s: tuple[float, float] = (2.0, 4.0)


class ChaosMonkey:
    """Injects faults into targets; remembers what it did so :meth:`restore` can undo it.

    ``pids_of(name)`` returns the live pids of a target (from the caller's actuator).
    ``on_injection`` is called with each :class:`Injection`, which is also appended to
    :attr:`injections`.
    """

    def __init__(
        self,
        targets: Mapping[str, ChaosTarget] | Iterable[ChaosTarget],
        pids_of: Callable[[str], Sequence[int]],
        *,
        seed: int | None = 0,
        clock: Clock | None = None,
        on_injection: Callable[[Injection], None] | None = None,
        shapes: FaultShapes | None = None,
        cooldown_s: float = 2.0,
        http_timeout_s: float = 1.0,
    ) -> None:
        items = targets.values() if isinstance(targets, Mapping) else targets
        self.targets: dict[str, ChaosTarget] = {t.name: t for t in items}
        self.pids_of = pids_of
        self.rng = random.Random(seed)
        self.clock: Clock = clock or MonotonicClock()
        self.on_injection = on_injection
        self.shapes = shapes or FaultShapes()
        self.cooldown_s = cooldown_s
        self.injections: list[Injection] = []
        self._http = httpx.AsyncClient(timeout=http_timeout_s)
        self._stopped: set[int] = set()
        self._broken: set[Path] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, float] = {}

    # --- primitives --------------------------------------------------------------------
    def crash(self, pid: int) -> None:
        """SIGKILL ``pid``."""
        _signal(pid, signal.SIGKILL)
        self._stopped.discard(pid)

    def hang(self, pid: int) -> None:
        """SIGSTOP ``pid``: it stays alive but stops answering and heartbeating."""
        _signal(pid, signal.SIGSTOP)
        self._stopped.add(pid)

    def resume(self, pid: int) -> None:
        """SIGCONT a process stopped by :meth:`hang`."""
        _signal(pid, signal.SIGCONT)
        self._stopped.discard(pid)

    async def set_mode(self, target: str, mode: str, *, duration_s: float, delay_s: float = 0.0) -> None:
        """``POST /chaos`` on the target: ``mode`` for ``duration_s`` seconds."""
        url = self._target(target).url
        if url is None:
            raise ChaosError(f"{target}: no URL to send chaos to")
        body = {"mode": mode, "duration_s": duration_s, "delay_s": delay_s}
        try:
            resp = await self._http.post(f"{url}/chaos", json=body)
        except httpx.HTTPError as exc:
            raise ChaosError(f"{target}: POST /chaos failed: {exc!r}") from exc
        if resp.status_code != 200:
            raise ChaosError(f"{target}: POST /chaos answered {resp.status_code}: {resp.text.strip()}")

    async def slow(self, target: str, *, delay_s: float, duration_s: float) -> None:
        """Answer /health and / only after ``delay_s``."""
        await self.set_mode(target, "slow", duration_s=duration_s, delay_s=delay_s)

    async def errors(self, target: str, *, duration_s: float) -> None:
        """Answer 5xx for ``duration_s``."""
        await self.set_mode(target, "error", duration_s=duration_s)

    async def creep(self, target: str, *, max_delay_s: float, duration_s: float) -> None:
        """Latency growing linearly from 0 to ``max_delay_s`` over ``duration_s``."""
        await self.set_mode(target, "creep", duration_s=duration_s, delay_s=max_delay_s)

    async def spin(self, target: str, *, duration_s: float) -> None:
        """Burn a CPU for ``duration_s`` while still answering."""
        await self.set_mode(target, "spin", duration_s=duration_s)

    def break_start(self, target: str) -> Path:
        """Create the target's fail-start file: it turns unhealthy and cannot start again."""
        path = self._fail_file(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("broken by the chaos monkey\n", encoding="utf-8")
        self._broken.add(path)
        return path

    def fix_start(self, target: str) -> None:
        """Remove the target's fail-start file."""
        path = self._fail_file(target)
        path.unlink(missing_ok=True)
        self._broken.discard(path)

    # --- one injection -----------------------------------------------------------------
    async def inject(self, kind: ChaosKind | str, target: str) -> Injection:
        """Inject one fault of ``kind`` into ``target`` with parameters drawn from the RNG."""
        kind = ChaosKind(kind)
        if not self._target(target).supports(kind):
            raise ChaosError(f"{target}: cannot inject {kind}")
        pid = self._pick_pid(target) if kind.needs_pid else None
        params, duration = self._draw(kind)
        injected_at = self.clock.now()  # stamped before acting: MTTD never looks shorter
        await self._apply(kind, target, pid, params, duration)
        injection = Injection(kind, target, pid, injected_at, duration, MappingProxyType(params))
        self._last[target] = self.clock.monotonic()
        self.injections.append(injection)
        _log.info("chaos.injected", kind=str(kind), target=target, pid=pid, **params)
        if self.on_injection is not None:
            self.on_injection(injection)
        return injection

    def _draw(self, kind: ChaosKind) -> tuple[dict[str, float], float | None]:
        s, u = self.shapes, self.rng.uniform
        if kind is ChaosKind.SLOW:
            return {"delay_s": u(*s.slow_delay_s)}, u(*s.slow_duration_s)
        if kind is ChaosKind.ERRORS:
            return {}, u(*s.errors_duration_s)
        if kind is ChaosKind.CREEP:
            return {"delay_s": u(*s.creep_max_delay_s)}, u(*s.creep_duration_s)
        if kind is ChaosKind.SPIN:
            return {}, u(*s.spin_duration_s)
        if kind is ChaosKind.BREAK_START:
            return {}, u(*s.break_start_s)
        return {}, None

    async def _apply(
        self, kind: ChaosKind, target: str, pid: int | None, params: dict[str, float], duration: float | None
    ) -> None:
        if pid is not None:
            (self.crash if kind is ChaosKind.CRASH else self.hang)(pid)
        elif kind is ChaosKind.BREAK_START:
            self.break_start(target)
            self._spawn(self._fix_later(target, duration or 0.0))
        else:
            mode = {ChaosKind.ERRORS: "error"}.get(kind, str(kind))
            await self.set_mode(target, mode, duration_s=duration or 0.0, delay_s=params.get("delay_s", 0.0))

    async def _fix_later(self, target: str, after_s: float) -> None:
        await self.clock.sleep(after_s)
        self.fix_start(target)

    def _pick_pid(self, target: str) -> int:
        pids = list(self.pids_of(target))
        if not pids:
            raise ChaosError(f"{target}: no live process to inject into")
        return self.rng.choice(pids)

    # --- the scheduler -----------------------------------------------------------------
    async def run(
        self,
        targets_provider: Callable[[], Iterable[str]],
        clock: Clock,
        rate_per_s: float,
        kinds: Sequence[ChaosKind | str],
        *,
        max_injections: int | None = None,
    ) -> None:
        """Inject at a Poisson rate until cancelled (or ``max_injections`` are made).

        ``targets_provider()`` names the targets that are healthy right now; targets hit
        within the last ``cooldown_s`` are left alone so one fault heals before the next.
        """
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s: must be > 0, got {rate_per_s}")
        chosen = [ChaosKind(k) for k in kinds]
        if not chosen:
            raise ValueError("kinds: name at least one fault kind")
        self.clock = clock
        made = 0
        while max_injections is None or made < max_injections:
            await clock.sleep(self.rng.expovariate(rate_per_s))
            pick = self._choose(targets_provider(), chosen)
            if pick is None:
                continue
            try:
                await self.inject(pick[1], pick[0])
            except ChaosError as exc:
                _log.warning("chaos.skipped", reason=str(exc))
                continue
            made += 1

    def _choose(self, healthy: Iterable[str], kinds: Sequence[ChaosKind]) -> tuple[str, ChaosKind] | None:
        now = self.clock.monotonic()
        names = sorted(n for n in healthy if n in self.targets and now - self._last.get(n, -1e18) >= self.cooldown_s)
        if not names:
            return None
        name = self.rng.choice(names)
        usable = [k for k in kinds if self.targets[name].supports(k)]
        return (name, self.rng.choice(usable)) if usable else None

    # --- clean-up ------------------------------------------------------------------------
    async def restore(self) -> None:
        """Undo what is still in force: resume stopped processes, remove fail-start files."""
        for task in list(self._tasks):
            task.cancel()
        for pid in list(self._stopped):
            with contextlib.suppress(ChaosError):
                self.resume(pid)
        self._stopped.clear()
        for path in list(self._broken):
            path.unlink(missing_ok=True)
        self._broken.clear()

    async def aclose(self) -> None:
        """:meth:`restore`, then close the HTTP client."""
        await self.restore()
        await self._http.aclose()

    async def __aenter__(self) -> ChaosMonkey:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- helpers -------------------------------------------------------------------------
    def _target(self, name: str) -> ChaosTarget:
        try:
            return self.targets[name]
        except KeyError:
            raise ChaosError(f"{name}: not a known chaos target") from None

    def _fail_file(self, target: str) -> Path:
        path = self._target(target).fail_start_file
        if path is None:
            raise ChaosError(f"{target}: no fail-start file configured")
        return path

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _signal(pid: int, sig: signal.Signals) -> None:
    if pid <= 1:
        raise ChaosError(f"refusing to signal pid {pid}")
    try:
        os.kill(pid, sig)
    except ProcessLookupError as exc:
        raise ChaosError(f"pid {pid}: no such process") from exc
    except PermissionError as exc:
        raise ChaosError(f"pid {pid}: not permitted to signal it") from exc
