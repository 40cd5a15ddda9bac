"""The bug fixer as an agent: a crashing target whose spec names its repository and tests.

When a replica's log shows a new Python traceback, the agent runs the fixer on the
target's ``repair.repo`` with ``repair.test`` and that log. A validated fix branch is
exported (``git archive``, so the repository is not touched) under the controller's
workdir, and the agent proposes ``deploy_patch``: run the target from the exported tree.
That is a high-risk action, so it waits for a human's approval; its inverse rolls the
target back to the spec it ran before.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from novacron.agents._util import output, propose
from novacron.agents.base import AgentContext, AgentOutput, Finding, Proposal
from novacron.codegen import FixReport, FixRequest, SandboxLimits, find_traceback, fix
from novacron.codegen.gitrepo import GIT, GitRepo
from novacron.errors import InputError, NovacronError
from novacron.model import ActionKind
from novacron.settings import TargetSpec

__all__ = ["BugFixAgent", "export_branch"]


def export_branch(repo: Path, branch: str, dest: Path) -> None:
    """Write the tree of ``branch`` to ``dest`` without touching the repository's work tree."""
    archive = subprocess.run([GIT, "archive", "--format=tar", branch], cwd=repo, capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


class BugFixAgent:
    """Crash log → validated fix branch → a deploy proposal that waits for approval."""

    name = "bugfix"
    interval_s = 10.0

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self.reports: dict[str, FixReport] = {}

    def run(self, context: AgentContext) -> AgentOutput:
        """Look at every repairable target's log for a crash not handled yet."""
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        for tspec in context.spec.targets:
            if tspec.repair is None:
                continue
            log = context.logs(tspec.name)
            try:
                tb = find_traceback(log)
            except InputError:
                continue
            inner = tb.innermost
            signature = hashlib.sha256(f"{tspec.name}|{tb.exc_type}|{tb.message}|{inner}".encode()).hexdigest()[:12]
            if signature in self._seen:
                continue
            self._seen.add(signature)
            finding, proposal = self._fix(context, tspec, log, signature)
            findings.append(finding)
            proposals += [proposal] if proposal is not None else []
        return output(self.name, context, findings, proposals, f"{len(findings)} crash(es) analysed")

    def _fix(
        self, context: AgentContext, tspec: TargetSpec, log: str, signature: str
    ) -> tuple[Finding, Proposal | None]:
        repair = tspec.repair
        assert repair is not None
        req = FixRequest(
            repo=Path(repair.repo),
            test_command=repair.test,
            log_text=log,
            limits=SandboxLimits(timeout_s=repair.timeout_s),
            time_budget_s=repair.budget_s,
            fix_id=f"{tspec.name}-{signature}",
        )
        try:
            report = fix(req)
        except NovacronError as exc:
            return Finding(tspec.name, "crash_bug", f"crash not fixable: {exc}", 0.3, {"error": str(exc)}), None
        self.reports[signature] = report
        evidence: dict[str, Any] = {k: v for k, v in report.to_json().items() if k not in ("tests_failing_before",)}
        summary = f"{report.root_cause} ({report.exception}: {report.message})"
        if not report.fixed or report.branch is None:
            return Finding(tspec.name, "crash_bug", f"{summary}; no validated patch", 0.5, evidence), None
        root = GitRepo(Path(repair.repo)).root
        dest = Path(context.workdir).resolve() / "patches" / f"{tspec.name}-{report.id}"
        export_branch(root, report.branch, dest)
        cwd = Path(tspec.cwd).resolve() if tspec.cwd else root
        new_cwd = dest / cwd.relative_to(root) if cwd.is_relative_to(root) else dest
        new_spec = tspec.model_copy(update={"cwd": str(new_cwd)})
        params = {
            "target_spec": new_spec.model_dump(mode="json"),
            "version": f"fix-{report.id}",
            "from_target_spec": tspec.model_dump(mode="json"),
            "from_version": "running",
            "branch": report.branch,
            "commit": report.commit,
            "risk_of_patch": report.risk,
        }
        proposal = propose(
            self.name,
            ActionKind.DEPLOY_PATCH,
            tspec.name,
            key=f"{tspec.name}/{report.id}",
            reason=f"deploy {report.branch}: {report.description}",
            rollback=report.rollback + " Deployed: the inverse config_rollback runs the previous target spec again.",
            params=params,
        )
        return Finding(tspec.name, "crash_bug", f"{summary}; fixed on {report.branch}", 0.9, evidence), proposal
