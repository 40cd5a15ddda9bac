"""Repair templates: each proposes the expected edit, and every candidate is valid Python."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from novacron.codegen.candidates import template_candidates
from novacron.codegen.localise import Suspect
from novacron.codegen.security import patch_finding
from novacron.codegen.traceback import RootCause

CASES = [
    ("def f(a):\n    return a > 100\n", 2, RootCause.WRONG_OPERATOR, "return a >= 100"),
    ("def f(xs):\n    return xs[len(xs)]\n", 2, RootCause.OFF_BY_ONE, "return xs[len(xs) - 1]"),
    ("def f(n):\n    return sum(range(1, n))\n", 2, RootCause.OFF_BY_ONE, "range(1, n + 1)"),
    ("def f(a, b):\n    return a and b\n", 2, RootCause.WRONG_OPERATOR, "return a or b"),
    ("def f(u):\n    return u.name\n", 2, RootCause.NONE_ATTRIBUTE, "if u is None:\n        return None"),
    ("def f(d, k):\n    return d[k]\n", 2, RootCause.KEY_INDEX, "return d.get(k, 0)"),
    ("def f(n):\n    return 'n=' + n\n", 2, RootCause.TYPE, "'n=' + str(n)"),
    ("def f(a, b):\n    return g(b, a)\n", 2, RootCause.TYPE, "g(a, b)"),
    ("def f(a, b):\n    return a / b\n", 2, RootCause.VALUE_VALIDATION, "(a / b if b else 0)"),
    (
        "def f(xs):\n    out = []\n    for x in xs:\n        out.append(int(x))\n    return out\n",
        4,
        RootCause.VALUE_VALIDATION,
        "except (ValueError, TypeError, KeyError):\n            continue",
    ),
    ("def f(xs):\n    total = sum(xs)\n    scaled = total * 2\n", 3, RootCause.UNKNOWN, "return scaled"),
    (
        "def f(xs):\n    i = 0\n    while i < len(xs):\n        if not xs[i]:\n            continue\n        i += 1\n",
        5,
        RootCause.INFINITE_LOOP,
        "i += 1\n            continue",
    ),
    (
        "import urllib.request\n\n\ndef f(url, timeout=5):\n    return urllib.request.urlopen(url).status\n",
        5,
        RootCause.TIMEOUT,
        "urlopen(url, timeout=timeout)",
    ),
    ("def f(c):\n    v = c.fetch()\n    return v\n", 2, RootCause.TIMEOUT, "for _attempt in range(3):"),
    ("def f(p):\n    h = open(p)\n    return h.read()\n", 2, RootCause.RESOURCE_EXHAUSTION, "with open(p) as h:"),
    ("def f(p):\n    return open(p).read()\n", 2, RootCause.RESOURCE_EXHAUSTION, "with open(p) as _fh:"),
    ("def f(a, b):\n    low = a\n    return low\n", 2, RootCause.INFINITE_LOOP, "low = a + 1"),
]


@pytest.mark.parametrize(("source", "line", "cause", "expected"), CASES)
def test_template_proposes_the_repair(tmp_path: Path, source: str, line: int, cause: RootCause, expected: str) -> None:
    (tmp_path / "m.py").write_text(source, encoding="utf-8")
    candidates = template_candidates(tmp_path, [Suspect("m.py", line, 1.0, "test")], cause)
    assert candidates
    for c in candidates:
        ast.parse(c.source)  # every candidate is valid Python
    assert any(expected in c.source for c in candidates), [c.description for c in candidates]


def test_preferred_templates_of_the_class_come_first(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(d, k):\n    return d[k] > 1\n", encoding="utf-8")
    first = template_candidates(tmp_path, [Suspect("m.py", 2, 1.0, "")], RootCause.KEY_INDEX)[0]
    assert first.template == "missing_key"


@pytest.mark.parametrize(
    ("test_id", "source", "expected"),
    [
        ("B506", "import yaml\n\n\ndef load(t):\n    return yaml.load(t, Loader=yaml.Loader)\n", "yaml.safe_load(t)"),
        ("B602", "import subprocess\n\n\ndef run(c):\n    return subprocess.run(c, shell=True)\n", "shlex.split(c)"),
        ("B324", "import hashlib\n\n\ndef h(s):\n    return hashlib.md5(s).hexdigest()\n", "hashlib.sha256(s)"),
        ("B113", "import requests\n\n\ndef g(u):\n    return requests.get(u)\n", "requests.get(u, timeout=30)"),
    ],
)
def test_security_templates(test_id: str, source: str, expected: str) -> None:
    patched = patch_finding(source, {"test": test_id, "line": 5})
    assert patched is not None
    assert expected in patched
    ast.parse(patched)
    if test_id == "B602":
        assert "import shlex" in patched
        assert "shell=True" not in patched
