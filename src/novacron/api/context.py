"""What every request handler needs: the store, tokens, and the controller when one runs here."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry

from novacron.clock import Clock, MonotonicClock
from novacron.healing.approvals import Approvals
from novacron.runtime.controller import Controller
from novacron.sensors.alertmanager import AlertDeduplicator
from novacron.store import Store
from novacron.store.tokens import ApiToken, TokenStore

__all__ = ["ApiContext", "approvals_of", "get_ctx"]

_TOKEN_CACHE_S = 5.0  # a revoked token stops working within this long


@dataclass
class ApiContext:
    """Shared state of one API instance."""

    store: Store
    tokens: TokenStore
    controller: Controller | None
    clock: Clock = field(default_factory=MonotonicClock)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    dedup: AlertDeduplicator = field(default_factory=AlertDeduplicator)
    # Actions still running after their request answered 202 (kept so they are not collected).
    background: set[asyncio.Task[None]] = field(default_factory=set)
    _token_cache: dict[str, tuple[ApiToken | None, float]] = field(default_factory=dict)

    def live(self) -> Controller:
        """The in-process controller, or 503 when the API serves a store alone."""
        if self.controller is None:
            raise HTTPException(
                503,
                "no controller runs in this process: this call needs `novacron run` "
                "(the API alone, `novacron api`, serves read-only views)",
            )
        return self.controller

    def verify_token(self, token: str) -> ApiToken | None:
        """Check a bearer token, with a short cache so intake at thousands per second stays cheap."""
        now = time.monotonic()
        hit = self._token_cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        record = self.tokens.verify(token)
        if len(self._token_cache) > 10_000:  # bounded: garbage tokens must not grow it forever
            self._token_cache.clear()
        self._token_cache[token] = (record, now + _TOKEN_CACHE_S)
        return record


async def get_ctx(request: Request) -> ApiContext:
    """Dependency: the context of the app serving ``request``."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


def approvals_of(ctx: ApiContext) -> Approvals:
    """The controller's approvals, or (the API alone on a store) the stored requests, decided as node ``api``."""
    if ctx.controller is not None:
        return ctx.controller.approvals
    return Approvals(ctx.store, clock=ctx.clock, node_id="api")
