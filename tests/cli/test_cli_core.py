"""The CLI: bad input exits 2 naming what is wrong; nothing is started from a bad spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NOVACRON = [sys.executable, "-m", "novacron.cli"]


def _run(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOVACRON, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def test_validate_accepts_a_good_spec(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("targets: [{name: a, command: [sleep, '1']}]\n")
    res = _run("validate", "-c", str(spec))
    assert res.returncode == 0, res.stderr
    assert "valid" in res.stdout


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_invalid_spec_exits_2_with_the_field_path(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("targets:\n  - name: a\n    command: [x]\n    checks: [{type: http, url: nope}]\n")
    res = _run(command, "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2
    assert "targets[0].checks[0].url" in res.stderr
    assert not (tmp_path / ".novacron").exists(), "nothing is started from an invalid spec"


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("target", "where", "reason"),
    [
        (
            "{name: a, command: [sleep, '100'], port: 28999, checks: [{type: tcp, port: '{prot}'}]}",
            "targets[0].checks[0].port",
            "'{prot}' is not a port number or '{port}'",
        ),
        (
            "{name: a, command: [sleep, '100'], checks: [{type: http, url: 'http://127.0.0.1:{port}/'}]}",
            "targets[0]: checks[0].url",
            "'{port}' is the target's port, and it has none",
        ),
        (
            "{name: a, command: [sleep, '{port}']}",
            "targets[0]: command[1]",
            "'{port}' is the target's port, and it has none",
        ),
    ],
)
def test_a_port_placeholder_that_cannot_be_filled_exits_2_naming_it(
    tmp_path: Path, command: str, target: str, where: str, reason: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"targets: [{target}]\n")
    res = _run(command, "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"{where}: {reason}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".novacron").exists(), "nothing is started from an invalid spec"


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://db.example/fleet", "cannot use database URL 'mysql://db.example/fleet': No module named 'MySQLdb'"),
        ("nosuch://x", "cannot use database URL 'nosuch://x': Can't load plugin: sqlalchemy.dialects:nosuch"),
        ("fleet.db", "not a database URL: 'fleet.db'"),
    ],
)
def test_a_store_url_run_cannot_open_is_refused_by_validate_too(
    tmp_path: Path, command: str, url: str, reason: str
) -> None:
    spec = tmp_path / "fleet.yaml"
    spec.write_text(f"controller: {{store_url: '{url}'}}\ntargets: [{{name: a, command: [sleep, '100']}}]\n")
    res = _run(command, "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"error: store_url: {reason}" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.yaml"], "nothing is made for a store it cannot open"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_missing_program_is_named_by_file_and_entry(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "fleet.yaml"
    # The first target is another node's: this one starts only b, which is still targets[1] in the file.
    spec.write_text(
        "targets:\n  - {name: a, command: [sleep, '100'], host: elsewhere}\n"
        "  - {name: b, command: [/no/such/program]}\n"
    )
    res = _run(command, "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"error: {spec}: targets[1].command[0]: /no/such/program: no such file" in res.stderr
    assert not (tmp_path / ".novacron").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_yaml_syntax_error_is_named_by_file_line_and_column(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "fleet.yaml"
    spec.write_text("targets:\n  - name: a\n    command: [sleep, '100'\n")
    res = _run(command, "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (
        f"error: {spec}: not valid YAML at line 4, column 1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence at line 3, column 14)"
    )
    assert "<unicode string>" not in res.stderr


def test_a_missing_spec_file_is_named(tmp_path: Path) -> None:
    res = _run("validate", "-c", str(tmp_path / "absent.yaml"))
    assert res.returncode == 2
    assert "absent.yaml" in res.stderr


def test_an_unknown_flag_exits_2() -> None:
    res = _run("demo", "--duraton", "5")
    assert res.returncode == 2
    assert "--duraton" in res.stderr


def test_a_variant_command_with_an_unclosed_quote_exits_2_before_any_controller_is_asked(tmp_path: Path) -> None:
    res = _run("experiment", "start", "--target", "web", "--variant", "b=python3 'app", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert 'error: --variant: "python3 \'app" is not a command line: No closing quotation' in res.stderr
    assert "Traceback" not in res.stderr


def test_an_unknown_node_exits_2(tmp_path: Path) -> None:
    from novacron.store import Store

    Store.open(f"sqlite:///{tmp_path / 'n.db'}").close()
    for verb in ("drain", "undrain"):
        res = _run("node", verb, "nope", "--store", f"sqlite:///{tmp_path / 'n.db'}")
        assert res.returncode == 2, res.stderr
        assert "error: NODE_ID: no node 'nope' on this store (see `novacron node list`)" in res.stderr


def test_an_unknown_incident_exits_2(tmp_path: Path) -> None:
    from novacron.store import Store

    Store.open(f"sqlite:///{tmp_path / 'n.db'}").close()
    res = _run("incidents", "show", "inc-nope", "--store", f"sqlite:///{tmp_path / 'n.db'}")
    assert res.returncode == 2
    assert "inc-nope" in res.stderr


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("escalate", "'escalate' is taken only by automation (a human requests one of restart,"),
        ("open_circuit", "'open_circuit' is taken only by automation"),
        ("teleport", "unknown action 'teleport' (one of restart,"),
    ],
)
def test_heal_names_why_an_action_is_refused_before_reaching_the_controller(
    tmp_path: Path, action: str, reason: str
) -> None:
    res = _run("heal", "api", "--action", action, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert f"error: --action: {reason}" in res.stderr


def test_feedback_help_points_at_a_command_that_lists_action_ids() -> None:
    res = _run("feedback", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.replace("│", " ").split())  # the help's box folds lines at the terminal's width
    assert "novacron incidents show" in text
    assert "novacron actions" not in text, "there is no such command"


def test_a_bad_benchmark_kind_exits_2() -> None:
    res = _run("bench", "healing", "--faults", "2", "--kinds", "crash,meteor")
    assert res.returncode == 2
    assert "meteor" in res.stderr


def test_incidents_list_on_an_empty_store(tmp_path: Path) -> None:
    from novacron.store import Store

    url = f"sqlite:///{tmp_path / 'n.db'}"
    Store.open(url).close()
    res = _run("incidents", "list", "--store", url)
    assert res.returncode == 0, res.stderr
    assert "incidents" in res.stdout


def test_status_before_any_run(tmp_path: Path) -> None:
    res = _run("status", "--store", f"sqlite:///{tmp_path / 'n.db'}")
    assert res.returncode == 3
    assert "no controller has run here" in res.stderr
    assert not (tmp_path / "n.db").exists()


def test_an_unknown_detector_is_refused_before_anything_starts(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "targets:\n  - name: api\n    command: [sleep, '100']\n"
        "    metrics: {watch: [{metric: cpu_percent, detector: {detector: crystal_ball}}]}\n"
    )
    res = _run("run", "-c", str(spec), cwd=tmp_path)
    assert res.returncode == 2
    assert "targets[api].metrics.watch[0]" in res.stderr
    assert "crystal_ball" in res.stderr
    assert not (tmp_path / ".novacron").exists(), "not even the store is created"


def test_run_on_a_store_that_refuses_connections_exits_3_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        spec = tmp_path / "ok.yaml"
        spec.write_text("targets: [{name: a, command: [sleep, '100']}]\n")
        res = _run("run", "-c", str(spec), "--store", f"postgresql://novacron@127.0.0.1:{port}/x", cwd=tmp_path)
    assert res.returncode == 3, res.stderr
    assert f"cannot reach the store at postgresql+psycopg://novacron@127.0.0.1:{port}/x" in res.stderr
    assert "Connection refused" in res.stderr


def _store_with_one_incident_per_status(tmp_path: Path) -> str:
    from novacron.model import FaultKind, Incident, IncidentId, IncidentStatus, Priority, TargetId
    from novacron.store import Store

    url = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store.open(url)
    try:
        for n, status in enumerate(IncidentStatus):
            store.insert_incident(
                Incident(
                    id=IncidentId(f"inc-{status.value}"),
                    target=TargetId(f"t{n}"),
                    kind=FaultKind.CRASH,
                    status=status,
                    priority=Priority.P2,
                    opened_at=100.0 + n,
                    since=99.0 + n,
                )
            )
    finally:
        store.close()
    return url


@pytest.mark.parametrize("status", ["open", "mitigating", "resolved", "needs_human", "closed"])
def test_incidents_list_filters_by_status_as_the_api_does(tmp_path: Path, status: str) -> None:
    import json

    url = _store_with_one_incident_per_status(tmp_path)
    res = _run("incidents", "list", "--status", status, "--store", url, "--json")
    assert res.returncode == 0, res.stderr
    assert [(i["id"], i["status"]) for i in json.loads(res.stdout)] == [(f"inc-{status}", status)]


def test_incidents_list_refuses_an_unknown_status_naming_the_allowed_ones(tmp_path: Path) -> None:
    url = _store_with_one_incident_per_status(tmp_path)
    res = _run("incidents", "list", "--status", "bogus", "--store", url)
    assert res.returncode == 2
    allowed = "open, mitigating, resolved, needs_human, closed"
    assert f"error: --status: unknown status 'bogus' (one of {allowed})" in res.stderr
    contradiction = _run("incidents", "list", "--open", "--status", "resolved", "--store", url)
    assert contradiction.returncode == 2
    assert "--status" in contradiction.stderr
