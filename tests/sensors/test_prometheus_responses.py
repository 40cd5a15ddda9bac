"""Responses a healthy Prometheus never sends still fail clearly, never with a stray exception."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError, NovacronError
from novacron.sensors.prometheus import (
    PrometheusClient,
    PrometheusResponseError,
    PrometheusUnavailableError,
    Sample,
    to_observations,
)


def client_answering(status: int, body: bytes) -> PrometheusClient:
    transport = httpx.MockTransport(lambda _req: httpx.Response(status, content=body))
    return PrometheusClient("http://prom.test", client=httpx.AsyncClient(transport=transport))


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, b"overloaded", PrometheusUnavailableError),
        (200, b"<html>", PrometheusResponseError),
        (200, b"[]", PrometheusResponseError),
        (200, b'{"status":"success"}', PrometheusResponseError),
        (
            200,
            b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}',
            PrometheusResponseError,
        ),
        (200, b'{"status":"success","data":{"resultType":"tensor","result":[]}}', PrometheusResponseError),
        (422, b'{"status":"error","errorType":"execution","error":"too many samples"}', InputError),
        (200, b'{"status":"error","errorType":"timeout","error":"query timed out"}', PrometheusUnavailableError),
    ],
)
async def test_malformed_and_error_responses(status: int, body: bytes, error: type[Exception]) -> None:
    prom = client_answering(status, body)
    with pytest.raises(error):
        await prom.query("up")


_KEYS = st.sampled_from(["status", "data", "resultType", "result", "metric", "value", "values"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_JSON)
async def test_any_json_is_parsed_or_refused_with_our_error(doc: Any) -> None:
    prom = client_answering(200, json.dumps({"status": "success", "data": doc}).encode())
    for call in (lambda: prom.query("up"), lambda: prom.query_range("up", start=0, end=10, step=1)):
        with contextlib.suppress(NovacronError):
            await call()


def test_observations_need_the_target_label() -> None:
    with pytest.raises(InputError) as exc:
        to_observations([Sample({"job": "x"}, 1.0, 2.0)], metric="m", target_label="instance")
    assert exc.value.where == "samples[0]"


def test_base_url_is_checked() -> None:
    with pytest.raises(InputError, match="http"):
        PrometheusClient("prom:9090")
