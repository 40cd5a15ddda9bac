"""Audit lines for refused requests: 401, 403, 413 and 422 leave a trace like any other call.

The verb is ``api.<method> <path>`` and the subject the path; the store clips both to its
column sizes, so a refusal about a very long path is audited, not lost. An audit write that
fails (the store is down) is logged and never turns the refusal into a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from novacron.api.context import ApiContext
from novacron.errors import StoreError
from novacron.telemetry import get_logger

__all__ = ["audit_refusal", "caller"]

_RESULTS = {401: "unauthorized", 403: "forbidden", 413: "too_large", 422: "invalid"}


def audit_refusal(
    ctx: ApiContext, method: str, path: str, status: int, *, actor: str = "anonymous", **detail: Any
) -> None:
    """Record that a ``method`` request to ``path`` was refused with ``status``."""
    try:
        ctx.store.audit(
            now=ctx.clock.now(),
            actor=actor,
            verb=f"api.{method.lower()} {path}",
            subject=path,
            result=_RESULTS.get(status, str(status)),
            status=status,
            **detail,
        )
    except StoreError as exc:
        get_logger(component="api").error("refusal not audited", path=path[:200], status=status, error=str(exc))


def caller(ctx: ApiContext, request: Request) -> str:
    """The name of the request's valid bearer token, else ``anonymous`` (for refusals after auth)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = ctx.verify_token(credentials.strip()) if scheme.lower() == "bearer" and credentials else None
    return "anonymous" if token is None else token.name
