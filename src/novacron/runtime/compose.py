"""The composition root: one function builds the healing flow of every controller.

:class:`~novacron.runtime.controller.Controller` (local processes) and
:class:`~novacron.runtime.simcontroller.SimController` (the twin's fleet) differ only in
their sensors and actuator; everything that decides and records — store, safety gate,
approvals, health, incidents, executor and its event consumers, healers — is built here,
the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from novacron.actuators.base import Actuator
from novacron.clock import Clock
from novacron.healing.advice import Advisor
from novacron.healing.approvals import Approvals
from novacron.healing.executor import Prover
from novacron.healing.flow import HealingFlow
from novacron.healing.healer import RunbookChooser
from novacron.healing.health import HealthTracker
from novacron.healing.safety import SafetyGate
from novacron.incidents.paging import Pager
from novacron.model import Incident, Observation
from novacron.notify import Channel
from novacron.runtime.storeguard import StoreWatch
from novacron.sensors.probes import Prober
from novacron.settings import EscalationPolicy, LearningSpec, Policy
from novacron.store import Store
from novacron.store.guard import GuardedStore
from novacron.store.rails import RailRepository
from novacron.telemetry import Metrics

if TYPE_CHECKING:
    from novacron.healing.hosts import HostView

__all__ = ["Composition", "Paging", "compose", "observe_proving"]


@dataclass(frozen=True, slots=True)
class Composition:
    """What :func:`compose` built."""

    store: Store
    gate: SafetyGate
    approvals: Approvals
    flow: HealingFlow
    pager: Pager | None = None


@dataclass(frozen=True, slots=True)
class Paging:
    """The spec's channels (secrets resolved) and escalation policies."""

    channels: list[Channel]
    policies: list[EscalationPolicy]


def compose(
    *,
    graph: Mapping[str, Sequence[str]],
    policy: Policy,
    store_url: str,
    actuator: Actuator,
    clock: Clock,
    metrics: Metrics,
    seed: int | None = None,
    advisor: Advisor[Any] | None = None,
    on_new_incident: Callable[[Incident], None] | None = None,
    on_resolved: Callable[[str], None] | None = None,
    component: str = "controller",
    paging: Paging | None = None,
    prove: Prover | None = None,
    runbooks: RunbookChooser | None = None,
    write_behind: bool = False,
    inline_writes: bool = False,
    learning: LearningSpec | None = None,
    hosts: HostView | None = None,
    node_id: str = "",
    approval_poll_s: float = 0.25,
) -> Composition:
    """Open the store and build gate, approvals and the healing flow over ``graph``.

    ``graph`` maps every target to the targets it depends on; its size is the fleet size
    the blast-radius cap is taken from. With ``paging`` (and at least one channel) the
    flow's incidents are paged through the store's outbox; ``prove`` is the executor's proof
    that an action's own process serves its target; ``runbooks`` picks the runbook (if
    any) that takes an incident instead of the built-in ladder. Approval requests are stored
    as asked by ``node_id``, which reads decisions taken elsewhere every ``approval_poll_s``.
    ``write_behind`` (the real controller) takes the healing path's store writes off the event loop and keeps healing
    through store faults (:mod:`novacron.runtime.storeguard`); with ``inline_writes`` (simulated
    time) its writes land on the loop's own thread, since a writer thread's real time would
    pass as simulated time (:mod:`novacron.store.guard`).
    """
    store = GuardedStore.open(store_url, inline=inline_writes) if write_behind else Store.open(store_url)
    if isinstance(store, GuardedStore):
        StoreWatch(store, metrics)
    gate = SafetyGate(policy, clock, fleet_size=len(graph), seed=seed, rails=RailRepository(store))
    approvals = Approvals(store, clock=clock, node_id=node_id, poll_s=approval_poll_s)
    flow = HealingFlow(
        graph=graph,
        store=store,
        actuator=actuator,
        gate=gate,
        approvals=approvals,
        metrics=metrics,
        clock=clock,
        advisor=advisor,
        on_new_incident=on_new_incident,
        on_resolved=on_resolved,
        component=component,
        prove=prove,
        runbooks=runbooks,
        learning=learning,
        hosts=hosts,
    )
    pager = None
    if paging is not None and paging.channels:
        pager = Pager(
            policies=paging.policies, channels=paging.channels, store=store, clock=clock, record=flow.incidents.event
        )
        flow.listeners.append(pager.on_event)
    return Composition(store, gate, approvals, flow, pager)


def observe_proving(health: HealthTracker, prober: Prober, obs: Observation) -> None:
    """Fold a probe result into health; a replica just proven healthy returns to its interval.

    After a start a replica is probed every few milliseconds until it proves itself; past
    that, probing that fast for the rest of its start timeout only costs CPU (a hundred idle
    targets took most of a core).
    """
    rep = health.replicas(obs.target).get(obs.replica)
    proving = rep is not None and not rep.healthy
    health.observe(obs)
    if proving and rep is not None and rep.healthy:
        prober.relax(obs.target, obs.replica)
