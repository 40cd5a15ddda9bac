// NovaCron dashboard: tuning studies and layout searches as parallel coordinates.
// Uses $, api, svgEl, cell and fillTable from dashboard.js (loaded first).
"use strict";

let study = null; // study whose trials are drawn

function renderStudies(list) {
  $("no-studies").hidden = list.length > 0;
  if (study === null && list.length) study = list[0].name;
  fillTable("studies", list, (s) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.study = s.name;
    tr.addEventListener("click", () => { study = s.name; loadStudy(); });
    const outcome = s.kind === "evolve"
      ? (s.front_size === null ? "-" : "front of " + s.front_size)
      : (s.best_value === null ? "-" : "best " + Number(s.best_value).toPrecision(4));
    tr.append(cell(s.name), cell(s.kind), cell(s.status), cell(s.trial_count, "num"), cell(s.failed, "num"), cell(outcome));
    return tr;
  });
}

async function loadStudy() {
  $("study-detail").hidden = study === null;
  if (study === null) return;
  const s = await api("/studies/" + encodeURIComponent(study));
  $("study-name").textContent = s.name + " (" + s.kind + ", " + s.status + ")";
  drawParallel("chart-study", s);
}

// The axes of a study: its parameters, then its score (tune) or its objectives (evolve).
function studyAxes(s) {
  const axes = s.params.map((p) => ({ key: p, label: p.split(".").pop(), get: (t) => t.params[p] }));
  if (s.kind === "evolve") {
    for (const o of (s.result.objectives || [])) axes.push({ key: o, label: o, get: (t) => t.metrics[o], objective: true });
  } else {
    axes.push({ key: "score", label: "score", get: (t) => t.value, objective: true });
  }
  return axes;
}

// Each axis maps its values to [0, 1]: numbers by their range, anything else by its order.
function scaleOf(values) {
  const nums = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (nums.length === values.length && nums.length) {
    const lo = Math.min(...nums), hi = Math.max(...nums);
    return { lo, hi, at: (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5) };
  }
  const seen = [...new Set(values.map((v) => JSON.stringify(v)))].sort();
  return { lo: seen[0], hi: seen[seen.length - 1], at: (v) => (seen.length > 1 ? seen.indexOf(JSON.stringify(v)) / (seen.length - 1) : 0.5) };
}

function label(v) {
  if (typeof v === "number") return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(3);
  return v === undefined ? "-" : String(v).replace(/^"|"$/g, "");
}

function drawParallel(svgId, s) {
  const svg = $(svgId);
  const [, , w, h] = svg.getAttribute("viewBox").split(" ").map(Number);
  const left = 40, right = 40, top = 28, bottom = 30;
  svg.replaceChildren();
  const axes = studyAxes(s);
  const done = s.trials.filter((t) => t.state === "complete" && axes.every((a) => a.get(t) !== null && a.get(t) !== undefined));
  const x = (i) => left + (axes.length > 1 ? ((w - left - right) * i) / (axes.length - 1) : (w - left - right) / 2);
  const y = (f) => top + (h - top - bottom) * (1 - f);
  const scales = axes.map((a) => scaleOf(done.map(a.get)));
  const front = new Set(((s.result || {}).front || []).map((p) => JSON.stringify(p.layout, Object.keys(p.layout).sort())));
  const best = ((s.result || {}).best || {}).trial;
  const score = axes.length - 1;
  const lines = svgEl("g", { class: "lines" });
  const ordered = [...done].sort((a, b) => scales[score].at(axes[score].get(b)) - scales[score].at(axes[score].get(a)));
  for (const t of ordered) {
    const pts = axes.map((a, i) => x(i) + "," + y(scales[i].at(a.get(t)))).join(" ");
    const onFront = s.kind === "evolve" && front.has(JSON.stringify(t.params, Object.keys(t.params).sort()));
    const dim = s.kind === "evolve" && !onFront;
    const cls = "trial" + (onFront ? " front" : "") + (dim ? " dim" : "") + (t.number === best ? " best" : "") + (t.feasible ? "" : " infeasible");
    // Colour runs from green (low score: better) to red along the last axis.
    const hue = Math.round(120 * (1 - scales[score].at(axes[score].get(t))));
    const line = svgEl("polyline", { class: cls, points: pts, stroke: t.feasible ? `hsl(${hue} 65% 42%)` : "#c8ccd4" });
    line.dataset.trial = String(t.number);
    line.appendChild(svgEl("title", {}, "trial " + t.number + ": " + axes.map((a) => a.label + " " + label(a.get(t))).join(", ")));
    lines.appendChild(line);
  }
  svg.appendChild(lines);
  const frame = svgEl("g", { class: "axis" });
  axes.forEach((a, i) => {
    frame.appendChild(svgEl("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "baseline" }));
    frame.appendChild(svgEl("text", { x: x(i), y: 12, "text-anchor": "middle", class: "title axis-name" + (a.objective ? " objective" : "") }, a.label));
    if (done.length) {
      frame.appendChild(svgEl("text", { x: x(i), y: y(1) - 4, "text-anchor": "middle", class: "tick" }, label(scales[i].hi)));
      frame.appendChild(svgEl("text", { x: x(i), y: y(0) + 12, "text-anchor": "middle", class: "tick" }, label(scales[i].lo)));
    }
  });
  frame.appendChild(svgEl("text", { x: w / 2, y: h - 2, "text-anchor": "middle", class: "title" },
    done.length ? `${done.length} of ${s.trials.length} trials complete` : "no complete trial yet"));
  svg.appendChild(frame);
}
