"""Steering a running controller from the command line: through its API, audited, with exit codes."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from novacron.demo.fleet import free_port_block
from novacron.settings import HttpCheck
from novacron.store import Store
from novacron.store.tokens import Role, TokenStore

from .runner import Running, cli, cli_json, controller, spawn, steady_service, wait_for, write_spec


def _target(status: dict[str, Any], name: str = "api") -> dict[str, Any]:
    return next(t for t in status["targets"] if t["name"] == name)


def _healed_again(run: Running, old_pid: int) -> int | None:
    """The new pid once the target is healthy again and its incident resolved."""
    t = _target(_live(run))
    done = t["state"] == "healthy" and t["pid"] not in (None, old_pid) and t["incident"] is None
    return int(t["pid"]) if done else None


def _viewer_token(tmp_path: Path) -> str:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        return TokenStore(store).create("viewer-1", Role.VIEWER, now=time.time())[1]
    finally:
        store.close()


def _live(run: Running) -> dict[str, Any]:
    """``GET /status`` (the same document as ``status --json``): cheap enough to poll."""
    return dict(_get(run, "/status"))


def _get(run: Running, path: str) -> Any:
    token = Path(run.started["token_file"]).read_text().strip()
    res = httpx.get(f"{run.started['api']}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    res.raise_for_status()
    return res.json()


@pytest.mark.timeout(300)  # twenty-odd commands, each a fresh Python process; slower on a busy machine
def test_operator_commands_steer_the_controller_through_its_api(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, steady_service("api"), flap={"threshold": 2, "window_s": 120, "quarantine_s": 600})
    with controller(spec) as run:
        where = ["-c", str(spec)]
        status = cli_json("status", *where)
        assert status["controller"]["state"] == "running"
        assert status["controller"]["api_url"] == run.started["api"]
        api = wait_for(lambda: (t := _target(_live(run)))["state"] == "healthy" and t, "api healthy")
        assert isinstance(api["pid"], int)
        assert api["restarts"] == 0

        restarted = cli_json("restart", "api", *where)
        assert restarted["status"] == "verified"
        after = wait_for(lambda: (t := _target(_live(run)))["restarts"] >= 1 and t, "the restart recorded")
        assert after["restarts"] == 1, after
        assert after["pid"] != api["pid"]

        stopped = cli("stop", "api", *where)
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: _target(_live(run))["state"] == "stopped", "api stopped")
        started = cli("start", "api", *where)
        assert started.returncode == 0, started.stderr
        assert "verified" in started.stdout
        assert cli_json("heal", "api", "--action", "replace", *where)["status"] == "verified"

        # Bad input: exit 2 naming what is wrong; nothing acts.
        unknown = cli("restart", "nope", *where)
        assert unknown.returncode == 2
        assert "nope" in unknown.stderr
        bad_action = cli("heal", "api", "--action", "teleport", *where)
        assert bad_action.returncode == 2
        assert "--action" in bad_action.stderr

        # Two crashes within the flap window: quarantined and escalated; a human lifts it, acks, starts it.
        first = wait_for(lambda: (t := _target(_live(run)))["state"] == "healthy" and t["pid"], "api healthy")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: _healed_again(run, first), "healed and resolved")
        os.kill(second, signal.SIGKILL)
        wait_for(lambda: _target(_live(run))["incident_status"] == "needs_human", "the flap escalated")
        [escalated] = [i for i in cli_json("incidents", "list", "--open", *where) if i["status"] == "needs_human"]
        lifted = cli("unquarantine", "api", *where)
        assert lifted.returncode == 0, lifted.stderr
        assert "quarantine of api lifted" in lifted.stdout
        assert "was not quarantined" in cli("unquarantine", "api", *where).stdout
        assert cli("unquarantine", "nope", *where).returncode == 2
        # Lifted, a target still down is healed at once, as when its quarantine runs out.
        wait_for(lambda: (t := _target(_live(run)))["state"] == "healthy" and t["incident"] is None, "healed")
        after_lift = cli_json("incidents", "show", escalated["id"], *where)
        assert after_lift["incident"]["status"] == "resolved", after_lift["timeline"]
        assert any(
            e["kind"] == "quarantine_ended"
            and e["detail"] == "quarantine of api lifted by local-admin; still down, healing"
            for e in after_lift["timeline"]
        ), after_lift["timeline"]
        late = cli("ack", escalated["id"], *where)  # resolved: nobody needs to own it any more
        assert late.returncode == 2, late.stderr
        assert "is resolved: there is nothing to acknowledge" in late.stderr
        assert cli_json("incidents", "show", escalated["id"], *where)["acknowledged_by"] is None
        assert cli("ack", "inc-nope", *where).returncode == 2

        # The kill switch, admin only: the local token is the controller's admin token.
        assert cli_json("disable", *where)["autonomous"] is False
        assert _live(run)["controller"]["autonomous"] is False
        assert cli_json("enable", *where)["autonomous"] is True

        token_file = Path(run.started["token_file"])
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        # --api and --token-file find the controller from anywhere, no store needed.
        elsewhere = cli("restart", "api", "--api", run.started["api"], "--token-file", str(token_file), cwd=Path("/"))
        assert elsewhere.returncode == 0, elsewhere.stderr
        viewer = _viewer_token(tmp_path)
        forbidden = cli("disable", *where, env={"NOVACRON_TOKEN": viewer})
        assert forbidden.returncode == 1
        assert "403" in forbidden.stderr
        refused = cli("restart", "api", *where, env={"NOVACRON_TOKEN": "nvc_bad.secret"})
        assert refused.returncode == 1
        assert "401" in refused.stderr
        assert "NOVACRON_TOKEN" in refused.stderr

        audit = httpx.get(
            f"{run.started['api']}/audit", headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}
        ).json()
        verbs = {e["verb"] for e in audit if e["actor"] == "local-admin"}
        assert {
            "api.heal.restart",
            "api.heal.stop",
            "api.heal.start",
            "api.heal.replace",
            "target.unquarantine",
            "api.incident.ack",
            "autonomous.disable",
            "autonomous.enable",
        } <= verbs

    # Stopped cleanly: the stop line names the signal; commands say the controller is not there.
    stop_line = next(line for line in run.lines() if line["event"] == "novacron stopped")
    assert stop_line["reason"] == "SIGTERM"
    assert stop_line["level"] == "info"
    assert run.started["targets"] == 1
    assert run.started["api"].startswith("http://127.0.0.1:")
    gone = cli("restart", "api", "-c", str(spec))
    assert gone.returncode == 3
    assert "stopped" in gone.stderr
    assert cli_json("status", "-c", str(spec), expect=3)["controller"]["state"] == "stopped"


@pytest.mark.timeout(300)
def test_heal_config_rollback_runs_the_previous_spec_version(tmp_path: Path) -> None:
    first = steady_service("api")
    spec = write_spec(tmp_path, first)
    where = ["-c", str(spec)]
    with controller(spec) as run:
        wait_for(lambda: _target(_live(run))["state"] == "healthy", "api healthy")
        nothing = cli("heal", "api", "--action", "config_rollback", *where)
        assert nothing.returncode == 2, nothing.stderr
        assert "there is no earlier spec version to roll back to" in nothing.stderr
    # The operator edits the spec and restarts the controller: spec version 2.
    write_spec(tmp_path, first.model_copy(update={"env": {"RELEASE": "2"}}))
    with controller(spec) as run:
        wait_for(lambda: _target(_live(run))["state"] == "healthy", "api healthy on version 2")
        back = cli_json("heal", "api", "--action", "config_rollback", *where)
        assert back["status"] == "verified", back
        assert "running config version 1" in back["detail"]


def _crash_while_disabled(run: Running, where: list[str]) -> tuple[int, str]:
    """Turn healing off (kill switch), SIGKILL ``api`` and wait for its escalation: its old pid and incident."""
    pid = wait_for(lambda: (t := _target(_live(run)))["state"] == "healthy" and t["pid"], "api healthy")
    assert cli("disable", *where).returncode == 0
    os.kill(pid, signal.SIGKILL)
    incident = wait_for(
        lambda: (t := _target(_live(run)))["incident_status"] == "needs_human" and t["incident"], "escalated"
    )
    return int(pid), str(incident)


def test_cleanup_is_refused_the_kill_switch_holds_a_crash_enable_heals_it_and_a_human_start_is_credited(
    tmp_path: Path,
) -> None:
    # One controller for four operator paths (each used to start its own).
    spec = write_spec(tmp_path, steady_service("api"))
    where = ["-c", str(spec)]
    with controller(spec) as run:
        # Cleanup on a target without cleanup_paths is refused, naming why.
        wait_for(lambda: _target(_live(run))["state"] == "healthy", "api healthy")
        res = cli_json("heal", "api", "--action", "cleanup", *where, expect=1)
        assert res["status"] == "failed"
        assert res["detail"] == "refused: api declares no cleanup_paths: there is no folder it may empty"

        # Enable heals a target the kill switch left down.
        pid, incident = _crash_while_disabled(run, where)
        held = cli_json("incidents", "show", incident, *where)["timeline"]
        assert any(e["kind"] == "blocked" and e["data"]["rail"] == "kill_switch" for e in held), held
        assert _target(_live(run))["state"] != "healthy"  # escalated: nothing acts on it while disabled

        assert cli_json("enable", *where)["autonomous"] is True
        wait_for(lambda: _healed_again(run, pid), "healed and resolved after enable")
        shown = cli_json("incidents", "show", incident, *where)
        assert shown["incident"]["status"] == "resolved", shown["timeline"]
        resumed = [e["detail"] for e in shown["timeline"] if e["kind"] == "autonomy_resumed"]
        assert resumed == ["autonomous healing enabled by local-admin; still down, healing"], shown["timeline"]
        verified = [e for e in shown["timeline"] if e["kind"] == "verified"]
        assert verified, shown["timeline"]

        # Ack twice says who already did; a human start is credited with the recovery it brings.
        _, incident = _crash_while_disabled(run, where)
        first = cli("incidents", "ack", incident, *where)
        assert (first.returncode, first.stdout.strip()) == (0, "acknowledged by local-admin"), first.stderr
        again = cli("incidents", "ack", incident, *where)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("already acknowledged by local-admin at "), again.stdout
        shown = cli_json("incidents", "show", incident, *where)
        assert shown["acknowledged_by"] == "local-admin"
        assert [e["kind"] for e in shown["timeline"]].count("acknowledged") == 1, "the second ack records nothing"
        assert cli_json("start", "api", *where)["status"] == "verified"
        shown = cli_json("incidents", "show", incident, *where)
        resolved_by = [e["detail"] for e in shown["timeline"] if e["kind"] == "resolved"]
        assert resolved_by == ["healthy again (manual start by local-admin)"], shown["timeline"]

        # A resolved incident is refused: exit 2 on the CLI, 409 from the API.
        resolved = cli("ack", incident, *where)
        assert resolved.returncode == 2, resolved.stdout + resolved.stderr
        assert f"incident {incident} is resolved: there is nothing to acknowledge" in resolved.stderr
        token = Path(run.started["token_file"]).read_text().strip()
        res = httpx.post(f"{run.started['api']}/incidents/{incident}/ack", headers={"Authorization": f"Bearer {token}"})
        assert (res.status_code, res.json()["field"]) == (409, "incident_id"), res.text


def test_a_dry_run_controller_decides_without_acting_and_says_so(tmp_path: Path) -> None:
    # One dry-run controller for both checks (each used to start its own).
    spec = write_spec(tmp_path, steady_service("api"))
    where = ["-c", str(spec)]
    with controller(spec, "--dry-run") as run:
        pid = wait_for(lambda: (t := _target(_live(run)))["state"] == "healthy" and t["pid"], "api healthy")
        # restart and start exit 1 unless verified, printing the outcome.
        for verb in ("restart", "start"):
            decided = cli(verb, "api", *where)
            assert decided.returncode == 1, decided.stdout + decided.stderr
            assert f"{verb} api: dry_run" in decided.stdout
            assert "dry-run controller: decided and recorded, nothing touched" in decided.stdout
            assert cli_json(verb, "api", *where, expect=1)["status"] == "dry_run"
        unfinished = cli("restart", "api", "--wait", "0", *where)
        assert unfinished.returncode == 1, unfinished.stdout + unfinished.stderr
        assert "restart api: running — still running after 0s; it carries on and is audited" in unfinished.stdout
        assert _target(_live(run))["pid"] == pid, "a dry run touches nothing"

        # A crash: the dry run decides, and does not show the target as healing after deciding.
        os.kill(pid, signal.SIGKILL)
        incident = wait_for(lambda: _target(_live(run))["incident"], "an incident")
        wait_for(
            lambda: any(
                e["kind"] == "dry_run_end" for e in cli_json("incidents", "show", incident, *where)["timeline"]
            ),
            "the dry run's decision",
        )
        api = _target(_live(run))
        assert (api["state"], api["incident_status"]) == ("stopped", "open"), api
        # Status says the controller only decides: "autonomous healing on" alone would promise repairs.
        assert cli_json("status", *where)["controller"]["dry_run"] is True
        text = cli("status", *where).stdout
        assert "autonomous healing on · dry run: decisions are recorded, nothing is touched" in text


@pytest.mark.timeout(120)
def test_a_request_a_hung_controller_did_not_answer_is_not_called_unsent(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, steady_service("api"))
    with controller(spec) as run:
        wait_for(lambda: _target(_live(run))["state"] == "healthy", "api healthy")
        run.proc.send_signal(signal.SIGSTOP)  # hung: the kernel still accepts the connection
        try:
            res = cli("restart", "api", "--wait", "0", "-c", str(spec))
        finally:
            run.proc.send_signal(signal.SIGCONT)
        assert res.returncode == 3, res.stderr
        assert f"controller at {run.started['api']} did not answer" in res.stderr
        assert "the request was sent and may still be carried out if it resumes" in res.stderr
        # It was: the resumed controller restarts api, which the message warned of.
        wait_for(lambda: _target(_live(run))["restarts"] == 1, "the restart carried out after all")


def _pids(run: Running) -> dict[str, int | None]:
    return {t["name"]: t["pid"] for t in _live(run)["targets"]}


def _all_healthy(run: Running, names: set[str]) -> dict[str, int] | None:
    targets = {t["name"]: t for t in _live(run)["targets"]}
    if set(targets) != names or any(t["state"] != "healthy" or t["pid"] is None for t in targets.values()):
        return None
    return {name: int(t["pid"]) for name, t in targets.items()}


def _refusals(run: Running) -> list[tuple[str, str]]:
    refused = [x for x in run.lines() if x.get("event") == "spec reload refused; the running spec is unchanged"]
    return [(x["level"], x["error"]) for x in refused]


def _edit(spec: Path, change: Any) -> None:
    doc = yaml.safe_load(spec.read_text())
    change(doc)
    spec.write_text(yaml.safe_dump(doc))


@pytest.mark.timeout(180)
def test_sighup_and_novacron_reload_apply_a_changed_spec_in_place(tmp_path: Path) -> None:
    api, keep, gone, new = (steady_service(n) for n in ("api", "keep", "gone", "new"))
    spec = write_spec(tmp_path, api, keep, gone)
    where = ["-c", str(spec)]
    with controller(spec) as run:
        before = wait_for(lambda: _all_healthy(run, {"api", "keep", "gone"}), "the fleet healthy")
        # An open incident on a target about to be removed: held for a human by the kill switch.
        assert cli_json("disable", *where)["autonomous"] is False
        os.kill(before["gone"], signal.SIGKILL)
        incident = wait_for(lambda: _target(_live(run), "gone")["incident"], "gone's incident")

        # SIGHUP: gone removed, new added, api's command changed, keep untouched, the policy changed.
        changed_api = api.model_copy(update={"command": [*api.command, "--name", "api-v2"]})
        write_spec(tmp_path, changed_api, keep, new, max_actions_per_target_per_hour=7)
        run.proc.send_signal(signal.SIGHUP)
        after = wait_for(lambda: _all_healthy(run, {"api", "keep", "new"}), "the reloaded fleet healthy")
        [line] = wait_for(lambda: [x for x in run.lines() if x.get("event") == "spec reloaded"], "the reload line")
        assert (line["who"], line["added"], line["removed"], line["changed"]) == ("SIGHUP", ["new"], ["gone"], ["api"])
        assert line["unchanged"] == ["keep"]
        assert line["policy_changed"] is True
        assert line["failed"] == {}
        assert after["keep"] == before["keep"], "an unchanged target keeps running untouched"
        assert _target(_live(run), "keep")["restarts"] == 0
        assert after["api"] != before["api"]
        assert psutil.Process(after["api"]).cmdline()[-2:] == ["--name", "api-v2"]
        assert not psutil.pid_exists(before["gone"])
        assert cli_json("enable", *where)["autonomous"] is True
        closed = cli_json("incidents", "show", incident, *where)
        # Closed, not resolved: it was never repaired, so it has no MTTR to skew the figures.
        assert (closed["incident"]["status"], closed["incident"]["mttr_ms"]) == ("closed", None)
        assert any(
            e["kind"] == "closed"
            and e["detail"] == "gone was removed from the spec (reload by SIGHUP); closed unhealed"
            for e in closed["timeline"]
        ), closed["timeline"]
        # A file that is not YAML: SIGHUP logs it (naming file, line and column), the command says the same.
        good = spec.read_text()
        spec.write_text("targets: [\n")
        run.proc.send_signal(signal.SIGHUP)
        refused = wait_for(lambda: _refusals(run), "the refused SIGHUP")
        [(level, said)] = refused
        assert level == "error"
        assert said.startswith(f"{spec}: not valid YAML at line 2, column 1: "), said
        not_yaml = cli("reload", *where)
        assert not_yaml.returncode == 2, not_yaml.stdout + not_yaml.stderr
        assert said in " ".join(not_yaml.stderr.split())
        # A spec that does not validate: exit 2 naming file and field; the controller logs it and applies nothing.
        spec.write_text(good)
        _edit(spec, lambda doc: doc["targets"][0].update(replicas=-1))
        bad = cli("reload", *where)
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert f"{spec}: targets[0].replicas: Input should be greater than or equal to 0" in bad.stderr, bad.stderr
        assert _refusals(run)[1:] == [
            ("error", f"{spec}: targets[0].replicas: Input should be greater than or equal to 0")
        ]

        # A field that cannot change in place, beside a change that could: refused by name, nothing applied.
        spec.write_text(good)
        _edit(spec, lambda doc: (doc["controller"].update(api_port=1), doc["targets"].pop()))
        fixed = cli("reload", *where)
        assert fixed.returncode == 2, fixed.stdout + fixed.stderr
        assert "cannot change in place: controller.api_port" in fixed.stderr
        assert "nothing was applied" in fixed.stderr
        assert _pids(run) == after
        # The file moved away (an editor's or a deploy's rename): named as missing, not as never there.
        moved = spec.rename(spec.with_name("fleet.yaml.old"))
        unread = cli("reload", "-c", str(moved))
        moved.rename(spec)
        assert unread.returncode == 2, unread.stdout + unread.stderr
        assert f"{spec}: cannot read spec: No such file or directory" in unread.stderr, unread.stderr

        # The command: applies the file as it is now and reports it; the new policy is in force at once.
        spec.write_text(good)
        _edit(spec, lambda doc: doc["policy"].update(dry_run=True))
        done = cli_json("reload", *where)
        assert (done["policy_changed"], done["added"], done["removed"], done["changed"]) == (True, [], [], [])
        assert done["by"] == "local-admin"
        assert sorted(done["unchanged"]) == ["api", "keep", "new"]
        assert _pids(run) == after
        decided = cli("restart", "keep", *where)  # a dry run decides and touches nothing
        assert decided.returncode == 1, decided.stdout + decided.stderr
        assert "dry_run" in decided.stdout
        audit = [e for e in _get(run, "/audit") if e["verb"] == "spec.reload"]
        assert [(e["actor"], e["result"]) for e in audit] == [
            ("local-admin", "ok"),
            ("local-admin", "refused"),
            ("local-admin", "refused"),
            ("local-admin", "refused"),
            ("SIGHUP", "refused"),
            ("SIGHUP", "ok"),
        ], audit
        assert run.proc.poll() is None


@pytest.mark.timeout(120)
def test_reloads_start_a_re_added_target_afresh_and_re_arm_changed_checks_in_place(tmp_path: Path) -> None:
    api, keep = steady_service("api"), steady_service("keep")
    flap = {"flap": {"threshold": 2, "window_s": 300, "quarantine_s": 600}}
    spec = write_spec(tmp_path, api, keep, **flap)
    where = ["-c", str(spec)]
    with controller(spec) as run:
        pids = wait_for(lambda: _all_healthy(run, {"api", "keep"}), "the fleet healthy")
        os.kill(pids["api"], signal.SIGKILL)  # healed: a restart, a last fault
        pid = wait_for(lambda: _healed_again(run, pids["api"]), "api healed")
        os.kill(pid, signal.SIGKILL)  # the second incident in the window: quarantined
        wait_for(lambda: _target(_live(run))["state"] == "quarantined", "api quarantined")
        write_spec(tmp_path, keep, **flap)
        assert cli_json("reload", *where)["removed"] == ["api"]
        write_spec(tmp_path, api, keep, **flap)
        assert cli_json("reload", *where)["added"] == ["api"]
        wait_for(lambda: _all_healthy(run, {"api", "keep"}), "api healthy again")
        again = _target(_live(run))
        # Its old life is gone with it: no quarantine held over, no restarts or fault it never had.
        assert (again["state"], again["restarts"], again["last_fault"]) == ("healthy", 0, None), again
        assert 'novacron_target_quarantined{target="api"} 0.0' in _metrics(run)

        # replicas: 0 parks it: every replica stopped (a scale-in would keep one), none watched.
        parked = wait_for(lambda: _target(_live(run))["pid"], "api's pid")
        write_spec(tmp_path, api.model_copy(update={"replicas": 0}), keep, **flap)
        assert cli_json("reload", *where)["changed"] == ["api"]
        assert (_target(_live(run))["running"], _target(_live(run))["desired"]) == (0, 0)
        assert not psutil.pid_exists(parked)

        # Only how keep is watched changes: its checks are re-armed and it runs on, not restarted.
        [check] = keep.checks
        assert isinstance(check, HttpCheck)
        missing = check.model_copy(update={"url": check.url.replace("/health", "/missing"), "interval_s": 0.3})
        write_spec(tmp_path, api, keep.model_copy(update={"checks": [missing], "labels": {"tier": "db"}}), **flap)
        done = cli("reload", *where)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "checks re-armed without a restart keep" in done.stdout, done.stdout
        assert "restarted api" in done.stdout, done.stdout  # back to one replica
        assert _target(_live(run))["state"] == "healthy"
        assert _target(_live(run), "keep")["pid"] == pids["keep"]
        fault = wait_for(lambda: _target(_live(run), "keep")["last_fault"], "the new check failing")
        assert fault["kind"] == "unhealthy", fault
        assert "404" in fault["detail"], fault


def _metrics(run: Running) -> str:
    return httpx.get(f"{run.started['api']}/metrics", timeout=5).text


@pytest.mark.timeout(120)
def test_a_target_a_reload_starts_is_healed_only_once_its_start_has_failed(tmp_path: Path) -> None:
    keep = steady_service("keep")
    spec = write_spec(tmp_path, keep, verify_timeout_s=3)
    # Runs but never answers its check: the start fails verification, then the ladder takes over.
    port = free_port_block(1)
    mute = keep.model_copy(
        update={
            "name": "mute",
            "port": port,
            "command": [sys.executable, "-c", "import time; time.sleep(120)"],
            "start_timeout_s": 1.0,
            "checks": [HttpCheck(url=f"http://127.0.0.1:{port}/", interval_s=0.2, timeout_s=0.5, failures=2)],
        }
    )
    with controller(spec) as run:
        wait_for(lambda: _all_healthy(run, {"keep"}), "keep healthy")
        write_spec(tmp_path, keep, mute, verify_timeout_s=3)
        res = cli("reload", "-c", str(spec))
        assert res.returncode == 1, res.stdout + res.stderr
        assert "mute not verified: " in res.stdout, res.stdout
        assert "process exited" not in res.stdout, res.stdout  # the reason is its check, not a healer's restart
        actions = wait_for(
            lambda: (a := [x for x in _get(run, "/actions") if x["target"] == "mute"]) and len(a) >= 3 and a,
            "the ladder's restart after the start",
        )
        [start] = [a for a in actions if a["requested_by"] == "local-admin" and a["kind"] == "start"]
        ladder = [a for a in actions if a["requested_by"] == "controller"]
        assert ladder, actions
        # The ladder acted after the start ended (and its rollback): not under it, to be undone by it.
        assert all(a["created_at"] >= start["finished_at"] for a in ladder), actions


@pytest.mark.timeout(120)
def test_a_controller_killed_mid_reload_restarts_what_it_was_restarting_from_the_spec_on_disk(tmp_path: Path) -> None:
    api, keep = steady_service("api"), steady_service("keep")
    spec = write_spec(tmp_path, api, keep)
    run = spawn(spec, "--node-id", "n1")
    try:
        before = wait_for(lambda: _all_healthy(run, {"api", "keep"}), "the fleet healthy")
    finally:
        run.proc.kill()  # its targets run on, unwatched
        run.proc.wait()
    # Killed after a reload recorded its intent (restart api) and before it acted: the file is the new spec.
    write_spec(tmp_path, api.model_copy(update={"command": [*api.command, "--name", "api-v2"]}), keep)
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        store.put_setting("reload_restarting:n1", ["api"], now=time.time())
    finally:
        store.close()
    with controller(spec, "--node-id", "n1") as again:
        after = wait_for(lambda: _all_healthy(again, {"api", "keep"}), "the fleet healthy again")
        assert after["keep"] == before["keep"], "a target the reload was not restarting is adopted"
        assert not psutil.pid_exists(before["api"]), "the old definition's process is ended"
        assert psutil.Process(after["api"]).cmdline()[-2:] == ["--name", "api-v2"]
