"""A controller and its API served by a real uvicorn server on a loopback port, in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from novacron.api import create_app
from novacron.api.serve import make_server
from novacron.runtime.controller import Controller
from novacron.settings import TargetSpec

from ..binaries import free_port
from .conftest import Tokens, make_tokens, start_controller

T = TypeVar("T")
_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}
__all__ = ["free_port", "on_loop", "served"]


@contextmanager
def served(tmp_path: Path, *targets: TargetSpec, **policy: Any) -> Iterator[tuple[str, Controller, Tokens]]:
    """Yield (base URL, controller, tokens) while uvicorn serves the controller's API.

    The controller lives on the server thread's loop; touch it from the test with
    :func:`on_loop`.
    """
    port = free_port()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        c = await start_controller(tmp_path, *targets, **policy)
        server = make_server(create_app(c), port=port, embedded=True)
        box.update(controller=c, server=server, tokens=make_tokens(c))
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        _LOOPS[id(c)] = asyncio.get_running_loop()
        ready.set()
        await task
        await c.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not ready.wait(0.05):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
    try:
        yield f"http://127.0.0.1:{port}", box["controller"], box["tokens"]
    finally:
        box["server"].should_exit = True
        thread.join(20)


def on_loop(c: Controller, fn: Callable[[], T]) -> T:
    """Run ``fn`` on the loop of the controller's server thread and return its result."""
    loop = _LOOPS[id(c)]

    async def call() -> T:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(10)
