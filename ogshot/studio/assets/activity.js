// The Activity page: polls /preview/_api/activity every 2 s and redraws small SVG charts.
"use strict";

(() => {
  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  ogshot.bindThemeToggle($("theme-toggle"));

  const ms = (v) => (v == null ? "—" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
  const count = (v) => String(Math.round(v));

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  // One or more series (arrays of the same length) as polylines sharing one vertical scale.
  function sparkline(series, label) {
    const width = 240, height = 32;
    const node = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    const top = Math.max(1, ...series.flatMap(([, values]) => values));
    for (const [cls, values] of series) {
      const step = width / Math.max(1, values.length - 1);
      const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / top) * (height - 4)).toFixed(1)}`);
      svg("polyline", { class: cls, points: points.join(" ") }, node);
    }
    return node;
  }

  function bars(p50, p95, top) {
    const width = 240, height = 18;
    const node = svg("svg", { class: "bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `p50 ${ms(p50)}, p95 ${ms(p95)}` });
    const scale = (v) => Math.max(1, ((v || 0) / Math.max(top, 1e-9)) * width);
    svg("rect", { class: "p95", x: 0, y: 2, width: scale(p95), height: height - 4, rx: 2 }, node);
    svg("rect", { class: "p50", x: 0, y: 5, width: scale(p50), height: height - 10, rx: 2 }, node);
    return node;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function fill(tableId, items, build) {
    const body = $(tableId).tBodies[0];
    const rows = items.map((item) => {
      const row = document.createElement("tr");
      build(row, item);
      return row;
    });
    body.replaceChildren(...rows);
    document.querySelector(`[data-empty="${tableId}"]`).hidden = rows.length > 0;
  }

  function draw(data) {
    $("activity-off").hidden = data.enabled;
    const since = new Date(data.since * 1000);
    $("activity-summary").textContent =
      `Since ${since.toLocaleTimeString()}, one point per ${Math.round(data.step_s)} s, from the same counters as /metrics.`;
    fill("templates", data.templates, (row, t) => {
      row.dataset.template = t.name;
      cell(row, t.name, "name");
      cell(row, count(t.hits), "num hits");
      cell(row, count(t.renders), "num renders");
      cell(row, ms(t.p50_ms), "num p50");
      cell(row, ms(t.p95_ms), "num p95");
      cell(row, sparkline([["hits", t.series.hits], ["renders", t.series.renders]], `${t.name}: hits and renders per minute`));
    });
    const top = Math.max(0, ...data.stages.map((s) => s.p95_ms || 0));
    fill("stages", data.stages, (row, s) => {
      row.dataset.stage = s.stage;
      cell(row, s.stage, "name");
      cell(row, count(s.count), "num count");
      cell(row, ms(s.p50_ms), "num p50");
      cell(row, ms(s.p95_ms), "num p95");
      cell(row, bars(s.p50_ms, s.p95_ms, top));
    });
    fill("platforms", data.platforms, (row, p) => {
      row.dataset.platform = p.platform;
      cell(row, p.platform, "name");
      cell(row, count(p.fetches), "num fetches");
      cell(row, sparkline([["fetches", p.series]], `${p.platform}: fetches per minute`));
    });
    fill("variants", data.variants, (row, v) => {
      row.dataset.template = v.template;
      row.dataset.variant = v.variant;
      row.dataset.platform = v.platform;
      cell(row, v.template);
      cell(row, v.variant);
      cell(row, v.platform);
      cell(row, count(v.fetches), "num fetches");
    });
  }

  const indicator = $("poll");
  function status(state, text) {
    indicator.dataset.state = state;
    indicator.querySelector("span").textContent = text;
  }

  async function poll() {
    try {
      const response = await fetch("/preview/_api/activity", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      draw(await response.json());
      status("live", "Live");
      document.body.dataset.state = "ready";
      document.body.dataset.updated = String(Date.now());
    } catch (err) {
      status("offline", "Offline");
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
