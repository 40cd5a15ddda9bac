"""The actuator for ``kind: remote`` targets: the action is POSTed to the target's ``action_url``.

The body names the action (id, idempotency key, kind, parameters) and, with several
controllers, the fencing token it was taken under (node, shard, epoch), so the endpoint
can refuse a token older than one it has seen — fencing at the resource, the last line
after the store's own check. A 2xx answer is an applied action; anything else, or no
answer within ``timeout_s``, is a failed one (the ladder moves on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from novacron.clock import Clock
from novacron.model import Action, Outcome, TargetId, TargetState
from novacron.settings import FleetSpec

__all__ = ["RemoteActuator"]


class RemoteActuator:
    """POSTs actions on remote targets; observes nothing itself (probes do)."""

    def __init__(
        self,
        spec: FleetSpec,
        *,
        clock: Clock,
        fence_of: Callable[[Action], Mapping[str, Any] | None] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._urls = {t.name: t.action_url for t in spec.targets if t.kind == "remote"}
        self._clock = clock
        self._fence_of = fence_of
        self._timeout = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def apply(self, action: Action) -> Outcome:
        """POST the action; a 2xx is applied."""
        started = self._clock.now()
        url = self._urls.get(action.target)
        if not url:
            return Outcome(action.id, False, started, self._clock.now(), f"{action.target} has no action_url")
        body = {
            "id": action.id,
            "key": action.idempotency_key,
            "kind": action.kind.value,
            "target": action.target,
            "params": dict(action.params),
            "fence": dict(self._fence_of(action) or {}) if self._fence_of is not None else None,
        }
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            res = await self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            return Outcome(action.id, False, started, self._clock.now(), f"{action.kind} failed: {exc!r}")
        ok = res.is_success
        detail = f"{action.kind} posted: HTTP {res.status_code}"
        return Outcome(action.id, ok, started, self._clock.now(), detail, {"status_code": res.status_code})

    async def observe(self, target: TargetId) -> TargetState:
        """A remote target has no processes of ours."""
        return TargetState(target, running=1, desired=1, pids=())

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
