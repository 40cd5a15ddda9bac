"""The shipped corpus and ``novacron bench bugfix`` on a small subset of it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter

import pytest

from novacron.benchmarks.bugfix_corpus import load_corpus
from novacron.codegen import RootCause
from novacron.errors import InputError


def test_the_corpus_covers_every_class_with_held_back_tests() -> None:
    bugs = load_corpus()
    assert len(bugs) >= 40
    classes = Counter(b.bug_class for b in bugs)
    assert set(classes) == {c.value for c in RootCause}
    for b in bugs:
        for text in (*b.files.values(), b.tests, b.heldout, *(b.history or {}).values()):
            ast.parse(text)
        assert "def test_" in b.tests
        assert "def test_heldout" in b.heldout


def test_an_unknown_program_is_named() -> None:
    with pytest.raises(InputError, match="--only"):
        load_corpus(["no_such_program"])


def test_bench_bugfix_prints_one_json_object() -> None:
    only = "discount_threshold"
    proc = subprocess.run(
        [sys.executable, "-m", "novacron.cli", "bench", "bugfix", "--only", only, "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"bugs", "fixed", "plausible_but_wrong", "median_s", "by_class"} <= set(result)
    assert result["bugs"] == 1
    assert result["patches_editing_tests"] == 0
    assert result["fixed"] + result["plausible_but_wrong"] + result["not_fixed"] + result["errors"] == 1
    assert result["by_class"] == {"wrong_operator": {"bugs": 1, "fixed": 1, "plausible_but_wrong": 0}}
    assert result["fixed"] == 1
