"""Whatever a user writes, loading a spec gives a valid spec or a ConfigError — never a crash."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.errors import ConfigError
from novacron.settings import FleetSpec, load_spec, parse_spec

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
target_keys = st.sampled_from(
    ["name", "command", "port", "replicas", "max_replicas", "checks", "depends_on", "metrics", "env", "kind"]
)
targets = st.dictionaries(target_keys, values, max_size=6)
specs = st.fixed_dictionaries(
    {},
    optional={
        "targets": st.lists(targets, max_size=3),
        "policy": st.dictionaries(st.sampled_from(["blast_radius", "dry_run", "backoff", "ladder"]), values),
        "name": values,
    },
)


@settings(max_examples=300, deadline=None)
@given(specs)
def test_any_mapping_is_a_spec_or_a_config_error(data: dict[str, object]) -> None:
    try:
        spec = parse_spec(data)
    except ConfigError as exc:
        message = str(exc)
        assert message, "an error names what is wrong"
    else:
        assert isinstance(spec, FleetSpec)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_spec_or_a_config_error(text: str) -> None:
    try:
        load_spec(text)
    except ConfigError as exc:
        message = str(exc)
        assert message, "an error names what is wrong"


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4))
def test_a_valid_spec_survives_a_round_trip_through_yaml(name: str, command: list[str]) -> None:
    spec = parse_spec({"name": name, "targets": [{"name": "a", "command": command}]})
    again = load_spec(yaml.safe_dump(spec.model_dump(mode="json")))
    assert again == spec
