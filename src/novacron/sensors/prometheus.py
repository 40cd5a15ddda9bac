"""A Prometheus source: PromQL instant and range queries as metric inputs.

:class:`PrometheusClient` talks to the HTTP API (``/api/v1/query`` and
``/api/v1/query_range``) over an async httpx client and parses the four result types
(vector, matrix, scalar, string) into plain records. :func:`to_observations` turns an
instant vector into :class:`~novacron.model.Observation` records for detectors and health
checks, one per target. Errors are ours: a query Prometheus rejects (``bad_data``) is an
:class:`~novacron.errors.InputError` naming the query; an unreachable or overloaded server
is a :class:`PrometheusUnavailableError` (temporary, retry later); a response that is not
the documented shape is a :class:`PrometheusResponseError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from novacron.errors import InputError, PermanentError, TemporaryError
from novacron.model import Observation, TargetId

__all__ = [
    "InstantResult",
    "PrometheusClient",
    "PrometheusResponseError",
    "PrometheusUnavailableError",
    "Sample",
    "Series",
    "to_observations",
]


class PrometheusUnavailableError(TemporaryError):
    """Prometheus could not be reached, timed out, or answered 5xx/503."""


class PrometheusResponseError(PermanentError):
    """Prometheus answered with something that is not the documented API shape."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series at one time (an instant-vector element)."""

    labels: Mapping[str, str]
    time: float
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series over a range: parallel ``times`` and ``values``."""

    labels: Mapping[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class InstantResult:
    """An instant query's answer: samples (vector) or a single scalar/string value."""

    result_type: str
    samples: tuple[Sample, ...] = ()
    scalar: float | None = None
    text: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _value(pair: Any, where: str) -> tuple[float, float]:
    """Parse Prometheus' ``[<unix time>, "<value>"]`` pair; values may be NaN/±Inf."""
    if not (isinstance(pair, list) and len(pair) == 2):
        raise PrometheusResponseError(f"{where}: expected [time, value], got {pair!r}")
    try:
        return float(pair[0]), float(pair[1])
    except (TypeError, ValueError) as exc:
        raise PrometheusResponseError(f"{where}: bad sample {pair!r}") from exc


def _labels(item: Any, where: str) -> dict[str, str]:
    metric = item.get("metric") if isinstance(item, dict) else None
    if not isinstance(metric, dict):
        raise PrometheusResponseError(f"{where}: missing 'metric' labels")
    return {str(k): str(v) for k, v in metric.items()}


def _parse_vector(result: Any) -> tuple[Sample, ...]:
    if not isinstance(result, list):
        raise PrometheusResponseError("data.result: expected a list for a vector")
    out = []
    for i, item in enumerate(result):
        t, v = _value(item.get("value") if isinstance(item, dict) else None, f"data.result[{i}].value")
        out.append(Sample(_labels(item, f"data.result[{i}]"), t, v))
    return tuple(out)


def _parse_matrix(result: Any) -> list[Series]:
    if not isinstance(result, list):
        raise PrometheusResponseError("data.result: expected a list for a matrix")
    out = []
    for i, item in enumerate(result):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise PrometheusResponseError(f"data.result[{i}].values: expected a list")
        pairs = [_value(p, f"data.result[{i}].values[{j}]") for j, p in enumerate(values)]
        out.append(Series(_labels(item, f"data.result[{i}]"), tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)))
    return out


class PrometheusClient:
    """Async client for one Prometheus server's query API."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError("must start with http:// or https://", where="base_url")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def query(self, promql: str, *, time: float | None = None) -> InstantResult:
        """Run an instant query (at ``time``, default: the server's now)."""
        params: dict[str, str] = {"query": promql}
        if time is not None:
            params["time"] = repr(time)
        data, warnings = await self._get("/api/v1/query", params, promql)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return InstantResult("vector", samples=_parse_vector(result), warnings=warnings)
        if kind == "scalar":
            return InstantResult("scalar", scalar=_value(result, "data.result")[1], warnings=warnings)
        if kind == "string":
            if not (isinstance(result, list) and len(result) == 2):
                raise PrometheusResponseError("data.result: expected [time, string]")
            return InstantResult("string", text=str(result[1]), warnings=warnings)
        if kind == "matrix":
            raise InputError("an instant query returned a range vector; use query_range", where=promql)
        raise PrometheusResponseError(f"data.resultType: unknown {kind!r}")

    async def query_range(self, promql: str, *, start: float, end: float, step: float) -> list[Series]:
        """Run a range query over [start, end] every ``step`` seconds."""
        if step <= 0:
            raise InputError("must be positive", where="step")
        if end < start:
            raise InputError("must not be before start", where="end")
        params = {"query": promql, "start": repr(start), "end": repr(end), "step": repr(step)}
        data, _ = await self._get("/api/v1/query_range", params, promql)
        if data.get("resultType") != "matrix":
            raise PrometheusResponseError(f"data.resultType: expected 'matrix', got {data.get('resultType')!r}")
        return _parse_matrix(data.get("result"))

    async def _get(self, path: str, params: dict[str, str], promql: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        url = self.base_url + path
        try:
            resp = await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusUnavailableError(f"{url}: {type(exc).__name__}: {exc}", delay=1.0) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PrometheusUnavailableError(f"{url}: HTTP {resp.status_code}", delay=2.0)
        try:
            body = resp.json()
        except ValueError as exc:
            raise PrometheusResponseError(f"{url}: HTTP {resp.status_code}, body is not JSON") from exc
        if not isinstance(body, dict):
            raise PrometheusResponseError(f"{url}: body is not a JSON object")
        if body.get("status") != "success":
            err_type, error = body.get("errorType", "unknown"), body.get("error", "no error message")
            if err_type == "bad_data" or resp.status_code in {400, 422}:
                raise InputError(f"{err_type}: {error}", where=f"query {promql!r}")
            raise PrometheusUnavailableError(f"{url}: {err_type}: {error}", delay=2.0)
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusResponseError(f"{url}: 'data' missing from a success response")
        warnings = tuple(str(w) for w in body.get("warnings", []) or [])
        return data, warnings


def to_observations(
    samples: Sequence[Sample],
    *,
    metric: str,
    target_label: str = "instance",
    source: str = "prometheus",
    healthy_if: tuple[float, float] | None = None,
) -> list[Observation]:
    """One :class:`Observation` per sample, keyed by ``target_label`` and named ``metric``.

    With ``healthy_if=(low, high)`` the observation's ``healthy`` says whether the value
    lies in the range, so a PromQL expression can serve as a health check. Samples that
    lack the target label are an error, not silently dropped; NaN values mark ``healthy``
    as unknown.
    """
    out: list[Observation] = []
    for i, s in enumerate(samples):
        target = s.labels.get(target_label)
        if not target:
            raise InputError(f"sample has no {target_label!r} label: {dict(s.labels)}", where=f"samples[{i}]")
        healthy = None
        if healthy_if is not None and not math.isnan(s.value):
            healthy = healthy_if[0] <= s.value <= healthy_if[1]
        out.append(
            Observation(
                target=TargetId(target),
                source=source,
                time=s.time,
                healthy=healthy,
                metrics={metric: s.value},
                detail=", ".join(f"{k}={v}" for k, v in sorted(s.labels.items())),
            )
        )
    return out
