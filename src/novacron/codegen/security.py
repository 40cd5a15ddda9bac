"""Security patches for a few bandit finding classes, validated like any other candidate.

Classes: ``yaml.load`` (B506) → ``yaml.safe_load``; ``shell=True`` (B602/B604) → an
argument list via ``shlex.split``; weak hashes (B303/B324) → SHA-256; ``requests`` without a
timeout (B113) → ``timeout=30``. Each finding's patch must keep every passing test
passing; the surviving patches go into one commit on the fix branch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from novacron.codegen.candidates import Candidate
from novacron.codegen.finish import rollback_plan
from novacron.codegen.report import FixReport, assess_risk, unified_diff
from novacron.codegen.testrun import TestRun, is_test_file, run_tests
from novacron.codegen.validate import Validator

if TYPE_CHECKING:
    from novacron.codegen.fixer import FixRequest
    from novacron.codegen.gitrepo import GitRepo, Worktree

_EQ = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
__all__ = ["SECURITY_TESTS", "bandit_findings", "patch_finding", "security_fix"]

SECURITY_TESTS = {
    "B506": "yaml_load",
    "B602": "shell_true",
    "B604": "shell_true",
    "B303": "weak_hash",
    "B324": "weak_hash",
    "B113": "request_timeout",
}
_HTTP = {"get", "post", "put", "patch", "delete", "head", "request", "options"}


def bandit_findings(root: Path) -> list[dict[str, Any]]:
    """Bandit findings of the known classes in non-test Python files."""
    try:
        from bandit.core import config as b_config  # noqa: PLC0415 - the `fix` extra
        from bandit.core import manager as b_manager  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("security patches need bandit: pip install 'novacron[fix]'") from exc
    files = [str(p) for p in sorted(root.rglob("*.py")) if not is_test_file(p.relative_to(root).as_posix())]
    files = [f for f in files if "/." not in f[len(str(root)) :]]
    mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
    mgr.discover_files(files, False)
    mgr.run_tests()
    return [
        {"test": i.test_id, "file": Path(i.fname).relative_to(root).as_posix(), "line": i.lineno, "text": i.text}
        for i in mgr.get_issue_list()
        if i.test_id in SECURITY_TESTS
    ]


class _Patch(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, line: int, kind: str) -> None:
        self.line, self.kind, self.changed, self.needs_shlex = line, kind, False, False

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:  # noqa: N802 - libcst's name
        pos = self.get_metadata(PositionProvider, original_node)
        if not (pos.start.line <= self.line <= pos.end.line):
            return updated_node
        new = getattr(self, f"_{self.kind}")(updated_node)
        self.changed = self.changed or new is not updated_node
        return new  # type: ignore[no-any-return]

    def _yaml_load(self, n: cst.Call) -> cst.Call:
        if isinstance(n.func, cst.Attribute) and n.func.attr.value == "load" and n.args:
            return n.with_changes(
                func=n.func.with_changes(attr=cst.Name("safe_load")),
                args=[n.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)],
            )
        return n

    def _shell_true(self, n: cst.Call) -> cst.Call:
        shell = [a for a in n.args if a.keyword is not None and a.keyword.value == "shell"]
        if not shell or not n.args or n.args[0].keyword is not None:
            return n
        self.needs_shlex = True
        first = n.args[0].with_changes(
            value=cst.parse_expression(f"shlex.split({cst.Module([]).code_for_node(n.args[0].value)})")
        )
        rest = [a for a in n.args[1:] if a not in shell]
        args = [first, *rest]
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return n.with_changes(args=args)

    def _weak_hash(self, n: cst.Call) -> cst.Call:
        if isinstance(n.func, cst.Attribute) and n.func.attr.value in {"md5", "sha1"}:
            return n.with_changes(func=n.func.with_changes(attr=cst.Name("sha256")))
        if isinstance(n.func, cst.Attribute) and n.func.attr.value == "new" and n.args:
            return n.with_changes(args=[n.args[0].with_changes(value=cst.SimpleString('"sha256"')), *n.args[1:]])
        return n

    def _request_timeout(self, n: cst.Call) -> cst.Call:
        if (
            isinstance(n.func, cst.Attribute)
            and n.func.attr.value in _HTTP
            and not any(a.keyword and a.keyword.value == "timeout" for a in n.args)
        ):
            return n.with_changes(args=[*n.args, cst.Arg(cst.Integer("30"), keyword=cst.Name("timeout"), equal=_EQ)])
        return n


def patch_finding(source: str, finding: Mapping[str, Any]) -> str | None:
    """The file with one finding's template applied, or None if the template does not fit."""
    module = cst.parse_module(source)
    patch = _Patch(int(finding["line"]), SECURITY_TESTS[str(finding["test"])])
    new = MetadataWrapper(module).visit(patch)
    if not patch.changed:
        return None
    code = new.code
    if patch.needs_shlex and "import shlex" not in code:
        code = (
            "import shlex\n" + code if not code.startswith(('"""', "'''", "from __future__")) else _after_header(code)
        )
    return code


def _after_header(code: str) -> str:
    module = cst.parse_module(code)
    body = list(module.body)
    i = 0
    while i < len(body) and (
        cst.Module([]).code_for_node(body[i]).lstrip().startswith(('"""', "'''", "from __future__"))
    ):
        i += 1
    body.insert(i, cst.parse_statement("import shlex\n"))
    return module.with_changes(body=body).code


def security_fix(
    req: FixRequest,
    repo: GitRepo,
    wt: Worktree,
    baseline: TestRun,
    fix_id: str,
    base: Mapping[str, Any],
    elapsed: Callable[[], float],
) -> FixReport:
    """Patch every known finding whose template keeps the tests green; one commit for all."""
    common = {**base, "id": fix_id, "root_cause": "security", "exception": "", "message": "", "suspects": ()}
    findings = bandit_findings(wt.path) if req.security else []
    validator = Validator(wt.path, req.test_command, baseline, req.limits, req.test_timeout_s)
    results: list[dict[str, Any]] = []
    for f in findings:
        path = wt.path / f["file"]
        new = patch_finding(path.read_text(encoding="utf-8"), f)
        if new is None:
            results.append({**f, "patched": False, "detail": "no template fits this line"})
            continue
        verdict = validator.validate(Candidate(f["file"], new, SECURITY_TESTS[f["test"]], f["text"], f["line"], 1.0))
        if verdict.plausible:
            path.write_text(new, encoding="utf-8")  # kept: later findings build on it
        results.append({**f, "patched": verdict.plausible, "detail": verdict.detail})
    patched = [r for r in results if r["patched"]]
    if not patched:
        note = (
            "no failing test and no security finding to fix"
            if not findings
            else "no security patch kept the tests green"
        )
        return FixReport(
            **common,
            fixed=False,
            candidates_tried=validator.tried,
            duration_s=elapsed(),
            security=tuple(results),
            notes=(note,),
        )
    files = sorted({r["file"] for r in patched})
    diff = "".join(
        unified_diff(f, repo.show("HEAD", f) or "", (wt.path / f).read_text(encoding="utf-8")) for f in files
    )
    final = run_tests(req.test_command, wt.path, req.limits, test_timeout_s=req.test_timeout_s)
    ok, detail = validator.judge(final)
    if not ok:
        return FixReport(
            **common,
            fixed=False,
            candidates_tried=validator.tried,
            duration_s=elapsed(),
            security=tuple(results),
            notes=(f"combined security patches failed: {detail}",),
        )
    risk, reasons = assess_risk(diff, len(files), None)
    lines = "\n".join(f"  {r['test']} {r['file']}:{r['line']} {r['text']}" for r in patched)
    msg = (
        f"Fix {len(patched)} security finding(s) reported by bandit\n\nFindings:\n{lines}\n\n"
        f"Tests run: `{req.test_command}`: {detail}\n"
    )
    branch = f"novacron/fix-{fix_id}"
    sha = wt.commit_to_branch(branch, msg)
    return FixReport(
        **common,
        fixed=True,
        candidates_tried=validator.tried,
        duration_s=elapsed(),
        strategy="security",
        description=f"{len(patched)} bandit finding(s) patched",
        branch=branch,
        commit=sha,
        diff=diff,
        files=tuple(files),
        risk=risk.label,
        risk_reasons=reasons,
        rollback=rollback_plan(branch, sha),
        security=tuple(results),
    )
