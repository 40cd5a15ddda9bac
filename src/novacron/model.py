"""Frozen records that flow through the system, and their enums.

The one data flow: sensors emit :class:`Observation`, detectors turn them into
:class:`Fault`, diagnosis groups faults into an :class:`Incident`, healing plans
:class:`Action` records whose results are :class:`Outcome`. Forecasting emits
:class:`Prediction`, which re-enters the flow as a preventive fault.
Records are immutable; lifecycle changes produce new records (``dataclasses.replace``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NewType

__all__ = [
    "EMPTY",
    "ENDED_STATUSES",
    "ENDING_EVENTS",
    "Action",
    "ActionId",
    "ActionKind",
    "ActionStatus",
    "Fault",
    "FaultId",
    "FaultKind",
    "Health",
    "Incident",
    "IncidentId",
    "IncidentStatus",
    "Observation",
    "Outcome",
    "Prediction",
    "Priority",
    "RiskLevel",
    "TargetId",
    "TargetState",
    "TimelineEvent",
]

TargetId = NewType("TargetId", str)
IncidentId = NewType("IncidentId", str)
ActionId = NewType("ActionId", str)
FaultId = NewType("FaultId", str)

EMPTY: Mapping[str, Any] = MappingProxyType({})


class FaultKind(enum.StrEnum):
    """What went wrong, as first noticed."""

    CRASH = "crash"  # the process exited
    HANG = "hang"  # alive but not answering its health check in time
    UNHEALTHY = "unhealthy"  # answering, but with an error
    HEARTBEAT_LOST = "heartbeat_lost"  # phi-accrual suspicion over threshold
    START_FAILED = "start_failed"  # could not start or never became healthy
    METRIC_ANOMALY = "metric_anomaly"  # a detector scored a metric as anomalous
    PREDICTED = "predicted"  # forecast: a resource will be exhausted soon
    ALERT = "alert"  # raised by an external alert source


class Health(enum.StrEnum):
    """A target's health as the controller sees it."""

    UNKNOWN = "unknown"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"
    QUARANTINED = "quarantined"


class ActionKind(enum.StrEnum):
    """The remediation catalog."""

    RESTART = "restart"
    STOP = "stop"
    START = "start"
    REPLACE = "replace"
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"
    CONFIG_ROLLBACK = "config_rollback"
    CLEANUP = "cleanup"
    ESCALATE = "escalate"
    DEPLOY_PATCH = "deploy_patch"  # run a fix branch's build in place of the target's code
    OPEN_CIRCUIT = "open_circuit"  # route a failed service's traffic to its fallback
    CLOSE_CIRCUIT = "close_circuit"  # send traffic back to a recovered service
    WAIT = "wait"  # touch nothing; verify that the target heals (e.g. once its upstream is back)
    # Traffic through a load-balancer frontend (actuators/haproxy.py).
    REROUTE = "reroute"  # set the servers' weights (move traffic between replicas or experiment arms)
    DRAIN = "drain"  # no new requests to a server; open ones finish
    UNDRAIN = "undrain"  # a drained server takes requests again
    CONFIG_CHANGE = "config_change"  # run a new spec version of a target (a tuned configuration)
    PROMOTE = "promote"  # an experiment's variant takes all the traffic and becomes the spec's version
    # Virtual machines (kind: vm targets) only.
    VM_MIGRATE = "vm_migrate"  # live migration to another host (cold when live is impossible)
    VM_SNAPSHOT = "vm_snapshot"  # save the guest's whole state
    VM_ROLLBACK = "vm_rollback"  # run the guest from a saved state
    VM_RESIZE = "vm_resize"  # memory balloon / vCPU hot-plug
    # Local processes: CPU and memory limits through cgroups (actuators/cgroups.py).
    REALLOCATE = "reallocate"


# Kinds proposed only by agents with the parameters they need (a patch deployment, circuit
# routing, an experiment's promotion, a tuned configuration promoted by `novacron tune --promote`).
AGENT_ONLY_ACTIONS = frozenset(
    {
        ActionKind.DEPLOY_PATCH,
        ActionKind.OPEN_CIRCUIT,
        ActionKind.CLOSE_CIRCUIT,
        ActionKind.PROMOTE,
        ActionKind.CONFIG_CHANGE,
    }
)
# escalate and wait are what automation does when it will not act itself: a human just acts.
POLICY_ONLY_ACTIONS = frozenset({ActionKind.ESCALATE, ActionKind.WAIT})
#: Every action kind a human may request (API, `novacron heal --action`), in catalog order.
MANUAL_ACTIONS: tuple[str, ...] = tuple(
    k.value for k in ActionKind if k not in AGENT_ONLY_ACTIONS and k not in POLICY_ONLY_ACTIONS
)


class RiskLevel(enum.IntEnum):
    """How much an action can disturb; ordered so policies can compare."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Lower-case name used in specs and the API."""
        return self.name.lower()


class ActionStatus(enum.StrEnum):
    """Where an action is in plan → gate → apply → verify."""

    PLANNED = "planned"
    BLOCKED = "blocked"
    AWAITING_APPROVAL = "awaiting_approval"
    DRY_RUN = "dry_run"
    APPLYING = "applying"
    APPLIED = "applied"
    VERIFIED = "verified"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class IncidentStatus(enum.StrEnum):
    """Incident lifecycle."""

    OPEN = "open"
    MITIGATING = "mitigating"
    RESOLVED = "resolved"
    NEEDS_HUMAN = "needs_human"
    # Ended unhealed because its target left the spec (a reload): not a repair, so no MTTR.
    CLOSED = "closed"


# Timeline kinds that end an incident: healed ("resolved"), or closed unhealed because its
# target left the spec ("closed"). Whatever follows an open incident stops at either.
ENDING_EVENTS = frozenset({"resolved", "closed"})
# The statuses of an ended incident (the others are open).
ENDED_STATUSES = frozenset({IncidentStatus.RESOLVED, IncidentStatus.CLOSED})


class Priority(enum.IntEnum):
    """P0 (page a human now) … P4 (log only)."""

    P0 = 0
    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading from a sensor about a target at a time."""

    target: TargetId
    source: str  # "process", "probe:http", "heartbeat", "metrics", …
    time: float
    healthy: bool | None = None
    replica: int = 0
    latency_s: float | None = None
    metrics: Mapping[str, float] = field(default_factory=lambda: EMPTY)
    detail: str = ""
    # A failure only a confirming observation may turn into a fault (a probe that ran into
    # its adaptive timeout, shorter than the spec's): one slow answer is never acted on.
    suspected: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    """A detected deviation on one target.

    ``since`` is when the evidence says the fault began (e.g. the first failed probe's
    start), ``detected_at`` when the system recorded it; MTTD is measured between them
    or from an externally known injection time.
    """

    id: FaultId
    target: TargetId
    kind: FaultKind
    detected_at: float
    since: float
    evidence: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    preventive: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """One remediation step against one target."""

    id: ActionId
    kind: ActionKind
    target: TargetId
    risk: RiskLevel
    idempotency_key: str
    incident_id: IncidentId | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    reason: str = ""
    requested_by: str = "controller"
    inverse_of: ActionId | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened when an action was applied (and, later, verified)."""

    action_id: ActionId
    ok: bool
    started_at: float
    finished_at: float
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class TargetState:
    """What an actuator observes of a target right now."""

    target: TargetId
    running: int  # replicas alive
    desired: int
    pids: tuple[int, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Prediction:
    """A forecast that a bounded resource will be exhausted.

    ``eta_s`` is seconds from ``made_at`` until exhaustion; ``interval`` a (low, high)
    range for it; ``confidence`` in [0, 1].
    """

    target: TargetId
    resource: str
    made_at: float
    eta_s: float
    interval: tuple[float, float]
    confidence: float
    evidence: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of an incident's timeline."""

    time: float
    kind: str  # detected, diagnosed, action_started, action_finished, verified, resolved, …
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Incident:
    """One fault episode on one target (repeated signals are deduplicated into it)."""

    id: IncidentId
    target: TargetId
    kind: FaultKind
    status: IncidentStatus
    priority: Priority
    opened_at: float
    since: float
    resolved_at: float | None = None
    fault_count: int = 1
    preventive: bool = False
    summary: str = ""

    @property
    def is_open(self) -> bool:
        """Not yet resolved (or closed)."""
        return self.status not in ENDED_STATUSES

    @property
    def mttd_s(self) -> float:
        """Time from the fault's start to its detection."""
        return max(0.0, self.opened_at - self.since)

    @property
    def mttr_s(self) -> float | None:
        """Time from the fault's start to verified recovery, if recovered (a closed one never was)."""
        if self.resolved_at is None or self.status is IncidentStatus.CLOSED:
            return None
        return max(0.0, self.resolved_at - self.since)
