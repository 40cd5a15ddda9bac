"""Where the running controller is, and whether it is still alive: its record in the store.

``novacron run`` announces itself (pid, host, API address, metrics address, the file with
its local admin token) when it starts, writes a heartbeat every few seconds while it runs
and a farewell when it stops cleanly. Operator commands find the controller's API here
(as ``supervisorctl`` finds supervisord's socket), and ``novacron status`` tells a
controller that is running from one that stopped, crashed or went quiet.

The local admin token lives in a file only its owner may read (mode 0600) in the
controller's working directory; only its hash is in the store, like any other token.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from novacron.store.repo import Store
from novacron.store.tokens import Role, TokenStore

__all__ = [
    "HEARTBEAT_S",
    "LOCAL_TOKEN_NAME",
    "STALE_AFTER_S",
    "ControllerRecord",
    "Presence",
    "announce",
    "beat",
    "ensure_local_token",
    "farewell",
    "local_token_name",
    "presence",
]

HEARTBEAT_S = 2.0  # how often a running controller writes its heartbeat
STALE_AFTER_S = 10.0  # no write for this long: the controller is stale (hung, or gone)
LOCAL_TOKEN_NAME = "local-admin"  # noqa: S105 - a token's name, not its secret
_RECORD_KEY = "controller"
_HEARTBEAT_KEY = "controller.heartbeat"


@dataclass(frozen=True, slots=True)
class ControllerRecord:
    """What a controller says about itself when it starts (and when it stops)."""

    pid: int
    host: str
    started_at: float
    version: str
    spec: str
    api_url: str | None = None
    metrics_url: str | None = None
    token_file: str | None = None
    stopped_at: float | None = None
    dry_run: bool = False  # decides and records, touches nothing

    @classmethod
    def of(cls, data: Any) -> ControllerRecord | None:
        """From the stored mapping (None when absent or not a record)."""
        if not isinstance(data, dict):
            return None
        names = cls.__dataclass_fields__.keys()
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError:
            return None


@dataclass(frozen=True, slots=True)
class Presence:
    """The controller's record and when it last wrote its heartbeat (wall-clock seconds)."""

    record: ControllerRecord | None
    last_write: float | None


def announce(store: Store, record: ControllerRecord, *, now: float) -> None:
    """Record a starting controller (replacing any earlier one) and its first heartbeat."""
    store.put_setting(_RECORD_KEY, asdict(record), now=now)
    beat(store, now=now)


def beat(store: Store, *, now: float) -> None:
    """The controller is alive at ``now``."""
    store.put_setting(_HEARTBEAT_KEY, now, now=now)


def farewell(store: Store, *, now: float) -> None:
    """The controller stopped cleanly at ``now``."""
    record = ControllerRecord.of(store.get_setting(_RECORD_KEY))
    if record is not None:
        store.put_setting(_RECORD_KEY, {**asdict(record), "stopped_at": now}, now=now)
    beat(store, now=now)


def presence(store: Store) -> Presence:
    """What the store knows of the controller."""
    last = store.get_setting(_HEARTBEAT_KEY)
    return Presence(ControllerRecord.of(store.get_setting(_RECORD_KEY)), float(last) if last is not None else None)


def local_token_name(node_id: str | None) -> str:
    """``local-admin``, or ``local-admin.NODE`` for a controller that is one node among several.

    Nodes sharing a store each keep their own local token: one starting must not revoke
    another's.
    """
    if node_id is None:
        return LOCAL_TOKEN_NAME
    return f"{LOCAL_TOKEN_NAME}.{re.sub(r'[^A-Za-z0-9_.@-]', '-', node_id)}"[:64]


def ensure_local_token(store: Store, path: Path, *, now: float, node_id: str | None = None) -> Path:
    """An admin token for local operator commands, in ``path`` (mode 0600); reused while valid.

    A file whose token no longer verifies (revoked, or from another store) is replaced:
    the old local token (:func:`local_token_name`) is revoked and a new one written.
    """
    tokens = TokenStore(store)
    name = local_token_name(node_id)
    with contextlib.suppress(OSError):
        current = tokens.verify(path.read_text(encoding="utf-8").strip())
        if current is not None and current.name == name and current.role is Role.ADMIN:
            return path
    if any(t.name == name for t in tokens.list()):
        tokens.delete(name)
    _record, secret = tokens.create(name, Role.ADMIN, now=now)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a token
    return path
