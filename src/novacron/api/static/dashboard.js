// NovaCron dashboard: plain fetch against the API, redrawn every two seconds.
"use strict";

const TOKEN_KEY = "novacron.token";
const REFRESH_MS = 2000;
const RANK = { viewer: 1, operator: 2, admin: 3 };
const HEAL_ACTIONS = ["restart", "replace", "start", "stop", "scale_out", "scale_in", "cleanup", "reallocate"];
let selected = null; // incident id shown in the detail panel
let autonomous = null;
let me = null; // {name, role} of the token, from /whoami
let experiment = null; // experiment whose confidence sequence is drawn
const chosen = {}; // target -> action picked in its Heal menu; kept across redraws

const $ = (id) => document.getElementById(id);

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
function can(role) { return me !== null && RANK[me.role] >= RANK[role]; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  if (options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    const err = new Error(res.status + ": " + (typeof detail === "string" ? detail : JSON.stringify(detail)));
    err.status = res.status;
    throw err;
  }
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// A table cell; long text is kept on one line, cut with an ellipsis, whole in its tooltip.
function cell(text, cls, clip) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "-" : String(text);
  if (cls) td.className = cls;
  if (clip) { td.classList.add("clip"); td.title = td.textContent; }
  return td;
}

function fillTable(id, rows, build) {
  $(id).querySelector("tbody").replaceChildren(...rows.map(build));
}

function when(ts) { return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 23); }
function ms(v) {
  if (v === null || v === undefined) return "-";
  if (v >= 1000) return (v / 1000).toFixed(1) + " s";
  return (v > 0 && v < 10 && !Number.isInteger(v) ? v.toFixed(1) : v.toFixed(0)) + " ms";
}
function dur(s) {
  if (s === null || s === undefined) return "-";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor((s % 86400) / 3600)).padStart(2, "0") + "h";
}

// -- charts: bars with a y axis (ticks in ms), an x axis (oldest → newest) and axis titles --
const NS = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, text) {
  const el = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawBars(svgId, values, labels) {
  const svg = $(svgId);
  const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
  const left = 68, right = 8, top = 10, bottom = 34;
  const plotW = w - left - right, plotH = h - top - bottom;
  svg.replaceChildren();
  const known = values.filter((v) => v !== null);
  const max = niceMax(Math.max(1, ...known));
  const y = (v) => top + plotH - (plotH * v) / max;
  const axes = svgEl("g", { class: "axis" });
  for (const t of [0, max / 2, max]) {
    axes.appendChild(svgEl("line", { x1: left, x2: left + plotW, y1: y(t), y2: y(t), class: t ? "grid" : "baseline" }));
    axes.appendChild(svgEl("text", { x: left - 6, y: y(t) + 3, "text-anchor": "end", class: "tick y" }, ms(t)));
  }
  axes.appendChild(svgEl("line", { x1: left, x2: left, y1: top, y2: top + plotH, class: "baseline" }));
  axes.appendChild(svgEl("text", { x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle", class: "title" }, "ms"));
  const slot = values.length ? Math.min(48, plotW / values.length) : 0;  // one incident is a bar, not a wall
  if (values.length) {
    axes.appendChild(svgEl("text", { x: left + slot / 2, y: top + plotH + 14, "text-anchor": "middle", class: "tick x" }, "1"));
    axes.appendChild(svgEl("text", { x: left + values.length * slot - slot / 2, y: top + plotH + 14, "text-anchor": "middle", class: "tick x" }, String(values.length)));
  }
  axes.appendChild(svgEl("text", { x: left + plotW / 2, y: h - 4, "text-anchor": "middle", class: "title" },
    values.length ? `incidents, oldest → newest (${values.length})` : "no incidents yet"));
  svg.appendChild(axes);
  values.forEach((v, i) => {
    const top_ = v === null ? y(max) : y(Math.min(v, max));
    const r = svgEl("rect", {
      x: left + i * slot + 1, y: v === null ? top + plotH - 4 : top_, width: Math.max(1, slot - 2),
      height: v === null ? 4 : Math.max(1, top + plotH - top_), class: v === null ? "bar open" : "bar",
    });
    r.appendChild(svgEl("title", {}, labels[i] + ": " + (v === null ? "not recovered" : ms(v))));
    svg.appendChild(r);
  });
}

// The error-ratio difference per look with its confidence sequence (two dashed bounds) and zero.
function drawSequence(svgId, looks) {
  const svg = $(svgId);
  const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
  const left = 68, right = 8, top = 10, bottom = 34;
  const plotW = w - left - right, plotH = h - top - bottom;
  svg.replaceChildren();
  const pts = looks.map((l) => (l.tests || {}).error_ratio).filter((t) => t && t.ci && t.ci[0] !== null && t.ci[1] !== null);
  const span = Math.max(0.01, ...pts.map((t) => Math.max(Math.abs(t.ci[0]), Math.abs(t.ci[1]))));
  const y = (v) => top + plotH / 2 - (plotH / 2) * Math.max(-1, Math.min(1, v / span));
  const x = (i) => left + (pts.length > 1 ? (plotW * i) / (pts.length - 1) : plotW / 2);
  const axes = svgEl("g", { class: "axis" });
  for (const t of [-span, 0, span]) {
    axes.appendChild(svgEl("line", { x1: left, x2: left + plotW, y1: y(t), y2: y(t), class: t ? "grid" : "baseline" }));
    axes.appendChild(svgEl("text", { x: left - 6, y: y(t) + 3, "text-anchor": "end", class: "tick y" }, (100 * t).toFixed(1) + " %"));
  }
  axes.appendChild(svgEl("text", { x: left + plotW / 2, y: h - 4, "text-anchor": "middle", class: "title" },
    pts.length ? `looks, oldest → newest (${pts.length})` : "no looks with traffic yet"));
  svg.appendChild(axes);
  const line = (key, cls) => svgEl("polyline", { class: cls, points: pts.map((t, i) => x(i) + "," + y(key(t))).join(" ") });
  if (pts.length) {
    svg.append(line((t) => t.ci[0], "seq ci"), line((t) => t.ci[1], "seq ci"), line((t) => t.diff, "seq"));
  }
}

// -- tables ----------------------------------------------------------------------------
function button(text, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

function targetActions(t) {
  const td = document.createElement("td");
  td.className = "act";
  if (!can("operator")) return td;
  td.appendChild(button("Restart", "restart", () => heal(t.name, "restart")));
  const pick = document.createElement("select");
  pick.className = "heal-action";
  pick.setAttribute("aria-label", "action for " + t.name);
  for (const a of HEAL_ACTIONS) pick.appendChild(new Option(a, a));
  pick.value = chosen[t.name] || "restart";
  pick.addEventListener("change", () => { chosen[t.name] = pick.value; });
  td.appendChild(pick);
  td.appendChild(button("Heal", "heal", () => heal(t.name, pick.value)));
  if (t.state === "quarantined") {
    td.appendChild(button("Unquarantine", "unquarantine", () => act("/targets/" + encodeURIComponent(t.name) + "/unquarantine")));
  }
  return td;
}

function renderFleet(status) {
  const c = status.controller;
  $("controller-state").textContent = c.state + (c.state === "running" ? "" : " (nothing is supervised)");
  $("controller-state").className = c.state === "running" ? "healthy" : "unhealthy";
  $("no-targets").hidden = status.targets.length > 0;
  // A quarantine shows when it ends, in the reader's local time.
  const stateText = (t) =>
    t.quarantined_until ? t.state + " until " + new Date(t.quarantined_until * 1000).toLocaleTimeString() : t.state;
  fillTable("fleet", status.targets, (t) => {
    const tr = document.createElement("tr");
    tr.dataset.target = t.name;
    const fault = t.last_fault ? t.last_fault.detail + " (" + dur(t.last_fault.ago_s) + " ago)" : null;
    const incident = t.incident ? t.incident + " " + t.incident_status + " " + t.incident_priority : null;
    tr.append(
      cell(t.name), cell(stateText(t), "state " + t.state), cell(t.pids.join(","), "num"), cell(dur(t.uptime_s), "num"),
      cell(t.restarts, "num"), cell(t.running + "/" + t.desired, "num"), cell(fault, "", true), cell(incident, "", true),
      targetActions(t),
    );
    return tr;
  });
}

function renderIncidents(all) {
  const open = all.filter((i) => i.status !== "resolved" && i.status !== "closed");
  $("no-incidents").hidden = open.length > 0;
  fillTable("incidents", open, (i) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.incident = i.id;
    tr.append(cell(i.id, "id"), cell(i.target), cell(i.kind), cell(i.status), cell(i.priority), cell(i.fault_count, "num"), cell(ms(i.mttd_ms), "num mttd"));
    tr.addEventListener("click", () => { selected = i.id; loadDetail(); });
    return tr;
  });
  fillTable("recent", all.slice(0, 20), (i) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.incident = i.id;
    tr.append(cell(i.id, "id"), cell(i.target), cell(i.kind), cell(i.status), cell(ms(i.mttr_ms), "num"));
    tr.addEventListener("click", () => { selected = i.id; loadDetail(); });
    return tr;
  });
  const recent = all.slice(0, 40).reverse();
  const labels = recent.map((i) => i.id + " " + i.target);
  drawBars("chart-mttd", recent.map((i) => i.mttd_ms), labels);
  drawBars("chart-mttr", recent.map((i) => i.mttr_ms), labels);
}

function renderActions(actions) {
  fillTable("actions", actions.slice(0, 30), (a) => {
    const tr = document.createElement("tr");
    tr.dataset.action = a.id;
    const rate = document.createElement("td");
    rate.className = "act";
    if (can("operator")) rate.appendChild(button("Rate…", "rate", () => openFeedback(a)));
    tr.append(cell(when(a.created_at), "time"), cell(a.kind), cell(a.target), cell(a.status), cell(a.requested_by), cell(a.detail, "detail", true), rate);
    return tr;
  });
}

// -- operator feedback: a form outside the table, so a refresh never wipes a note being typed
let rating = null; // the action being marked
function openFeedback(a) {
  rating = a.id;
  $("feedback-what").textContent = a.kind + " " + a.target + " (" + a.id + ", " + a.status + ")";
  $("feedback-note").value = "";
  $("feedback-form").hidden = false;
  $("feedback-note").focus();
}

async function sendFeedback(verdict) {
  if (!rating) return;
  const id = rating;
  const res = await act("/actions/" + encodeURIComponent(id) + "/feedback", { verdict, note: $("feedback-note").value });
  if (res) {
    rating = null;
    $("feedback-form").hidden = true;
    const learned = res.learned ? "the policy learned from it" : "kept and audited (no learning policy chose it)";
    $("notice").textContent = "marked " + id + " " + verdict + " — " + learned;
    $("notice").hidden = false;
  }
}

function renderAgents(outputs) {
  $("no-agents").hidden = outputs.length > 0;
  fillTable("agents", outputs.slice(0, 20), (o) => {
    const tr = document.createElement("tr");
    const findings = o.findings.map((f) => f.target + ": " + f.summary).join("; ");
    const proposals = o.proposals.map((p) => p.kind + " " + p.target + " (" + p.risk + ", " + p.status + ")").join("; ");
    tr.append(cell(when(o.run_at)), cell(o.agent), cell(o.targets.join(", ")), cell(findings || "-"), cell(proposals || "-"), cell(o.summary));
    return tr;
  });
}

function renderExperiments(list) {
  $("no-experiments").hidden = list.length > 0;
  if (experiment === null && list.length) experiment = list[0].name;
  fillTable("experiments", list, (e) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.addEventListener("click", () => { experiment = e.name; loadExperiment(); });
    const arms = Object.entries(e.arms).map(([a, w]) => a + ": " + w.requests + " req, " + w.errors + " err, " + w.slow + " slow").join("; ");
    tr.append(cell(e.name), cell(e.target), cell(e.phase), cell(e.split + " %", "num"), cell(arms), cell(e.reason, null, true));
    return tr;
  });
}

async function loadExperiment() {
  $("experiment-detail").hidden = experiment === null;
  if (experiment === null) return;
  const e = await api("/experiments/" + encodeURIComponent(experiment) + "?looks=300");
  $("experiment-name").textContent = e.name + " (" + e.phase + ")";
  drawSequence("chart-experiment", e.looks);
}

function renderApprovals(pending) {
  $("no-approvals").hidden = pending.length > 0;
  fillTable("approvals", pending, (a) => {
    const tr = document.createElement("tr");
    tr.dataset.action = a.id;
    const buttons = document.createElement("td");
    buttons.className = "act";
    if (can("operator")) {
      for (const decision of ["approve", "reject"]) {
        buttons.appendChild(button(decision, (decision === "approve" ? "safe " : "danger ") + decision,
          () => act("/approvals/" + encodeURIComponent(a.id), { decision })));
      }
    }
    tr.append(cell(a.kind), cell(a.target), cell(a.risk), cell(a.reason, "", true), cell(a.asked_by), buttons);
    return tr;
  });
}

function renderKillSwitch(health) {
  autonomous = health.autonomous;
  $("autonomous-state").textContent = autonomous ? "enabled" : "disabled (kill switch)";
  const b = $("kill-switch");
  b.hidden = !can("admin");
  $("kill-note").hidden = can("admin");
  b.disabled = !health.controller;
  b.textContent = autonomous ? "Disable autonomous healing" : "Enable autonomous healing";
  b.className = autonomous ? "danger" : "safe";
}

async function loadDetail() {
  if (!selected) return;
  const id = encodeURIComponent(selected);
  const [detail, pm] = await Promise.all([api("/incidents/" + id), api("/incidents/" + id + "/postmortem?format=html")]);
  $("detail-section").hidden = false;
  $("detail-id").textContent = detail.incident.id;
  $("ack").hidden = !can("operator");
  const ack = detail.acknowledged_by ? " · acknowledged by " + detail.acknowledged_by : "";
  $("detail-summary").textContent = detail.incident.summary + " (" + detail.incident.status + ", " + detail.incident.priority + ")" + ack;
  fillTable("timeline", detail.timeline, (ev) => {
    const tr = document.createElement("tr");
    tr.append(cell(when(ev.time), "time"), cell(ev.kind), cell(ev.detail, "detail", true));
    return tr;
  });
  // The server escapes every piece of text in the post-mortem HTML.
  $("postmortem").innerHTML = pm;
}

async function act(path, body) {
  try {
    const res = await api(path, { method: "POST", body: body ? JSON.stringify(body) : undefined });
    showError(null);
    await refresh();
    return res;
  } catch (err) { showError(err); await refresh(); return null; }
}

async function heal(target, action) {
  const res = await act("/autonomous/heal", { target, action, wait_s: 15 });
  if (res) {
    $("notice").textContent = action + " " + target + ": " + res.status + " — " + res.detail;
    $("notice").hidden = false;
  }
}

// -- signing in and out ------------------------------------------------------------------
function signedIn(on) {
  $("signin").hidden = on;
  $("app").hidden = !on;
  $("forget-token").hidden = !on;
  $("who").hidden = !on;
}

function signOut(err) {
  localStorage.removeItem(TOKEN_KEY);
  me = null;
  $("token").value = "";
  $("conn").textContent = "not signed in";
  $("notice").hidden = true;
  signedIn(false);
  showError(err || null);
}

async function refresh() {
  if (!token()) { signOut(null); return; }
  try {
    if (me === null) {
      me = await api("/whoami");
      $("who").textContent = "signed in as " + me.name + " (" + me.role + ")";
    }
    signedIn(true);
    const [health, status, incidents, actions, approvals, agents, experiments, studies] = await Promise.all([
      fetch("/health").then((r) => r.json()), api("/status"), api("/incidents?limit=200"), api("/actions?limit=30"), api("/approvals"),
      api("/agents?limit=20"), api("/experiments"), api("/studies"),
    ]);
    renderKillSwitch(health);
    renderAgents(agents);
    renderFleet(status);
    renderIncidents(incidents);
    renderActions(actions);
    renderApprovals(approvals);
    renderExperiments(experiments);
    await loadExperiment();
    renderStudies(studies); // studies.js
    await loadStudy();
    if (selected) await loadDetail();
    $("conn").textContent = "updated " + new Date().toLocaleTimeString();
    showError(null);
  } catch (err) {
    if (err.status === 401) signOut(err); else showError(err);
  }
}

function init() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    me = null;
    refresh();
  });
  $("forget-token").addEventListener("click", () => signOut(null));
  $("kill-switch").addEventListener("click", () => act(autonomous ? "/autonomous/disable" : "/autonomous/enable"));
  $("ack").addEventListener("click", () => selected && act("/incidents/" + encodeURIComponent(selected) + "/ack"));
  $("feedback-good").addEventListener("click", () => sendFeedback("good"));
  $("feedback-bad").addEventListener("click", () => sendFeedback("bad"));
  $("feedback-cancel").addEventListener("click", () => { rating = null; $("feedback-form").hidden = true; });
  signedIn(false);
  refresh();
  setInterval(() => { if (token()) refresh(); }, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", init);
