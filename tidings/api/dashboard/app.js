// tidings dashboard: everything it shows comes from the API, with the key the operator signs in with.
// Server-provided text only ever reaches the page as text (textContent, text nodes, attributes): never as HTML.
"use strict";
(() => {
  const BASE = location.pathname.replace(/\/dashboard\/?$/, "");
  const STORE = "tidings.dashboard.key";
  const VIEWS = ["overview", "tail", "failed", "lookup", "cluster"];
  const RANGES = {
    "1h": { span: 3600, step: 60, label: "last hour" },
    "24h": { span: 86400, step: 600, label: "last 24 hours" },
    "7d": { span: 7 * 86400, step: 3600, label: "last 7 days" },
  };
  const TAIL_ROWS = 200;
  const KEPT_EVENTS = 1000;
  const CLUSTER_EVERY = 5000;
  const STATS_EVERY = 15000;
  const QUEUE_SAMPLES = 180;

  const $ = (id) => document.getElementById(id);
  const state = {
    on: false, view: "overview", range: "1h", skew: 0, timers: [], tail: null, lastEventId: "",
    paused: false, pending: [], events: [], cluster: null, queue: [], failedCursor: null,
  };
  let tailMode = ["", ""]; // the live tail's connection: its state and what to say of it
  const drawn = { stats: [], queue: [] }; // what each part of the page draws, redrawn when the width changes

  // ---- DOM helpers: strings always become text nodes ----
  function put(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child == null || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }
  function attrs(el, given) {
    for (const [name, value] of Object.entries(given || {})) {
      if (value == null || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    return el;
  }
  const h = (tag, given, ...children) => put(attrs(document.createElement(tag), given), children);
  const SVG = "http://www.w3.org/2000/svg";
  const s = (tag, given, ...children) => put(attrs(document.createElementNS(SVG, tag), given), children);
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  const num = (n) => (n == null ? "—" : Number(n).toLocaleString("en"));
  const pct = (part, whole) => (whole > 0 ? `${Math.round((1000 * part) / whole) / 10}%` : "—");

  function say(id, text, kind) {
    const el = $(id);
    el.textContent = text || "";
    el.className = `msg${kind ? ` ${kind}` : ""}`;
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const two = (n) => String(n).padStart(2, "0");
    const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
    if (date.toDateString() === new Date().toDateString()) return time;
    return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${time}`;
  }
  const stamp = (iso) => h("time", { datetime: iso, title: iso }, when(iso));
  function ago(iso) {
    const seconds = Math.round((Date.now() + state.skew * 1000 - Date.parse(iso)) / 1000);
    if (!Number.isFinite(seconds)) return "—";
    if (seconds < 60) return `${Math.max(0, seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    return `${Math.floor(seconds / 3600)} h ago`;
  }

  // ---- the API ----
  class ApiError extends Error {
    constructor(status, body, fallback) {
      const error = (body && body.error) || {};
      super(error.message || fallback || `HTTP ${status}`);
      this.status = status;
      this.code = error.code || `http_${status}`;
      this.scope = error.scope;
    }
  }

  function explain(error, needs) {
    if (error.status === 403) {
      const scope = error.scope || needs;
      return `Refused: this needs a key with the ${scope} scope (403 ${error.code}).`;
    }
    if (error.status === 0) return error.message;
    return `${error.status} ${error.code}: ${error.message}`;
  }

  async function api(path, method = "GET") {
    const key = sessionStorage.getItem(STORE) || "";
    let response;
    try {
      response = await fetch(BASE + path, {
        method, cache: "no-store", headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      });
    } catch (error) {
      const failed = new ApiError(0, null, `tidings did not answer (${error.message}).`);
      throw failed;
    }
    clock(response);
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    if (!response.ok) {
      if (response.status === 401 && state.on) signOut("The key was refused (401): sign in again.");
      throw new ApiError(response.status, body, response.statusText);
    }
    return body;
  }

  function clock(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isFinite(date)) state.skew = (date - Date.now()) / 1000;
  }

  function every(ms, run) {
    state.timers.push(setInterval(run, ms));
  }

  // ---- sign in and out ----
  async function signIn(event) {
    event.preventDefault();
    const field = $("key");
    const key = field.value.trim();
    field.value = ""; // the key is never kept on the page
    const error = $("signin-error");
    error.textContent = "";
    if (!key) {
      error.textContent = "Enter an API key.";
      return;
    }
    let response;
    try {
      response = await fetch(`${BASE}/v1/stats`, { cache: "no-store", headers: { Authorization: `Bearer ${key}` } });
    } catch {
      error.textContent = "That key cannot be sent (it holds characters no key has), or tidings did not answer.";
      field.focus();
      return;
    }
    if (response.status === 401) {
      error.textContent = "That key was refused (401): it is not a tidings API key, or it was revoked.";
    } else if (response.status === 403) {
      error.textContent = "That key lacks the read scope, which the dashboard needs to show anything.";
    } else if (!response.ok) {
      error.textContent = `tidings answered ${response.status}; try again in a moment.`;
    } else {
      sessionStorage.setItem(STORE, key);
      start();
      $("nav").querySelector("[aria-current]").focus(); // the form is gone: keyboard users go on from the views
      return;
    }
    field.focus();
  }

  function start() {
    state.on = true;
    $("signin").hidden = true;
    $("nav").hidden = false;
    $("signout").hidden = false;
    $("status").textContent = "Signed in.";
    const wanted = location.hash.slice(1);
    show(VIEWS.includes(wanted) ? wanted : "overview");
    pollCluster();
    every(CLUSTER_EVERY, pollCluster);
    every(STATS_EVERY, () => state.view === "overview" && loadStats());
    every(1000, () => { // "3 s ago" stays true
      for (const el of document.querySelectorAll("[data-seen]")) el.textContent = ago(el.dataset.seen);
    });
    tail();
  }

  function signOut(message) {
    sessionStorage.removeItem(STORE);
    state.on = false;
    for (const timer of state.timers) clearInterval(timer);
    state.timers = [];
    if (state.tail) state.tail.abort();
    Object.assign(state, { tail: null, lastEventId: "", pending: [], events: [], cluster: null, queue: [],
      failedCursor: null, paused: false });
    drawn.stats = [];
    drawn.queue = [];
    tailMode = ["", ""];
    $("tail-pause").setAttribute("aria-pressed", "false");
    $("tail-pause").textContent = "Pause";
    for (const id of ["totals", "now", "charts", "breakdown", "tail-rows", "failed-rows", "lookup-out", "cluster-out"]) {
      $(id).replaceChildren();
    }
    for (const id of ["stats-msg", "tail-msg", "failed-msg", "lookup-msg", "cluster-msg"]) say(id, "");
    $("lookup-q").value = "";
    for (const view of VIEWS) $(`view-${view}`).hidden = true;
    $("nav").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = typeof message === "string" ? message : "";
    $("status").textContent = "Signed out.";
    $("key").focus();
  }

  // ---- views ----
  function show(view) {
    state.view = view;
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
    for (const button of $("nav").querySelectorAll("button")) {
      if (button.dataset.view === view) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
    if (view === "overview") loadStats();
    if (view === "failed") loadFailed(false);
    if (view === "cluster" && state.cluster) renderCluster();
    else if (view === "cluster") pollCluster();
    if (view === "tail") renderTailState();
    redraw();
  }

  // ---- charts: hand-written SVG, drawn to the width they get ----
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 4, 5, 10]) if (m * power >= value) return m * power;
    return 10 * power;
  }

  function chart(options) {
    const { title, series, times, kind = "line", max, unit = "", labels = timeLabel } = options;
    const plot = h("div", { class: "plot" });
    const legend = h("ul", { class: "legend" }, series.map((one) =>
      h("li", {}, h("span", { class: `key ${one.cls}`, "aria-hidden": "true" }), `${one.name} `,
        h("b", {}, one.total == null ? "" : one.total))));
    const figure = h("figure", { class: "chart" }, h("figcaption", {}, title), plot, legend);
    const draw = () => {
      const width = plot.clientWidth;
      if (!width || !figure.isConnected) return;
      const height = 150;
      const left = 34, right = 8, top = 8, bottom = 20;
      const inner = width - left - right, tall = height - top - bottom;
      const n = times.length;
      const peak = Math.max(0, ...series.flatMap((one) => one.values.filter((v) => v != null)));
      const top_ = max ?? niceMax(peak);
      const y = (v) => top + tall - (tall * v) / top_;
      const slot = inner / Math.max(n, 1);
      const x = kind === "bar" ? (i) => left + slot * i : (i) => left + (n > 1 ? (inner * i) / (n - 1) : inner / 2);
      const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
        "aria-label": `${title}: ${series.map((one) => `${one.name} ${one.total ?? ""}`).join(", ")}` });
      for (const tick of [0, top_ / 2, top_]) {
        if (tick !== 0 && tick !== top_ && !unit && !Number.isInteger(tick)) continue;
        svg.append(s("line", { class: "grid", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }),
          s("text", { class: "axis", x: left - 4, y: y(tick) + 3, "text-anchor": "end" }, `${+tick.toFixed(1)}${unit}`));
      }
      const marks = n > 2 ? [[0, "start"], [Math.floor((n - 1) / 2), "middle"], [n - 1, "end"]]
        : n === 2 ? [[0, "start"], [1, "end"]] : n === 1 ? [[0, "middle"]] : [];
      for (const [i, anchor] of marks) {
        svg.append(s("text", { class: "axis", x: x(i) + (kind === "bar" ? slot / 2 : 0), y: height - 5,
          "text-anchor": anchor }, labels(times[i])));
      }
      // the first series last, on top of the others where they meet (at zero, mostly)
      [...series].reverse().forEach((one, back) => {
        const k = series.length - 1 - back;
        if (kind === "bar") {
          const bar = Math.max(1, (slot * 0.8) / series.length);
          one.values.forEach((v, i) => {
            if (!v) return;
            svg.append(s("rect", { class: `bar ${one.cls}`, x: x(i) + slot * 0.1 + bar * k, y: y(v), width: bar,
              height: Math.max(1, y(0) - y(v)) }));
          });
          return;
        }
        let d = "";
        let pen = false;
        one.values.forEach((v, i) => {
          if (v == null) { pen = false; return; }
          d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
          pen = true;
        });
        if (d) svg.append(s("path", { class: `line ${one.cls}`, d }));
        if (options.dots || n < 3) {
          one.values.forEach((v, i) => v != null && svg.append(s("circle", { class: `dot ${one.cls}`, cx: x(i),
            cy: y(v), r: 2.2 })));
        }
      });
      // hover: one invisible band per point, whose title tells its values
      const band = kind === "bar" ? slot : inner / Math.max(n - 1, 1);
      for (let i = 0; i < n; i += 1) {
        const from = Math.max(left, kind === "bar" ? x(i) : x(i) - band / 2);
        const to = Math.min(left + inner, from + band);
        svg.append(s("rect", { class: "hit", x: from, y: top, width: Math.max(1, to - from), height: tall },
          s("title", {}, `${labels(times[i])} — ${series.map((one) =>
          `${one.name} ${one.values[i] == null ? "—" : `${+one.values[i].toFixed(1)}${unit}`}`).join(", ")}`)));
      }
      plot.replaceChildren(svg);
    };
    figure.draw = draw;
    return figure;
  }

  function timeLabel(ms) {
    const date = new Date(ms);
    const two = (n) => String(n).padStart(2, "0");
    const clockText = `${two(date.getHours())}:${two(date.getMinutes())}`;
    if (RANGES[state.range].span <= 86400) return clockText;
    return `${date.toLocaleDateString("en", { weekday: "short" })} ${clockText}`;
  }

  function redraw() {
    for (const figure of Object.values(drawn).flat()) figure.draw();
  }
  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(redraw, 60);
  });

  // ---- overview ----
  async function loadStats() {
    const range = RANGES[state.range];
    const now = Date.now() / 1000 + state.skew;
    // the first whole bucket inside the range, so that the server (whose clock may be ahead) still takes it
    const since = Math.floor((now - range.span + 5) / range.step) * range.step + range.step;
    const asked = state.range;
    try {
      const stats = await api(`/v1/stats?step=${range.step}&since=${encodeURIComponent(new Date(since * 1000)
        .toISOString())}`);
      if (asked !== state.range || !state.on) return;
      renderStats(stats);
      say("stats-msg", "");
    } catch (error) {
      if (state.on) say("stats-msg", `Stats not available: ${explain(error, "read")}`, "error");
    }
  }

  function tile(name, value, label, cls) {
    return h("div", { class: `tile${cls ? ` ${cls}` : ""}`, "data-stat": name }, h("span", { class: "n" }, value),
      h("span", { class: "l" }, label));
  }

  function sum(table, field) {
    return Object.values(table || {}).reduce((total, one) => total + (one[field] || 0), 0);
  }

  function renderStats(stats) {
    const totals = stats.totals;
    const v = totals.verifications;
    $("stats-span").textContent = `· ${RANGES[state.range].label}`;
    $("totals").replaceChildren(
      tile("verifications.started", num(v.started), "codes started"),
      tile("verifications.approved", num(v.approved), "approved", "good"),
      tile("verifications.failed", num(v.failed), "failed", v.failed ? "bad" : ""),
      tile("verifications.conversion", pct(v.approved, v.started), "conversion"),
      tile("deliveries.delivered", num(sum(totals.deliveries, "delivered")), "deliveries delivered", "good"),
      tile("deliveries.failed", num(sum(totals.deliveries, "failed")), "deliveries failed",
        sum(totals.deliveries, "failed") ? "bad" : ""),
      tile("sends.ok", num(sum(totals.sends, "ok")), "sends accepted"),
      tile("sends.error", num(sum(totals.sends, "error")), "sends refused or failed",
        sum(totals.sends, "error") ? "bad" : ""),
      tile("circuits.opened", num(sum(totals.circuits, "opened")), "circuits opened",
        sum(totals.circuits, "opened") ? "bad" : ""),
    );
    const buckets = stats.buckets;
    const times = buckets.map((bucket) => Date.parse(bucket.at));
    const pick = (f) => buckets.map(f);
    const figures = [
      chart({ title: "Verification codes", times, series: [
        { name: "started", cls: "c1", values: pick((b) => b.verifications.started), total: v.started },
        { name: "approved", cls: "c2", values: pick((b) => b.verifications.approved), total: v.approved },
        { name: "failed", cls: "c3", values: pick((b) => b.verifications.failed), total: v.failed },
      ] }),
      chart({ title: "Conversion (approved ÷ started)", times, max: 100, unit: "%", dots: true, series: [
        { name: "conversion", cls: "c4", total: pct(v.approved, v.started), values: pick((b) =>
          (b.verifications.started ? Math.min(100, (100 * b.verifications.approved) / b.verifications.started)
            : null)) },
      ] }),
    ];
    for (const channel of Object.keys(totals.deliveries).sort()) {
      const seen = totals.deliveries[channel];
      figures.push(chart({ title: `Deliveries · ${channel}`, times, series: [
        { name: "delivered", cls: "c2", values: pick((b) => b.deliveries[channel]?.delivered || 0), total: seen.delivered },
        { name: "failed", cls: "c3", values: pick((b) => b.deliveries[channel]?.failed || 0), total: seen.failed },
      ] }));
    }
    for (const provider of Object.keys(totals.sends).sort()) {
      const seen = totals.sends[provider];
      figures.push(chart({ title: `Sends · ${provider}`, times, series: [
        { name: "ok", cls: "c2", values: pick((b) => b.sends[provider]?.ok || 0), total: seen.ok },
        { name: "error", cls: "c3", values: pick((b) => b.sends[provider]?.error || 0), total: seen.error },
      ] }));
    }
    const providers = Object.keys(totals.circuits).sort();
    figures.push(chart({ title: "Circuits opened", times, kind: "bar", series: providers.length
      ? providers.map((provider, i) => ({ name: provider, cls: `c${5 + (i % 3)}`, total: totals.circuits[provider].opened,
        values: pick((b) => b.circuits[provider]?.opened || 0) }))
      : [{ name: "no breaker opened", cls: "c5", total: null, values: pick(() => 0) }] }));
    drawn.stats = [...figures];
    if (!Object.keys(totals.deliveries).length) figures.push(empty("No deliveries in this range."));
    if (!Object.keys(totals.sends).length) figures.push(empty("No sends to providers in this range."));
    $("charts").replaceChildren(...figures);
    $("breakdown").replaceChildren(
      table("Deliveries by channel", ["Channel", "Delivered", "Failed"], Object.entries(totals.deliveries)
        .map(([name, one]) => [name, num(one.delivered), num(one.failed)]), "deliveries"),
      table("Sends by provider", ["Provider", "OK", "Error"], Object.entries(totals.sends)
        .map(([name, one]) => [name, num(one.ok), num(one.error)]), "sends"),
      table("Circuits opened by provider", ["Provider", "Opened"], Object.entries(totals.circuits)
        .map(([name, one]) => [name, num(one.opened)]), "circuits"),
    );
    redraw();
  }

  function empty(text) {
    return h("p", { class: "faint empty" }, text);
  }

  function table(caption, heads, rows, name, none = "none") {
    return h("table", { class: "rows small", "data-table": name },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, heads.map((head) => h("th", { scope: "col" }, head)))),
      h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, row.map((cell, i) =>
        h("td", { "data-label": heads[i], class: "long" }, cell))))
        : h("tr", {}, h("td", { colspan: heads.length, class: "faint" }, none))));
  }

  // ---- cluster: polled while signed in; its queue depth is kept for a chart of the time the page is open ----
  async function pollCluster() {
    try {
      const cluster = await api("/v1/cluster");
      if (!state.on) return;
      state.cluster = cluster;
      state.clusterAt = new Date().toISOString();
      state.queue.push([Date.now(), cluster.queued]);
      if (state.queue.length > QUEUE_SAMPLES) state.queue.shift();
      say("cluster-msg", "");
    } catch (error) {
      if (!state.on) return;
      say("cluster-msg", `Cluster not available: ${explain(error, "read")}`, "error");
    }
    renderNow();
    if (state.view === "cluster") renderCluster();
  }

  function openCircuits(cluster) {
    // each node lists the breakers that are not closed; a server that does not report them says nothing
    if (!cluster.nodes.some((node) => node.circuits !== undefined)) return null;
    const open = [];
    for (const node of cluster.nodes) {
      for (const [provider, breaker] of Object.entries(node.circuits || {})) open.push([provider, breaker, node.id]);
    }
    return open;
  }

  function renderNow() {
    const cluster = state.cluster;
    if (!cluster) {
      $("now").replaceChildren(empty("Queue depths and breakers: not available."));
      return;
    }
    const open = openCircuits(cluster);
    const samples = state.queue;
    const figure = chart({ title: "Queued since this page opened", times: samples.map(([at]) => at),
      labels: (ms) => when(new Date(ms).toISOString()).slice(-8, -3),
      series: [{ name: "queued", cls: "c1", total: cluster.queued, values: samples.map(([, n]) => n) }] });
    drawn.queue = [figure];
    $("now").replaceChildren(h("div", { class: "grid2" },
      h("div", {},
        h("div", { class: "tiles" },
          tile("queued", num(cluster.queued), "queued now"),
          tile("nodes", num(cluster.nodes.length), cluster.nodes.length === 1 ? "node" : "nodes"),
          tile("breakers", open ? num(open.length) : "n/a", "breakers open", open && open.length ? "bad" : "")),
        table("Queue depth by lane", ["Lane", "Jobs"], Object.entries(cluster.queues)
          .map(([lane, n]) => [lane, num(n)]), "queues", "nothing queued"),
        open ? table("Breakers open now", ["Provider", "State", "Node"], open, "breakers", "all closed")
          : empty("Breakers open now: not available (this server does not report them).")),
      figure));
    redraw();
  }

  function renderCluster() {
    const cluster = state.cluster;
    const out = $("cluster-out");
    if (!cluster) return;
    const open = openCircuits(cluster);
    const circuits = (node) => {
      if (node.circuits === undefined) return "not reported";
      const names = Object.entries(node.circuits).map(([provider, breaker]) => `${provider} (${breaker})`);
      return names.length ? names.join(", ") : "none";
    };
    const heads = ["Node", "Role", "Host", "PID", "Version", "Started", "Last seen", "Streams", "In flight",
      "Open circuits"];
    out.replaceChildren(
      h("div", { class: "tiles" },
        tile("backend", cluster.backend, "backend"),
        tile("nodes", num(cluster.nodes.length), "live nodes"),
        tile("queued", num(cluster.queued), "jobs queued"),
        tile("breakers", open ? num(open.length) : "n/a", "breakers open", open && open.length ? "bad" : "")),
      h("table", { class: "rows", "data-table": "nodes" },
        h("caption", {}, "Nodes"),
        h("thead", {}, h("tr", {}, heads.map((head) => h("th", { scope: "col" }, head)))),
        h("tbody", {}, cluster.nodes.map((node) => h("tr", {}, [
          h("code", {}, node.id), node.role, node.host, String(node.pid), node.version, stamp(node.started_at),
          h("span", { title: node.seen_at, "data-seen": node.seen_at }, ago(node.seen_at)), num(node.streams), num(node.in_flight), circuits(node),
        ].map((cell, i) => h("td", { "data-label": heads[i] }, cell)))))),
      table("Queue depth by lane", ["Lane", "Jobs"], Object.entries(cluster.queues).map(([lane, n]) => [lane, num(n)]),
        "queues", "nothing queued"),
      h("p", { class: "faint" }, `Refreshed every ${CLUSTER_EVERY / 1000} s; last at ${when(state.clusterAt)}.`),
    );
  }

  // ---- live tail: GET /v1/events read as a stream (EventSource cannot send the key) ----
  async function tail() {
    const control = new AbortController();
    state.tail = control;
    let wait = 1000;
    while (state.on && !control.signal.aborted) {
      let why = "the connection ended";
      try {
        const headers = { Authorization: `Bearer ${sessionStorage.getItem(STORE) || ""}`, Accept: "text/event-stream" };
        if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch(`${BASE}/v1/events`, { headers, cache: "no-store", signal: control.signal });
        if (response.status === 404 || response.status === 405 || response.status === 501) {
          return tailState("off", `Not available: this server has no live tail yet (GET /v1/events answered ${
            response.status}).`);
        }
        if (response.status === 401) return signOut("The key was refused (401): sign in again.");
        if (response.status === 403) return tailState("off", "Refused: the live tail needs a key with the read scope.");
        if (!response.ok || !response.body) {
          why = `tidings answered ${response.status}`;
          wait = Math.max(wait, 1000 * (Number(response.headers.get("Retry-After")) || 0));
          throw new Error(why);
        }
        tailState("live", "Connected: sends appear here as they happen.");
        wait = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            block(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        if (control.signal.aborted) return;
        if (why === "the connection ended") why = "tidings did not answer";
      }
      if (!state.on || control.signal.aborted) return;
      tailState("retry", `Disconnected (${why}); connecting again in ${wait / 1000} s…`);
      await sleep(wait);
      wait = Math.min(wait * 2, 15000);
    }
  }

  function block(text) {
    let id = null;
    const data = [];
    for (const line of text.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null) state.lastEventId = id;
    if (!data.length) return;
    let event;
    try { event = JSON.parse(data.join("\n")); } catch { return; }
    if (!event || typeof event !== "object") return;
    state.events.unshift(event);
    if (state.events.length > KEPT_EVENTS) state.events.pop();
    if (state.paused) {
      state.pending.unshift(event);
      if (state.pending.length > TAIL_ROWS) state.pending.pop();
      renderTailState();
    } else {
      addRows([event]);
    }
  }

  function addRows(events) {
    const rows = $("tail-rows");
    const heads = ["Time", "Kind", "Ref", "Provider", "Outcome", "Error"];
    for (const event of [...events].reverse()) {
      const outcome = String(event.outcome ?? "");
      const cells = [stamp(event.at), event.kind ?? "", refButton(event.ref), event.provider ?? "",
        h("span", { class: `badge ${outcome}` }, outcome), event.error ?? ""];
      rows.prepend(h("tr", { "data-ref": event.ref ?? "" }, cells.map((cell, i) =>
        h("td", { "data-label": heads[i], class: i === 5 ? "err long" : null }, cell))));
    }
    while (rows.children.length > TAIL_ROWS) rows.lastElementChild.remove();
  }

  function refButton(ref) {
    if (!ref) return "";
    return h("button", { type: "button", class: "link", title: "Look it up", onclick: () => lookup(String(ref)) },
      String(ref));
  }

  function tailState(mode, text) {
    tailMode = [mode, text];
    renderTailState();
  }
  function renderTailState() {
    const [mode, text] = tailMode;
    const extra = state.paused ? ` Paused: ${state.pending.length} new ${state.pending.length === 1 ? "event" : "events"
      } held back.` : "";
    say("tail-msg", `${text}${extra}`, mode === "off" ? "error" : mode === "live" ? "ok" : "");
    $("tail-msg").dataset.state = mode;
  }

  function togglePause() {
    state.paused = !state.paused;
    const button = $("tail-pause");
    button.setAttribute("aria-pressed", String(state.paused));
    button.textContent = state.paused ? "Resume" : "Pause";
    if (!state.paused) {
      addRows(state.pending);
      state.pending = [];
    }
    renderTailState();
  }

  // ---- failed deliveries ----
  const FAILED = ["Updated", "Channel", "Subscriber", "Message", "Target", "Attempts", "Last error", "Action"];

  async function loadFailed(more) {
    const cursor = more && state.failedCursor ? `&cursor=${encodeURIComponent(state.failedCursor)}` : "";
    say("failed-msg", "Loading…");
    try {
      const page = await api(`/v1/deliveries?status=failed&limit=50${cursor}`);
      if (!state.on) return;
      const rows = $("failed-rows");
      if (!more) rows.replaceChildren();
      for (const delivery of page.deliveries) rows.append(failedRow(delivery));
      state.failedCursor = page.next_cursor;
      $("failed-more").hidden = !page.next_cursor;
      const count = rows.children.length;
      say("failed-msg", count ? `${count} failed ${count === 1 ? "delivery" : "deliveries"} shown.`
        : "No failed delivery.");
    } catch (error) {
      if (state.on) say("failed-msg", `Failed deliveries not available: ${explain(error, "read")}`, "error");
    }
  }

  function failedRow(d) {
    const result = h("output", { class: "result", "aria-live": "polite" });
    const button = h("button", { type: "button", class: "retry", "aria-label": `Retry message ${d.message_id}` },
      "Retry");
    button.addEventListener("click", () => retry(d.message_id, button, result));
    const cells = [stamp(d.updated_at), d.channel, d.subscriber_id, refButton(d.message_id), d.target,
      num(d.attempts), d.last_error ?? "", h("div", { class: "act" }, button, result)];
    return h("tr", { "data-message": d.message_id, "data-delivery": d.id }, cells.map((cell, i) =>
      h("td", { "data-label": FAILED[i], class: i === 6 ? "err long" : [2, 4].includes(i) ? "long" : null }, cell)));
  }

  async function retry(messageId, button, result) {
    button.disabled = true;
    result.className = "result";
    result.textContent = "Retrying…";
    try {
      const answer = await api(`/v1/messages/${encodeURIComponent(messageId)}/retry`, "POST");
      result.textContent = `Retried: ${answer.retried}`;
      result.classList.add("ok");
      follow(messageId, answer.retried, result);
    } catch (error) {
      result.textContent = error.status === 403
        ? `Refused: retrying needs a key with the send scope (403 ${error.code}).` : explain(error, "send");
      result.classList.add("error");
    } finally {
      button.disabled = false;
    }
  }

  async function follow(messageId, retried, result) {
    // where the retried deliveries end: read the message until none is queued (or a while has passed)
    for (let i = 0; i < 20 && state.on; i += 1) {
      await sleep(i < 5 ? 500 : 1500);
      let message;
      try { message = await api(`/v1/messages/${encodeURIComponent(messageId)}`); } catch { return; }
      const c = message.counts;
      result.textContent = `Retried: ${retried} · now ${message.status}: delivered ${c.delivered}, failed ${
        c.failed}, queued ${c.queued}`;
      if (message.status === "done") return;
    }
  }

  // ---- lookup ----
  const PHONE = /^\+?[0-9][0-9 ().-]{3,30}$/;
  const EMAIL = /^[^\s@]+@[^\s@]+$/;
  const NAME = /^[A-Za-z0-9._:-]{1,128}$/; // a subscriber's id

  function lookup(query) {
    $("lookup-q").value = query;
    show("lookup");
    find(query);
  }

  let finding = 0; // the latest search: an answer to an earlier one is dropped

  async function find(query) {
    query = query.trim();
    const asked = ++finding;
    $("lookup-out").replaceChildren();
    if (!query) return say("lookup-msg", "");
    say("lookup-msg", "Looking…");
    try {
      const [found, text] = await search(query);
      if (asked !== finding || !state.on) return;
      $("lookup-out").replaceChildren(found);
      say("lookup-msg", text);
    } catch (error) {
      if (asked !== finding || !state.on) return;
      let text = explain(error, "read");
      if (error.status === 404) {
        text = `Nothing found for ${query} (${error.code}).`;
        if (!/^(ver|msg)_/.test(query)) text += " Search a verification id (ver_…), a message id (msg_…), a phone"
          + " number, an email address or a subscriber id.";
      } else if (error.status === 403) {
        text = `Refused: reading a subscriber needs a key with the ${error.scope || "admin"} scope (403 ${error.code}).`;
      } else if (error.status === 400) {
        text = `Not a valid search: ${error.message}`;
      }
      say("lookup-msg", text, "error");
    }
  }

  async function search(query) {
    const id = encodeURIComponent(query);
    if (query.startsWith("ver_")) {
      const v = await api(`/v1/verifications/${id}`);
      const failed = await api(`/v1/verifications/${id}/failures`);
      return [verificationCard(v, failed.failures), `Verification ${v.id}: ${v.status}.`];
    }
    if (query.startsWith("msg_")) {
      const message = await api(`/v1/messages/${id}`);
      const page = await api(`/v1/messages/${id}/deliveries?limit=100`);
      return [messageCard(message, page), `Message ${message.id}: ${message.status}.`];
    }
    if (!EMAIL.test(query) && !PHONE.test(query)) return subscriber(id);
    let page = null;
    try {
      page = await api(`/v1/verifications?limit=50&to=${id}`);
    } catch (error) {
      if (error.status !== 400 || !NAME.test(query)) throw error;
    }
    const n = page ? page.verifications.length : 0;
    const list = () => [verificationList(query, page), n ? `${n}${page.next_cursor ? "+" : ""} ${
      n === 1 ? "verification" : "verifications"} sent to ${query}, newest first.` : `No verification sent to ${query}.`];
    if (n || !NAME.test(query)) return list();
    try {
      return await subscriber(id); // digits alone may be a subscriber's id as well
    } catch (error) {
      if (page) return list();
      throw error;
    }
  }

  async function subscriber(id) {
    const found = await api(`/v1/subscribers/${id}`);
    return [subscriberCard(found), `Subscriber ${found.id}.`];
  }

  function facts(pairs) {
    return h("dl", { class: "facts" }, pairs.filter(([, value]) => value !== undefined).map(([name, value]) =>
      h("div", {}, h("dt", {}, name), h("dd", {}, value ?? "—"))));
  }

  const badge = (status) => h("span", { class: `badge ${status}` }, status);

  function verificationCard(v, failures) {
    return h("article", { class: "card", "data-verification": v.id },
      h("h2", {}, "Verification ", h("code", {}, v.id)),
      facts([["Status", badge(v.status)], ["To", v.to], ["Channel", v.channel], ["Sends", num(v.send_count)],
        ["Delivered to a provider", num(v.delivered)], ["Checks left", num(v.attempts_left)],
        ["Created", stamp(v.created_at)], ["Updated", stamp(v.updated_at)], ["Expires", stamp(v.expires_at)],
        ["Test number", v.test ? "yes: nothing is sent" : "no"]]),
      h("h3", {}, "Failed sends"),
      failures.length ? table("", ["Time", "Provider", "Outcome", "Error"], failures.map((one) =>
        [stamp(one.at), one.provider, badge(one.outcome), one.error ?? ""]), "failed-sends")
        : empty(v.test ? "None: a test number sends nothing." : "None: no provider refused or failed a send."));
  }

  function verificationList(query, page) {
    const heads = ["Created", "Id", "To", "Channel", "Status", "Sends", "Checks left", "Expires", "Delivered"];
    const last = (id) => {
      const v = page.verifications.find((one) => one.id === id);
      return v.test ? "test number" : `${num(v.delivered)} of ${num(v.send_count)}`;
    };
    return h("article", { class: "card" },
      h("h2", {}, "Verifications sent to ", h("code", {}, query)),
      h("table", { class: "rows", "data-table": "verifications" },
        h("thead", {}, h("tr", {}, heads.map((head) => h("th", { scope: "col" }, head)))),
        h("tbody", {}, page.verifications.map((v) => h("tr", { "data-verification": v.id }, [stamp(v.created_at),
          refButton(v.id), v.to, v.channel, badge(v.status), num(v.send_count), num(v.attempts_left),
          stamp(v.expires_at), last(v.id)].map((cell, i) => h("td", { "data-label": heads[i], class: i === 8 ? "long"
          : null }, cell)))))),
      page.next_cursor ? empty("Older ones not shown: the 50 newest.") : null);
  }

  function messageCard(m, page) {
    const c = m.counts;
    const heads = ["Subscriber", "Channel", "Target", "Status", "Attempts", "Last error", "Updated"];
    const result = h("output", { class: "result", "aria-live": "polite" });
    const button = h("button", { type: "button", class: "retry" }, "Retry failed deliveries");
    button.addEventListener("click", () => retry(m.id, button, result));
    return h("article", { class: "card", "data-message": m.id },
      h("h2", {}, "Message ", h("code", {}, m.id)),
      facts([["Status", badge(m.status)], ["Recipients", num(m.recipients)], ["Delivered", num(c.delivered)],
        ["Failed", num(c.failed)], ["Queued", num(c.queued)], ["Expired", num(c.expired)], ["Title", m.title],
        ["Topic", m.topic], ["Priority", m.priority], ["Channels", m.channels ? m.channels.join(", ") : "all"],
        ["Created", stamp(m.created_at)], ["Send at", m.send_at ? stamp(m.send_at) : "at once"],
        ["Expires", stamp(m.expires_at)]]),
      c.failed ? h("div", { class: "act" }, button, result) : null,
      h("table", { class: "rows", "data-table": "deliveries" },
        h("caption", {}, "Deliveries"),
        h("thead", {}, h("tr", {}, heads.map((head) => h("th", { scope: "col" }, head)))),
        h("tbody", {}, page.deliveries.map((d) => h("tr", {}, [d.subscriber_id, d.channel, d.target, badge(d.status),
          num(d.attempts), d.last_error ?? "", stamp(d.updated_at)].map((cell, i) =>
          h("td", { "data-label": heads[i], class: i === 5 ? "err long" : [0, 2].includes(i) ? "long" : null }, cell)))))),
      page.next_cursor ? empty("More deliveries not shown: the first 100.") : null);
  }

  function channelText(channel) {
    // only what says where: a webhook's secret and a browser's keys are never shown
    const shorten = (text) => (text && text.length > 24 ? `${text.slice(0, 20)}…` : text || "");
    switch (channel.type) {
      case "webhook": return channel.url;
      case "webpush": return channel.endpoint;
      case "apns": return `${shorten(channel.token)} (${channel.environment})`;
      case "fcm": return shorten(channel.token);
      default: return channel.to ?? "";
    }
  }

  function subscriberCard(sub) {
    return h("article", { class: "card", "data-subscriber": sub.id },
      h("h2", {}, "Subscriber ", h("code", {}, sub.id)),
      facts([["Name", sub.name], ["Locale", sub.locale], ["Phone", sub.phone], ["Email", sub.email],
        ["Topics", sub.topics && sub.topics.length ? sub.topics.join(", ") : "none"], ["Created", stamp(sub.created_at)],
        ["Updated", stamp(sub.updated_at)]]),
      table("Channels", ["Type", "Where"], (sub.channels || []).map((channel) => [String(channel.type),
        channelText(channel)]), "channels"));
  }

  // ---- wiring ----
  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut());
    for (const button of $("nav").querySelectorAll("button")) {
      button.addEventListener("click", () => show(button.dataset.view));
    }
    for (const button of $("ranges").querySelectorAll("button")) {
      button.addEventListener("click", () => {
        state.range = button.dataset.range;
        for (const other of $("ranges").querySelectorAll("button")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        loadStats();
      });
    }
    $("stats-refresh").addEventListener("click", () => { loadStats(); pollCluster(); });
    $("tail-pause").addEventListener("click", togglePause);
    $("tail-clear").addEventListener("click", () => { $("tail-rows").replaceChildren(); state.pending = [];
      renderTailState(); });
    $("failed-refresh").addEventListener("click", () => loadFailed(false));
    $("failed-more").addEventListener("click", () => loadFailed(true));
    $("cluster-refresh").addEventListener("click", pollCluster);
    $("lookup-form").addEventListener("submit", (event) => { event.preventDefault(); find($("lookup-q").value); });
    window.addEventListener("hashchange", () => {
      const wanted = location.hash.slice(1);
      if (state.on && VIEWS.includes(wanted) && wanted !== state.view) show(wanted);
    });
    if (sessionStorage.getItem(STORE)) start();
    else $("key").focus();
  });
})();
