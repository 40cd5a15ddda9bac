"""The evidence that tells a hung service from a noisy neighbour's victim and a failed host's target."""

from __future__ import annotations

from collections import Counter

from novacron.benchmarks.learning import learning_fleet
from novacron.healing.hosts import chain_of
from novacron.learning import FaultContext, answers_slowed, features, host_state
from novacron.runtime.hostview import FleetHosts
from novacron.runtime.training import fault_plans, run_on_twin
from novacron.settings import LearningSpec, parse_spec


def test_a_slowdown_before_silence_is_told_from_jitter() -> None:
    assert answers_slowed([0.010, 0.012, 0.011, 0.010, 0.090])
    assert not answers_slowed([0.010, 0.012, 0.011, 0.010, 0.012]), "steady answers"
    assert not answers_slowed([0.001, 0.001, 0.001, 0.001, 0.005]), "5x slower but only by 4 ms"
    assert not answers_slowed([0.010, 0.200]), "too few answers to compare with"


def test_host_states_and_their_features_differ() -> None:
    assert host_state(0.95) == "busy"
    assert host_state(0.3) == "ok"
    assert host_state(None) == "down"
    assert host_state(0.3, known=False) == "unknown"
    hang = FaultContext(kind="hang", detail="no_answer", host="ok")
    starved = FaultContext(kind="hang", detail="no_answer", host="busy", slowed=True)
    lost = FaultContext(kind="hang", detail="no_answer", host="down", peers_failing=True)
    assert len({tuple(features(c)) for c in (hang, starved, lost)}) == 3
    assert FaultContext.from_dict(lost.to_dict()) == lost
    assert FaultContext.from_dict({"kind": "hang"}).host == "unknown", "decisions logged before host evidence"


def test_a_dependency_chain_is_no_evidence_about_the_host() -> None:
    graph = {"db": [], "api": ["db"], "web": ["api"], "cache": []}
    assert chain_of("api", graph) == {"db", "api", "web"}
    assert chain_of("cache", graph) == {"cache"}


def test_processes_run_on_the_node_whose_load_is_the_host_evidence() -> None:
    spec = parse_spec(
        {
            "targets": [
                {"name": "a", "command": ["true"]},
                {"name": "b", "kind": "remote", "checks": [{"type": "tcp", "host": "127.0.0.1", "port": 9}]},
            ]
        }
    )
    hosts = FleetHosts(spec, "n1", local_load=lambda: 0.97)
    assert hosts.host_of("a") == "node-n1"
    assert host_state(hosts.load("node-n1")) == "busy"
    assert hosts.host_of("b") is None, "a remote endpoint's host is not ours to read"


def test_the_controller_tells_the_three_silent_faults_apart_on_the_twin() -> None:
    """Through the real controller: each fault's first decision carries its host's evidence."""
    learning = LearningSpec(enabled=True, learner="ladder", explore=False)
    spec = learning_fleet().model_copy(update={"learning": learning})
    kinds = ("dependency", "noisy_neighbour", "host_failure")
    plans = fault_plans(spec, 18, seed=5, kinds=kinds)
    run = run_on_twin(spec, plans)
    by_incident = {r.incident_id: r.plan.kind for r in run.times.results}
    upstreams = {p.struck for p in plans if p.kind == "dependency"}
    seen: Counter[tuple[str, str]] = Counter()
    for d in run.decisions:
        if d.context["tried"]:
            continue
        kind = by_incident.get(d.incident_id)
        if kind is None and d.target in upstreams:
            kind = "dependency"  # the hung upstream's own incident (the plan measures its dependent)
        if kind is not None:
            seen[(kind, str(d.context["host"]))] += 1
    by_kind = {k: {h for (kind, h) in seen if kind == k} for k in kinds}
    assert by_kind["noisy_neighbour"] == {"busy"}, seen
    assert by_kind["host_failure"] == {"down"}, seen
    assert by_kind["dependency"] == {"ok"}, seen
