// openkms console: the little behaviour pages need. No inline script anywhere (the
// Content-Security-Policy allows only files from /console/static/).
"use strict";

// Forms with data-confirm ask first (deleting, rotating).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A live countdown for a scheduled deletion.
function tickCountdown() {
  const el = document.getElementById("countdown");
  if (!el) return;
  const deadline = parseFloat(el.dataset.deadline) * 1000;
  const left = Math.max(0, deadline - Date.now());
  const d = Math.floor(left / 86400000);
  const h = Math.floor((left % 86400000) / 3600000);
  const m = Math.floor((left % 3600000) / 60000);
  const s = Math.floor((left % 60000) / 1000);
  el.textContent = left === 0 ? "due now" : `in ${d} d ${h} h ${m} min ${s} s`;
}

// Overview charts: counters sampled every 5 s, drawn as rates with uPlot.
const WINDOW = 60; // samples kept (5 minutes)
function startCharts() {
  const root = document.getElementById("charts");
  if (!root || typeof uPlot === "undefined") return;
  const source = root.dataset.source;
  const times = [], rps = [], errs = [], thr = [];
  const latency = {}; // op -> array
  let last = null;
  let plots = null;
  const width = () => Math.max(300, Math.min(560, root.clientWidth / 2 - 24));

  function totals(ops) {
    let r = 0, e = 0, t = 0;
    for (const op of Object.values(ops)) { r += op.requests; e += op.errors; t += op.throttled; }
    return { r, e, t };
  }
  function table(ops) {
    const body = document.querySelector("#ops-table tbody");
    body.replaceChildren();
    const names = Object.keys(ops).sort((a, b) => ops[b].requests - ops[a].requests);
    for (const name of names.slice(0, 25)) {
      const op = ops[name];
      const row = document.createElement("tr");
      const mean = op.latency_count ? (1000 * op.latency_sum / op.latency_count).toFixed(2) : "";
      for (const value of [name, op.requests, op.errors, op.throttled, mean]) {
        const cell = document.createElement("td");
        cell.textContent = String(value); // text, never markup
        row.appendChild(cell);
      }
      body.appendChild(row);
    }
  }
  function draw(topOps) {
    const opts = (title, series) => ({
      width: width(), height: 200, legend: { show: true },
      scales: { x: { time: true } },
      series: [{}, ...series.map((label, i) => ({
        label, stroke: ["#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed", "#db2777"][i % 6],
        width: 2,
      }))],
    });
    document.getElementById("chart-rps").replaceChildren();
    document.getElementById("chart-errors").replaceChildren();
    document.getElementById("chart-latency").replaceChildren();
    plots = {
      rps: new uPlot(opts("rps", ["requests/s"]), [times, rps], document.getElementById("chart-rps")),
      errors: new uPlot(opts("errors", ["errors/s", "throttled/s"]), [times, errs, thr],
                        document.getElementById("chart-errors")),
      latency: new uPlot(opts("latency", topOps), [times, ...topOps.map((op) => latency[op])],
                         document.getElementById("chart-latency")),
      ops: topOps.join(","),
    };
  }
  async function sample() {
    let doc;
    try {
      const answer = await fetch(source, { credentials: "same-origin" });
      if (answer.status === 401) { window.location = "/console/signin?expired=1"; return; }
      doc = await answer.json();
    } catch (e) { return; }
    const ops = doc.operations;
    table(ops);
    const now = totals(ops);
    if (last) {
      const dt = Math.max(0.001, doc.time - last.time);
      times.push(doc.time);
      rps.push((now.r - last.t.r) / dt);
      errs.push((now.e - last.t.e) / dt);
      thr.push((now.t - last.t.t) / dt);
      for (const [name, op] of Object.entries(ops)) {
        const before = last.ops[name] || { latency_sum: 0, latency_count: 0 };
        const n = op.latency_count - before.latency_count;
        if (!latency[name]) latency[name] = times.slice(0, -1).map(() => null);
        latency[name].push(n > 0 ? 1000 * (op.latency_sum - before.latency_sum) / n : null);
      }
      for (const series of Object.values(latency)) {
        while (series.length < times.length) series.push(null);
      }
      if (times.length > WINDOW) {
        times.shift(); rps.shift(); errs.shift(); thr.shift();
        for (const series of Object.values(latency)) series.shift();
      }
      const topOps = Object.keys(ops).sort((a, b) => ops[b].requests - ops[a].requests).slice(0, 5);
      if (times.length < 2) {
        // one point makes no line (and uPlot would stretch the time axis over years)
      } else if (!plots || plots.ops !== topOps.join(",")) {
        draw(topOps);
      } else {
        plots.rps.setData([times, rps]);
        plots.errors.setData([times, errs, thr]);
        plots.latency.setData([times, ...topOps.map((op) => latency[op])]);
      }
    }
    last = { time: doc.time, t: now, ops };
  }
  // Two quick samples so that the charts draw at once, then one every 5 s.
  sample();
  window.setTimeout(sample, 1000);
  window.setTimeout(sample, 2000);
  window.setInterval(sample, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  tickCountdown();
  if (document.getElementById("countdown")) window.setInterval(tickCountdown, 1000);
  startCharts();
});
