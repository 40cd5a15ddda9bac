"""The HTTP API: REST views and control, Alertmanager and heartbeat intake, auth, audit, dashboard.

``create_app`` is imported on first use, so commands that only need the read models
(``novacron incidents postmortem``) do not pay for FastAPI and the controller.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novacron.api.app import DEFAULT_MAX_BODY, create_app

__all__ = ["DEFAULT_MAX_BODY", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("novacron.api.app"), name)
    raise AttributeError(f"module 'novacron.api' has no attribute {name!r}")
