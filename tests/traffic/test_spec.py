"""The frontend and experiments blocks: bad input names its field path."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.errors import ConfigError
from novacron.settings import parse_spec

WEB = {"name": "web", "command": ["x"], "port": 8000, "frontend": {"listen": "127.0.0.1:8080"}}
EXP = {"name": "e", "target": "web", "command": ["y", "{port}"]}


@pytest.mark.parametrize(
    ("targets", "experiments", "match"),
    [
        ([{**WEB, "frontend": {"listen": "nowhere"}}], [], r"targets\[0\]\.frontend\.listen"),
        ([{**WEB, "port": None}], [], r"targets\[0\]\.port: a target with a frontend needs a port"),
        ([{**WEB, "frontend": None}], [EXP], r"experiments\[0\]\.target: 'web' is not a target with a frontend"),
        ([WEB], [{**EXP, "steps": [10, 150]}], r"experiments\[0\]\.steps"),
        ([WEB], [EXP, EXP], r"experiments\[1\]\.name: duplicate"),
        ([WEB], [{**EXP, "arms": {"c": ["z"]}}], r"more arms need allocation"),
        ([WEB], [{**EXP, "allocation": "ucb1"}], r"at least one more arm"),
        ([WEB], [{**EXP, "allocation": "ucb1", "arms": {"a": ["z"]}}], r"not 'a'"),
    ],
)
def test_bad_traffic_blocks_name_the_field(targets: list[Any], experiments: list[Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_spec({"targets": targets, "experiments": experiments})


def test_a_valid_canary_and_bandit_parse() -> None:
    bandit = {**EXP, "name": "b3", "allocation": "thompson", "arms": {"c": ["z", "{port}"]}}
    spec = parse_spec({"targets": [WEB], "experiments": [EXP, bandit]})
    assert [e.allocation for e in spec.experiments] == ["canary", "thompson"]
    assert spec.experiments[0].steps == [1.0, 10.0, 50.0, 100.0]
