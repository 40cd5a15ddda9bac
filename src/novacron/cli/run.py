"""``novacron run``: supervise and heal a fleet until SIGINT/SIGTERM, speaking like a daemon.

SIGHUP re-reads the spec file and applies the difference in place, as ``novacron reload``
does (:mod:`novacron.runtime.reload`): a spec that does not load or changes what cannot
change in place is logged as an error and leaves the running spec untouched.

It logs one start line (spec, store, targets, API and metrics addresses) and one stop
line (the signal, uptime), at levels that match meaning. Its listening ports are claimed
before any target starts: a taken port exits 2 naming the port and the process holding
it. The API always runs, on loopback and an ephemeral port unless told otherwise, and the
controller records its address and a local admin token (mode 0600, in its workdir) so
operator commands find it without setup.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from novacron.cli._app import app
from novacron.cli._client import StoreOpt
from novacron.cli._ports import bind_listener, url_host

if TYPE_CHECKING:
    import asyncio

    from novacron.runtime.controller import Controller

__all__: list[str] = []

TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a secret


@dataclass
class _Listeners:
    """The sockets claimed before start, and what to tell clients about them."""

    api: socket.socket
    api_url: str
    metrics: socket.socket | None = None
    metrics_url: str | None = None


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Fleet spec (YAML).", dir_okay=False)],
    store: StoreOpt = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Serve Prometheus /metrics on this port (default: the spec's).")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address /metrics listens on.")] = "127.0.0.1",
    api_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="API and dashboard port (default: the spec's api_port, else a free one)."),
    ] = None,
    api_host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and record, touch nothing.")] = False,
    node_id: Annotated[
        str | None,
        typer.Option(help="This controller's node id among several on one store (default: the spec's, else hostname)."),
    ] = None,
    log_format: Annotated[
        Literal["console", "json"] | None,
        typer.Option("--log-format", help="console (default on a terminal) or json (default otherwise)."),
    ] = None,
) -> None:
    """Supervise and heal the fleet in the spec until interrupted (SIGINT/SIGTERM)."""
    from novacron.settings import load_spec
    from novacron.store.db import check_url
    from novacron.telemetry import configure_logging

    overrides = functools.partial(_overrides, dry_run=dry_run, node_id=node_id)
    spec = load_spec(config)
    check_url(store or spec.controller.store_url)  # a store it cannot open: refused before anything is made
    spec = overrides(spec)
    configure_logging(fmt=log_format or ("console" if sys.stderr.isatty() else "json"))
    mport = metrics_port if metrics_port is not None else spec.controller.metrics_port
    aport = api_port if api_port is not None else (spec.controller.api_port or 0)
    listeners = _claim(api_host, aport, metrics_host, mport)  # before the store, before any target
    from novacron.runtime.controller import Controller

    controller = Controller(spec, store_url=store, spec_source=str(config))
    controller.spec_overrides = overrides  # a reloaded spec gets the flags too
    from novacron.runtime.heap import Heap

    controller.heap = Heap(controller.metrics)
    controller.heap.watch()
    controller.heap.settle()  # the modules and the spec: start-up's full collections skip them
    import asyncio

    asyncio.run(_serve(controller, listeners, spec_path=config.resolve()))


def _overrides(spec: Any, *, dry_run: bool, node_id: str | None) -> Any:
    """The spec with what the command line says over it (--dry-run, --node-id)."""
    if dry_run:
        spec = spec.model_copy(update={"policy": spec.policy.model_copy(update={"dry_run": True})})
    return spec if node_id is None else _with_node_id(spec, node_id)


def _with_node_id(spec: Any, node_id: str) -> Any:
    """The spec with ``--node-id`` in its controller settings, checked like the spec's own field."""
    from pydantic import ValidationError

    from novacron.errors import InputError
    from novacron.settings import ControllerSettings

    try:
        ctl = ControllerSettings.model_validate({**spec.controller.model_dump(), "node_id": node_id})
    except ValidationError as exc:
        raise InputError(f"{node_id!r} is not a node id ({exc.errors()[0]['msg']})", where="--node-id") from None
    return spec.model_copy(update={"controller": ctl})


def _claim(api_host: str, api_port: int, metrics_host: str, metrics_port: int | None) -> _Listeners:
    api = bind_listener(api_host, api_port, flag="--api-port", host_flag="--api-host")
    out = _Listeners(api, f"http://{url_host(api_host)}:{api.getsockname()[1]}")
    if metrics_port is not None:
        try:
            out.metrics = bind_listener(metrics_host, metrics_port, flag="--metrics-port", host_flag="--metrics-host")
        except BaseException:
            api.close()
            raise
        out.metrics_url = f"http://{url_host(metrics_host)}:{out.metrics.getsockname()[1]}/metrics"
    return out


async def _serve(controller: Controller, listeners: _Listeners, *, spec_path: Path) -> None:
    import asyncio

    from novacron.store.presence import announce, ensure_local_token
    from novacron.telemetry import get_logger

    log = get_logger(component="run")
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, sig, received, stop)
    running = asyncio.Event()  # a SIGHUP during start-up is applied once the controller runs
    reloads: set[asyncio.Task[None]] = set()  # SIGHUPs being applied (held: a task nobody holds may vanish)
    loop.add_signal_handler(signal.SIGHUP, _on_hangup, controller, reloads, running)
    controller.ha.register()  # a node id a live controller holds: refused before anything is written
    now = controller.clock.now()
    token_file = ensure_local_token(
        controller.store, controller.workdir.resolve() / TOKEN_FILE, now=now, node_id=controller.spec.controller.node_id
    )
    announce(controller.store, _record(controller, listeners, spec_path, str(token_file)), now=now)
    # Targets and probes first; the API's sockets are already bound, so early callers just
    # wait in the backlog for the few hundred milliseconds FastAPI takes to load.
    controller.ha.api_url = listeners.api_url  # other nodes' operators find this one's API
    try:
        await controller.start()
    except BaseException:
        # A start that fails part-way (a canary's variant that will not run, …) stops what it had
        # started, as a stopping controller does: no replicas or HAProxy left behind unsupervised.
        try:
            await controller.stop()
        except Exception as undo:  # the start's own error is the one to report
            log.warning("stopping after a failed start failed", error=repr(undo))
        raise
    servers, tasks = _start_servers(controller, listeners)
    if controller.heap is not None:
        controller.heap.settle()  # the API's modules and app, built just now, live as long as the process
    for task in tasks:
        task.add_done_callback(lambda _t: stop.set())  # a server that dies must not leave a headless controller
    running.set()
    targets = controller.spec.targets
    log.info(
        "novacron started",
        pid=os.getpid(),
        spec=str(spec_path),
        store=controller.store.engine.url.render_as_string(hide_password=True),
        node=controller.node_id,
        targets=len(targets),
        replicas=sum(t.replicas for t in targets),
        api=listeners.api_url,
        metrics=listeners.metrics_url,
        autonomous=controller.gate.enabled,
        dry_run=controller.spec.policy.dry_run,
        token_file=str(token_file),
    )
    started = controller.clock.monotonic()
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, *reloads, return_exceptions=True)
        await controller.stop()
    reason = received[0] if received else "a server stopped"
    failed = [t for t in tasks if not t.cancelled() and t.exception() is not None]
    level = "error" if failed else "info"
    getattr(log, level)(
        "novacron stopped",
        reason=reason,
        uptime_s=round(controller.clock.monotonic() - started, 1),
        targets_stopped=len(targets),
        error=repr(failed[0].exception()) if failed else None,
    )
    if failed:
        from novacron.errors import NovacronError

        raise NovacronError(f"a server of the controller failed: {failed[0].exception()}")


def _start_servers(controller: Controller, listeners: _Listeners) -> tuple[list[Any], list[asyncio.Task[None]]]:
    """The API (and /metrics) on the controller's loop: handlers and scrapes read it without locks."""
    import asyncio

    from novacron.api import create_app
    from novacron.api.serve import make_metrics_server, make_server

    loop = asyncio.get_running_loop()
    servers = [make_server(create_app(controller), embedded=True)]
    tasks = [loop.create_task(_serve_api(servers[0].serve(sockets=[listeners.api])), name="api")]
    if listeners.metrics is not None:
        servers.append(make_metrics_server(controller.metrics.registry))
        tasks.append(loop.create_task(_serve_api(servers[1].serve(sockets=[listeners.metrics])), name="metrics"))
    return servers, tasks


def _on_signal(sig: signal.Signals, received: list[str], stop: asyncio.Event) -> None:
    received.append(sig.name)
    stop.set()


def _on_hangup(controller: Controller, reloads: set[asyncio.Task[None]], started: asyncio.Event) -> None:
    import asyncio

    task = asyncio.get_running_loop().create_task(_reload(controller, started), name="reload")
    reloads.add(task)
    task.add_done_callback(reloads.discard)


async def _reload(controller: Controller, started: asyncio.Event) -> None:
    """Apply the spec file as it is now; what refuses it is logged and audited by the controller."""
    from novacron.errors import InputError, StoreError
    from novacron.telemetry import get_logger

    await started.wait()
    try:
        await controller.reload(who="SIGHUP")
    except (InputError, StoreError):
        pass  # logged (naming the file and field) and audited; the running spec is unchanged
    except Exception as exc:  # a failed reload must not end the controller
        get_logger(component="run").error("spec reload failed", who="SIGHUP", error=repr(exc))


def _record(controller: Controller, listeners: _Listeners, spec_path: Path, token_file: str) -> Any:
    from novacron import __version__
    from novacron.store.presence import ControllerRecord

    return ControllerRecord(
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=controller.clock.now(),
        version=__version__,
        spec=str(spec_path),
        api_url=listeners.api_url,
        metrics_url=listeners.metrics_url,
        token_file=token_file,
        dry_run=controller.spec.policy.dry_run,
    )


async def _serve_api(serving: Any) -> None:
    """Run uvicorn; its start-up failures exit the process, so turn them into errors."""
    try:
        await serving
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn exited with {exc.code}") from None
