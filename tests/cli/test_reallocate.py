"""`reallocate` under `novacron run`: limits in the replica's cgroup, put back by the inverse, or refused."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from novacron.actuators.cgroups import Cgroups
from novacron.resourcespec import CgroupSettings, ReallocateSpec
from tests.cgroupfs import fake_cgroup2

from .runner import Running, cli, cli_json, controller, steady_service, wait_for, write_spec

LIMITS = ReallocateSpec.model_validate({"cpu": "250m", "cpu_weight": 300, "memory": "256Mi"})
GROUP = "novacron.cli-test/api-0"


def _spec(tmp_path: Path, *, limits: ReallocateSpec | None = LIMITS, cgroups: dict[str, Any] | None = None) -> Path:
    target = steady_service("api").model_copy(update={"reallocate": limits})
    path = write_spec(tmp_path, target)
    if cgroups is not None:
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "cgroups": cgroups}))
    return path


def _api(run: Running, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = Path(run.started["token_file"]).read_text().strip()
    res = httpx.request(
        method, f"{run.started['api']}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    res.raise_for_status()
    return res.json()


def _healthy_pid(run: Running) -> int:
    def pid() -> int | None:
        t = next(t for t in _api(run, "GET", "/status")["targets"] if t["name"] == "api")
        return int(t["pid"]) if t["state"] == "healthy" and t["pid"] else None

    return int(wait_for(pid, "api healthy"))


def _mounts() -> dict[str, tuple[str, Path]]:
    """Controller name (``""`` for cgroup2) → (mounted hierarchy root, mount point)."""
    out: dict[str, tuple[str, Path]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if tail[0] == "cgroup2":
            out.setdefault("", (fields[3], Path(fields[4])))
        elif tail[0] == "cgroup":
            for opt in tail[2].split(","):
                out.setdefault(opt, (fields[3], Path(fields[4])))
    return out


def _group_of(pid: int, controller: str) -> Path:
    """The directory of ``pid``'s cgroup in ``controller``'s hierarchy (``""``: cgroup2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in (names.split(",") if names else [""]):
            root, point = _mounts()[controller]
            return point / Path(path).relative_to(root)
    raise AssertionError(f"{pid} has no {controller or 'cgroup2'} cgroup")


def _files(pid: int, backend: str) -> dict[str, str]:
    """The limits ``pid``'s cgroup holds, by file name."""
    names: dict[str, tuple[str, ...]]
    if backend == "cgroup v2":
        names = {"": ("cpu.max", "cpu.weight", "memory.max")}
    else:
        names = {"cpu": ("cpu.cfs_quota_us", "cpu.shares"), "memory": ("memory.limit_in_bytes",)}
    out = {}
    for ctl, files in names.items():
        group = _group_of(pid, ctl)
        assert str(group).endswith(GROUP), f"{pid} is in {group}, not in its replica's group"
        out.update({f: (group / f).read_text().strip() for f in files})
    return out


def _remove_groups(backend: Cgroups) -> None:
    """Leave no test cgroup behind, whatever the test did."""
    if backend.backend is None:
        return
    for parent in backend.backend.parents.values():
        fleet = parent / "novacron.cli-test"
        for child in fleet.glob("*"):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            fleet.rmdir()


@pytest.mark.timeout(240)
def test_reallocate_limits_a_real_replica_and_its_inverse_puts_the_limits_back(tmp_path: Path) -> None:
    backend = Cgroups.detect(CgroupSettings(), fleet="cli-test")
    if backend.backend is None:
        pytest.skip(f"this machine has no cgroup the tests may write: {backend.refusal}")
    spec = _spec(tmp_path)
    try:
        with controller(spec) as run:
            pid = _healthy_pid(run)
            done = cli_json("heal", "api", "--action", "reallocate", "-c", str(spec))
            assert done["status"] == "verified", done
            assert done["detail"].startswith(backend.name), done["detail"]
            held = _files(pid, backend.name)
            if backend.name == "cgroup v2":
                assert held == {"cpu.max": "25000 100000", "cpu.weight": "300", "memory.max": str(256 * 2**20)}
            else:
                assert held == {
                    "cpu.cfs_quota_us": "25000",
                    "cpu.shares": str(300 * 1024 // 100),
                    "memory.limit_in_bytes": str(256 * 2**20),
                }

            # A restarted replica joins the same group: the limits outlive the process.
            assert cli_json("restart", "api", "-c", str(spec))["status"] == "verified"
            fresh = _healthy_pid(run)
            assert fresh != pid
            assert _files(fresh, backend.name) == held

            # The inverse writes back exactly what the group held before.
            undone = _api(run, "POST", "/autonomous/rollback", {"action_id": done["action_id"]})
            assert undone["status"] == "verified", undone
            back = _files(fresh, backend.name)
            assert back != held
            assert back.get("cpu.max", "max 100000") == "max 100000"
            assert back.get("cpu.cfs_quota_us", "-1") == "-1"

            audit = _api(run, "GET", "/audit")
            results = [e["result"] for e in audit if e["verb"] == "action.reallocate"]
            assert results.count("verified") == 2, results
        # A graceful stop removes the emptied groups.
        for parent in backend.backend.parents.values():
            assert not (parent / "novacron.cli-test").exists()
    finally:
        _remove_groups(backend)


@pytest.mark.timeout(240)
def test_reallocate_is_refused_with_the_reason_where_no_cgroup_may_be_written(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-cgroup"
    plain.mkdir()
    spec = _spec(tmp_path, cgroups={"version": "v2", "root": str(plain)})
    bare = tmp_path / "bare"
    bare.mkdir()
    without = _spec(bare)
    data = yaml.safe_load(without.read_text())
    data["targets"][0]["reallocate"] = None
    without.write_text(yaml.safe_dump(data))
    with controller(spec) as run:
        _healthy_pid(run)
        refused = cli_json("heal", "api", "--action", "reallocate", "-c", str(spec), expect=1)
        assert refused["status"] == "failed"
        assert refused["detail"] == (
            f"refused: no cgroup this controller may write limits in (cgroup v2: {plain} is not a cgroup2 directory)"
        )
        audit = _api(run, "GET", "/audit")
        assert any(e["verb"] == "action.reallocate" and e["result"] == "refused" for e in audit), audit[:5]
        # Bad limits in a manual action are bad input: 422 naming the field, nothing applied.
        bad = cli("heal", "api", "--action", "reallocate", "-p", "cpu=lots", "-c", str(spec))
        assert bad.returncode == 2, bad.stderr
        assert "params.cpu" in bad.stderr
    with controller(without):
        refused = cli_json("heal", "api", "--action", "reallocate", "-c", str(without), expect=1)
        assert refused["detail"] == "refused: api has no limits to apply (give it a reallocate: block in the spec)"


@pytest.mark.timeout(240)
def test_reallocate_on_a_delegated_cgroup2_subtree_writes_and_restores_its_files(tmp_path: Path) -> None:
    root = fake_cgroup2(tmp_path / "cg", fleet="cli-test", replicas=["api-0"])
    spec = _spec(tmp_path, cgroups={"version": "v2", "root": str(root)})
    group = root / GROUP
    with controller(spec) as run:
        pid = _healthy_pid(run)
        done = cli_json("heal", "api", "--action", "reallocate", "-c", str(spec))
        assert done["status"] == "verified", done
        assert done["detail"].startswith("cgroup v2: replica 0:"), done["detail"]
        assert (group / "cpu.max").read_text() == "25000 100000"
        assert (group / "cpu.weight").read_text() == "300"
        assert (group / "memory.max").read_text() == str(256 * 2**20)
        assert str(pid) in (group / "cgroup.procs").read_text().split()
        for enabled in (root, root / "novacron.cli-test"):
            assert (enabled / "cgroup.subtree_control").read_text().split() == ["+cpu", "+memory"]
        undone = _api(run, "POST", "/autonomous/rollback", {"action_id": done["action_id"]})
        assert undone["status"] == "verified", undone
        assert (group / "cpu.max").read_text() == "max 100000"
        assert (group / "cpu.weight").read_text() == "100"
        assert (group / "memory.max").read_text() == "max"


def test_bad_limits_in_the_spec_exit_2_naming_the_field(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    data = yaml.safe_load(spec.read_text())
    data["targets"][0]["reallocate"] = {"cpu": "two", "memory": "256Mi"}
    spec.write_text(yaml.safe_dump(data))
    res = cli("validate", "-c", str(spec))
    assert res.returncode == 2
    assert "targets[0].reallocate.cpu: 'two' is not a CPU quantity" in res.stderr
    data["targets"][0]["reallocate"] = {"memory": "100Mi", "memory_high": "200Mi"}
    data["cgroups"] = {"version": "v3"}
    spec.write_text(yaml.safe_dump(data))
    res = cli("validate", "-c", str(spec))
    assert res.returncode == 2
    assert "targets[0].reallocate: memory_high is above memory" in res.stderr
    assert "cgroups.version" in res.stderr
