"""Bearer-token authentication and role checks.

Missing or invalid token → 401 with ``WWW-Authenticate: Bearer``; a valid token whose role
is too low → 403. Every refusal is audited (:mod:`novacron.api.refusals`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from novacron.api.context import ApiContext, get_ctx
from novacron.api.refusals import audit_refusal
from novacron.store.tokens import Role

__all__ = ["Principal", "authorize", "require"]

_bearer = HTTPBearer(auto_error=False, description="An API token: `novacron tokens create --role R`.")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and role."""

    name: str
    role: Role


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})


def authorize(ctx: ApiContext, request: Request, role: Role) -> Principal:
    """The caller of ``request`` if its bearer token has ``role`` or higher; else 401/403 (audited)."""
    method, path = request.method, request.url.path
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        audit_refusal(ctx, method, path, 401, why="missing bearer token")
        raise _unauthorized("missing bearer token")
    token = ctx.verify_token(credentials.strip())
    if token is None:
        audit_refusal(ctx, method, path, 401, why="invalid or revoked token")
        raise _unauthorized("invalid or revoked token")
    if not token.role.allows(role):
        audit_refusal(ctx, method, path, 403, actor=token.name, role=token.role.value, needed=role.value)
        raise HTTPException(403, f"{role.value} role required; token {token.name!r} is {token.role.value}")
    return Principal(token.name, token.role)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits tokens of ``role`` or higher."""

    async def check(
        request: Request,
        ctx: Annotated[ApiContext, Depends(get_ctx)],
        _cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # publishes the scheme
    ) -> Principal:
        return authorize(ctx, request, role)

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
