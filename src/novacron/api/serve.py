"""Serving the API with uvicorn, alone or on the controller's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, make_asgi_app

__all__ = ["EmbeddedServer", "make_metrics_server", "make_server"]


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (``novacron run`` owns SIGINT/SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Do not touch signal handlers; the host sets ``should_exit``."""
        yield


def make_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8080, embedded: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app``; ``embedded`` servers run as a task beside the controller."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # every mutating call is audited; per-request lines would drown the logs
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
    )
    return EmbeddedServer(config) if embedded else uvicorn.Server(config)


def make_metrics_server(registry: CollectorRegistry) -> uvicorn.Server:
    """An embedded server answering Prometheus scrapes from ``registry`` (on the controller's loop).

    Scrapes run on the controller's event loop, so collectors that read its state see it
    between two steps, never halfway through one.
    """
    config = uvicorn.Config(
        make_asgi_app(registry=registry),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return EmbeddedServer(config)
