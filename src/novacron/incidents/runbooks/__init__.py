"""Runbooks: YAML or Python generators that yield Actions and receive Outcomes.

Load YAML with :func:`load_runbooks` / :func:`parse_runbooks`, register Python generator
functions with :func:`runbook`, find the ones for an incident with
:meth:`RunbookRegistry.matching`, and preview any of them with :func:`dry_run`.
"""

from novacron.incidents.runbooks.compiled import INVERSE, YamlRunbook, judge
from novacron.incidents.runbooks.contract import (
    PythonRunbook,
    Runbook,
    RunbookContext,
    RunbookFunction,
    RunbookGenerator,
    RunbookResult,
    RunbookStatus,
)
from novacron.incidents.runbooks.dryrun import DryRun, PlannedStep, dry_run
from novacron.incidents.runbooks.registry import (
    DEFAULT_REGISTRY,
    RunbookRegistry,
    load_runbooks,
    parse_runbooks,
    runbook,
)
from novacron.incidents.runbooks.spec import (
    CheckSpec,
    MatchSpec,
    RollbackSpec,
    RunbookSpec,
    StepSpec,
    load_runbook_specs,
    parse_runbook_specs,
    runbook_json_schema,
)

__all__ = [
    "DEFAULT_REGISTRY",
    "INVERSE",
    "CheckSpec",
    "DryRun",
    "MatchSpec",
    "PlannedStep",
    "PythonRunbook",
    "RollbackSpec",
    "Runbook",
    "RunbookContext",
    "RunbookFunction",
    "RunbookGenerator",
    "RunbookRegistry",
    "RunbookResult",
    "RunbookSpec",
    "RunbookStatus",
    "StepSpec",
    "YamlRunbook",
    "dry_run",
    "judge",
    "load_runbook_specs",
    "load_runbooks",
    "parse_runbook_specs",
    "parse_runbooks",
    "runbook",
    "runbook_json_schema",
]
