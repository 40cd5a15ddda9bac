"""Alertmanager v4 intake: strict parsing naming the field, and one episode per alert."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import InputError
from novacron.model import FaultKind
from novacron.sensors.alertmanager import AlertDeduplicator, AlertSignal, parse_webhook

ALERT = {
    "status": "firing",
    "labels": {"alertname": "HighErrorRate", "job": "api", "instance": "10.0.0.5:9100", "severity": "page"},
    "annotations": {"summary": "5xx above 5%"},
    "startsAt": "2026-11-21T19:00:00.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
    "fingerprint": "c0ffee0123456789",
}
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "novacron",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "env": "prod"},
    "commonAnnotations": {"runbook": "web-recover"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [ALERT],
}


def payload(**alert_overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(PAYLOAD)
    body["alerts"][0].update(alert_overrides)
    return body


def test_parses_v4_into_alert_events_and_faults() -> None:
    (event,) = parse_webhook(json.dumps(PAYLOAD).encode())
    assert event.firing
    assert event.target == "api"  # 'job' comes before 'instance' in the default order
    assert event.labels["env"] == "prod"  # common labels are merged in
    assert event.annotations == {"runbook": "web-recover", "summary": "5xx above 5%"}
    assert event.starts_at == pytest.approx(1_795_287_600.123456)
    assert event.ends_at is None
    fault = event.to_fault(detected_at=1_795_287_601.0)
    assert fault.kind is FaultKind.ALERT
    assert fault.since == event.starts_at
    assert fault.evidence["alertname"] == "HighErrorRate"
    assert fault.id == event.fault_id


def test_target_label_is_configurable_and_falls_back_to_alertname() -> None:
    (event,) = parse_webhook(PAYLOAD, target_labels=("instance",))
    assert event.target == "10.0.0.5:9100"
    (bare,) = parse_webhook(payload(labels={"alertname": "Watchdog"}), target_labels=("target",))
    assert bare.target == "alert:Watchdog"


def test_same_alert_resent_200_times_is_one_episode_and_resolution_closes_it() -> None:
    dedup = AlertDeduplicator()
    body = json.dumps(PAYLOAD).encode()
    signals: list[AlertSignal] = []
    for i in range(200):  # 200 resends over ten minutes
        signals += dedup.observe_all(parse_webhook(body), now=1_795_287_600.0 + 3.0 * i)
    kinds = [s.kind for s in signals]
    assert kinds.count("opened") == 1
    assert kinds.count("repeated") == 199
    opened = signals[0]
    assert opened.fault is not None
    assert signals[-1].count == 200

    resolved_body = payload(status="resolved", endsAt="2026-11-21T19:12:00Z")
    (closing,) = dedup.observe_all(parse_webhook(resolved_body), now=1_795_288_400.0)
    assert closing.kind == "resolved"
    assert closing.fault_id == opened.fault.id
    assert closing.event.ends_at == pytest.approx(1_795_288_320.0)
    assert len(dedup) == 0
    # A late duplicate of the firing notification must not reopen the closed episode.
    assert list(dedup.observe_all(parse_webhook(body), now=1_795_288_401.0)) == []
    # The same labels firing again later is a new episode with a new fault id.
    (again,) = dedup.observe_all(parse_webhook(payload(startsAt="2026-11-21T20:00:00Z")), now=1_795_291_300.0)
    assert again.kind == "opened"
    assert again.fault is not None
    assert again.fault.id != opened.fault.id


def test_fault_ids_survive_a_restart() -> None:
    (event,) = parse_webhook(PAYLOAD)
    first = AlertDeduplicator().observe(event, now=1.0)
    second = AlertDeduplicator().observe(event, now=2.0)
    assert first is not None
    assert second is not None
    assert first.fault_id == second.fault_id


def test_missing_fingerprint_falls_back_to_a_label_hash() -> None:
    a = payload()
    del a["alerts"][0]["fingerprint"]
    b = copy.deepcopy(a)
    b["alerts"][0]["labels"] = dict(reversed(list(a["alerts"][0]["labels"].items())))
    assert parse_webhook(a)[0].fingerprint == parse_webhook(b)[0].fingerprint


def test_memory_is_bounded() -> None:
    dedup = AlertDeduplicator(max_episodes=10, stale_after_s=100.0)
    for i in range(50):
        dedup.observe(parse_webhook(payload(fingerprint=f"fp{i}"))[0], now=float(i))
    assert len(dedup) == 10
    dedup.observe(parse_webhook(payload(fingerprint="late"))[0], now=1000.0)
    assert len(dedup) == 1  # everything else went stale


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p.update(version="3"), "version"),
        (lambda p: p.pop("receiver"), "receiver"),
        (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda p: p["alerts"][0].update(labels={"job": 5}), "alerts[0].labels.job"),
        (lambda p: (p["alerts"][0].update(labels={"sev": "page"}), p.update(commonLabels={})), "alerts[0].labels"),
        (lambda p: p.update(alerts="none"), "alerts"),
    ],
)
def test_bad_payloads_name_the_field(mutate: Any, where: str) -> None:
    body = payload()
    mutate(body)
    with pytest.raises(InputError) as exc:
        parse_webhook(json.dumps(body))
    assert exc.value.where == where


def test_not_json_is_refused() -> None:
    with pytest.raises(InputError) as exc:
        parse_webhook(b"{not json")
    assert exc.value.where == "body"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*PAYLOAD.keys(), "x"]), _json, max_size=10), st.binary(max_size=40))
def test_garbage_is_an_input_error_never_a_crash(doc: dict[str, Any], raw: bytes) -> None:
    for body in (json.dumps({**PAYLOAD, **doc}), raw):
        try:
            parse_webhook(body)
        except InputError as exc:
            assert exc.where  # noqa: PT017 (the field must be named whatever the garbage)
