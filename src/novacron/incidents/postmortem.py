"""Post-mortems generated from an incident's own record, as Markdown and as HTML.

Everything comes from what was recorded: the incident, its timeline, each action with its
outcome and status, and the diagnosis evidence. Nothing is invented: sections without
data say so. The document is built once as a list of blocks and rendered twice, so the
Markdown (``novacron incidents postmortem ID``) and the dashboard's HTML always agree and
no Markdown library is needed.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novacron.model import Action, ActionStatus, Incident, Outcome, TimelineEvent

__all__ = ["ActionRecord", "Postmortem", "build_postmortem", "render_html", "render_markdown"]

_FAILED = {ActionStatus.FAILED.value, ActionStatus.ROLLED_BACK.value, ActionStatus.BLOCKED.value}


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action taken for the incident, where it ended, and its outcome if it ran."""

    action: Action
    status: str
    outcome: Outcome | None = None

    @property
    def worked(self) -> bool:
        """Applied and verified (or at least applied with an ok outcome)."""
        if self.status in _FAILED:
            return False
        return self.outcome is not None and self.outcome.ok


@dataclass(frozen=True, slots=True)
class _Block:
    kind: str  # h2, p, ul, table
    text: str = ""
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Postmortem:
    """A rendered-agnostic post-mortem: a title and blocks."""

    title: str
    blocks: tuple[_Block, ...] = field(default_factory=tuple)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "not recovered"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _kv(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items())


def _summary(inc: Incident, actions: Sequence[ActionRecord], events: Sequence[TimelineEvent]) -> _Block:
    state = inc.status.value if not inc.is_open else f"still {inc.status.value}"
    worked = [a for a in actions if a.worked]
    resolved = [ev for ev in events if ev.kind == "resolved"]
    escalated = [ev for ev in events if ev.kind == "escalated"]
    fix = ""
    if inc.resolved_at is not None and resolved and "without further action" in resolved[-1].detail:
        fix = " It recovered without further action."  # whatever ran before did not verify
    elif worked and inc.resolved_at is not None:
        fix = f" Repaired by {worked[-1].action.kind.value}."
    if escalated:
        fix += f" Escalated to a human: {escalated[0].detail}."
    text = (
        f"{inc.priority.name} incident: {inc.kind.value} on `{inc.target}` "
        f"({inc.summary or 'no summary recorded'}). Started {_iso(inc.since)}, {state}.{fix}"
    )
    return _Block("p", text)


def _related(inc: Incident, related: Sequence[Incident]) -> _Block:
    rows = [("incident", "kind", "opened (UTC)", "status", "MTTR")]
    rows += [(r.id, r.kind.value, _iso(r.opened_at), r.status.value, _dur(r.mttr_s)) for r in related]
    rows.append((inc.id, inc.kind.value, _iso(inc.opened_at), inc.status.value, _dur(inc.mttr_s)))
    return _Block("table", rows=tuple(rows))


def _impact(inc: Incident, impact: Mapping[str, Any]) -> _Block:
    items = [
        f"Target: `{inc.target}`",
        f"Priority: {inc.priority.name}",
        f"Signals merged: {inc.fault_count}",
    ]
    if inc.preventive:
        items.append("Preventive: raised from a prediction before users were affected")
    items += [f"{k}: {v}" for k, v in impact.items()]
    if inc.mttr_s is not None:
        items.append(f"Duration (start to recovery): {_dur(inc.mttr_s)}")
    return _Block("ul", items=tuple(items))


def _timeline(inc: Incident, events: Iterable[TimelineEvent]) -> _Block:
    rows = [("time (UTC)", "+since start", "event", "detail")]
    for ev in sorted(events, key=lambda e: e.time):
        detail = ev.detail + (f" ({_kv(ev.data)})" if ev.data else "")
        rows.append((_iso(ev.time), f"+{_dur(max(0.0, ev.time - inc.since))}", ev.kind, detail))
    if len(rows) == 1:
        return _Block("p", "No timeline events were recorded.")
    return _Block("table", rows=tuple(rows))


def _times(inc: Incident) -> _Block:
    return _Block(
        "ul",
        items=(
            f"MTTD (fault start → detection): {_dur(inc.mttd_s)}",
            f"MTTR (fault start → verified recovery): {_dur(inc.mttr_s)}",
            f"Detected at {_iso(inc.opened_at)}"
            + (f", resolved at {_iso(inc.resolved_at)}" if inc.resolved_at else ""),
        ),
    )


def _evidence(events: Sequence[TimelineEvent], evidence: Mapping[str, Any]) -> _Block:
    items = [f"{k}: {v}" for k, v in evidence.items()]
    items += [
        f"{ev.kind}: {ev.detail}" + (f" ({_kv(ev.data)})" if ev.data else "")
        for ev in events
        if ev.kind in {"diagnosed", "root_cause", "evidence", "crash_classified", "linked"}
    ]
    return _Block("ul", items=tuple(items)) if items else _Block("p", "No root-cause evidence was recorded.")


def _actions(actions: Sequence[ActionRecord]) -> _Block:
    rows = [("action", "target", "risk", "status", "verification", "took")]
    for rec in actions:
        a, o = rec.action, rec.outcome
        verification = "not run" if o is None else ("ok" if o.ok else "failed") + (f": {o.detail}" if o.detail else "")
        took = "" if o is None else _dur(max(0.0, o.finished_at - o.started_at))
        rows.append((f"{a.kind.value} ({a.id})", a.target, a.risk.label, rec.status, verification, took))
    if len(rows) == 1:
        return _Block("p", "No actions were taken.")
    return _Block("table", rows=tuple(rows))


def _did_not_work(actions: Sequence[ActionRecord]) -> _Block:
    if not actions:
        return _Block("p", "No actions were taken.")
    items = [
        f"{r.action.kind.value} on `{r.action.target}` ended {r.status}"
        + (f": {r.outcome.detail}" if r.outcome and r.outcome.detail else "")
        for r in actions
        if not r.worked
    ]
    return _Block("ul", items=tuple(items)) if items else _Block("p", "Every action taken worked.")


def _followups(
    inc: Incident,
    actions: Sequence[ActionRecord],
    extra: Sequence[str],
    events: Sequence[TimelineEvent],
    related: Sequence[Incident],
) -> _Block:
    items = list(extra)
    if related:
        items.append(
            f"`{inc.target}` failed {len(related) + 1} times in a row (incidents above): find the common cause "
            "before lifting the quarantine (`novacron unquarantine`)."
        )
    for kind in sorted({r.action.kind.value for r in actions if not r.worked}):
        items.append(f"Find out why `{kind}` did not repair `{inc.target}`; fix it or drop it from the ladder.")
    if inc.resolved_at is None:
        items.append("The incident is not resolved: assign an owner.")
    if inc.fault_count > 1:
        items.append(f"{inc.fault_count} signals were merged: check whether the fault recurs.")
    if any(r.action.kind.value == "escalate" for r in actions) or any(ev.kind == "escalated" for ev in events):
        items.append("A human was needed: write or extend a runbook for this fault.")
    return _Block("ul", items=tuple(items)) if items else _Block("p", "None.")


def build_postmortem(
    incident: Incident,
    timeline: Sequence[TimelineEvent],
    actions: Sequence[ActionRecord],
    *,
    evidence: Mapping[str, Any] | None = None,
    impact: Mapping[str, Any] | None = None,
    followups: Sequence[str] = (),
    related: Sequence[Incident] = (),
) -> Postmortem:
    """Assemble the sections of a post-mortem from the incident's record.

    ``related`` are the earlier incidents of the same target that made it flap (and be
    quarantined): they get a section of their own, oldest first.
    """
    sections: list[tuple[str, _Block]] = [("Summary", _summary(incident, actions, timeline))]
    if related:
        sections.append(("Incidents behind the flap", _related(incident, related)))
    sections += [
        ("Impact", _impact(incident, impact or {})),
        ("Timeline", _timeline(incident, timeline)),
        ("Detection and repair times", _times(incident)),
        ("Root-cause evidence", _evidence(timeline, evidence or {})),
        ("Actions and verification", _actions(actions)),
        ("What did not work", _did_not_work(actions)),
        ("Follow-ups", _followups(incident, actions, followups, timeline, related)),
    ]
    blocks: list[_Block] = []
    for heading, block in sections:
        blocks += [_Block("h2", heading), block]
    return Postmortem(f"Post-mortem: incident {incident.id}", tuple(blocks))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(pm: Postmortem) -> str:
    """GitHub-flavoured Markdown."""
    out = [f"# {pm.title}", ""]
    for b in pm.blocks:
        if b.kind == "h2":
            out += [f"## {b.text}", ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "ul":
            out += [*(f"- {item}" for item in b.items), ""]
        else:
            head, *body = b.rows
            out.append("| " + " | ".join(map(_md_cell, head)) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in body]
            out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code> (the only inline markup we emit)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(pm: Postmortem, *, standalone: bool = False) -> str:
    """An HTML fragment (or a full page with ``standalone=True``); all text is escaped."""
    out = [f"<article class='postmortem'><h1>{_inline(pm.title)}</h1>"]
    for b in pm.blocks:
        if b.kind == "h2":
            out.append(f"<h2>{_inline(b.text)}</h2>")
        elif b.kind == "p":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        else:
            head, *body = b.rows
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead>")
            out.append(
                "<tbody>"
                + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body)
                + "</tbody></table>"
            )
    out.append("</article>")
    fragment = "\n".join(out)
    if not standalone:
        return fragment
    page_head = f"<head><meta charset='utf-8'><title>{html.escape(pm.title)}</title></head>"
    return f"<!doctype html><html>{page_head}<body>{fragment}</body></html>"
