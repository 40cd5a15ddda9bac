"""Error mapping (our exception tree → HTTP) and the request-body size limit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novacron.api.refusals import audit_refusal, caller
from novacron.api.schemas import ErrorOut
from novacron.errors import InputError, NotFoundError, SafetyBlockedError, TemporaryError

__all__ = ["ERROR_RESPONSES", "ApiError", "BodyLimit", "install_error_handlers"]

# Documented on every route so clients (and schemathesis) know the error shapes.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input; `field` names it."},
    401: {"model": ErrorOut, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorOut, "description": "The token's role is too low."},
    404: {"model": ErrorOut, "description": "No such record."},
    409: {"model": ErrorOut, "description": "The fleet's state refuses the request."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    503: {"model": ErrorOut, "description": "Needs a controller in this process, or the store is busy."},
}


class ApiError(Exception):
    """An HTTP error with a status, a reason and the field it concerns."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


def _error(status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorOut(detail=detail, field=field).model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map NovaCron errors to 400 / 404 / 409 / 503 with the field named; audit 422s."""

    async def on_input(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputError)
        return _error(400, exc.reason, exc.where or None)

    async def on_not_found(_r: Request, exc: Exception) -> JSONResponse:
        return _error(404, str(exc))

    async def on_blocked(_r: Request, exc: Exception) -> JSONResponse:
        return _error(409, str(exc))

    async def on_temporary(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TemporaryError)
        return _error(503, str(exc), headers={"Retry-After": str(max(1, round(exc.delay)))})

    async def on_api(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.detail, exc.field)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"  # ("body", "params", "replica")
        ctx = request.app.state.ctx
        audit_refusal(ctx, request.method, request.url.path, 422, actor=caller(ctx, request), field=field)
        return await request_validation_exception_handler(request, exc)

    async def on_too_deep(request: Request, _exc: Exception) -> JSONResponse:
        # A body nested deeper than the parser's recursion limit: bad input, not a server fault.
        ctx = request.app.state.ctx
        audit_refusal(ctx, request.method, request.url.path, 422, actor=caller(ctx, request), field="body")
        return _error(422, "nested too deeply", "body")

    app.add_exception_handler(ApiError, on_api)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(RecursionError, on_too_deep)
    app.add_exception_handler(InputError, on_input)
    app.add_exception_handler(NotFoundError, on_not_found)
    app.add_exception_handler(SafetyBlockedError, on_blocked)
    app.add_exception_handler(TemporaryError, on_temporary)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 before any handler parses them.

    A declared Content-Length is checked up front; a chunked body is read up to the limit
    and then refused, so nothing is parsed, let alone half-applied.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        app = scope.get("app")
        if app is not None and hasattr(app.state, "ctx"):
            audit_refusal(app.state.ctx, scope["method"], scope["path"], 413, limit=self.max_bytes)
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes", "field": "body"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
