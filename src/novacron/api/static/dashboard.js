// NovaCron dashboard: plain fetch against the API, redrawn every two seconds.
"use strict";

const TOKEN_KEY = "novacron.token";
const REFRESH_MS = 2000;
let selected = null; // incident id shown in the detail panel
let autonomous = null;

const $ = (id) => document.getElementById(id);

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  if (options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(res.status + ": " + (typeof detail === "string" ? detail : JSON.stringify(detail)));
  }
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fillTable(id, rows, build) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map(build));
}

function when(ts) { return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 23); }
function ms(v) { return v === null || v === undefined ? "-" : v < 1000 ? v.toFixed(0) + " ms" : (v / 1000).toFixed(1) + " s"; }

function drawBars(svgId, values, labels) {
  const svg = $(svgId);
  const ns = "http://www.w3.org/2000/svg";
  const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
  const pad = 24, top = 12;
  svg.replaceChildren();
  const known = values.filter((v) => v !== null);
  const max = Math.max(1, ...known);
  const slot = values.length ? (w - pad) / values.length : 0;
  values.forEach((v, i) => {
    const r = document.createElementNS(ns, "rect");
    const height = v === null ? 4 : Math.max(1, ((h - pad - top) * v) / max);
    r.setAttribute("x", String(pad + i * slot + 1));
    r.setAttribute("y", String(h - pad - height));
    r.setAttribute("width", String(Math.max(1, slot - 2)));
    r.setAttribute("height", String(height));
    r.setAttribute("class", v === null ? "bar open" : "bar");
    const title = document.createElementNS(ns, "title");
    title.textContent = labels[i] + ": " + (v === null ? "not recovered" : ms(v));
    r.appendChild(title);
    svg.appendChild(r);
  });
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", "2");
  axis.setAttribute("y", String(top));
  axis.textContent = "max " + ms(max);
  svg.appendChild(axis);
  const count = document.createElementNS(ns, "text");
  count.setAttribute("x", String(pad));
  count.setAttribute("y", String(h - 6));
  count.textContent = values.length + " incident(s), oldest left";
  svg.appendChild(count);
}

function renderFleet(targets) {
  fillTable("fleet", targets, (t) => {
    const tr = document.createElement("tr");
    tr.dataset.target = t.target;
    tr.append(cell(t.target), cell(t.health, t.health), cell(t.running + "/" + t.desired), cell(t.incident));
    return tr;
  });
}

function renderIncidents(all) {
  const open = all.filter((i) => i.status !== "resolved");
  $("no-incidents").hidden = open.length > 0;
  fillTable("incidents", open, (i) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.incident = i.id;
    tr.append(cell(i.id), cell(i.target), cell(i.kind), cell(i.status), cell(i.priority), cell(i.fault_count), cell(ms(i.mttd_ms)));
    tr.addEventListener("click", () => { selected = i.id; loadDetail(); });
    return tr;
  });
  fillTable("recent", all.slice(0, 20), (i) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.incident = i.id;
    tr.append(cell(i.id), cell(i.target), cell(i.kind), cell(i.status), cell(ms(i.mttr_ms)));
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
    tr.append(cell(when(a.created_at)), cell(a.kind), cell(a.target), cell(a.status), cell(a.requested_by), cell(a.detail));
    return tr;
  });
}

function renderApprovals(pending) {
  $("no-approvals").hidden = pending.length > 0;
  fillTable("approvals", pending, (a) => {
    const tr = document.createElement("tr");
    tr.dataset.action = a.id;
    const buttons = document.createElement("td");
    for (const decision of ["approve", "reject"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = decision;
      b.className = (decision === "approve" ? "safe " : "danger ") + decision;
      b.addEventListener("click", () => act("/approvals/" + encodeURIComponent(a.id), { decision }));
      buttons.appendChild(b);
    }
    tr.append(cell(a.kind), cell(a.target), cell(a.risk), cell(a.reason), buttons);
    return tr;
  });
}

function renderKillSwitch(health) {
  autonomous = health.autonomous;
  $("autonomous-state").textContent = autonomous ? "enabled" : "disabled (kill switch)";
  const b = $("kill-switch");
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
  const ack = detail.acknowledged_by ? " · acknowledged by " + detail.acknowledged_by : "";
  $("detail-summary").textContent = detail.incident.summary + " (" + detail.incident.status + ", " + detail.incident.priority + ")" + ack;
  fillTable("timeline", detail.timeline, (ev) => {
    const tr = document.createElement("tr");
    tr.append(cell(when(ev.time)), cell(ev.kind), cell(ev.detail));
    return tr;
  });
  // The server escapes every piece of text in the post-mortem HTML.
  $("postmortem").innerHTML = pm;
}

async function act(path, body) {
  try {
    await api(path, { method: "POST", body: body ? JSON.stringify(body) : undefined });
    showError(null);
  } catch (err) { showError(err); }
  await refresh();
}

async function refresh() {
  const health = await fetch("/health").then((r) => r.json()).catch(() => null);
  if (health) renderKillSwitch(health);
  if (!token()) { $("conn").textContent = "enter a token"; return; }
  try {
    const [targets, incidents, actions, approvals] = await Promise.all([
      api("/targets"), api("/incidents?limit=200"), api("/actions?limit=30"), api("/approvals"),
    ]);
    renderFleet(targets);
    renderIncidents(incidents);
    renderActions(actions);
    renderApprovals(approvals);
    if (selected) await loadDetail();
    $("conn").textContent = "updated " + new Date().toLocaleTimeString();
    showError(null);
  } catch (err) { showError(err); }
}

function init() {
  $("token").value = token();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    refresh();
  });
  $("forget-token").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); $("token").value = ""; refresh(); });
  $("kill-switch").addEventListener("click", () => act(autonomous ? "/autonomous/disable" : "/autonomous/enable"));
  $("ack").addEventListener("click", () => selected && act("/incidents/" + encodeURIComponent(selected) + "/ack"));
  refresh();
  setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", init);
