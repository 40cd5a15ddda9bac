"""The dashboard: one HTML page, a stylesheet and a script, all served from the package.

No build step and no CDN (the page must work on machines without internet access). The
script talks only to this API with the token the operator pastes in, kept in
``localStorage``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
# Only our own files run: no inline script, no third-party origin.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


@cache
def _asset(name: str) -> bytes:
    return resources.files("novacron.api").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response:
    kind = name.rsplit(".", 1)[-1]
    headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return Response(_asset(name), media_type=_TYPES[kind], headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    """The dashboard lives at /dashboard."""
    return RedirectResponse("/dashboard")


@router.get("/dashboard")
async def page() -> Response:
    """The dashboard page."""
    return _serve("dashboard.html")


@router.get("/static/dashboard.js")
async def script() -> Response:
    """The dashboard's script."""
    return _serve("dashboard.js")


@router.get("/static/studies.js")
async def studies_script() -> Response:
    """The script that draws tuning studies (parallel coordinates, Pareto fronts)."""
    return _serve("studies.js")


@router.get("/static/dashboard.css")
async def style() -> Response:
    """The dashboard's stylesheet."""
    return _serve("dashboard.css")
