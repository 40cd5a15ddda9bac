"""The fleet spec: typed, validated, frozen (pydantic).

A spec is YAML with a ``policy`` block, a ``controller`` block and a list of ``targets``.
:func:`load_spec` / :func:`parse_spec` are the only ways in; every error is a
:class:`~novacron.errors.ConfigError` naming the field's path (``targets[2].checks[0].url``)
and the reason, and nothing is started from an invalid spec.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from novacron.errors import ConfigError
from novacron.model import ActionKind, FaultKind, Priority, RiskLevel
from novacron.resourcespec import CgroupSettings, ReallocateSpec  # `reallocate:` and `cgroups:`
from novacron.tuningspec import TuningSpec  # the `tuning:` block (self-optimisation)

__all__ = [
    "AgentSchedule",
    "AgentsSpec",
    "BackoffPolicy",
    "CgroupSettings",
    "ChannelSpec",
    "CheckSpec",
    "ControllerSettings",
    "EscalationLevel",
    "EscalationPolicy",
    "ExecCheck",
    "ExperimentSpec",
    "FlapPolicy",
    "FleetSpec",
    "FrontendSpec",
    "HaSettings",
    "HeartbeatCheck",
    "HttpCheck",
    "LearningSpec",
    "MetricWatch",
    "MetricsSpec",
    "OnlineSpec",
    "Policy",
    "ReallocateSpec",
    "RepairSpec",
    "ResourceLimit",
    "RunbookMatch",
    "RunbookSource",
    "TargetSpec",
    "TcpCheck",
    "TwinFaultAt",
    "TwinLatency",
    "TwinSettings",
    "ValueCheckSpec",
    "VmForward",
    "VmHostSpec",
    "VmSpec",
    "default_escalation",
    "load_spec",
    "parse_spec",
    "spec_to_yaml",
    "yaml_problem",
]


RiskName = Literal["low", "medium", "high", "critical"]


class _Frozen(BaseModel):
    # No inf or nan anywhere: an infinite timeout or window is a typo that would wait forever.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _safe_cleanup_path(path: str) -> str:
    """A directory the cleanup action may empty: never the filesystem root or a top-level folder."""
    parts = PurePosixPath(posixpath.normpath(path)).parts  # "/tmp/.." is "/"
    if not path.strip() or (parts and parts[0] == "/" and len(parts) < _MIN_PATH_PARTS):
        raise ValueError(f"{path!r} is the filesystem root or a top-level folder; name a folder of the target's own")
    return path


_MIN_PATH_PARTS = 3  # "/", "tmp", "scratch": a folder below a top-level one

CleanupPath = Annotated[str, AfterValidator(_safe_cleanup_path)]


class _Probe(_Frozen):
    interval_s: float = Field(1.0, ge=0.05, le=3600, description="Time between probes.")
    timeout_s: float = Field(1.0, gt=0, le=300, description="A probe slower than this fails.")
    failures: int = Field(1, ge=1, le=100, description="Consecutive failures before unhealthy.")
    adaptive_timeout: bool = Field(
        True,
        description="Learn the timeout from the target's own response times (bounded by timeout_s); "
        "running into it is a suspicion confirmed by an immediate second probe.",
    )


class HttpCheck(_Probe):
    """GET ``url``; healthy when the status equals ``expect_status`` within the timeout."""

    type: Literal["http"] = "http"
    url: str
    expect_status: int = Field(200, ge=100, le=599)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class TcpCheck(_Probe):
    """Open a TCP connection to ``host:port``."""

    type: Literal["tcp"] = "tcp"
    host: str = "127.0.0.1"
    port: int | str = Field(description="Port number, or '{port}' for the replica's port.")

    @field_validator("port")
    @classmethod
    def _a_port(cls, v: int | str) -> int | str:
        # Filled per replica and read as a number at run time: a typo such as '{prot}' must stop here.
        sample = str(v).replace("{port}", "1").replace("{replica}", "0")
        if not sample.isdigit() or not 1 <= int(sample) <= _MAX_PORT:
            raise ValueError(f"{v!r} is not a port number or '{{port}}'")
        return v


class ExecCheck(_Probe):
    """Run ``command``; healthy on exit status 0."""

    type: Literal["exec"] = "exec"
    command: list[str] = Field(min_length=1)


class HeartbeatCheck(_Frozen):
    """The target pushes heartbeats (UDP datagram or HTTP POST carrying its name).

    Suspicion uses the phi-accrual detector; defaults follow Akka (threshold 8,
    min std dev 100 ms).
    """

    type: Literal["heartbeat"] = "heartbeat"
    expected_interval_s: float = Field(1.0, gt=0, le=3600)
    phi_threshold: float = Field(8.0, gt=0)
    min_std_s: float = Field(0.1, gt=0)
    acceptable_pause_s: float = Field(0.0, ge=0)
    window: int = Field(1000, ge=2, le=100_000)


class MetricWatch(_Frozen):
    """Run an anomaly detector over one metric of the target.

    ``type`` picks a default pipeline (latency, error_ratio, cpu, rss, open_files, threads,
    connections, heartbeat, generic); ``detector`` overrides it with an explicit one
    (``{detector: zscore, params: {window: 120}, threshold: 6}``), checked when the controller starts.
    An alarm becomes a fault only once the value departs from the baseline by at least
    ``min_change`` and ``min_ratio`` of it: a detector on a steady series scores a tenth of
    a millisecond as surprising, which is no reason to restart anything. Unset, they come
    from the type (latency: 1 ms and 20 %; cpu: 10 points; error_ratio: 0.01; rss: 10 %).
    """

    metric: str = Field(min_length=1)
    type: str = "generic"
    detector: dict[str, Any] | None = None
    min_change: float | None = Field(
        None, ge=0, description="Smallest departure from the baseline, in the metric's units, that is a fault."
    )
    min_ratio: float | None = Field(
        None, ge=0, description="Smallest departure as a share of the baseline (0.2 = 20 %) that is a fault."
    )


class ResourceLimit(_Frozen):
    """A bounded resource: forecast its exhaustion and act ``lead_time_s`` before it."""

    metric: str = Field(min_length=1)
    limit: float = Field(gt=0)
    action: ActionKind = ActionKind.RESTART
    lead_time_s: float = Field(120.0, gt=0)


class MetricsSpec(_Frozen):
    """Where a target's metrics come from and what watches them.

    Metrics are the target's own ``/metrics`` (Prometheus text, ``url``), the process's
    psutil readings (``cpu_percent``, ``rss_bytes``, ``open_files``, ``threads``,
    ``connections``) and the health probes' own latency (``probe_latency_s``).
    """

    interval_s: float = Field(1.0, ge=0.1, le=3600)
    url: str | None = Field(None, description="Prometheus text endpoint; '{port}' is filled per replica.")
    process: bool = True
    watch: list[MetricWatch] = Field(default_factory=list)
    limits: list[ResourceLimit] = Field(default_factory=list)


CheckSpec = Annotated[HttpCheck | TcpCheck | ExecCheck | HeartbeatCheck, Field(discriminator="type")]


class RepairSpec(_Frozen):
    """Where the bug fixer finds this target's code and how it tests it (``novacron fix``)."""

    repo: str = Field(min_length=1, description="The git repository of the target's code.")
    test: str = Field(min_length=1, description="The test command, run in a sandboxed worktree.")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="Limit for one run of the tests.")
    budget_s: float = Field(600.0, gt=0, le=86400, description="Time to spend on candidate patches.")


# --- virtual machines (kind: vm) -------------------------------------------------------


class VmForward(_Frozen):
    """A host TCP port forwarded into the guest (QEMU user-mode networking)."""

    guest: int = Field(ge=1, le=65535, description="The port the guest listens on.")
    host: int | None = Field(
        None, ge=1, le=65535, description="The host port on 127.0.0.1; default: the target's port + replica."
    )


class VmSpec(_Frozen):
    """The guest of a ``kind: vm`` target: what QEMU boots, with how much, on which host.

    Boot either a kernel (with an optional initrd and command line) or a disk ``image``.
    The accelerator is chosen at start: KVM when it boots the guest's kernel (a probe
    boot), TCG otherwise (``accel`` forces one).
    """

    kernel: str | None = Field(None, description="A Linux kernel image to boot directly.")
    initrd: str | None = None
    append: str = Field("", description="The kernel command line (console=ttyS0 is added).")
    image: str | None = Field(None, description="A disk image to boot instead of a kernel.")
    memory_mib: int = Field(256, ge=32, le=1_048_576)
    cpus: int = Field(1, ge=1, le=64)
    max_cpus: int | None = Field(None, ge=1, le=64, description="vCPU hot-plug ceiling (default: cpus).")
    host: str = Field("local", description="The VM host (see the fleet's 'hosts') it starts on.")
    priority: int = Field(0, ge=0, le=1000, description="Higher restarts first when a host fails.")
    forwards: list[VmForward] = Field(default_factory=list)
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    machine: str = Field("pc", description="The QEMU machine type.")
    image_readonly: bool = Field(
        False, description="Attach the image read-only (readonly=on) instead of with throw-away writes (snapshot=on)."
    )
    restart: Literal["cold", "warm"] = Field(
        "cold",
        description=(
            "How a crashed guest comes back: cold boots it; warm resumes it from the state saved once it was "
            "first healthy (a guest without writable state only: no image, or image_readonly)."
        ),
    )

    @model_validator(mode="after")
    def _boot_source(self) -> VmSpec:
        if (self.kernel is None) == (self.image is None):
            raise ValueError("name exactly one of kernel or image")
        if self.restart == "warm" and self.image is not None and not self.image_readonly:
            # Restored memory over a disk that moved on since the save (here: snapshot=on
            # writes, which die with the QEMU that made them) is a corrupt file system.
            raise ValueError(
                "restart: warm needs a guest without writable state, and image "
                f"{self.image} is writable by the guest (snapshot=on); set image_readonly: true or restart: cold"
            )
        if self.image_readonly and self.image is None:
            raise ValueError("image_readonly needs an image")
        if self.initrd is not None and self.kernel is None:
            raise ValueError("initrd needs a kernel")
        if self.max_cpus is not None and self.max_cpus < self.cpus:
            raise ValueError(f"max_cpus ({self.max_cpus}) is below cpus ({self.cpus})")
        return self


class VmHostSpec(_Frozen):
    """A host VMs run on: its name and the capacity placement and failover respect."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62})$")
    memory_mib: int = Field(4096, ge=64, description="Guest memory the host can hold.")
    cpus: int = Field(8, ge=1, description="vCPUs the host can hold.")
    node: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
        description="The controller node vouching for the host: seen beating, then its heartbeat lost, the host fails.",
    )


# --- targets ---------------------------------------------------------------------------


# --- traffic: load-balancer frontends and experiments ------------------------------------


def _hostport(v: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{v!r}: expected HOST:PORT with a port in 1..65535")
    return v


class FrontendSpec(_Frozen):
    """A load balancer (HAProxy) in front of a target's replicas, steered through its runtime API.

    Each replica is one server; a failed connection or a 502/503/504 is retried on another
    server, so clients see no error while one server is up. ``fallback`` is a backup server
    that takes the traffic when every replica is out (circuit open).
    """

    listen: str = Field(description="HOST:PORT the frontend listens on.")
    fallback: str | None = Field(None, description="HOST:PORT of a backup server.")
    connect_timeout_s: float = Field(0.5, gt=0, le=60)
    server_timeout_s: float = Field(30.0, gt=0, le=3600)
    retries: int = Field(3, ge=0, le=10)

    @field_validator("listen", "fallback")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        return None if v is None else _hostport(v)


class ExperimentSpec(_Frozen):
    """A canary of a target behind a frontend: variant ``arm`` beside the baseline, promoted step by step.

    The variant runs ``command`` (``{port}`` is filled with a free port) as one more server
    behind the target's frontend. Its share of traffic goes through ``steps``; the
    always-valid test rolls it back on a significant regression at any step.
    """

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62})$")
    target: str
    arm: str = Field("b", pattern=r"^[a-z0-9_]{1,20}$")
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    steps: list[float] = Field(default_factory=lambda: [1.0, 10.0, 50.0, 100.0], min_length=2)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    mde: float = Field(0.1, gt=0, description="Relative increase in error ratio worth detecting.")
    latency_mde: float = Field(0.2, gt=0, description="Relative increase of the p95 latency worth detecting.")
    base_rate: float = Field(0.01, gt=0, lt=1, description="The baseline error ratio expected.")
    min_samples: int = Field(100, ge=1, description="Fewest canary requests per step.")
    max_samples: int = Field(200_000, ge=1, description="Most canary requests per step before rolling back.")
    look_interval_s: float = Field(1.0, ge=0.05, le=3600)
    start_timeout_s: float = Field(10.0, gt=0, le=600)
    allocation: Literal["canary", "thompson", "ucb1"] = Field(
        "canary", description="canary: steps and the always-valid test; thompson/ucb1: a bandit over 3+ arms."
    )
    arms: dict[str, list[str]] = Field(
        default_factory=dict, description="More variant arms (name: command) for a bandit allocation."
    )

    @model_validator(mode="after")
    def _arms(self) -> ExperimentSpec:
        if self.allocation == "canary" and self.arms:
            raise ValueError("arms: more arms need allocation thompson or ucb1")
        if self.allocation != "canary" and not self.arms:
            raise ValueError("arms: a bandit allocation needs at least one more arm (three with the baseline)")
        names = [self.arm, *self.arms]
        if "a" in names or len(set(names)) != len(names):
            raise ValueError("arms: arm names must be distinct and not 'a' (the baseline)")
        if any(not cmd for cmd in self.arms.values()):
            raise ValueError("arms: every arm needs a command")
        return self

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in v) or v != sorted(set(v)) or v[-1] != 100:
            raise ValueError("must be increasing percentages in (0, 100] ending at 100")
        return v


class TargetSpec(_Frozen):
    """One supervised target: a local process (``kind: process``), a remote endpoint
    (``kind: remote``), a twin VM (``kind: sim``) or a QEMU guest (``kind: vm``).

    A remote target has no process of its own: controllers probe it (HTTP/TCP checks) and
    act on it by POSTing the action to its ``action_url``. With several controllers on one
    store, remote targets are spread over them by shard leases; process targets belong to
    the controller whose node id is their ``host`` (default: every controller's own node).
    A vm target's guest runs on one of the fleet's VM ``hosts`` (its ``vm.host``).

    ``{port}`` and ``{replica}`` in the command, env values, URLs and ports are filled per
    replica: replica *i* gets ``port + i``. A sim target has no command: the spec's ``twin``
    block runs it, and its checks keep their timing (interval, timeout, failures) while the
    twin answers them.
    """

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62})$")
    kind: Literal["process", "remote", "sim", "vm"] = "process"
    command: list[str] = Field(
        default_factory=list, validate_default=True, description="The process to run (kind: process)."
    )
    host: str | None = Field(
        None, min_length=1, max_length=128, description="kind: process: the node id that runs it (default: each node)."
    )
    action_url: str | None = Field(None, description="kind: remote: where actions are POSTed as JSON.")
    vm: VmSpec | None = Field(None, validate_default=True, description="The guest to boot (kind: vm).")
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    port: int | None = Field(None, ge=1, le=65535)
    start_timeout_s: float = Field(10.0, gt=0, le=3600)
    stop_timeout_s: float = Field(5.0, gt=0, le=600)
    min_uptime_s: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="A target without checks is proven healthy once its process has run this long (0: at once).",
    )
    checks: list[CheckSpec] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    cleanup_paths: list[CleanupPath] = Field(
        default_factory=list, description="Directories the cleanup action may empty (nothing else)."
    )
    metrics: MetricsSpec | None = None
    repair: RepairSpec | None = None
    frontend: FrontendSpec | None = None
    reallocate: ReallocateSpec | None = Field(
        None, description="kind: process: the CPU and memory limits the reallocate action gives each replica."
    )

    @field_validator("command")
    @classmethod
    def _command_for_processes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("kind", "process") == "process" and not v:
            raise ValueError("a process target needs at least one argument")
        return v

    @field_validator("vm")
    @classmethod
    def _vm_block_for_vm(cls, v: VmSpec | None, info: ValidationInfo) -> VmSpec | None:
        kind = info.data.get("kind", "process")
        if kind == "vm" and v is None:
            raise ValueError("a vm target needs a vm block (kernel or image, memory_mib, …)")
        if kind != "vm" and v is not None:
            raise ValueError("only a kind: vm target has a vm block")
        return v

    @model_validator(mode="after")
    def _replica_bounds(self) -> TargetSpec:
        if self.kind == "remote" and (self.command or self.host is not None):
            raise ValueError("kind: a remote target has no command or host (any controller may own it)")
        if self.reallocate is not None and self.kind != "process":
            raise ValueError("reallocate: only a kind: process target has cgroup limits (vm targets: vm_resize)")
        if self.kind == "sim" and self.replicas > 1:
            raise ValueError("replicas: a sim target is one twin VM (replicas 0 or 1)")
        for i, fwd in enumerate(self.vm.forwards if self.vm else []):
            if fwd.host is None and (i > 0 or self.port is None):
                raise ValueError(
                    f"vm.forwards[{i}].host: give a host port (only the first defaults to the target's port)"
                )
        if self.vm is not None and self.vm.restart == "warm" and not self.checks:
            # The state is saved once the guest is proven healthy: without checks nothing proves it.
            raise ValueError("vm.restart: warm needs at least one check (its state is saved once they pass)")
        if self.replicas > self.max_replicas:
            raise ValueError(f"replicas ({self.replicas}) exceeds max_replicas ({self.max_replicas})")
        if not self.checks and self.min_uptime_s >= self.start_timeout_s:
            raise ValueError(
                f"min_uptime_s ({self.min_uptime_s:g}) must be below start_timeout_s ({self.start_timeout_s:g}): "
                "a target without checks could never prove itself in time"
            )
        if self.port is None and self.kind != "sim":  # a sim target's checks are answered by the twin
            for where, text in self._filled_fields():
                if "{port}" in text:
                    raise ValueError(f"{where}: '{{port}}' is the target's port, and it has none (give it a port:)")
        return self

    def _filled_fields(self) -> Iterator[tuple[str, str]]:
        """Every field whose ``{port}`` and ``{replica}`` are filled per replica, with its path."""
        for i, arg in enumerate(self.command):
            yield f"command[{i}]", arg
        for key, value in self.env.items():
            yield f"env.{key}", value
        if self.cwd is not None:
            yield "cwd", self.cwd
        for i, check in enumerate(self.checks):
            if isinstance(check, HttpCheck):
                yield f"checks[{i}].url", check.url
            elif isinstance(check, TcpCheck):
                yield f"checks[{i}].host", check.host
                yield f"checks[{i}].port", str(check.port)
            elif isinstance(check, ExecCheck):
                yield from ((f"checks[{i}].command[{j}]", arg) for j, arg in enumerate(check.command))
        if self.metrics is not None and self.metrics.url is not None:
            yield "metrics.url", self.metrics.url


class BackoffPolicy(_Frozen):
    """Exponential backoff between actions on one target: base·2^n capped, with jitter."""

    base_s: float = Field(0.5, ge=0)
    cap_s: float = Field(60.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1, description="Fraction of the delay randomised.")


class FlapPolicy(_Frozen):
    """``threshold`` incidents within ``window_s`` on one target → quarantine."""

    window_s: float = Field(300.0, gt=0)
    threshold: int = Field(5, ge=2)
    quarantine_s: float = Field(900.0, gt=0)


_DEFAULT_LADDER = (ActionKind.RESTART, ActionKind.REPLACE, ActionKind.ESCALATE)


class Policy(_Frozen):
    """Safety rails for every automated action."""

    max_actions_per_target_per_hour: int = Field(20, ge=0)
    backoff: BackoffPolicy = Field(default_factory=BackoffPolicy)
    flap: FlapPolicy = Field(default_factory=FlapPolicy)
    blast_radius: float = Field(0.5, gt=0, le=1, description="Largest share of targets under remediation at once.")
    dry_run: bool = False
    approval_required: list[RiskName] = Field(default_factory=lambda: list[RiskName](["critical"]))
    verify_timeout_s: float = Field(10.0, gt=0, le=3600)
    ladder: list[ActionKind] = Field(default_factory=lambda: list(_DEFAULT_LADDER), min_length=1)

    def needs_approval(self, risk: RiskLevel) -> bool:
        """Whether an action of this risk level waits for a human."""
        return risk.label in self.approval_required


class HaSettings(_Frozen):
    """Several controllers on one store: node heartbeats and shard leases (defaults fail over in ≤ 3 s)."""

    lease_s: float = Field(2.0, gt=0.2, le=600, description="A shard lease lasts this long unless renewed.")
    renew_s: float = Field(0.25, gt=0.01, le=60, description="How often leases are renewed and free shards taken.")
    shards: int = Field(64, ge=1, le=4096, description="Shards the remote targets are hashed into.")
    node_stale_s: float = Field(2.0, gt=0.2, le=600, description="A node without a heartbeat this long is dead.")

    @model_validator(mode="after")
    def _renew_within_lease(self) -> HaSettings:
        if self.renew_s * 3 > self.lease_s:
            raise ValueError(f"renew_s: renew at least three times per lease ({self.renew_s} × 3 > {self.lease_s})")
        return self


class ControllerSettings(_Frozen):
    """Where the controller keeps state and listens."""

    store_url: str = "sqlite:///.novacron/novacron.db"
    workdir: str = Field(".novacron", description="Where process logs and controller files go.")
    heartbeat_udp_port: int = Field(0, ge=0, le=65535, description="0 picks a free port.")
    metrics_port: int | None = Field(None, ge=0, le=65535)
    api_port: int | None = Field(None, ge=0, le=65535)
    node_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
        description="This controller's node id (default: hostname).",
    )
    ha: HaSettings = Field(default_factory=HaSettings)


class AgentSchedule(_Frozen):
    """How one operational agent runs inside ``novacron run``."""

    enabled: bool = True
    interval_s: float | None = Field(None, ge=0.1, le=86400, description="Default: the agent's own interval.")
    dry_run: bool = Field(False, description="Record proposals only; apply nothing.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Agent-specific settings (lead_time_s, metric, …)."
    )


class AgentsSpec(_Frozen):
    """The operational agents and their coordinator (off unless ``enabled``)."""

    enabled: bool = False
    agents: dict[str, AgentSchedule] = Field(
        default_factory=dict, description="Per agent name; agents not named run with their defaults."
    )


# -- the twin behind kind: sim targets -----------------------------------------------------
TwinFaultName = Literal[
    "crash", "hang", "leak", "disk_fill", "partition", "thermal_runaway", "noisy_neighbour", "host_failure",
    "bad_config",
]  # fmt: skip


class TwinFaultAt(_Frozen):
    """One fault the twin injects into a sim target ``at_s`` seconds after the run starts."""

    at_s: float = Field(ge=0)
    target: str = Field(min_length=1)
    kind: TwinFaultName


class TwinLatency(_Frozen):
    """A sim target's healthy answer times: median and 99th percentile (log-normal between them)."""

    p50_s: float = Field(gt=0, le=60)
    p99_s: float = Field(gt=0, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> TwinLatency:
        if self.p99_s < self.p50_s:
            raise ValueError(f"p99_s ({self.p99_s}) must not be below p50_s ({self.p50_s})")
        return self


class TwinSettings(_Frozen):
    """The digital twin that ``kind: sim`` targets run on, and how long its repairs take.

    Durations are what a repair takes until the service answers again (``novacron twin``
    measures them from a real fleet's store); ``faults`` and ``fault_rate_per_hour`` make
    the twin fail on its own, as chaos would.
    """

    seed: int = 0
    hosts: int | None = Field(None, ge=1, le=100_000, description="Twin hosts (default: one per sim target).")
    dt_s: float = Field(0.05, gt=0, le=60, description="Step of the twin's physics.")
    restart_s: float = Field(0.5, gt=0, le=3600, description="restart/start of a stopped VM until it serves.")
    stop_s: float = Field(0.0, ge=0, le=3600, description="Stopping a running (or hung) VM before a restart.")
    replace_s: float = Field(1.0, gt=0, le=3600, description="replace: a fresh VM on another host.")
    cleanup_s: float = Field(0.5, gt=0, le=3600)
    reallocate_s: float = Field(0.05, gt=0, le=3600, description="reallocate: new CPU limits in force.")
    probe_latency_s: float | None = Field(
        None, gt=0, le=60, description="A healthy target's answer time (default: the twin's physics)."
    )
    latency: dict[str, TwinLatency] = Field(
        default_factory=dict, description="Per sim target: answer times drawn log-normally (over probe_latency_s)."
    )
    decide_s: float = Field(
        0.0,
        ge=0,
        le=60,
        description="The controller's own time from an open incident to its first action starting (measured on "
        "the real fleet: simulated time stands still while the controller computes and writes its store).",
    )
    host_repair_s: float = Field(60.0, gt=0, le=86_400, description="A broken host handed back for repair.")
    neighbours: int = Field(0, ge=0, le=100_000, description="Other tenants' VMs, one per host in turn.")
    leak_gb_per_s: float = Field(0.01, gt=0, le=100, description="How fast a leak fault eats memory.")
    faults: list[TwinFaultAt] = Field(default_factory=list)
    fault_rate_per_hour: float = Field(0.0, ge=0, le=1_000_000)
    fault_mix: dict[TwinFaultName, float] = Field(default_factory=dict, description="Default: crash and hang.")


LearnerName = Literal["ladder", "bandit", "dqn"]


class ValueCheckSpec(_Frozen):
    """Fall back to the ladder while the learned policy is not estimated to do better.

    On loading a stored policy and every ``every`` settled decisions, the learned policy and
    the ladder are scored on the newest ``window`` logged decisions (doubly robust); the
    learned one acts only when it beats the ladder by more than ``z`` standard errors.
    """

    enabled: bool = True
    min_decisions: int = Field(50, ge=2, le=1_000_000, description="Settled decisions before judging.")
    every: int = Field(25, ge=1, le=1_000_000, description="Settled decisions between judgements.")
    window: int = Field(2000, ge=2, le=1_000_000, description="Newest settled decisions judged on.")
    z: float = Field(1.64, ge=0.0, le=10.0, description="Standard errors the learned policy must win by.")


class OnlineSpec(_Frozen):
    """A promoted DQN keeps learning from real outcomes (needs the ``ml`` extra).

    Every ``interval_s`` the decision log's new settled steps become transitions in a replay
    buffer, and ``gradient_steps`` DQN updates of ``batch_size`` run off the event loop; the
    new network replaces the policy and is stored as a new promoted version.
    """

    enabled: bool = True
    interval_s: float = Field(60.0, gt=0, le=86_400, description="Seconds between learning rounds.")
    gradient_steps: int = Field(20, ge=1, le=100_000)
    batch_size: int = Field(32, ge=1, le=4096)
    min_transitions: int = Field(32, ge=1, le=1_000_000, description="Transitions before the first round trains.")
    buffer_size: int = Field(20_000, ge=16, le=10_000_000)
    learning_rate: float = Field(3e-4, gt=0, le=1.0)


class LearningSpec(_Frozen):
    """A remediation policy that learns which step heals which fault (off: the ladder).

    With ``enabled`` the policy chooses every step of a healer among ``actions`` that the
    safety gate allows without approval; ``learner: ladder`` keeps today's ladder but
    records every decision, so a learner can be scored on them offline first.
    """

    enabled: bool = False
    learner: LearnerName = "bandit"
    actions: list[ActionKind] = Field(
        # reallocate is offered only where it can work (a writable cgroup, limits in the spec):
        # elsewhere the actuator refuses it and the policy never sees it.
        default_factory=lambda: [
            ActionKind.RESTART,
            ActionKind.REPLACE,
            ActionKind.WAIT,
            ActionKind.CONFIG_ROLLBACK,
            ActionKind.REALLOCATE,
        ],
        min_length=1,
    )
    explore: bool = Field(True, description="Thompson sampling; False: always the best estimate.")
    seed: int | None = None
    policy_name: str = Field("default", min_length=1, max_length=64, description="The stored policy to load.")
    max_steps: int = Field(4, ge=1, le=20, description="Steps before a human is called.")
    hold_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="A verified step is learned once its target has stayed free of faults this long; "
        "a fault on it sooner is a repair that did not hold, learned as a failed step.",
    )
    value_check: ValueCheckSpec = Field(default_factory=ValueCheckSpec)
    online: OnlineSpec = Field(default_factory=OnlineSpec)

    @field_validator("actions")
    @classmethod
    def _no_escalate(cls, v: list[ActionKind]) -> list[ActionKind]:
        if ActionKind.ESCALATE in v:
            raise ValueError("escalate is what follows the last step, not a step to learn")
        return v


_NAME = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$"


class ChannelSpec(_Frozen):
    """Where pages go: a signed webhook, a Slack incoming webhook or PagerDuty Events v2.

    Secrets never live in the spec (nor in the store): ``secret_env`` names the environment
    variable that holds one. A webhook's secret is its HMAC-SHA256 signing key; PagerDuty's
    is the routing key; for Slack, whose URL is the secret, the variable may hold the URL.
    """

    name: str = Field(pattern=_NAME)
    type: Literal["webhook", "slack", "pagerduty"]
    url: str | None = Field(None, description="Where to POST (PagerDuty: its Events API by default).")
    secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _needs(self) -> ChannelSpec:
        if self.type == "webhook" and (self.url is None or self.secret_env is None):
            raise ValueError("a webhook needs url and secret_env (the variable holding its signing key)")
        if self.type == "pagerduty" and self.secret_env is None:
            raise ValueError("pagerduty needs secret_env (the variable holding its routing key)")
        if self.type == "slack" and self.url is None and self.secret_env is None:
            raise ValueError("slack needs url, or secret_env naming the variable that holds it")
        return self


class EscalationLevel(_Frozen):
    """One rung: which channels, how long after escalation starts, and how often to repeat."""

    notify: list[str] = Field(min_length=1, description="Channel names to page.")
    after_s: float = Field(0.0, ge=0, description="Delay from escalation start (unacknowledged that long).")
    repeat_every_s: float | None = Field(None, gt=0, description="Repeat this page until acknowledged.")
    max_repeats: int = Field(0, ge=0, le=1000)


class EscalationPolicy(_Frozen):
    """Who is paged for which incidents: levels in order, for the listed priorities.

    An incident that needs a human always escalates, whatever its priority. ``targets``
    narrows a policy to some targets (empty: every target); the first policy that applies
    to an incident is the one that pages for it.
    """

    name: str = Field("default", pattern=_NAME)
    levels: list[EscalationLevel] = Field(min_length=1)
    priorities: list[Priority] = Field(default_factory=lambda: [Priority.P0])
    targets: list[str] = Field(default_factory=list)

    @field_validator("priorities", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        """Accept ``P0``…``P4`` as written in YAML, as well as the numbers."""
        if isinstance(v, list):
            return [Priority[p.upper()] if isinstance(p, str) and p.upper() in Priority.__members__ else p for p in v]
        return v


DEFAULT_REPEAT_S = 300.0


def default_escalation(channels: list[str], repeat_every_s: float = DEFAULT_REPEAT_S) -> EscalationPolicy:
    """The policy used without an ``escalation:`` block: every channel, P0/P1 and needs-human."""
    level = EscalationLevel(notify=channels, repeat_every_s=repeat_every_s, max_repeats=1000)
    return EscalationPolicy(name="default", levels=[level], priorities=[Priority.P0, Priority.P1])


class RunbookMatch(_Frozen):
    """Narrows which incidents a runbook file's runbooks take: fault kinds, targets, labels.

    Empty lists match everything; label values are shell-style patterns.
    """

    kinds: list[FaultKind] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class RunbookSource(_Frozen):
    """A runbook file (YAML, or Python registering with ``@runbook``), relative to the spec."""

    path: str = Field(min_length=1)
    match: RunbookMatch = Field(default_factory=RunbookMatch)


class FleetSpec(_Frozen):
    """A whole fleet: targets, the policy that guards them, and controller settings."""

    name: str = "fleet"
    policy: Policy = Field(default_factory=Policy)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    targets: list[TargetSpec] = Field(default_factory=list)
    agents: AgentsSpec = Field(default_factory=AgentsSpec)
    twin: TwinSettings | None = None
    learning: LearningSpec = Field(default_factory=LearningSpec)
    hosts: list[VmHostSpec] = Field(
        default_factory=list, description="VM hosts; without any, VMs run on one host named 'local'."
    )
    cgroups: CgroupSettings = Field(default_factory=CgroupSettings, description="Where reallocate writes limits.")

    @model_validator(mode="after")
    def _vm_hosts(self) -> FleetSpec:
        names = [h.name for h in self.hosts] or ["local"]
        if len(set(names)) != len(names):
            raise ValueError("hosts: duplicate host name")
        for i, t in enumerate(self.targets):
            if t.vm is not None and t.vm.host not in names:
                raise ValueError(f"targets[{i}].vm.host: unknown host {t.vm.host!r} (hosts: {', '.join(names)})")
        return self

    # Self-optimisation: what `novacron tune` / `novacron evolve` search (see docs/tuning.md).
    tuning: TuningSpec | None = None
    notify: list[ChannelSpec] = Field(default_factory=list, description="Channels pages are sent to.")
    escalation: list[EscalationPolicy] = Field(
        default_factory=list, description="Paging policies, first match wins (default: every channel for P0/P1)."
    )
    runbooks: list[RunbookSource] = Field(default_factory=list, description="Runbook files and what they match.")
    experiments: list[ExperimentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> FleetSpec:
        targets = {t.name for t in self.targets}
        channels: set[str] = set()
        for i, ch in enumerate(self.notify):
            if ch.name in channels:
                raise ValueError(f"notify[{i}].name: duplicate channel name {ch.name!r}")
            channels.add(ch.name)
        for i, pol in enumerate(self.escalation):
            for j, level in enumerate(pol.levels):
                for k, name in enumerate(level.notify):
                    if name not in channels:
                        raise ValueError(f"escalation[{i}].levels[{j}].notify[{k}]: unknown channel {name!r}")
            for j, name in enumerate(pol.targets):
                if name not in targets:
                    raise ValueError(f"escalation[{i}].targets[{j}]: unknown target {name!r}")
        for i, src in enumerate(self.runbooks):
            for j, name in enumerate(src.match.targets):
                if name not in targets:
                    raise ValueError(f"runbooks[{i}].match.targets[{j}]: unknown target {name!r}")
        return self

    def escalation_policies(self) -> list[EscalationPolicy]:
        """The paging policies in force: the spec's, or the default one when channels exist."""
        if self.escalation:
            return list(self.escalation)
        return [default_escalation([c.name for c in self.notify])] if self.notify else []

    @model_validator(mode="after")
    def _experiments(self) -> FleetSpec:
        fronted = {t.name for t in self.targets if t.frontend is not None}
        for i, t in enumerate(self.targets):
            if t.frontend is not None and t.port is None:
                raise ValueError(f"targets[{i}].port: a target with a frontend needs a port for its replicas")
        seen: set[str] = set()
        for i, e in enumerate(self.experiments):
            if e.name in seen:
                raise ValueError(f"experiments[{i}].name: duplicate experiment name {e.name!r}")
            seen.add(e.name)
            if e.target not in fronted:
                raise ValueError(f"experiments[{i}].target: {e.target!r} is not a target with a frontend")
        return self

    @model_validator(mode="after")
    def _graph(self) -> FleetSpec:
        names = [t.name for t in self.targets]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise ValueError(f"targets[{i}].name: duplicate target name {name!r}")
            seen.add(name)
        for i, t in enumerate(self.targets):
            for j, dep in enumerate(t.depends_on):
                if dep not in seen:
                    raise ValueError(f"targets[{i}].depends_on[{j}]: unknown target {dep!r}")
                if dep == t.name:
                    raise ValueError(f"targets[{i}].depends_on[{j}]: a target cannot depend on itself")
        cycle = _find_cycle({t.name: t.depends_on for t in self.targets})
        if cycle:
            raise ValueError("depends_on: dependency cycle " + " -> ".join(cycle))
        _check_twin(self)
        return self

    @model_validator(mode="after")
    def _ports(self) -> FleetSpec:
        _check_port_plan(self)
        return self

    def target(self, name: str) -> TargetSpec:
        """The target called ``name`` (KeyError if absent)."""
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)


def _check_twin(spec: FleetSpec) -> None:
    """Sim targets need a ``twin`` block, and its faults must name sim targets."""
    sims = {t.name for t in spec.targets if t.kind == "sim"}
    if sims and spec.twin is None:
        raise ValueError("twin: required when a target has kind: sim")
    if spec.twin is not None:
        for i, fault in enumerate(spec.twin.faults):
            if fault.target not in sims:
                raise ValueError(f"twin.faults[{i}].target: {fault.target!r} is not a sim target")
        for name in spec.twin.latency:
            if name not in sims:
                raise ValueError(f"twin.latency.{name}: not a sim target")


# -- cross-field checks of ports --------------------------------------------------------


def _check_port_plan(spec: FleetSpec) -> None:
    """Every replica port exists, belongs to one target, and is not the controller's own."""
    owner: dict[int, int] = {}  # port -> index of the target whose replica listens on it
    for i, t in enumerate(spec.targets):
        if t.port is None:
            continue
        last = t.port + max(t.replicas, 1) - 1
        if last > _MAX_PORT:
            raise ValueError(
                f"targets[{i}].port: {t.port} with {t.replicas} replicas needs ports up to {last} (> 65535)"
            )
        for port in range(t.port, last + 1):
            if port in owner:
                other = spec.targets[owner[port]].name
                raise ValueError(f"targets[{i}].port: port {port} of {t.name!r} is also a port of {other!r}")
            owner[port] = i
    for name in ("api_port", "metrics_port"):
        port = getattr(spec.controller, name)
        if port and port in owner:
            raise ValueError(f"controller.{name}: {port} is a port of target {spec.targets[owner[port]].name!r}")
    if spec.controller.api_port and spec.controller.api_port == spec.controller.metrics_port:
        raise ValueError(f"controller.metrics_port: {spec.controller.metrics_port} is also the api_port")


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """Return one dependency cycle as a path, or [] if the graph is acyclic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return []


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"http", "tcp", "exec", "heartbeat"} and out.endswith("]"):
            continue  # discriminator tag: not part of the user's path
        else:
            out += f".{part}" if out else str(part)
    return out or "spec"


_OWN_PATHS = ("targets[", "depends_on", "notify[", "escalation[", "runbooks[", "experiments[", "controller.", "hosts")
_MAX_PORT = 65535


def _errors(exc: ValidationError) -> Iterator[str]:
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = _loc(tuple(err["loc"]))
        yield msg if msg.startswith((*_OWN_PATHS, "twin")) else f"{where}: {msg}"


def parse_spec(data: Any, *, source: str = "spec") -> FleetSpec:
    """Validate an already-parsed mapping into a :class:`FleetSpec`."""
    if not isinstance(data, Mapping):
        raise ConfigError("the top level must be a mapping with a 'targets' list", where=source)
    try:
        return FleetSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(_errors(exc)), where=source) from exc


def load_spec(text_or_path: str | Path) -> FleetSpec:
    """Load a fleet spec from a YAML file path (``Path``) or YAML text (``str``)."""
    if isinstance(text_or_path, Path):
        source = str(text_or_path)
        try:
            text = text_or_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read spec: {exc.strerror}", where=source) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text (byte {exc.start} cannot be decoded)", where=source) from exc
    else:
        source, text = "spec", text_or_path
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(exc), where=source) from exc
    except RecursionError:
        raise ConfigError("nested too deeply to be a fleet spec", where=source) from None
    return parse_spec(data, source=source)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML syntax error as one line with its line and column, for a message that names the file.

    PyYAML's own text names the stream it parsed, ``"<unicode string>"`` for text already read,
    and spreads over several lines.
    """
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"not valid YAML: {exc}"
    at = _at(exc.problem_mark)
    context = ""
    if exc.context is not None:
        since = f" {_at(exc.context_mark)}" if exc.context_mark is not None else ""
        context = f" ({exc.context}{since})"
    return f"not valid YAML {at}: {exc.problem}{context}"


def _at(mark: Any) -> str:
    return f"at line {mark.line + 1}, column {mark.column + 1}"  # marks count from 0, editors from 1


def spec_to_yaml(spec: FleetSpec) -> str:
    """Serialise a spec back to YAML (kept in the store as a config version)."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
