"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry

from novacron.api import (
    dashboard,
    routes_act,
    routes_agents,
    routes_experiments,
    routes_intake,
    routes_learn,
    routes_read,
    routes_studies,
)
from novacron.api.context import ApiContext
from novacron.api.errors import BodyLimit, install_error_handlers
from novacron.clock import Clock, MonotonicClock
from novacron.runtime.controller import Controller
from novacron.sensors.alertmanager import WebhookPayload
from novacron.store import Store
from novacron.store.tokens import TokenStore

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: far above a 10,000-alert webhook's typical size, far below harm


def create_app(
    source: Controller | Store,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API over a running controller (everything) or a store alone (read-only views).

    Without a controller, calls that need one (kill switch, heal, rollback, intake) answer
    503 with the reason; reads, tokens, acknowledgements and approvals (stored) work.
    """
    controller = source if isinstance(source, Controller) else None
    store = controller.store if controller is not None else source
    assert isinstance(store, Store)
    ctx = ApiContext(
        store=store,
        tokens=TokenStore(store),
        controller=controller,
        clock=clock or (controller.clock if controller is not None else MonotonicClock()),
        registry=registry or CollectorRegistry(),
    )
    app = FastAPI(
        title="NovaCron API",
        version="1",
        description="Fleet health, incidents, actions, audit and control of the NovaCron controller.",
        docs_url=None,  # Swagger UI loads from a CDN; the dashboard and /openapi.json suffice offline
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    # Intake first: route matching is in order, and intake is the hot path.
    for module in (
        routes_intake,
        routes_read,
        routes_act,
        routes_agents,
        routes_experiments,
        routes_learn,
        routes_studies,
        dashboard,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _add_webhook_schema(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _add_webhook_schema(schema: dict[str, Any]) -> None:
    """Publish Alertmanager's payload model, which the intake route parses from the raw body."""
    model = WebhookPayload.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(model.pop("$defs", {}))
    components["WebhookPayload"] = model
