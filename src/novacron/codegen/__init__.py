"""The bug fixer: crash logs and failing tests turned into a tested patch on a new branch.

Layer ``codegen`` (beside ``healing``, below ``agents``). Heavy tools — coverage.py,
libcst and bandit — come with the ``fix`` extra and are imported only where used, each
with a message naming the extra.
"""

from __future__ import annotations

from novacron.codegen.fixer import FixRequest, fix
from novacron.codegen.llm import ChatProvider
from novacron.codegen.report import FixReport
from novacron.codegen.sandbox import SandboxLimits, network_isolation
from novacron.codegen.traceback import ParsedTraceback, RootCause, classify, find_traceback

__all__ = [
    "ChatProvider",
    "FixReport",
    "FixRequest",
    "ParsedTraceback",
    "RootCause",
    "SandboxLimits",
    "classify",
    "find_traceback",
    "fix",
    "network_isolation",
]
