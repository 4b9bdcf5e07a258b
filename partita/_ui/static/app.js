// partita's web view: the graph as wired, live stats over server-sent events, and the
// control actions (they send the run's token, taken from ?token= in the page's address).
"use strict";

const TOKEN = new URLSearchParams(window.location.search).get("token") || "";
const HISTORY_S = 300;          // the throughput plot's window
const NODE_W = 190, NODE_H = 166, GAP_X = 60, GAP_Y = 14;
const ENDED = new Set(["completed", "failed", "cancelled"]);

const view = { nodes: [], edges: [], byName: {}, last: null, history: [], lastError: null };

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function bytes(n) {
  if (n == null) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function ms(n) {
  if (n == null) return "-";
  return n >= 10000 ? (n / 1000).toFixed(1) + " s" : fmt.format(n) + " ms";
}

// ------------------------------------------------------------------ layout
function layout(graph) {
  const depth = {};
  for (const node of graph.nodes) {      // topological order: inputs come first
    depth[node.name] = node.inputs.length
      ? 1 + Math.max(...node.inputs.map((n) => depth[n])) : 0;
  }
  const last = Math.max(...Object.values(depth));
  for (const node of graph.nodes) if (node.role === "sink") depth[node.name] = last;
  const columns = [];
  for (const node of graph.nodes) (columns[depth[node.name]] ||= []).push(node);
  const tallest = Math.max(...columns.map((c) => c.length));
  const height = tallest * (NODE_H + GAP_Y);
  const pos = {};
  columns.forEach((column, x) => {
    const top = (height - column.length * (NODE_H + GAP_Y)) / 2;
    column.forEach((node, y) => {
      pos[node.name] = { x: x * (NODE_W + GAP_X), y: top + y * (NODE_H + GAP_Y) };
    });
  });
  return { pos, width: columns.length * (NODE_W + GAP_X) - GAP_X, height };
}

function controlButtons(name) {
  const pause = el("button", { type: "button", class: "pause",
    "data-action": `/api/actors/${encodeURIComponent(name)}/pause` }, "pause");
  const resume = el("button", { type: "button", class: "resume",
    "data-action": `/api/actors/${encodeURIComponent(name)}/resume` }, "resume");
  return el("div", { class: "buttons" }, pause, resume);
}

function drawGraph(graph) {
  const box = $("graph");
  const { pos, width, height } = layout(graph);
  box.style.height = height + "px";
  box.style.width = width + "px";
  const svg = $("edges");
  const ns = svg.namespaceURI;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const edge of graph.edges) {
    const a = pos[edge.from], b = pos[edge.to];
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
    if (edge.to.includes("dead")) path.setAttribute("class", "dead");
    svg.append(path);
  }
  for (const node of graph.nodes) {
    const div = el("div", { class: "node", id: "node-" + node.name, "data-actor": node.name },
      el("div", { class: "name", title: node.name }, node.name),
      el("div", { class: "kind" }, node.kind),
      el("div", { class: "row" }, "state", el("b", { class: "actor-state" }, "-")),
      el("div", { class: "row" }, "rows/s", el("b", { class: "rate" }, "0")),
      el("div", { class: "row" }, node.role === "source" ? "rows out" : "rows in",
        el("b", { class: "rows" }, "0")),
      el("div", { class: "row" }, node.capacity ? "mailbox" : "no inbox",
        el("b", { class: "mailbox" }, node.capacity ? "0/" + node.capacity : "")),
      el("div", { class: "bar", title: "mailbox fill" }, el("i")),
      el("div", { class: "row" }, "watermark lag", el("b", { class: "lag" }, "-")),
      controlButtons(node.name));
    div.style.left = pos[node.name].x + "px";
    div.style.top = pos[node.name].y + "px";
    box.append(div);
    view.byName[node.name] = { node, div, rows: 0, time: null, rate: 0 };
  }
}

// ------------------------------------------------------------------ updates
function counted(actor, role) { return role === "source" ? actor.rows_out : actor.rows_in; }

function update(stats) {
  const prev = view.last;
  $("graph-state").textContent = stats.state;
  $("graph-state").className = "state " + stats.state;
  let readRate = 0, sinkRate = 0;
  for (const actor of stats.actors) {
    const entry = view.byName[actor.name];
    if (!entry) continue;
    const role = entry.node.role;
    const rows = counted(actor, role);
    if (entry.time != null && stats.time > entry.time) {
      const rate = (rows - entry.rows) / (stats.time - entry.time);
      entry.rate = entry.rate * 0.5 + rate * 0.5;  // smooth over two updates
    }
    entry.rows = rows;
    entry.time = stats.time;
    if (role === "source") readRate += entry.rate;
    if (role === "sink" && !actor.name.includes("dead")) sinkRate += entry.rate;
    const div = entry.div;
    div.className = "node state-" + actor.state + (actor.rows_errored ? " errored" : "");
    div.querySelector(".actor-state").textContent = actor.state;
    div.querySelector(".rate").textContent = fmt.format(Math.max(0, entry.rate));
    div.querySelector(".rows").textContent = fmt.format(rows);
    div.querySelector(".lag").textContent = ms(actor.watermark_lag_ms);
    if (actor.mailbox_capacity) {
      const fill = actor.mailbox_items / actor.mailbox_capacity;
      div.querySelector(".mailbox").textContent =
        `${actor.mailbox_items}/${actor.mailbox_capacity} · ${bytes(actor.mailbox_bytes)}`;
      const bar = div.querySelector(".bar i");
      bar.style.width = Math.min(100, fill * 100) + "%";
      bar.className = fill >= 1 ? "full" : fill >= 0.75 ? "high" : "";
    }
    const live = !ENDED.has(actor.state);
    div.querySelector("button.pause").disabled = !TOKEN || !live || actor.state === "paused";
    div.querySelector("button.resume").disabled = !TOKEN || !live || actor.state !== "paused";
    if (prev) {
      const before = prev.actors.find((a) => a.name === actor.name);
      if (before && actor.rows_errored > before.rows_errored) {
        const reason = actor.errors_by_reason.length ? actor.errors_by_reason[0][0] : "";
        view.lastError = `${actor.name}: ${actor.rows_errored - before.rows_errored} ` +
          `bad record(s)${reason ? " — " + reason : ""}`;
      }
    }
  }
  const live = !ENDED.has(stats.state);
  $("pause-graph").disabled = !TOKEN || !live || stats.state === "paused";
  $("resume-graph").disabled = !TOKEN || !live || stats.state !== "paused";
  $("cancel-graph").disabled = !TOKEN || !live;
  $("memory").textContent = bytes(stats.memory_in_use) +
    (stats.max_memory ? " of " + bytes(stats.max_memory) : " (no limit)");
  $("checkpoint").textContent = stats.checkpoint
    ? `#${stats.checkpoint.id}, ${stats.checkpoint.age_s.toFixed(1)} s ago, ` +
      bytes(stats.checkpoint.size_bytes) : "none";
  $("restarts").textContent = stats.restarts;
  const error = $("last-error");
  if (stats.failure) {
    error.textContent = `${stats.failure.actor}: ${stats.failure.message}`;
  } else if (view.lastError) {
    error.textContent = view.lastError;
  }
  error.classList.toggle("has-error", Boolean(stats.failure || view.lastError));
  view.history.push([stats.time, readRate, sinkRate]);
  while (view.history.length && view.history[0][0] < stats.time - HISTORY_S) view.history.shift();
  view.last = stats;
  drawPlot();
}

// ------------------------------------------------------------------ the plot
function drawPlot() {
  const canvas = $("plot");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pts = view.history;
  if (!pts.length) return;
  const left = 60, bottom = 20, top = 8;
  const now = pts[pts.length - 1][0];
  // the axis grows with the run, from one minute up to HISTORY_S
  const span = Math.min(HISTORY_S, Math.max(60, Math.ceil((now - pts[0][0]) / 60) * 60));
  const peak = Math.max(1, ...pts.map((p) => Math.max(p[1], p[2])));
  const scale = Math.pow(10, Math.floor(Math.log10(peak)));
  const ymax = Math.ceil(peak / scale) * scale;
  const x = (t) => left + (w - left - 8) * (1 - (now - t) / span);
  const y = (v) => top + (h - top - bottom) * (1 - v / ymax);
  ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280"; ctx.font = "11px system-ui";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - 8, y(v)); ctx.stroke();
    ctx.fillText(fmt.format(v), 4, y(v) + 4);
  }
  const step = span / 4;
  for (let s = 0; s <= span; s += step) {
    const label = s === 0 ? "now" : s % 60 ? `-${s}s` : `-${s / 60}m`;
    ctx.fillText(label, Math.max(left, x(now - s) - 12), h - 4);
  }
  for (const [index, colour] of [[1, "#2563eb"], [2, "#16a34a"]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[index])) : ctx.moveTo(x(p[0]), y(p[index]))));
    ctx.stroke();
  }
}

// ------------------------------------------------------------------ control
async function act(path) {
  $("message").textContent = "";
  try {
    const reply = await fetch(path, { method: "POST", headers: { "X-Partita-Token": TOKEN } });
    if (!reply.ok) {
      const body = await reply.json().catch(() => ({ error: reply.statusText }));
      $("message").textContent = body.error || reply.statusText;
    }
  } catch (err) {
    $("message").textContent = "the server is gone: " + err;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button && !button.disabled) act(button.dataset.action);
});

// ------------------------------------------------------------------ start
async function start() {
  $("token-note").textContent = TOKEN
    ? "Control actions send this page's token."
    : "Read-only: open the address printed with its ?token= to pause, resume or cancel.";
  const graph = await (await fetch("/api/graph")).json();
  $("job").textContent = graph.job;
  document.title = "partita · " + graph.job;
  view.nodes = graph.nodes;
  view.edges = graph.edges;
  drawGraph(graph);
  update(graph.stats);
  const stream = new EventSource("/api/stream");
  stream.onmessage = (event) => update(JSON.parse(event.data));
  stream.onerror = () => {
    if (view.last && ENDED.has(view.last.state)) stream.close();
    else $("message").textContent = "reconnecting…";
  };
  stream.onopen = () => { if ($("message").textContent === "reconnecting…") $("message").textContent = ""; };
}

window.addEventListener("resize", drawPlot);
start();
