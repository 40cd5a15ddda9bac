"""SQLAlchemy table definitions (Core): the single source of the schema.

Alembic migrations under ``migrations/`` create exactly these tables; a test checks that
the migrated schema and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "ID_LENGTH",
    "KEY_LENGTH",
    "VERB_LENGTH",
    "actions",
    "agent_outputs",
    "api_tokens",
    "approvals",
    "audit",
    "config_versions",
    "escalations",
    "experiment_looks",
    "experiments",
    "faults",
    "incidents",
    "metadata",
    "outbox",
    "policy_decisions",
    "policy_feedback",
    "policy_versions",
    "processes",
    "safety_rails",
    "settings_kv",
    "target_status",
    "timeline",
    "tune_studies",
    "tune_trials",
]

metadata = MetaData()

# Lengths that ids made from outside input are bounded to (see store/repo.py's clipping).
ID_LENGTH = 128
KEY_LENGTH = 255
VERB_LENGTH = 255

config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("source", String(255), nullable=False, default=""),
    Column("body", Text, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("target", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("since", Float, nullable=False),
    Column("resolved_at", Float),
    Column("fault_count", Integer, nullable=False, default=1),
    Column("preventive", Boolean, nullable=False, default=False),
    Column("summary", Text, nullable=False, default=""),
    Index("ix_incidents_target_status", "target", "status"),
    Index("ix_incidents_opened", "opened_at"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("time", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("data", JSON, nullable=False, default=dict),
)

faults = Table(
    "faults",
    metadata,
    # Fault ids come from outside too (an Alertmanager fingerprint): bounded where they are
    # made, and the column leaves room for every form the code makes.
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("incident_id", String(40), ForeignKey("incidents.id"), index=True),
    Column("target", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("since", Float, nullable=False),
    Column("preventive", Boolean, nullable=False, default=False),
    Column("evidence", JSON, nullable=False, default=dict),
)

actions = Table(
    "actions",
    metadata,
    Column("id", String(KEY_LENGTH), primary_key=True),  # a runbook step's id is derived from its key
    # Persisted before the action is applied: a restarted controller that finds the key
    # knows the action already ran (or may have) and never applies it a second time.
    Column("idempotency_key", String(KEY_LENGTH), nullable=False, unique=True),
    Column("incident_id", String(40), ForeignKey("incidents.id"), index=True),
    Column("target", String(128), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("risk", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("params", JSON, nullable=False, default=dict),
    Column("reason", Text, nullable=False, default=""),
    Column("requested_by", String(64), nullable=False, default="controller"),
    Column("inverse_of", String(KEY_LENGTH)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("detail", Text, nullable=False, default=""),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("verb", String(VERB_LENGTH), nullable=False),
    Column("subject", String(255), nullable=False, default=""),
    Column("result", String(64), nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
)

processes = Table(
    "processes",
    metadata,
    Column("target", String(128), primary_key=True),
    Column("replica", Integer, primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("create_time", Float, nullable=False),
    Column("port", Integer),
    Column("config_version", Integer),
    # Also in the child's environment: finds a child whose pid never reached the store.
    Column("nonce", String(32)),
)

target_status = Table(
    "target_status",
    metadata,
    Column("target", String(128), primary_key=True),
    Column("health", String(16), nullable=False),
    Column("running", Integer, nullable=False, default=0),
    Column("desired", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    # For operators (`novacron status`): the state word (healthy, healing, stopped, …),
    # replica restarts so far and the last fault seen ({"at", "kind", "detail", "incident"}).
    Column("state", String(24)),
    Column("restarts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_fault", JSON),
)

settings_kv = Table(
    "settings_kv",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    # The public half of a token ("nvc_<id>.<secret>"): rows are found by id, and only
    # the SHA-256 of the secret is kept, so a leaked database grants no access.
    Column("id", String(16), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

agent_outputs = Table(
    "agent_outputs",
    metadata,
    # One row per agent run: what it found, proposed and how each proposal was routed.
    Column("id", String(40), primary_key=True),
    Column("agent", String(64), nullable=False, index=True),
    Column("run_at", Float, nullable=False, index=True),
    Column("targets", JSON, nullable=False, default=list),
    Column("findings", JSON, nullable=False, default=list),
    Column("proposals", JSON, nullable=False, default=list),
    Column("applied", Boolean, nullable=False, default=False),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("summary", Text, nullable=False, default=""),
)

# -- remediation-policy learning -----------------------------------------------------
policy_decisions = Table(
    "policy_decisions",
    metadata,
    # Every step a policy chose, with what it knew and the odds it had: enough to score
    # any other policy on it offline (inverse propensity, doubly robust).
    Column("id", String(40), primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("policy", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("incident_id", String(40), index=True),
    Column("action_id", String(40), index=True),
    Column("action", String(32), nullable=False),
    Column("context", JSON, nullable=False),
    Column("allowed", JSON, nullable=False),
    Column("propensity", Float, nullable=False),
    Column("explored", Boolean, nullable=False, default=False),
    Column("reward", Float),
    Column("outcome", String(24)),
)

policy_feedback = Table(
    "policy_feedback",
    metadata,
    # An operator's mark on an action: it enters the reward of the decision behind it.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", String(40), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("verdict", String(8), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("source", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("promoted", Boolean, nullable=False, default=False),
)

# -- self-optimisation: studies of `novacron tune` / `novacron evolve` and their trials --
tune_studies = Table(
    "tune_studies",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # tune | evolve
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("config", JSON, nullable=False),  # what was searched, how, on which scenario
    Column("result", JSON, nullable=False, default=dict),
)

tune_trials = Table(
    "tune_trials",
    metadata,
    Column("study", String(128), ForeignKey("tune_studies.name", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("generation", Integer),  # evolve: the generation the genome belongs to
    Column("state", String(16), nullable=False),  # running | complete | failed
    Column("params", JSON, nullable=False),
    Column("value", Float),
    Column("feasible", Boolean, nullable=False, default=True),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

safety_rails = Table(
    "safety_rails",
    metadata,
    # The safety gate's memory, so a restarted controller cannot reset it: one row per
    # target and rail (quarantine, rate_limit, backoff, flap). Times are wall-clock seconds.
    Column("target", String(128), primary_key=True),
    Column("rail", String(24), primary_key=True),
    Column("until", Float),
    Column("data", JSON, nullable=False, default=dict),
    Column("updated_at", Float, nullable=False),
)

escalations = Table(
    "escalations",
    metadata,
    # Which pages of an incident's escalation were sent, to whom, and when it was
    # acknowledged: a restarted controller neither pages twice nor forgets who to tell.
    Column("incident_id", String(40), primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("sent", JSON, nullable=False, default=list),
    Column("paged", JSON, nullable=False, default=list),
    Column("acked_at", Float),
    Column("updated_at", Float, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    # Every message to a channel waits here until the channel takes it (or it is given up).
    Column("id", String(40), primary_key=True),
    Column("channel", String(64), nullable=False),
    Column("queued_at", Float, nullable=False),
    Column("notification", JSON, nullable=False),
    Column("state", String(12), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("done_at", Float),
    Index("ix_outbox_state_queued", "state", "queued_at"),
)

experiments = Table(
    "experiments",
    metadata,
    # One row per experiment: its spec, the canary's state and each arm's tallies, so a
    # restarted controller resumes it where it was.
    Column("name", String(64), primary_key=True),
    Column("target", String(64), nullable=False, index=True),
    Column("arm", String(24), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("phase", String(24), nullable=False),
    Column("state", JSON, nullable=False),
    Column("arms", JSON, nullable=False),
    Column("threshold_s", Float),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

experiment_looks = Table(
    "experiment_looks",
    metadata,
    # What each look saw and decided: split, tallies, the tests with their confidence sequences.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment", String(64), nullable=False, index=True),
    Column("time", Float, nullable=False),
    Column("split", Float, nullable=False),
    Column("move", String(16), nullable=False),
    Column("data", JSON, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    # One row per approval request (the action's row says awaiting_approval): the node that
    # asked, and the one decision any node may write while it is open (migration 0005).
    Column("action_id", String(40), primary_key=True),
    Column("asked_by", String(128), nullable=False),
    Column("asked_at", Float, nullable=False),
    Column("decision", String(12)),  # approve, reject, withdrawn; NULL while open
    Column("decided_by", String(128)),
    Column("decided_on", String(128)),  # the node whose API or CLI took the decision
    Column("decided_at", Float),
)
