"""A reloaded spec against the one in force: what changes in place, and what is refused by name."""

from __future__ import annotations

import pytest
import yaml

from novacron.errors import InputError
from novacron.runtime.reload import plan_reload
from novacron.settings import FleetSpec, load_spec, parse_spec

BASE = """
name: shop
policy: {blast_radius: 0.5}
controller: {store_url: "sqlite:///n.db", api_port: 8700}
targets:
  - {name: db, command: [db], port: 9000}
  - {name: api, command: [api], depends_on: [db]}
  - {name: old, command: [old]}
  - {name: edge, kind: remote, action_url: "http://10.0.0.9/act"}
"""


def test_targets_added_removed_changed_and_unchanged_and_the_policy() -> None:
    base = load_spec(BASE)
    api = base.target("api").model_copy(update={"command": ["api", "--v2"]})
    new = base.target("db").model_copy(update={"name": "cache", "port": 9100})
    spec = base.model_copy(
        update={
            "targets": [base.target("db"), api, new, base.target("edge")],
            "policy": base.policy.model_copy(update={"blast_radius": 0.2}),
        }
    )
    plan = plan_reload(base, spec, source="fleet.yaml")
    assert [t.name for t in plan.added] == ["cache"]
    assert [t.name for t in plan.removed] == ["old"]
    assert plan.changed == [api]
    assert plan.unchanged == ["db", "edge"]
    assert plan.policy_changed
    assert not plan.empty
    assert plan_reload(base, load_spec(BASE), source="fleet.yaml").empty


def test_a_change_to_only_how_a_target_is_watched_is_rechecked_not_restarted() -> None:
    base = load_spec(BASE)
    watched = base.target("api").model_copy(update={"depends_on": [], "labels": {"tier": "web"}, "start_timeout_s": 30})
    run_anew = base.target("db").model_copy(update={"labels": {"tier": "db"}, "env": {"MODE": "fast"}})
    targets = [run_anew, watched, base.target("old"), base.target("edge")]
    plan = plan_reload(base, base.model_copy(update={"targets": targets}), source="fleet.yaml")
    assert (plan.rechecked, plan.changed) == ([watched], [run_anew])
    assert not plan.empty
    # The order of the targets is not a change.
    assert plan_reload(base, base.model_copy(update={"targets": base.targets[::-1]}), source="fleet.yaml").empty


def _edited(section: str, **values: object) -> FleetSpec:
    doc = yaml.safe_load(BASE)
    if section == "targets":
        doc["targets"] = [t for t in doc["targets"] if t["name"] not in values["drop"]]  # type: ignore[operator]
    elif section:
        doc[section] = {**doc.get(section, {}), **values}
    else:
        doc.update(values)
    doc["policy"]["dry_run"] = True  # beside a change that could be applied: refused all the same
    return parse_spec(doc)


@pytest.mark.parametrize(
    ("edited", "named"),
    [
        (_edited("controller", store_url="sqlite:///other.db"), "controller.store_url"),
        (_edited("controller", api_port=8701), "controller.api_port"),
        (_edited("controller", ha={"shards": 8}), "controller.ha"),
        (_edited("", name="other"), "name"),
        (_edited("targets", drop=["edge"]), "targets[edge].kind (remote targets are built once at start)"),
    ],
)
def test_what_cannot_change_in_place_is_refused_by_name_with_nothing_applied(edited: FleetSpec, named: str) -> None:
    with pytest.raises(InputError) as refused:
        plan_reload(load_spec(BASE), edited, source="fleet.yaml")
    assert refused.value.where == "fleet.yaml"
    assert f"cannot change in place: {named} (restart novacron run to apply them)" in refused.value.reason
    assert "nothing was applied, the running spec is unchanged" in refused.value.reason


def test_a_target_with_a_frontend_or_metrics_cannot_be_added_in_place() -> None:
    base = load_spec(BASE)
    watched = load_spec(
        BASE + "  - {name: m, command: [m], metrics: {process: true, watch: [{metric: cpu_percent, type: cpu}]}}\n"
    )
    with pytest.raises(InputError, match=r"targets\[m\]\.metrics"):
        plan_reload(base, watched, source="fleet.yaml")
