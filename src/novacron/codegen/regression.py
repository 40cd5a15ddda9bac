"""A regression test that reproduces the crash, where the failing run gives the inputs.

The probe records the innermost call inside the repository with its arguments when they
are Python literals; the generated test calls the function with them and fails on the
same exception type. It is added as a new file and never replaces an existing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["regression_test"]


def _module_name(rel: Path) -> str | None:
    parts = list(rel.with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


def regression_test(root: Path, calls: Mapping[str, Any], fix_id: str) -> tuple[str, str] | None:
    """(relative path, source) of a new test file, or None when the inputs are not known."""
    for call in calls.values():
        args: Mapping[str, str | None] = call.get("args", {})
        if call.get("qualname") != call.get("func") or any(v is None for v in args.values()):
            continue  # methods and closures need an object; non-literal inputs cannot be written down
        try:
            rel = Path(call["file"]).resolve().relative_to(root.resolve())
        except ValueError:
            continue
        module = _module_name(rel)
        if module is None:
            continue
        func, exc = call["func"], call.get("exc_type", "Exception")
        kwargs = ", ".join(f"{k}={v}" for k, v in args.items())
        folder = "tests" if (root / "tests").is_dir() else "."
        path = f"{folder}/test_novacron_regression_{fix_id}.py".removeprefix("./")
        body = (
            f'"""Regression test for fix {fix_id}: {func} raised {exc} on these inputs."""\n\n'
            f"from {module} import {func}\n\n\n"
            f"def test_{func}_no_{exc.lower()}_{fix_id}() -> None:\n"
            f"    {func}({kwargs})\n"
        )
        return path, body
    return None
