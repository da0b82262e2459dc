/*
** The live dashboard of a running weir job. It finds the job through
** /api/v1/jobs, then polls the job, its checkpoints and its exceptions
** every second and redraws the page from the answers. Values from the
** server reach the page as text nodes and attributes, never as markup, so a
** failure message cannot inject HTML. When the job cannot be reached the
** page keeps what it last showed, says so, and keeps trying.
*/
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";

// -- Requests ---------------------------------------------------------------

/** The API token the page was opened with (#token=XYZ or ?token=XYZ), or
 * null: a job that requires one answers 401 without it. */
function pageToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  return hash.get("token") || new URLSearchParams(location.search).get("token");
}

const TOKEN = pageToken();

/** Requests path (GET, or method with an empty body). Resolves to the parsed
 * JSON body; rejects with an Error carrying the server's {"error"} message,
 * or the HTTP status, or the network failure. */
async function api(path, method) {
  const headers = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
  const res = await fetch(path, { method: method || "GET", headers: headers,
    cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
  return body;
}

// -- Formatting -------------------------------------------------------------

/** A duration in ms as people read it: "0.4 ms", "850 ms", "12.3 s",
 * "4m 05s", "2h 07m". */
function duration(ms) {
  if (ms == null) return "–";
  if (ms < 10) return Math.round(ms * 10) / 10 + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  const s = Math.floor(ms / 1000), pad = (n) => String(n).padStart(2, "0");
  if (s < 3600) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
  return Math.floor(s / 3600) + "h " + pad(Math.floor(s / 60) % 60) + "m";
}

/** A size in bytes with a binary unit: "512 B", "4.0 KiB". */
function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
}

/** A rate in records per second, one decimal below 100. */
function rate(x) {
  if (x == null) return "–";
  return x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString("en");
}

/** An epoch time in ms as ISO 8601 UTC, to the second or (ms) to the ms. */
function isoTime(t, ms) {
  if (t == null) return "–";
  const s = new Date(t).toISOString();
  return ms ? s : s.replace(/\.\d+Z$/, "Z");
}

/** Whether a watermark is a real time: a subtask that has seen no event
 * time may report none, or a sentinel far outside any date. */
function isTime(t) {
  return typeof t === "number" && t > 0 && t < 8.64e15;
}

// -- DOM helpers ------------------------------------------------------------

/** A new HTML element with attributes (class, data-*, ...) and children,
 * which are nodes or strings (as text). */
function el(tag, attrs, children) {
  return fill(document.createElement(tag), attrs, children);
}

/** A new SVG element, as el(). */
function svg(tag, attrs, children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Sets attributes (null ones are skipped) and appends children; returns
 * node. */
function fill(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v != null) node.setAttribute(k, v);
  }
  for (const c of children || []) {
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/** Replaces the rows of a table's body; a placeholder row when none. */
function setRows(table, rows, empty) {
  const body = table.tBodies[0];
  const columns = table.tHead.rows[0].cells.length;
  body.replaceChildren(...(rows.length ? rows
    : [el("tr", { class: "empty" }, [el("td", { colspan: columns },
        [empty])])]));
}

/** Sets the text of the element with that id. */
function setText(id, value) {
  document.getElementById(id).textContent = value;
}

// -- Job header -------------------------------------------------------------

/** Fills the header from the job's detail (GET /api/v1/jobs/NAME). */
function renderHeader(job) {
  setText("job-name", job.name);
  setText("job-state", job.state);
  document.getElementById("job-state").className = "state " + job.state;
  setText("job-parallelism", job.parallelism + " (" + job.workers
    + " workers)");
  setText("job-uptime", duration(job.uptime_ms));
  setText("job-restarts", job.restarts);
  setText("job-checkpoints", job.checkpoints == null ? "–" : job.checkpoints);
  document.title = job.name + " · weir";
}

// -- Job graph --------------------------------------------------------------
// Operators sit in columns by depth, the longest path from a source, so
// that every edge points right; within a column they keep the plan's order.

const BOX = { w: 176, h: 60, gap_x: 120, gap_y: 28, margin: 16 };

/** The position of every operator: { uid: { x, y } }, and the size. */
function layout(operators, edges) {
  const inputs = {}, depth = {}, rows = [];
  for (const e of edges) (inputs[e.to] = inputs[e.to] || []).push(e.from);
  // The plan lists operators in topological order, so an operator's inputs
  // have their depth by the time it is reached.
  for (const op of operators) {
    depth[op.uid] = Math.max(-1, ...(inputs[op.uid] || [])
      .map((u) => depth[u] ?? -1)) + 1;
  }
  const at = {};
  for (const op of operators) {
    const d = depth[op.uid];
    rows[d] = (rows[d] || 0) + 1;
    at[op.uid] = { x: BOX.margin + d * (BOX.w + BOX.gap_x),
      y: BOX.margin + (rows[d] - 1) * (BOX.h + BOX.gap_y) };
  }
  return { at: at,
    width: 2 * BOX.margin + rows.length * (BOX.w + BOX.gap_x) - BOX.gap_x,
    height: 2 * BOX.margin + Math.max(1, ...rows) * (BOX.h + BOX.gap_y)
      - BOX.gap_y };
}

/** A fill and stroke per chain, so chained operators read as one task. */
function chainColour(chain) {
  const hue = (chain * 67) % 360;
  return "fill: hsl(" + hue + " 60% 95%); stroke: hsl(" + hue + " 45% 45%)";
}

/** Draws the plan into #graph: one g.operator per operator, one g.edge
 * per edge, chained edges dashed. */
function renderGraph(job) {
  const graph = document.getElementById("graph");
  const pos = layout(job.operators, job.edges);
  const arrow = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10,
    refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
  [svg("path", { d: "M0,0 L10,5 L0,10 z" })]);
  const nodes = [svg("defs", {}, [arrow])];
  for (const e of job.edges) {
    const a = pos.at[e.from], b = pos.at[e.to];
    if (!a || !b) continue;
    // From the middle of one box's right side to the next one's left side.
    const x1 = a.x + BOX.w, y1 = a.y + BOX.h / 2;
    const x2 = b.x, y2 = b.y + BOX.h / 2, mx = (x1 + x2) / 2;
    nodes.push(svg("g", { class: "edge" + (e.chained ? " chained" : ""),
      "data-from": e.from, "data-to": e.to }, [
      svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
        "marker-end": "url(#arrow)" }),
      svg("text", { x: mx, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" },
        [e.partitioning + (e.chained ? " · chained" : "")]),
    ]));
  }
  for (const op of job.operators) {
    const p = pos.at[op.uid];
    nodes.push(svg("g", { class: "operator", "data-uid": op.uid,
      transform: `translate(${p.x},${p.y})` }, [
      svg("title", {}, [op.uid + " (" + op.kind + "), chain " + op.chain]),
      svg("rect", { width: BOX.w, height: BOX.h, rx: 6,
        style: chainColour(op.chain) }),
      svg("text", { x: 10, y: 20, class: "uid" }, [op.uid]),
      svg("text", { x: 10, y: 37, class: "kind" }, [op.kind]),
      svg("text", { x: 10, y: 52, class: "kind" },
        ["parallelism " + op.parallelism + " · chain " + op.chain]),
    ]));
  }
  fill(graph, { width: pos.width, height: pos.height,
    viewBox: `0 0 ${pos.width} ${pos.height}` });
  graph.replaceChildren(...nodes);
}

// -- Subtasks ---------------------------------------------------------------

/** A bar showing a share (0..1) as a percentage. */
function percentBar(share) {
  const pct = Math.round(100 * (share || 0));
  const level = pct >= 80 ? "high" : pct >= 40 ? "mid" : "low";
  return el("div", { class: "bar " + level, title: pct + "% of the last "
    + "second waiting for credit" }, [
    el("div", { class: "fill", style: "width: " + pct + "%" }),
    el("span", {}, [pct + "%"]),
  ]);
}

/** One tr.subtask per subtask of an operator chain, by chain then index. */
function renderSubtasks(job) {
  const now = Date.now();
  const rows = job.subtasks.slice()
    .sort((a, b) => a.chain - b.chain || a.subtask - b.subtask)
    .map((s) => {
      const wm = isTime(s.watermark_ms);
      return el("tr", { class: "subtask", "data-chain": s.chain,
        "data-subtask": s.subtask }, [
        el("td", {}, [s.operator + (s.source ? " (source)" : "")]),
        el("td", { class: "num" }, [s.subtask]),
        el("td", { class: "num" }, [(s.records_in ?? 0).toLocaleString("en")]),
        el("td", { class: "num" }, [rate(s.records_in_per_s)]),
        el("td", { class: "num" }, [rate(s.records_out_per_s)]),
        el("td", {}, [percentBar(s.backpressure)]),
        el("td", { class: "time" }, [wm ? isoTime(s.watermark_ms, true)
          : "none"]),
        el("td", { class: "num" }, [wm ? duration(now - s.watermark_ms)
          : "–"]),
        el("td", { class: "num" }, [bytes(s.state_bytes)]),
      ]);
    });
  setRows(document.getElementById("subtasks"), rows, "No subtasks yet.");
}

// -- Checkpoints ------------------------------------------------------------

const TIMELINE = { bar: 14, gap: 4, height: 110, label: 16, margin: 8 };

/** A checkpoint's kind as the history table shows it. */
function kind(c) {
  return c.savepoint ? "savepoint" : c.final ? "final" : "checkpoint";
}

/** The text shown when hovering a checkpoint's bar. */
function tooltip(c) {
  return "#" + c.id + " " + kind(c) + ", " + c.status + "\nsize "
    + bytes(c.size_bytes) + ", duration " + duration(c.duration_ms)
    + "\nsync " + duration(c.sync_ms) + ", async " + duration(c.async_ms)
    + (c.failure ? "\n" + c.failure : "");
}

/** One bar per checkpoint, oldest on the left; a bar's height is its sync
 * time with its async time stacked on top, on a scale set by the longest. */
function renderTimeline(history) {
  const shown = history.slice().reverse();
  const longest = Math.max(1, ...shown.map((c) =>
    (c.sync_ms || 0) + (c.async_ms || 0)));
  const t = TIMELINE, scale = (t.height - t.margin) / longest;
  const bars = shown.map((c, i) => {
    const x = t.margin + i * (t.bar + t.gap);
    const sync = (c.sync_ms || 0) * scale, async = (c.async_ms || 0) * scale;
    const parts = [svg("title", {}, [tooltip(c)])];
    if (c.status === "completed") {
      // At least a sliver, so that a checkpoint of 0 ms still shows.
      const s = Math.max(sync, 2);
      parts.push(svg("rect", { class: "sync", x: x, y: t.height - s,
        width: t.bar, height: s }));
      parts.push(svg("rect", { class: "async", x: x,
        y: t.height - s - async, width: t.bar, height: async }));
    } else {
      const h = Math.max(sync + async, t.height / 3);
      parts.push(svg("rect", { class: c.status, x: x, y: t.height - h,
        width: t.bar, height: h }));
    }
    if (shown.length <= 30 || c.id % 10 === 0) {
      parts.push(svg("text", { x: x + t.bar / 2, y: t.height + t.label - 4,
        "text-anchor": "middle" }, [c.id]));
    }
    return svg("g", { class: "checkpoint-bar " + c.status, "data-id": c.id },
      parts);
  });
  const width = 2 * t.margin + Math.max(1, shown.length) * (t.bar + t.gap);
  const timeline = document.getElementById("checkpoint-timeline");
  fill(timeline, { width: width, height: t.height + t.label });
  timeline.replaceChildren(...bars);
}

/** Fills #checkpoints from GET .../checkpoints: counts, timeline, and one
 * tr.checkpoint per history entry, newest first. */
function renderCheckpoints(data) {
  const c = data.counts || {};
  setText("checkpoint-counts", (c.completed || 0) + " completed · "
    + (c.failed || 0) + " failed · " + (c.in_progress || 0) + " in progress");
  renderTimeline(data.history);
  const rows = data.history.map((cp) => el("tr", {
    class: "checkpoint " + cp.status, "data-id": cp.id }, [
    el("td", { class: "num" }, [cp.id]),
    el("td", { class: "status" }, [cp.status.replace("_", " ")]),
    el("td", {}, [kind(cp)]),
    el("td", { class: "time" }, [isoTime(cp.trigger_time_ms)]),
    el("td", { class: "num" }, [duration(cp.duration_ms)]),
    el("td", { class: "num" }, [duration(cp.sync_ms)]),
    el("td", { class: "num" }, [duration(cp.async_ms)]),
    el("td", { class: "num" }, [duration(cp.alignment_ms)]),
    el("td", { class: "num" }, [bytes(cp.size_bytes)]),
    el("td", { class: "path" }, [cp.failure || cp.path || ""]),
  ]));
  setRows(document.getElementById("checkpoint-history"), rows,
    "No checkpoint yet.");
}

// -- Exceptions -------------------------------------------------------------

/** One row per exception of GET .../exceptions, newest first. */
function renderExceptions(data) {
  const rows = data.exceptions.map((x) => el("tr", { class: "exception" }, [
    el("td", { class: "time" }, [isoTime(x.time_ms)]),
    el("td", { class: "cause" }, [x.cause]),
    el("td", { class: "num" }, [x.worker ?? "–"]),
    el("td", { class: "num" }, [x.restart ?? "–"]),
  ]));
  setRows(document.getElementById("exceptions"), rows, "No exceptions.");
}

// -- Polling ----------------------------------------------------------------

let jobName = null;
let planKey = null;  // the graph is redrawn only when the plan changes

/** Shows or hides the banner saying the job cannot be reached; err, if
 * given, says why (a refused token reads differently from a dead job). */
function setOffline(offline, err) {
  const banner = document.getElementById("offline");
  banner.hidden = !offline;
  if (offline) {
    banner.textContent = "job ended / not reachable (" + err.message
      + ") — retrying every second";
    // The last state shown would claim a job that may be gone.
    setText("job-state", "not reachable");
    document.getElementById("job-state").className = "state unreachable";
  }
  document.body.classList.toggle("offline", offline);
}

/** Fetches everything the page shows and renders it. Rejects when the job
 * cannot be reached; the page then keeps what it showed. */
async function refresh() {
  if (!jobName) {
    const jobs = await api("/api/v1/jobs");
    if (!jobs.length) throw new Error("no job");
    jobName = jobs[0].name;
  }
  const base = "/api/v1/jobs/" + encodeURIComponent(jobName);
  const [job, checkpoints, exceptions] = await Promise.all([
    api(base), api(base + "/checkpoints"), api(base + "/exceptions")]);
  renderHeader(job);
  const key = JSON.stringify([job.operators, job.edges]);
  if (key !== planKey) { renderGraph(job); planKey = key; }
  renderSubtasks(job);
  renderCheckpoints(checkpoints);
  renderExceptions(exceptions);
}

/** Refreshes the page, then again POLL_MS after each attempt ends, so
 * that a slow answer never has requests pile up behind it. */
async function poll() {
  try {
    await refresh();
    setOffline(false);
    document.body.dataset.ready = "1";
  } catch (err) {
    setOffline(true, err);
  }
  setTimeout(poll, POLL_MS);
}

// -- Actions ----------------------------------------------------------------

/** Shows the outcome of a button's action in the banner under the
 * header. */
function showResult(message, failed) {
  const banner = document.getElementById("action-result");
  banner.textContent = message;
  banner.classList.toggle("error", failed);
  banner.hidden = false;
}

/** Runs a POST action of the job with its button disabled meanwhile, and
 * shows what describe() makes of the answer, or the error. */
async function act(button, path, describe) {
  if (!jobName) return showResult("the job is not known yet", true);
  button.disabled = true;
  try {
    const body = await api("/api/v1/jobs/" + encodeURIComponent(jobName)
      + path, "POST");
    showResult(describe(body), false);
  } catch (err) {
    showResult(button.textContent + " failed: " + err.message, true);
  } finally {
    button.disabled = false;
  }
}

document.getElementById("savepoint-button").addEventListener("click",
  (ev) => act(ev.currentTarget, "/savepoints",
    (body) => "savepoint written to " + body.path));

document.getElementById("cancel-button").addEventListener("click", (ev) => {
  if (!confirm("Cancel job " + (jobName || "") + "?")) return;
  act(ev.currentTarget, "/cancel", (body) => "job " + body.state
    + (body.savepoint ? ", savepoint " + body.savepoint : ""));
});

poll();
