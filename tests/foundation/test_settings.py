"""The fleet spec: valid specs load, invalid ones name the field and the reason."""

from __future__ import annotations

import pytest

from novacron.errors import ConfigError
from novacron.model import RiskLevel
from novacron.settings import load_spec, spec_to_yaml

GOOD = """
name: shop
policy: {blast_radius: 0.3, approval_required: [high, critical]}
targets:
  - name: db
    command: [python, -m, http.server, "{port}"]
    port: 9000
    checks: [{type: tcp, port: "{port}", interval_s: 0.1}]
  - name: api
    command: [python, -c, "pass"]
    depends_on: [db]
    checks:
      - {type: http, url: "http://127.0.0.1:9001/health", timeout_s: 0.3}
      - {type: heartbeat, expected_interval_s: 0.5}
"""


def test_good_spec_round_trips() -> None:
    spec = load_spec(GOOD)
    assert [t.name for t in spec.targets] == ["db", "api"]
    assert spec.policy.needs_approval(RiskLevel.HIGH)
    assert not spec.policy.needs_approval(RiskLevel.LOW)
    assert load_spec(spec_to_yaml(spec)) == spec


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("targets: [{name: a, command: []}]", "targets[0].command"),
        ("targets: [{name: a, command: [x], checks: [{type: http, url: ftp://x}]}]", "targets[0].checks[0].url"),
        ("targets: [{name: a, command: [x], depends_on: [b]}]", "targets[0].depends_on[0]: unknown target 'b'"),
        (
            "targets: [{name: a, command: [x], depends_on: [b]}, {name: b, command: [x], depends_on: [a]}]",
            "dependency cycle",
        ),
        ("targets: [{name: a, command: [x]}, {name: a, command: [y]}]", "duplicate target name 'a'"),
        ("policy: {blast_radius: 2}\ntargets: []", "policy.blast_radius"),
        ("targets: [{name: a, command: [x], replicas: 5, max_replicas: 2}]", "exceeds max_replicas"),
        ("targets: [{name: a, command: [x], colour: red}]", "targets[0].colour"),
        ("- just a list", "top level must be a mapping"),
        ("targets: [", "not valid YAML"),
    ],
)
def test_bad_spec_names_the_field(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(yaml_text)
    assert expected in str(info.value)
