"""``kind: vm`` in the fleet spec: what is accepted, and bad input named by its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from novacron.errors import ConfigError
from novacron.healing.catalog import CATALOG, inverse_of, new_action
from novacron.model import ActionKind, TargetId
from novacron.settings import parse_spec
from tests.cli.runner import cli


def _vm_spec(tmp_path: Path, **vm: Any) -> dict[str, Any]:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"not really a kernel")
    return {
        "controller": {"store_url": f"sqlite:///{tmp_path / 'n.db'}", "workdir": str(tmp_path / "work")},
        "hosts": [{"name": "a", "memory_mib": 1024, "cpus": 4}, {"name": "b", "memory_mib": 512}],
        "targets": [
            {
                "name": "web",
                "kind": "vm",
                "port": 18080,
                "vm": {"kernel": str(kernel), "host": "a", "forwards": [{"guest": 80}], **vm},
            }
        ],
    }


def test_a_vm_target_parses_with_its_defaults(tmp_path: Path) -> None:
    spec = parse_spec(_vm_spec(tmp_path))
    vm = spec.target("web").vm
    assert vm is not None
    assert (vm.memory_mib, vm.cpus, vm.host, vm.accel) == (256, 1, "a", "auto")
    assert spec.target("web").command == []


@pytest.mark.parametrize(
    ("vm", "message"),
    [
        ({"host": "nowhere"}, "targets[0].vm.host: unknown host 'nowhere' (hosts: a, b)"),
        ({"image": "/x.img"}, "name exactly one of kernel or image"),
        ({"cpus": 4, "max_cpus": 2}, "max_cpus (2) is below cpus (4)"),
        ({"memory_mib": 16}, "targets[0].vm.memory_mib"),
        ({"forwards": [{"guest": 80}, {"guest": 22}]}, "vm.forwards[1].host: give a host port"),
    ],
)
def test_bad_vm_blocks_name_the_field(tmp_path: Path, vm: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec(_vm_spec(tmp_path, **vm))
    assert message in str(err.value)


def test_a_vm_target_without_a_vm_block_and_a_process_without_a_command_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"targets\[0\]\.vm: a vm target needs a vm block"):
        parse_spec({"targets": [{"name": "v", "kind": "vm"}]})
    with pytest.raises(ConfigError, match=r"targets\[0\]\.command: a process target needs at least one argument"):
        parse_spec({"targets": [{"name": "p"}]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel": "/no/such/vmlinuz"}, "targets[0].vm.kernel: /no/such/vmlinuz does not exist"),
        ({"memory_mib": 2048}, "targets[0].vm.memory_mib: 2048 MiB × 1 replicas is more than host a has (1024 MiB)"),
    ],
)
def test_run_refuses_a_guest_it_cannot_start_with_exit_2(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    data = _vm_spec(tmp_path)
    data["targets"][0]["vm"].update(change)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    res = cli("run", "-c", str(path))
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_vm_actions_are_in_the_catalog_with_their_inverses() -> None:
    assert CATALOG[ActionKind.VM_MIGRATE].inverse is ActionKind.VM_MIGRATE
    assert CATALOG[ActionKind.VM_RESIZE].inverse is ActionKind.VM_RESIZE
    assert CATALOG[ActionKind.VM_ROLLBACK].inverse is None
    move = new_action(ActionKind.VM_MIGRATE, TargetId("web"), key="k", params={"from": "a", "to": "b", "replica": 0})
    back = inverse_of(move)
    assert back is not None
    assert dict(back.params) == {"from": "b", "to": "a", "replica": 0}
