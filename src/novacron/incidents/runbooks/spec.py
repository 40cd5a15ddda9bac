"""The YAML runbook format: pydantic models, load-time checks and the exported JSON Schema.

A runbook file holds one runbook (a mapping) or several (a list, or several YAML
documents). Every problem is a :class:`~novacron.errors.ConfigError` that names the file,
the runbook and the step (``web.yaml: runbook 'restart-web' step 'replace': action: …``),
and nothing from a file with an error is loaded. Unknown actions, ``goto`` to a missing
step and cycles between steps are refused here, so a loaded runbook always terminates.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novacron.errors import ConfigError
from novacron.model import ActionKind, FaultKind, RiskLevel
from novacron.settings import yaml_problem

__all__ = [
    "END",
    "RESERVED_PARAMS",
    "CheckSpec",
    "MatchSpec",
    "RollbackSpec",
    "RunbookSpec",
    "StepSpec",
    "load_runbook_specs",
    "parse_runbook_specs",
    "runbook_json_schema",
]

END = "end"
"""``goto: end`` finishes the runbook successfully after the step."""

RESERVED_PARAMS = frozenset({"timeout_s", "check", "runbook", "step"})
"""Keys the compiler adds to every action's params; a step may not set them itself."""

_NAME = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$"
RiskName = Literal["low", "medium", "high", "critical"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MatchSpec(_Model):
    """Which incidents a runbook applies to: any listed fault kind and all label patterns.

    An empty ``kinds`` list matches every kind; label values are shell-style patterns
    (``tier: web*``) matched against the target's labels.
    """

    kinds: list[FaultKind] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, kind: FaultKind, labels: Mapping[str, str]) -> bool:
        """Whether an incident of ``kind`` on a target with ``labels`` is covered."""
        if self.kinds and kind not in self.kinds:
            return False
        return all(key in labels and fnmatch.fnmatchcase(labels[key], pattern) for key, pattern in self.labels.items())


class CheckSpec(_Model):
    """How a step's outcome is validated, beyond ``ok``: values in the outcome's ``data``.

    ``expect`` values must be equal; ``at_least`` / ``at_most`` bound numeric values.
    """

    expect: dict[str, str | int | float | bool] = Field(default_factory=dict)
    at_least: dict[str, float] = Field(default_factory=dict)
    at_most: dict[str, float] = Field(default_factory=dict)

    def failures(self, data: Mapping[str, Any]) -> list[str]:
        """Human-readable reasons the ``data`` fails this check (empty when it passes)."""
        out = [
            f"{key}={data.get(key)!r}, expected {want!r}" for key, want in self.expect.items() if data.get(key) != want
        ]
        for key, low in self.at_least.items():
            value = data.get(key)
            if not isinstance(value, int | float) or value < low:
                out.append(f"{key}={value!r}, expected at least {low}")
        for key, high in self.at_most.items():
            value = data.get(key)
            if not isinstance(value, int | float) or value > high:
                out.append(f"{key}={value!r}, expected at most {high}")
        return out


class RollbackSpec(_Model):
    """The action that undoes a step, when the default inverse is not right."""

    action: ActionKind
    params: dict[str, Any] = Field(default_factory=dict)


class StepSpec(_Model):
    """One runbook step: an action on a target, how to validate it, and what to do if it fails."""

    name: str = Field(pattern=_NAME)
    action: ActionKind
    params: dict[str, Any] = Field(default_factory=dict)
    target: str = Field("{target}", description="Target id; '{target}' is the incident's target.")
    risk: RiskName | None = Field(None, description="Overrides the action kind's default risk.")
    timeout_s: float = Field(30.0, gt=0, le=86_400)
    check: CheckSpec = Field(default_factory=CheckSpec)
    on_failure: Literal["rollback", "next", "escalate"] = "escalate"
    goto: str | None = Field(None, description="Step to run after this one succeeds ('end' finishes).")
    rollback: RollbackSpec | None = None

    @field_validator("params")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(RESERVED_PARAMS & v.keys())
        if clash:
            raise ValueError(f"reserved parameter name(s) {', '.join(clash)}; use the step's own fields")
        return v

    @field_validator("name")
    @classmethod
    def _not_end(cls, v: str) -> str:
        if v == END:
            raise ValueError(f"'{END}' is reserved for 'goto: {END}'")
        return v

    def risk_level(self) -> RiskLevel:
        """The step's risk: explicit, or the action kind's default."""
        return RiskLevel[self.risk.upper()] if self.risk else DEFAULT_RISK[self.action]


DEFAULT_RISK: Mapping[ActionKind, RiskLevel] = {
    ActionKind.RESTART: RiskLevel.LOW,
    ActionKind.START: RiskLevel.LOW,
    ActionKind.SCALE_OUT: RiskLevel.LOW,
    ActionKind.ESCALATE: RiskLevel.LOW,
    ActionKind.STOP: RiskLevel.MEDIUM,
    ActionKind.REPLACE: RiskLevel.MEDIUM,
    ActionKind.SCALE_IN: RiskLevel.MEDIUM,
    ActionKind.CLEANUP: RiskLevel.MEDIUM,
    ActionKind.CONFIG_ROLLBACK: RiskLevel.HIGH,
    ActionKind.DEPLOY_PATCH: RiskLevel.HIGH,
    ActionKind.OPEN_CIRCUIT: RiskLevel.MEDIUM,
    ActionKind.CLOSE_CIRCUIT: RiskLevel.MEDIUM,
    ActionKind.REROUTE: RiskLevel.MEDIUM,
    ActionKind.DRAIN: RiskLevel.LOW,
    ActionKind.UNDRAIN: RiskLevel.LOW,
    ActionKind.PROMOTE: RiskLevel.HIGH,
    ActionKind.CONFIG_CHANGE: RiskLevel.MEDIUM,
}


class RunbookSpec(_Model):
    """A named, matched list of steps; the top-level object of a runbook file."""

    name: str = Field(pattern=_NAME)
    description: str = ""
    match: MatchSpec = Field(default_factory=MatchSpec)
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _graph(self) -> RunbookSpec:
        names: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            if step.name in names:
                raise ValueError(f"steps[{i}] '{step.name}': duplicate step name")
            names[step.name] = i
        for step in self.steps:
            if step.goto is not None and step.goto != END and step.goto not in names:
                raise ValueError(f"step '{step.name}': goto: unknown step '{step.goto}'")
        cycle = _find_cycle(self.steps, names)
        if cycle:
            raise ValueError(f"step '{cycle[0]}': steps form a cycle {' -> '.join(cycle)}")
        return self

    def index(self, name: str) -> int:
        """Position of the step called ``name``."""
        for i, step in enumerate(self.steps):
            if step.name == name:
                return i
        raise KeyError(name)


def _successors(steps: Sequence[StepSpec], names: Mapping[str, int], i: int) -> list[int]:
    """Steps that can run right after step ``i`` (on success, and on failure with ``next``)."""
    step, following = steps[i], i + 1
    out: list[int] = []
    if step.goto is None:
        out.append(following)
    elif step.goto != END:
        out.append(names[step.goto])
    if step.on_failure == "next":
        out.append(following)
    return [j for j in out if j < len(steps)]


def _find_cycle(steps: Sequence[StepSpec], names: Mapping[str, int]) -> list[str]:
    """One cycle in the step graph as a list of step names, or [] if there is none."""
    state: dict[int, int] = {}
    path: list[int] = []

    def visit(i: int) -> list[int]:
        state[i] = 1
        path.append(i)
        for j in _successors(steps, names, i):
            if state.get(j) == 1:
                return [*path[path.index(j) :], j]
            if j not in state and (found := visit(j)):
                return found
        path.pop()
        state[i] = 2
        return []

    for i in range(len(steps)):
        if i not in state and (found := visit(i)):
            return [steps[j].name for j in found]
    return []


def runbook_json_schema() -> dict[str, Any]:
    """The JSON Schema of one runbook document (what ``novacron runbooks schema`` prints)."""
    schema = RunbookSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "NovaCron runbook"
    return schema


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """Turn pydantic's ``('steps', 2, 'action')`` into ``step 'replace': action``."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = raw.get("steps") if isinstance(raw, Mapping) else None
        name: Any = None
        if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], Mapping):
            name = steps[loc[1]].get("name")
        head = f"step '{name}'" if isinstance(name, str) else f"steps[{loc[1]}]"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{head}: {rest}" if rest else head
    return ".".join(str(p) for p in loc) or "runbook"


def _messages(exc: ValidationError, raw: Any) -> Iterator[str]:
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = tuple(err["loc"])
        if err["type"] == "enum" and "expected" in err.get("ctx", {}):
            msg = f"unknown {loc[-1]} {err['input']!r} (expected {err['ctx']['expected']})"
        yield msg if not loc else f"{_location(loc, raw)}: {msg}"


def _one(raw: Any, where: str) -> RunbookSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError("a runbook must be a mapping with 'name' and 'steps'", where=where)
    name = raw.get("name")
    label = f"{where}: runbook '{name}'" if isinstance(name, str) else where
    try:
        return RunbookSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_messages(exc, raw)), where=label) from exc


def parse_runbook_specs(text: str, *, source: str = "runbook") -> list[RunbookSpec]:
    """Parse YAML text holding one runbook, a list of them, or several documents."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(exc), where=source) from exc
    raws: list[Any] = []
    for doc in docs:
        raws.extend(doc if isinstance(doc, list) else [doc])
    if not raws:
        raise ConfigError("no runbook found", where=source)
    specs = [_one(raw, f"{source}[{i}]" if len(raws) > 1 else source) for i, raw in enumerate(raws)]
    _unique(specs, source)
    return specs


def _unique(specs: Sequence[RunbookSpec], source: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"duplicate runbook name '{spec.name}'", where=source)
        seen.add(spec.name)


def load_runbook_specs(path: Path) -> list[RunbookSpec]:
    """Load every runbook in a file, or in every ``*.yaml`` / ``*.yml`` file of a directory."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
        if not files:
            raise ConfigError("no *.yaml or *.yml files", where=str(path))
    else:
        files = [path]
    specs: list[RunbookSpec] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", where=str(file)) from exc
        specs.extend(parse_runbook_specs(text, source=str(file)))
    _unique(specs, str(path))
    return specs
