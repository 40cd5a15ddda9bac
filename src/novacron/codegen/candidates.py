"""Candidate patches without a model: revert of a recent change, then repair templates.

Candidates are ranked by how suspicious their line is and by how well their template
fits the root-cause class; identical results are produced once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from novacron.codegen.gitrepo import GitRepo
from novacron.codegen.localise import Suspect
from novacron.codegen.traceback import RootCause

__all__ = ["PREFERRED", "Candidate", "revert_candidates", "template_candidates"]

PREFERRED: dict[RootCause, tuple[str, ...]] = {
    RootCause.NONE_ATTRIBUTE: ("guard", "none_default", "none_conditional", "missing_return", "wrong_variable"),
    RootCause.KEY_INDEX: ("missing_key", "guard", "off_by_one", "comparison_operator"),
    RootCause.TYPE: ("type_conversion", "swap_arguments", "wrong_variable", "missing_return"),
    RootCause.VALUE_VALIDATION: ("handle_error", "division_guard", "guard", "comparison_operator", "off_by_one"),
    RootCause.TIMEOUT: ("timeout", "retry"),
    RootCause.RESOURCE_EXHAUSTION: ("close_resource", "comparison_operator", "off_by_one", "arithmetic_operator"),
    RootCause.OFF_BY_ONE: ("off_by_one", "comparison_operator"),
    RootCause.WRONG_OPERATOR: (
        "comparison_operator",
        "boolean_operator",
        "arithmetic_operator",
        "negate_condition",
        "drop_negation",
        "off_by_one",
        "wrong_variable",
        "swap_arguments",
    ),
    RootCause.INFINITE_LOOP: ("loop_increment", "arithmetic_operator", "off_by_one", "comparison_operator"),
    RootCause.UNKNOWN: (),
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One proposed new content for one file."""

    file: str
    source: str
    template: str
    description: str
    line: int
    score: float


def template_candidates(root: Path, suspects: Sequence[Suspect], cause: RootCause) -> list[Candidate]:
    """Every template at every suspicious line, best first, duplicates removed."""
    try:
        import libcst as cst  # noqa: PLC0415 - the `fix` extra
    except ImportError as exc:
        raise ImportError("the bug fixer needs libcst: pip install 'novacron[fix]'") from exc
    from novacron.codegen.mutate import apply_edit, nodes_on_line  # noqa: PLC0415 - imports libcst
    from novacron.codegen.templates_expr import EXPR_TEMPLATES  # noqa: PLC0415
    from novacron.codegen.templates_stmt import STMT_TEMPLATES  # noqa: PLC0415

    preferred = PREFERRED[cause]
    out: dict[tuple[str, str], Candidate] = {}
    modules: dict[str, cst.Module | None] = {}
    for suspect in suspects:
        if suspect.file not in modules:
            try:
                modules[suspect.file] = cst.parse_module((root / suspect.file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
                modules[suspect.file] = None
        module = modules[suspect.file]
        if module is None:
            continue
        ctx = nodes_on_line(module, suspect.line)
        for template in (*EXPR_TEMPLATES, *STMT_TEMPLATES):
            for edit in template(ctx):
                source = apply_edit(module, edit)
                if source is None or (suspect.file, source) in out:
                    continue
                fit = 1.0 - 0.04 * preferred.index(edit.template) if edit.template in preferred else 0.35
                out[(suspect.file, source)] = Candidate(
                    suspect.file, source, edit.template, edit.description, suspect.line, suspect.score * fit
                )
    return sorted(out.values(), key=lambda c: (-c.score, _size(root, c)))


def _size(root: Path, c: Candidate) -> int:
    old = (root / c.file).read_text(encoding="utf-8").splitlines()
    return sum(1 for line in difflib.unified_diff(old, c.source.splitlines(), n=0) if line[:1] in "+-")


def revert_candidates(repo: GitRepo, suspects: Sequence[Suspect]) -> Iterator[Candidate]:
    """Undo the most recent commit that touched a suspicious line: the hunk, then the whole file."""
    seen: set[str] = set()
    by_file: dict[str, list[Suspect]] = {}
    for s in suspects:
        by_file.setdefault(s.file, []).append(s)
    for rel, items in by_file.items():
        blamed = sorted(repo.blame(rel, [s.line for s in items]), key=lambda b: -b.author_time)
        for b in blamed:
            parent = repo.parent(b.commit)
            if parent is None or b.commit in seen:
                continue  # a line from the first commit has nothing to go back to
            seen.add(b.commit)
            before, after = repo.show(parent, rel), repo.show(b.commit, rel)
            current = repo.show("HEAD", rel)
            if before is None or after is None or current is None:
                continue
            score = max(s.score for s in items) + 1.0
            hunk = _revert_hunk(current, after, before, b.line)
            if hunk is not None:
                yield Candidate(
                    rel, hunk, "revert_hunk", f"revert the hunk of {b.commit[:10]} ({b.summary})", b.line, score
                )
            if after == current and before != current:
                yield Candidate(
                    rel, before, "revert_file", f"revert {rel} to before {b.commit[:10]}", b.line, score - 0.1
                )


def _revert_hunk(current: str, after: str, before: str, line: int) -> str | None:
    """Put back the lines of ``before`` that the change replaced around ``line`` (1-based in current)."""
    if current != after:
        return None
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal" and j1 <= line - 1 < max(j2, j1 + 1):
            return "".join(b[:j1] + a[i1:i2] + b[j2:])
    return None
