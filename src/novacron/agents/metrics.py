"""Prometheus counts for the agents, registered on the controller's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from novacron.agents.base import AgentOutput

__all__ = ["AgentMetrics"]


class AgentMetrics:
    """Runs, findings and proposals (by routing status) per agent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("novacron_agent_runs_total", "Agent runs.", ["agent"], registry=registry)
        self.findings = Counter("novacron_agent_findings_total", "Agent findings.", ["agent"], registry=registry)
        self.proposals = Counter(
            "novacron_agent_proposals_total", "Agent proposals by status.", ["agent", "status"], registry=registry
        )
        self.errors = Counter("novacron_agent_errors_total", "Agent runs that raised.", ["agent"], registry=registry)

    def record(self, out: AgentOutput) -> None:
        """Count one output."""
        self.runs.labels(agent=out.agent).inc()
        self.findings.labels(agent=out.agent).inc(len(out.findings))
        for p in out.proposals:
            self.proposals.labels(agent=out.agent, status=p.status).inc()
