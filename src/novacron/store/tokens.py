"""API tokens: bearer secrets stored only as SHA-256 hashes, each with a name and a role.

A token reads ``nvc_<id>.<secret>``. The id finds the row; the secret is hashed and
compared with :func:`hmac.compare_digest`, so neither the lookup nor the comparison
reveals how much of a guess was right. The secret is shown once, when created, and
never stored: a copy of the database grants no access. A 256-bit random secret needs
no slow password hash; SHA-256 is enough against guessing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from novacron.errors import InputError, NotFoundError, StoreError
from novacron.store import tables as t
from novacron.store.repo import Store

__all__ = ["ApiToken", "Role", "TokenStore", "hash_secret"]

_PREFIX = "nvc_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class Role(enum.StrEnum):
    """What a token may do; each role includes the ones below it."""

    VIEWER = "viewer"  # read everything
    OPERATOR = "operator"  # act: heal, roll back, acknowledge, approve, send intake
    ADMIN = "admin"  # the kill switch

    @property
    def rank(self) -> int:
        """Order of privilege: viewer < operator < admin."""
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role includes ``needed``."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token (without its secret)."""

    id: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    """The hex SHA-256 kept in place of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_from_row(row: Any) -> ApiToken:
    return ApiToken(row["id"], row["name"], Role(row["role"]), row["created_at"], row["revoked_at"])


class TokenStore:
    """Creates, verifies, lists and revokes API tokens in the store's database."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    def _rows(self, stmt: Any) -> list[Any]:
        try:
            with self._engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise StoreError(f"token read failed: {exc}", delay=0.5) from exc

    def _write(self, stmt: Any) -> int:
        try:
            with self._engine.begin() as conn:
                return int(conn.execute(stmt).rowcount)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"token write failed: {exc}", delay=0.5) from exc

    def create(self, name: str, role: Role | str, *, now: float) -> tuple[ApiToken, str]:
        """A new token; returns the record and the full token string (shown once)."""
        if not _NAME.match(name):
            raise InputError("1-64 letters, digits or _.@- starting with a letter or digit", where="name")
        try:
            role = Role(role)
        except ValueError:
            raise InputError(f"unknown role {role!r} (expected viewer, operator or admin)", where="role") from None
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        try:
            self._write(
                insert(t.api_tokens).values(
                    id=token_id, name=name, role=role.value, sha256=hash_secret(secret), created_at=now
                )
            )
        except IntegrityError:
            raise InputError(f"a token named {name!r} already exists", where="name") from None
        return ApiToken(token_id, name, role, now), f"{_PREFIX}{token_id}.{secret}"

    def verify(self, token: str) -> ApiToken | None:
        """The active token ``token`` names, or None when it is unknown, wrong or revoked."""
        if not token.startswith(_PREFIX) or "." not in token:
            return None
        token_id, _, secret = token[len(_PREFIX) :].partition(".")
        rows = self._rows(select(t.api_tokens).where(t.api_tokens.c.id == token_id))
        # Hash even when the id is unknown, so timing does not tell which ids exist.
        stored = rows[0]["sha256"] if rows else "0" * 64
        if not hmac.compare_digest(stored, hash_secret(secret)) or not rows:
            return None
        record = _token_from_row(rows[0])
        return record if record.active else None

    def list(self) -> list[ApiToken]:
        """Every token, oldest first."""
        return [_token_from_row(r) for r in self._rows(select(t.api_tokens).order_by(t.api_tokens.c.created_at))]

    def revoke(self, name: str, *, now: float) -> ApiToken:
        """Revoke the token called ``name``."""
        stmt = (
            update(t.api_tokens)
            .where((t.api_tokens.c.name == name) & t.api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if self._write(stmt) == 0:
            raise NotFoundError(f"no active token named {name!r}")
        rows = self._rows(select(t.api_tokens).where(t.api_tokens.c.name == name))
        return _token_from_row(rows[0])

    def delete(self, name: str) -> None:
        """Forget the token called ``name`` entirely (the controller's local token, replaced at start)."""
        self._write(delete(t.api_tokens).where(t.api_tokens.c.name == name))
