// Kiln's web UI: experiments, runs, metric charts, run comparison and the model registry.
// Plain JavaScript over the server's own REST API (MLflow's), no build step and no CDN.
"use strict";

const main = document.getElementById("main");
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const PAGE_SIZE = 100;
const HISTORY_POINTS = 2500;

// ---- small helpers -------------------------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

class ApiError extends Error {}

async function api(method, path, params) {
  let url = "/api/2.0/mlflow/" + path;
  const init = { method, headers: {} };
  if (method === "GET") {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (Array.isArray(v)) v.forEach((item) => q.append(k, item));
      else if (v !== undefined && v !== null && v !== "") q.append(k, v);
    }
    const text = q.toString();
    if (text) url += "?" + text;
  } else {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(params || {});
  }
  const resp = await fetch(url, init);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(body.message || `${resp.status} ${resp.statusText}`);
  return body;
}

/// Replaces the page's content; arrays are flattened and empty parts skipped, as in h().
function render(...kids) {
  main.replaceChildren(...kids.flat(Infinity).filter((k) => k !== undefined && k !== null && k !== false));
}

function toast(message) {
  const box = document.getElementById("toast");
  const item = h("div", {}, message);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}

function showError(where, e) {
  where.replaceChildren(h("div", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
}

const fmt = {
  time(ms) {
    if (ms === undefined || ms === null) return "";
    const d = new Date(Number(ms));
    return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  },
  duration(ms) {
    if (ms === undefined || ms === null || ms < 0) return "";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  },
  value(v) {
    if (v === undefined || v === null) return "";
    if (typeof v === "string") return v;
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(4);
    return String(Math.round(v * 1e6) / 1e6);
  },
};

function byKey(list) {
  const out = {};
  for (const item of list || []) out[item.key] = item.value;
  return out;
}

/// A field of MLflow's search language, quoted so any key works.
function field(kind, key) {
  return `${kind}.\`${key.replace(/`/g, "")}\``;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || "") };
}

function go(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v !== undefined && v !== null)).toString() : "";
  location.hash = "#" + path + (q ? "?" + q : "");
}

// Every page render gets a number; async work from an older render does not touch the page.
let generation = 0;
const cleanups = [];
function current(gen) {
  return gen === generation;
}
function onLeave(fn) {
  cleanups.push(fn);
}

// ---- router --------------------------------------------------------------------------------

async function route() {
  generation += 1;
  while (cleanups.length) cleanups.pop()();
  const gen = generation;
  const { parts, query } = parseHash();
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", (parts[0] || "experiments") === a.dataset.nav || (parts[0] === "runs" && a.dataset.nav === "experiments"));
  }
  render(h("p", { class: "muted" }, "Loading…"));
  try {
    if (parts.length === 0 || (parts[0] === "experiments" && parts.length === 1)) await experimentsPage(gen, query);
    else if (parts[0] === "experiments") await experimentPage(gen, parts[1], query);
    else if (parts[0] === "runs") await runPage(gen, parts[1]);
    else if (parts[0] === "compare") await comparePage(gen, query);
    else if (parts[0] === "models" && parts.length === 1) await modelsPage(gen, query);
    else if (parts[0] === "models") await modelPage(gen, parts.slice(1).join("/"));
    else render(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to experiments")));
  } catch (e) {
    if (current(gen)) showError(main, e);
  }
}

// ---- experiments ---------------------------------------------------------------------------

async function experimentsPage(gen, query) {
  const q = query.get("q") || "";
  const deleted = query.get("deleted") === "1";
  const filter = q ? `name LIKE '%${q.replace(/'/g, "")}%'` : "";
  const body = await api("POST", "experiments/search", {
    max_results: 1000,
    filter,
    order_by: ["last_update_time DESC"],
    view_type: deleted ? "ALL" : "ACTIVE_ONLY",
  });
  if (!current(gen)) return;
  const experiments = body.experiments || [];
  const search = h("input", { type: "search", class: "grow", value: q, "aria-label": "Search experiments by name", placeholder: "Search by name" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") go("/experiments", { q: search.value, deleted: deleted ? "1" : "" }); });
  const newName = h("input", { type: "text", "aria-label": "New experiment name", placeholder: "New experiment name" });
  const create = async () => {
    if (!newName.value.trim()) return;
    try {
      const made = await api("POST", "experiments/create", { name: newName.value.trim() });
      go("/experiments/" + made.experiment_id);
    } catch (e) { toast(e.message); }
  };
  newName.addEventListener("keydown", (e) => { if (e.key === "Enter") create(); });
  const rows = experiments.map((x) => {
    const isDeleted = x.lifecycle_stage === "deleted";
    return h("tr", { class: isDeleted ? "deleted" : "", dataset: { experimentId: x.experiment_id } },
      h("td", {}, h("a", { href: `#/experiments/${x.experiment_id}` }, x.name)),
      h("td", { class: "num" }, x.experiment_id),
      h("td", {}, fmt.time(x.last_update_time)),
      h("td", {}, fmt.time(x.creation_time)),
      h("td", {},
        h("button", { type: "button", class: "ghost", "aria-label": `Rename ${x.name}`, onclick: async () => {
          const name = prompt("New name for " + x.name, x.name);
          if (!name || name === x.name) return;
          try { await api("POST", "experiments/update", { experiment_id: x.experiment_id, new_name: name }); route(); } catch (e) { toast(e.message); }
        } }, "Rename"), " ",
        h("button", { type: "button", class: "ghost", "aria-label": `${isDeleted ? "Restore" : "Delete"} ${x.name}`, onclick: async () => {
          try { await api("POST", isDeleted ? "experiments/restore" : "experiments/delete", { experiment_id: x.experiment_id }); route(); } catch (e) { toast(e.message); }
        } }, isDeleted ? "Restore" : "Delete")));
  });
  render(
    h("h1", {}, "Experiments"),
    h("div", { class: "bar" }, search,
      h("button", { type: "button", onclick: () => go("/experiments", { q: search.value, deleted: deleted ? "1" : "" }) }, "Search"),
      h("label", {}, h("input", { type: "checkbox", checked: deleted, onchange: (e) => go("/experiments", { q, deleted: e.target.checked ? "1" : "" }) }), " Show deleted")),
    h("div", { class: "bar" }, newName, h("button", { type: "button", onclick: create }, "Create experiment")),
    experiments.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid", id: "experiments" },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "ID"), h("th", {}, "Last updated"), h("th", {}, "Created"), h("th", {}, "Actions"))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No experiments match."),
  );
}

// ---- one experiment: the runs table --------------------------------------------------------

async function experimentPage(gen, experimentId, query) {
  const experiment = (await api("GET", "experiments/get", { experiment_id: experimentId })).experiment;
  if (!current(gen)) return;
  const state = {
    filter: query.get("filter") || "",
    order: query.get("order") || "attributes.start_time DESC",
    deleted: query.get("deleted") === "1",
    tokens: [""],
    page: 0,
    selected: new Set(),
    columns: null,
  };
  const errorBox = h("div");
  const tableBox = h("div", { class: "scroll", id: "runs-box" });
  const status = h("span", { class: "muted", id: "runs-status" });
  const filterInput = h("input", { type: "search", class: "grow mono", id: "runs-filter", value: state.filter, "aria-label": "Filter runs (MLflow search language)", placeholder: "metrics.loss < 0.5 and params.lr = '0.01'" });
  const compareButton = h("button", { type: "button", id: "compare", disabled: true, onclick: () => go("/compare", { runs: [...state.selected].join(","), experiment: experimentId }) }, "Compare selected");
  const prev = h("button", { type: "button", class: "ghost", disabled: true, onclick: () => { state.page -= 1; load(); } }, "Previous");
  const next = h("button", { type: "button", class: "ghost", disabled: true, onclick: () => { state.page += 1; load(); } }, "Next");
  const pickerBox = h("details", {}, h("summary", {}, "Columns"), h("div", { class: "colpicker", id: "columns" }));
  const applyFilter = () => go(`/experiments/${experimentId}`, { filter: filterInput.value, order: state.order, deleted: state.deleted ? "1" : "" });
  filterInput.addEventListener("keydown", (e) => { if (e.key === "Enter") applyFilter(); });

  render(
    h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), " / ", experiment.name),
    h("h1", {}, experiment.name),
    h("div", { class: "bar" }, filterInput, h("button", { type: "button", onclick: applyFilter }, "Apply filter")),
    errorBox,
    h("div", { class: "bar" },
      h("label", {}, h("input", { type: "checkbox", checked: state.deleted, onchange: (e) => go(`/experiments/${experimentId}`, { filter: state.filter, order: state.order, deleted: e.target.checked ? "1" : "" }) }), " Show deleted runs"),
      compareButton, prev, next, status),
    pickerBox,
    tableBox,
  );

  let runs = [];
  async function load() {
    status.textContent = "Loading…";
    const t0 = performance.now();
    let body;
    try {
      body = await api("POST", "runs/search", {
        experiment_ids: [experimentId],
        filter: state.filter,
        order_by: [state.order],
        max_results: PAGE_SIZE,
        page_token: state.tokens[state.page] || undefined,
        run_view_type: state.deleted ? "ALL" : "ACTIVE_ONLY",
      });
    } catch (e) {
      if (current(gen)) { showError(errorBox, e); status.textContent = ""; tableBox.replaceChildren(); }
      return;
    }
    if (!current(gen)) return;
    errorBox.replaceChildren();
    runs = body.runs || [];
    state.tokens[state.page + 1] = body.next_page_token || "";
    prev.disabled = state.page === 0;
    next.disabled = !body.next_page_token;
    if (!state.columns) state.columns = defaultColumns(runs);
    renderPicker();
    renderTable();
    const first = state.page * PAGE_SIZE;
    status.textContent = runs.length ? `Runs ${first + 1}–${first + runs.length} (${Math.round(performance.now() - t0)} ms)` : "No runs match.";
  }

  function keysOf(kind) {
    const keys = new Set();
    for (const r of runs) for (const item of r.data[kind] || []) keys.add(item.key);
    return [...keys].sort();
  }

  function defaultColumns(list) {
    const metrics = new Set(), params = new Set();
    for (const r of list) {
      for (const m of r.data.metrics || []) metrics.add(m.key);
      for (const p of r.data.params || []) params.add(p.key);
    }
    return [...[...metrics].sort().slice(0, 6).map((k) => ["metrics", k]), ...[...params].sort().slice(0, 6).map((k) => ["params", k])];
  }

  function renderPicker() {
    const box = pickerBox.querySelector(".colpicker");
    const chosen = new Set(state.columns.map(([kind, key]) => kind + "\u0000" + key));
    const boxes = [];
    for (const kind of ["metrics", "params", "tags"]) {
      for (const key of keysOf(kind)) {
        if (kind === "tags" && key.startsWith("mlflow.")) continue;
        const id = kind + "\u0000" + key;
        boxes.push(h("label", {}, h("input", { type: "checkbox", checked: chosen.has(id), onchange: (e) => {
          if (e.target.checked) state.columns.push([kind, key]);
          else state.columns = state.columns.filter(([k2, key2]) => !(k2 === kind && key2 === key));
          renderTable();
        } }), ` ${kind}.${key}`));
      }
    }
    box.replaceChildren(...(boxes.length ? boxes : [h("span", { class: "muted" }, "No metrics, params or tags on this page.")]));
  }

  function sortHeader(label, orderField) {
    const [currentField, dir] = state.order.split(/ (?=ASC$|DESC$)/);
    const active = currentField === orderField;
    const nextOrder = active && dir === "DESC" ? `${orderField} ASC` : `${orderField} DESC`;
    return h("th", { "aria-sort": active ? (dir === "DESC" ? "descending" : "ascending") : "none" },
      h("button", { type: "button", class: "sort", title: `Sort by ${label}`, onclick: () => go(`/experiments/${experimentId}`, { filter: state.filter, order: nextOrder, deleted: state.deleted ? "1" : "" }) },
        label + (active ? (dir === "DESC" ? " ▼" : " ▲") : "")));
  }

  function renderTable() {
    const allBox = h("input", { type: "checkbox", "aria-label": "Select all runs on this page", onchange: (e) => {
      for (const r of runs) e.target.checked ? state.selected.add(r.info.run_id) : state.selected.delete(r.info.run_id);
      renderTable();
    } });
    const head = h("tr", {}, h("th", {}, allBox), sortHeader("Run", "attributes.run_name"), sortHeader("Status", "attributes.status"),
      sortHeader("Started", "attributes.start_time"), h("th", {}, "Duration"), sortHeader("User", "attributes.user_id"),
      state.columns.map(([kind, key]) => sortHeader(`${kind === "metrics" ? "" : kind + "."}${key}`, field(kind, key))));
    const rows = runs.map((r) => {
      const data = { metrics: byKey(r.data.metrics), params: byKey(r.data.params), tags: byKey(r.data.tags) };
      const id = r.info.run_id;
      return h("tr", { class: r.info.lifecycle_stage === "deleted" ? "deleted" : "", dataset: { runId: id } },
        h("td", {}, h("input", { type: "checkbox", checked: state.selected.has(id), "aria-label": `Select run ${r.info.run_name}`, onchange: (e) => {
          e.target.checked ? state.selected.add(id) : state.selected.delete(id);
          compareButton.disabled = state.selected.size < 2;
          compareButton.textContent = `Compare selected (${state.selected.size})`;
        } })),
        h("td", {}, h("a", { href: `#/runs/${id}` }, r.info.run_name || id)),
        h("td", {}, h("span", { class: `pill ${r.info.status}` }, r.info.status)),
        h("td", {}, fmt.time(r.info.start_time)),
        h("td", {}, r.info.end_time ? fmt.duration(r.info.end_time - r.info.start_time) : ""),
        h("td", {}, r.info.user_id),
        state.columns.map(([kind, key]) => h("td", { class: kind === "metrics" ? "num" : "" }, fmt.value(data[kind][key]))));
    });
    allBox.checked = runs.length > 0 && runs.every((r) => state.selected.has(r.info.run_id));
    compareButton.disabled = state.selected.size < 2;
    compareButton.textContent = `Compare selected (${state.selected.size})`;
    tableBox.replaceChildren(h("table", { class: "grid", id: "runs" }, h("thead", {}, head), h("tbody", {}, rows)));
  }

  await load();
}

// ---- metric charts -------------------------------------------------------------------------

/// Downsampled history of `key` for each run (the server samples long histories evenly).
async function histories(runIds, key) {
  const body = await api("GET", "metrics/get-history-bulk-interval", { run_ids: runIds, metric_key: key, max_results: HISTORY_POINTS });
  const byRun = new Map(runIds.map((id) => [id, []]));
  for (const m of body.metrics || []) {
    const value = m.value === "NaN" ? NaN : Number(m.value);
    byRun.get(m.run_id)?.push({ step: m.step, timestamp: m.timestamp, value });
  }
  return byRun;
}

function seriesFrom(points, xKind) {
  const start = points.length ? Math.min(...points.map((p) => p.timestamp)) : 0;
  const xs = points.map((p) => (xKind === "time" ? p.timestamp : xKind === "relative" ? (p.timestamp - start) / 1000 : p.step));
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  return order.map((i) => [xs[i], points[i].value]);
}

/// Chart controls shared by the charts of one page: x axis, log scale, smoothing.
function chartControls(onChange, { combine = false } = {}) {
  const settings = { xKind: "step", yLog: false, smoothing: 0, combined: false };
  const xSelect = h("select", { "aria-label": "X axis", onchange: (e) => { settings.xKind = e.target.value; onChange(); } },
    h("option", { value: "step" }, "Step"), h("option", { value: "time" }, "Time"), h("option", { value: "relative" }, "Relative time"));
  const log = h("input", { type: "checkbox", onchange: (e) => { settings.yLog = e.target.checked; onChange(); } });
  const smooth = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0", "aria-label": "Smoothing", oninput: (e) => { settings.smoothing = Number(e.target.value); onChange(); } });
  const together = combine
    ? h("label", {}, h("input", { type: "checkbox", id: "combine-metrics", onchange: (e) => { settings.combined = e.target.checked; onChange(); } }), " One chart for all charted metrics")
    : null;
  const el = h("div", { class: "chart-controls" }, h("label", {}, "X axis ", xSelect), h("label", {}, log, " Log scale"), h("label", {}, "Smoothing ", smooth), together);
  return { el, settings };
}

function makeChart(box, title, series, settings) {
  const options = { title, series, xKind: settings.xKind, yLog: settings.yLog, smoothing: settings.smoothing, height: 280 };
  const chart = window.KilnChart.create(box, options);
  onLeave(() => chart.destroy());
  return chart;
}

// ---- one run -------------------------------------------------------------------------------

async function runPage(gen, runId) {
  const { run } = await api("GET", "runs/get", { run_id: runId });
  if (!current(gen)) return;
  const info = run.info;
  const experiment = (await api("GET", "experiments/get", { experiment_id: info.experiment_id }).catch(() => ({ experiment: { name: info.experiment_id } }))).experiment;
  if (!current(gen)) return;
  const metrics = [...(run.data.metrics || [])].sort((a, b) => a.key.localeCompare(b.key));
  const params = [...(run.data.params || [])].sort((a, b) => a.key.localeCompare(b.key));
  const tags = [...(run.data.tags || [])].sort((a, b) => a.key.localeCompare(b.key));
  const charted = new Set(metrics.slice(0, 4).map((m) => m.key));
  const chartsBox = h("div", { class: "cols", id: "charts" });
  const charts = new Map();
  const controls = chartControls(() => drawCharts(), { combine: true });
  // Not a possible metric key (keys never hold "*"), so it names the chart of all metrics.
  const ALL = "*combined";

  function place(key, title, series) {
    const settings = controls.settings;
    const options = { title, series, xKind: settings.xKind, yLog: settings.yLog, smoothing: settings.smoothing, height: 280 };
    if (charts.has(key)) charts.get(key).update(options);
    else {
      const box = h("div", { class: "card chart-box", dataset: { metric: key } });
      chartsBox.append(box);
      charts.set(key, makeChart(box, title, series, settings));
    }
  }

  async function drawCharts() {
    const keys = [...charted];
    const data = await Promise.all(keys.map((k) => histories([runId], k).then((m) => [k, m.get(runId)])));
    if (!current(gen)) return;
    const combined = controls.settings.combined && keys.length > 0;
    const shown = new Set(combined ? [ALL] : keys);
    for (const [key, chart] of charts) if (!shown.has(key)) { chart.destroy(); charts.delete(key); }
    for (const box of [...chartsBox.children]) if (!shown.has(box.dataset.metric)) box.remove();
    if (combined) {
      const series = data.map(([key, points], i) => ({ name: key, color: PALETTE[i % PALETTE.length], points: seriesFrom(points, controls.settings.xKind) }));
      place(ALL, keys.join(", "), series);
      return;
    }
    for (const [key, points] of data) {
      place(key, key, [{ name: key, color: PALETTE[0], points: seriesFrom(points, controls.settings.xKind) }]);
    }
  }

  const metricRow = (m) => h("tr", {},
    h("td", {}, h("input", { type: "checkbox", checked: charted.has(m.key), "aria-label": `Chart ${m.key}`, onchange: (e) => { e.target.checked ? charted.add(m.key) : charted.delete(m.key); drawCharts(); } })),
    h("td", {}, m.key), h("td", { class: "num" }, fmt.value(m.value === "NaN" ? NaN : m.value)), h("td", { class: "num" }, m.step), h("td", {}, fmt.time(m.timestamp)));
  // A live run's metrics table is refilled on every poll (new keys are charted while fewer than four are).
  const knownMetrics = new Set(metrics.map((m) => m.key));
  const metricsBody = h("tbody", {}, metrics.map(metricRow));
  const metricsSection = h("div", { id: "metrics-section" });
  const fillMetrics = () => metricsSection.replaceChildren(...(metricsBody.childElementCount ? [controls.el, chartsBox,
    h("div", { class: "scroll" }, h("table", { class: "grid", id: "metrics" }, h("thead", {}, h("tr", {}, h("th", {}, "Chart"), h("th", {}, "Metric"), h("th", {}, "Latest"), h("th", {}, "Step"), h("th", {}, "Logged"))), metricsBody))]
    : [h("p", { class: "muted" }, "No metrics.")]));
  fillMetrics();

  const datasets = (run.inputs?.dataset_inputs || []).map((d) => h("tr", {},
    h("td", {}, d.dataset.name), h("td", { class: "mono" }, d.dataset.digest), h("td", {}, d.dataset.source_type),
    h("td", {}, byKey(d.tags)["mlflow.data.context"] || "")));
  const models = (run.outputs?.model_outputs || []).map((m) => h("li", { dataset: { modelId: m.model_id } }, h("span", { class: "mono" }, m.model_id), ` (step ${m.step})`));

  render(
    h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), " / ", h("a", { href: `#/experiments/${info.experiment_id}` }, experiment.name), " / ", info.run_name),
    h("h1", {}, info.run_name || runId, " ", h("span", { class: `pill ${info.status}`, id: "run-status" }, info.status)),
    h("dl", { class: "kv" },
      h("dt", {}, "Run ID"), h("dd", { class: "mono" }, runId),
      h("dt", {}, "Started"), h("dd", {}, fmt.time(info.start_time)),
      h("dt", {}, "Duration"), h("dd", {}, info.end_time ? fmt.duration(info.end_time - info.start_time) : "running"),
      h("dt", {}, "User"), h("dd", {}, info.user_id || ""),
      h("dt", {}, "Artifacts"), h("dd", { class: "mono" }, info.artifact_uri),
      info.lifecycle_stage === "deleted" ? [h("dt", {}, "State"), h("dd", {}, "deleted")] : null),
    h("h2", {}, "Metrics"),
    metricsSection,
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h2", {}, "Parameters"), params.length ? h("table", { class: "grid", id: "params" }, h("tbody", {}, params.map((p) => h("tr", {}, h("td", {}, p.key), h("td", { class: "mono" }, p.value))))) : h("p", { class: "muted" }, "No parameters.")),
      h("section", { class: "card" }, h("h2", {}, "Tags"), tags.length ? h("table", { class: "grid", id: "tags" }, h("tbody", {}, tags.map((t) => h("tr", {}, h("td", {}, t.key), h("td", { class: "mono" }, t.value))))) : h("p", { class: "muted" }, "No tags."))),
    datasets.length ? [h("h2", {}, "Datasets"), h("table", { class: "grid", id: "datasets" }, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Digest"), h("th", {}, "Source"), h("th", {}, "Context"))), h("tbody", {}, datasets))] : null,
    models.length ? [h("h2", {}, "Models"), h("ul", { id: "models" }, models)] : null,
    h("h2", {}, "Artifacts"),
    artifactBrowser(runId),
  );
  if (metrics.length) await drawCharts();

  if (info.status === "RUNNING") {
    const timer = setInterval(async () => {
      if (!current(gen)) return;
      try {
        const fresh = (await api("GET", "runs/get", { run_id: runId })).run;
        if (!current(gen)) return;
        const pill = document.getElementById("run-status");
        pill.textContent = fresh.info.status;
        pill.className = `pill ${fresh.info.status}`;
        const latest = [...(fresh.data.metrics || [])].sort((a, b) => a.key.localeCompare(b.key));
        for (const m of latest) if (!knownMetrics.has(m.key)) { knownMetrics.add(m.key); if (charted.size < 4) charted.add(m.key); }
        const hadMetrics = metricsBody.childElementCount > 0;
        metricsBody.replaceChildren(...latest.map(metricRow));
        if (!hadMetrics && latest.length) fillMetrics();
        await drawCharts();
        if (fresh.info.status !== "RUNNING") clearInterval(timer);
      } catch (e) { /* the next tick tries again */ }
    }, 3000);
    onLeave(() => clearInterval(timer));
  }
}

// ---- artifacts -----------------------------------------------------------------------------

const TEXT_FILES = /(^MLmodel$|\.(txt|log|md|py|yaml|yml|json|csv|tsv|cfg|ini|toml|xml|html|sh|r|sql)$)/i;
const IMAGE_FILES = /\.(png|jpe?g|gif|webp|bmp|svg)$/i;
const PREVIEW_LIMIT = 1024 * 1024;

function artifactUrl(runId, path) {
  return `/get-artifact?${new URLSearchParams({ run_id: runId, path })}`;
}

function artifactBrowser(runId) {
  const preview = h("div", { class: "preview card", id: "artifact-preview" }, h("p", { class: "muted" }, "Select a file to preview it."));
  const root = h("ul", { class: "tree", id: "artifact-tree" });
  let selected = null;

  async function list(path, into) {
    let files;
    try {
      files = (await api("GET", "artifacts/list", { run_id: runId, path })).files || [];
    } catch (e) {
      into.replaceChildren(h("li", { class: "error" }, e.message));
      return;
    }
    if (!files.length && !path) {
      into.replaceChildren(h("li", { class: "muted" }, "No artifacts."));
      return;
    }
    into.replaceChildren(...files.map((f) => {
      const name = f.path.split("/").pop();
      if (f.is_dir) {
        const sub = h("ul", { class: "tree", hidden: true });
        const toggle = h("button", { type: "button", "aria-expanded": "false", onclick: async () => {
          const open = toggle.getAttribute("aria-expanded") === "true";
          toggle.setAttribute("aria-expanded", String(!open));
          toggle.textContent = (open ? "▸ " : "▾ ") + name;
          sub.hidden = open;
          if (!open && !sub.childElementCount) await list(f.path, sub);
        } }, "▸ " + name);
        return h("li", {}, toggle, sub);
      }
      const button = h("button", { type: "button", dataset: { path: f.path }, onclick: () => {
        if (selected) selected.classList.remove("selected");
        selected = button;
        button.classList.add("selected");
        show(f);
      } }, name);
      return h("li", {}, button, " ", h("span", { class: "muted" }, f.file_size ? sizeText(f.file_size) : "0 B"));
    }));
  }

  async function show(f) {
    const url = artifactUrl(runId, f.path);
    const head = h("div", { class: "bar" }, h("strong", { class: "mono" }, f.path), h("a", { class: "button ghost", href: url, download: f.path.split("/").pop() }, "Download"));
    if (IMAGE_FILES.test(f.path) && !/\.svg$/i.test(f.path)) {
      preview.replaceChildren(head, h("img", { src: url, alt: f.path }));
      return;
    }
    if (!TEXT_FILES.test(f.path)) {
      preview.replaceChildren(head, h("p", { class: "muted" }, "No preview for this kind of file."));
      return;
    }
    if ((f.file_size || 0) > PREVIEW_LIMIT) {
      preview.replaceChildren(head, h("p", { class: "muted" }, `Too large to preview (${sizeText(f.file_size)}); download it instead.`));
      return;
    }
    const resp = await fetch(url);
    let text = await resp.text();
    if (/\.json$/i.test(f.path)) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as it is */ }
    }
    if (/\.(csv|tsv)$/i.test(f.path)) {
      const sep = /\.tsv$/i.test(f.path) ? "\t" : ",";
      const lines = text.split(/\r?\n/).filter(Boolean).slice(0, 21).map((l) => l.split(sep));
      const [header, ...rows] = lines;
      preview.replaceChildren(head, h("div", { class: "scroll" }, h("table", { class: "grid", id: "csv-preview" },
        h("thead", {}, h("tr", {}, (header || []).map((c) => h("th", {}, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))))), h("p", { class: "muted" }, "First 20 rows."));
      return;
    }
    preview.replaceChildren(head, h("pre", { class: "mono" }, text));
  }

  list("", root);
  return h("div", { class: "artifacts" }, h("div", { class: "card" }, root), preview);
}

function sizeText(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
  if (n < 1024 ** 3) return (n / 1024 / 1024).toFixed(1) + " MB";
  return (n / 1024 ** 3).toFixed(2) + " GB";
}

// ---- compare runs --------------------------------------------------------------------------

async function comparePage(gen, query) {
  const ids = (query.get("runs") || "").split(",").filter(Boolean);
  if (ids.length < 2) {
    render(h("h1", {}, "Compare runs"), h("p", {}, "Select two or more runs in an experiment's table to compare them."));
    return;
  }
  const runs = (await Promise.all(ids.map((id) => api("GET", "runs/get", { run_id: id })))).map((b) => b.run);
  if (!current(gen)) return;
  const name = (r) => r.info.run_name || r.info.run_id.slice(0, 8);
  const data = runs.map((r) => ({ metrics: byKey(r.data.metrics), params: byKey(r.data.params) }));
  const keys = (kind) => [...new Set(data.flatMap((d) => Object.keys(d[kind])))].sort();
  const metricKeys = keys("metrics"), paramKeys = keys("params");

  const row = (kind, key) => {
    const values = data.map((d) => d[kind][key]);
    const differs = new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1;
    return h("tr", { dataset: { differs: differs ? "1" : "0" } }, h("th", { scope: "row" }, `${kind}.${key}`),
      values.map((v) => h("td", { class: (kind === "metrics" ? "num" : "") + (differs ? " diff" : "") }, fmt.value(v))));
  };
  const table = h("table", { class: "grid", id: "compare-table" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), runs.map((r) => h("th", {}, h("a", { href: `#/runs/${r.info.run_id}` }, name(r)))))),
    h("tbody", {}, paramKeys.map((k) => row("params", k)), metricKeys.map((k) => row("metrics", k))));

  // Overlaid history of one metric.
  const chartBox = h("div", { class: "card chart-box", id: "compare-chart" });
  let chart = null;
  const metricSelect = h("select", { "aria-label": "Metrics to chart (several with Ctrl or Shift)", multiple: true, size: String(Math.min(4, Math.max(2, metricKeys.length))), onchange: () => drawOverlay() },
    metricKeys.map((k, i) => h("option", { value: k, selected: i === 0 }, k)));
  const controls = chartControls(() => drawOverlay());
  async function drawOverlay() {
    const keys = [...metricSelect.selectedOptions].map((o) => o.value);
    if (!keys.length) return;
    const byKey = await Promise.all(keys.map((key) => histories(ids, key)));
    if (!current(gen)) return;
    const series = [];
    keys.forEach((key, j) => runs.forEach((r, i) => series.push({
      name: keys.length > 1 ? `${name(r)} · ${key}` : name(r),
      color: PALETTE[(i + j * runs.length) % PALETTE.length],
      points: seriesFrom(byKey[j].get(r.info.run_id) || [], controls.settings.xKind),
    })));
    const title = keys.join(", ");
    const options = { title, series, xKind: controls.settings.xKind, yLog: controls.settings.yLog, smoothing: controls.settings.smoothing, height: 320 };
    if (chart) chart.update(options);
    else chart = makeChart(chartBox, title, series, controls.settings);
  }

  // Parallel coordinates of the params against a metric, and a scatter plot of any two fields.
  const fields = [...paramKeys.map((k) => ["params", k]), ...metricKeys.map((k) => ["metrics", k])];
  const fieldLabel = ([kind, key]) => `${kind}.${key}`;
  const options = () => fields.map((f, i) => h("option", { value: String(i) }, fieldLabel(f)));
  const pcMetric = h("select", { "aria-label": "Metric for the parallel coordinates", onchange: () => drawParallel() }, metricKeys.map((k) => h("option", { value: k }, k)));
  const pcCanvas = h("canvas", { class: "plot", id: "parallel", role: "img", "aria-label": "Parallel coordinates of parameters against a metric" });
  const xSel = h("select", { "aria-label": "Scatter X", onchange: () => drawScatter() }, options());
  const ySel = h("select", { "aria-label": "Scatter Y", onchange: () => drawScatter() }, options());
  if (fields.length > 1) ySel.value = String(fields.length - 1);
  const scCanvas = h("canvas", { class: "plot", id: "scatter", role: "img", "aria-label": "Scatter plot of two fields" });

  const value = (d, [kind, key]) => d[kind][key];
  function axisFor(f) {
    const raw = data.map((d) => value(d, f));
    const nums = raw.map((v) => (v === undefined || v === "" ? NaN : Number(v)));
    if (nums.every((v, i) => raw[i] === undefined || Number.isFinite(v))) {
      const present = nums.filter(Number.isFinite);
      const lo = Math.min(...present), hi = Math.max(...present);
      return { label: fieldLabel(f), pos: nums.map((v) => (Number.isFinite(v) ? (hi === lo ? 0.5 : (v - lo) / (hi - lo)) : NaN)), ticks: [[0, fmt.value(lo)], [1, fmt.value(hi)]] };
    }
    const cats = [...new Set(raw.filter((v) => v !== undefined))].sort();
    const at = (v) => (cats.length === 1 ? 0.5 : cats.indexOf(v) / (cats.length - 1));
    return { label: fieldLabel(f), pos: raw.map((v) => (v === undefined ? NaN : at(v))), ticks: cats.map((c) => [at(c), c]) };
  }
  function prepare(canvas, height) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const css = getComputedStyle(document.documentElement);
    ctx.fillStyle = css.getPropertyValue("--chart-bg") || "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.font = css.getPropertyValue("--chart-font") || "12px sans-serif";
    return { ctx, width, fg: css.getPropertyValue("--chart-fg") || "#000", grid: css.getPropertyValue("--chart-grid") || "#ddd" };
  }
  function drawParallel() {
    const axes = [...paramKeys.map((k) => axisFor(["params", k])), ...(pcMetric.value ? [axisFor(["metrics", pcMetric.value])] : [])];
    const height = 300;
    const { ctx, width, fg, grid } = prepare(pcCanvas, height);
    if (axes.length < 2) {
      ctx.fillStyle = fg;
      ctx.fillText("Needs at least one parameter and a metric.", 16, 24);
      return;
    }
    const left = 60, right = width - 60, top = 44, bottom = height - 24;
    const x = (i) => left + ((right - left) * i) / (axes.length - 1);
    const y = (p) => bottom - (bottom - top) * p;
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    axes.forEach((a, i) => {
      ctx.beginPath(); ctx.moveTo(x(i), top); ctx.lineTo(x(i), bottom); ctx.stroke();
      ctx.fillText(a.label, x(i), top - 26);
      for (const [p, label] of a.ticks.slice(0, 8)) ctx.fillText(String(label), x(i), y(p) + (p === 0 ? 14 : -4));
    });
    const metricAxis = axes[axes.length - 1];
    runs.forEach((r, ri) => {
      const shade = Number.isFinite(metricAxis.pos[ri]) ? metricAxis.pos[ri] : 0;
      ctx.strokeStyle = `hsl(${220 - shade * 200}, 70%, 50%)`;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let drawing = false;
      axes.forEach((a, i) => {
        const p = a.pos[ri];
        if (!Number.isFinite(p)) { drawing = false; return; }
        if (drawing) ctx.lineTo(x(i), y(p)); else ctx.moveTo(x(i), y(p));
        drawing = true;
      });
      ctx.stroke();
    });
    pcCanvas.dataset.rendered = "1";
  }
  function drawScatter() {
    const fx = fields[Number(xSel.value)], fy = fields[Number(ySel.value)];
    const height = 300;
    const { ctx, width, fg, grid } = prepare(scCanvas, height);
    if (!fx || !fy) return;
    const ax = axisFor(fx), ay = axisFor(fy);
    const left = 70, right = width - 70, top = 20, bottom = height - 40;
    ctx.strokeStyle = grid;
    ctx.strokeRect(left, top, right - left, bottom - top);
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    ctx.fillText(ax.label, (left + right) / 2, height - 8);
    for (const [p, label] of ax.ticks.slice(0, 8)) ctx.fillText(String(label), left + (right - left) * p, bottom + 14);
    ctx.save(); ctx.translate(14, (top + bottom) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(ay.label, 0, 0); ctx.restore();
    ctx.textAlign = "right";
    for (const [p, label] of ay.ticks.slice(0, 8)) ctx.fillText(String(label), left - 4, bottom - (bottom - top) * p + 4);
    ctx.textAlign = "left";
    runs.forEach((r, i) => {
      const px = ax.pos[i], py = ay.pos[i];
      if (!Number.isFinite(px) || !Number.isFinite(py)) return;
      const cx = left + (right - left) * px, cy = bottom - (bottom - top) * py;
      ctx.fillStyle = PALETTE[i % PALETTE.length];
      ctx.beginPath(); ctx.arc(cx, cy, 5, 0, Math.PI * 2); ctx.fill();
      ctx.fillStyle = fg;
      ctx.fillText(name(r), cx + 7, cy - 6);
    });
    scCanvas.dataset.rendered = "1";
  }

  render(
    h("div", { class: "crumbs" }, h("a", { href: "#/experiments" }, "Experiments"), query.get("experiment") ? [" / ", h("a", { href: `#/experiments/${query.get("experiment")}` }, "Runs")] : null, " / Compare"),
    h("h1", {}, `Compare ${runs.length} runs`),
    h("div", { class: "scroll" }, table),
    metricKeys.length ? [h("h2", {}, "Metric history"), h("div", { class: "chart-controls" }, h("label", {}, "Metrics ", metricSelect)), controls.el, chartBox] : null,
    h("div", { class: "cols" },
      h("section", { class: "card" }, h("h2", {}, "Parallel coordinates"), h("div", { class: "chart-controls" }, h("label", {}, "Metric ", pcMetric)), pcCanvas),
      h("section", { class: "card" }, h("h2", {}, "Scatter"), h("div", { class: "chart-controls" }, h("label", {}, "X ", xSel), h("label", {}, "Y ", ySel)), scCanvas)),
  );
  const redraw = () => { drawParallel(); drawScatter(); };
  redraw();
  window.addEventListener("resize", redraw);
  document.addEventListener("kiln-theme-change", redraw);
  onLeave(() => { window.removeEventListener("resize", redraw); document.removeEventListener("kiln-theme-change", redraw); });
  if (metricKeys.length) await drawOverlay();
}

// ---- models --------------------------------------------------------------------------------

async function modelsPage(gen, query) {
  const q = query.get("q") || "";
  const body = await api("GET", "registered-models/search", { filter: q ? `name ILIKE '%${q.replace(/'/g, "")}%'` : "", max_results: 1000, order_by: ["name ASC"] });
  if (!current(gen)) return;
  const models = body.registered_models || [];
  const search = h("input", { type: "search", class: "grow", value: q, "aria-label": "Search models by name", placeholder: "Search by name" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") go("/models", { q: search.value }); });
  render(
    h("h1", {}, "Registered models"),
    h("div", { class: "bar" }, search, h("button", { type: "button", onclick: () => go("/models", { q: search.value }) }, "Search")),
    models.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid", id: "models-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Latest version"), h("th", {}, "Aliases"), h("th", {}, "Last updated"))),
          h("tbody", {}, models.map((m) => h("tr", {},
            h("td", {}, h("a", { href: `#/models/${encodeURIComponent(m.name)}` }, m.name)),
            h("td", {}, latestVersion(m)),
            h("td", {}, (m.aliases || []).map((a) => h("span", { class: "pill" }, `@${a.alias} → v${a.version}`)).flatMap((x) => [x, " "])),
            h("td", {}, fmt.time(m.last_updated_timestamp)))))))
      : h("p", { class: "muted" }, "No registered models match."),
  );
}

function latestVersion(model) {
  const versions = (model.latest_versions || []).map((v) => Number(v.version));
  return versions.length ? "v" + Math.max(...versions) : "";
}

async function modelPage(gen, name) {
  const [{ registered_model: model }, versionsBody] = await Promise.all([
    api("GET", "registered-models/get", { name }),
    api("GET", "model-versions/search", { filter: `name = '${name.replace(/'/g, "\\'")}'`, order_by: ["version_number DESC"], max_results: 1000 }),
  ]);
  if (!current(gen)) return;
  const versions = versionsBody.model_versions || [];
  const aliasesOf = (v) => (model.aliases || []).filter((a) => a.version === v.version).map((a) => a.alias);
  const signatureBox = h("div", { class: "card", id: "signature" }, h("p", { class: "muted" }, "Loading the signature…"));
  render(
    h("div", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / ", model.name),
    h("h1", {}, model.name),
    model.description ? h("p", { id: "model-description" }, model.description) : h("p", { class: "muted" }, "No description."),
    h("dl", { class: "kv" },
      h("dt", {}, "Aliases"), h("dd", { id: "aliases" }, (model.aliases || []).map((a) => h("span", { class: "pill" }, `@${a.alias} → v${a.version}`)).flatMap((x) => [x, " "])),
      h("dt", {}, "Tags"), h("dd", {}, (model.tags || []).map((t) => `${t.key}=${t.value}`).join(", ")),
      h("dt", {}, "Created"), h("dd", {}, fmt.time(model.creation_timestamp)),
      h("dt", {}, "Last updated"), h("dd", {}, fmt.time(model.last_updated_timestamp))),
    h("h2", {}, "Versions"),
    h("div", { class: "scroll" }, h("table", { class: "grid", id: "versions" },
      h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "Stage"), h("th", {}, "Aliases"), h("th", {}, "Created"), h("th", {}, "Run"), h("th", {}, "Source"), h("th", {}, "Tags"))),
      h("tbody", {}, versions.map((v) => h("tr", { dataset: { version: v.version } },
        h("td", {}, "v" + v.version),
        h("td", {}, v.current_stage),
        h("td", {}, aliasesOf(v).map((a) => h("span", { class: "pill" }, "@" + a))),
        h("td", {}, fmt.time(v.creation_timestamp)),
        h("td", {}, v.run_id ? h("a", { href: `#/runs/${v.run_id}` }, v.run_id.slice(0, 8)) : ""),
        h("td", { class: "mono" }, v.source),
        h("td", {}, (v.tags || []).map((t) => `${t.key}=${t.value}`).join(", "))))))),
    h("h2", {}, "Signature of the newest version"),
    signatureBox,
  );
  if (!versions.length) {
    signatureBox.replaceChildren(h("p", { class: "muted" }, "No versions."));
    return;
  }
  const newest = versions[0];
  const resp = await fetch(`/model-versions/get-artifact?${new URLSearchParams({ name: model.name, version: newest.version, path: "MLmodel" })}`);
  if (!current(gen)) return;
  if (!resp.ok) {
    signatureBox.replaceChildren(h("p", { class: "muted" }, `Version ${newest.version} has no MLmodel file.`));
    return;
  }
  const text = await resp.text();
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("signature:"));
  const block = [];
  if (start >= 0) for (let i = start; i < lines.length && (i === start || lines[i].startsWith(" ")); i++) block.push(lines[i]);
  const flavors = [];
  const fl = lines.findIndex((l) => l.startsWith("flavors:"));
  if (fl >= 0) for (let i = fl + 1; i < lines.length && lines[i].startsWith(" "); i++) if (/^ {2}\S/.test(lines[i])) flavors.push(lines[i].trim().replace(/:$/, ""));
  signatureBox.replaceChildren(
    h("p", {}, `Version ${newest.version} · flavors: ${flavors.join(", ") || "none"}`),
    block.length ? h("pre", { class: "mono" }, block.join("\n")) : h("p", { class: "muted" }, "No signature recorded."));
}

// ---- theme and start -----------------------------------------------------------------------

function syncThemeButton() {
  const dark = document.documentElement.dataset.theme === "dark";
  document.getElementById("theme").textContent = dark ? "Light theme" : "Dark theme";
}
document.getElementById("theme").addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme !== "dark";
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  try { localStorage.setItem("kiln-theme", dark ? "dark" : "light"); } catch (e) { /* storage may be off */ }
  syncThemeButton();
  document.dispatchEvent(new Event("kiln-theme-change"));
});
syncThemeButton();
window.addEventListener("hashchange", route);
route();
