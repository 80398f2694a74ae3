// One instance on a time axis: live heap per agent cycle (exact and the
// sampled estimate) and RSS as lines; invocations as bars along the bottom
// (width = duration); instance events (freeze, stop) as dashed rules, each
// thaw as a dotted rule with the frozen span before it shaded; spikes as red
// markers. Clicks are handed to the caller (logs, spike diff).
import { select } from "d3-selection";
import { scaleLinear, scaleTime } from "d3-scale";
import { line } from "d3-shape";
import { axisBottom, axisLeft } from "d3-axis";
import { extent, max } from "d3-array";
import { fmtTime, fmtValue, nsToDate } from "./api.js";

// Past this many points per series, dots only clutter and slow the page.
const MAX_DOTS = 300;

const SERIES = [
  { key: "exact_live_bytes", label: "live heap (exact)", cls: "s-exact" },
  { key: "est_live_bytes", label: "live heap (sampled estimate)", cls: "s-est" },
  { key: "rss_bytes", label: "RSS", cls: "s-rss" },
];

// Cycles from the newest agent_metrics record; without the agent, each
// invocation's heap/RSS after it stands in.
export function seriesFrom(metricsRec, invocations) {
  if (metricsRec) {
    try {
      const m = JSON.parse(metricsRec.fields.metrics || "{}");
      if (Array.isArray(m.cycles) && m.cycles.length)
        return { cycles: m.cycles, source: "agent cycles" };
    } catch {
      /* malformed metrics: fall back below */
    }
  }
  const cycles = invocations
    .filter((r) => Number(r.fields.heap_after_bytes) >= 0)
    .map((r) => ({
      time_ns: r.time_ns + Number(r.fields.duration_ns || 0),
      exact_live_bytes: Number(r.fields.heap_after_bytes),
      rss_bytes: Number(r.fields.max_rss_bytes || 0),
    }));
  return { cycles, source: "invocations" };
}

// Each thaw record with the frozen span it ends: from the last pre-freeze
// before it (after the previous thaw), else from its own frozen_ns.
export function frozenSpans(events) {
  const sorted = [...events].sort((a, b) => a.time_ns - b.time_ns);
  const spans = [];
  let freezeAt = null;
  for (const r of sorted) {
    if (r.fields.event === "pre-freeze") {
      freezeAt = r.time_ns;
    } else if (r.fields.event === "thaw") {
      const frozen = Number(r.fields.frozen_ns);
      const from = freezeAt !== null ? freezeAt
        : Number.isFinite(frozen) && frozen > 0 ? r.time_ns - frozen : r.time_ns;
      spans.push({ rec: r, from_ns: from, to_ns: r.time_ns,
        frozen_ns: Number.isFinite(frozen) ? frozen : r.time_ns - from });
      freezeAt = null;
    }
  }
  return spans;
}

export function drawTimeline(node, legend, data, on) {
  const { cycles, invocations, spikes } = data;
  const events = data.events.filter((r) => r.fields.event !== "thaw");
  const thaws = frozenSpans(data.events);
  node.textContent = "";
  legend.textContent = "";
  const times = [
    ...cycles.map((c) => c.time_ns),
    ...invocations.map((r) => r.time_ns),
    ...invocations.map((r) => r.time_ns + Number(r.fields.duration_ns || 0)),
    ...events.map((r) => r.time_ns),
    ...thaws.flatMap((t) => [t.from_ns, t.to_ns]),
    ...spikes.map((s) => s.time_ns),
  ].filter((t) => t > 0);
  if (!times.length) {
    node.textContent = "Nothing to draw for this instance yet.";
    return;
  }
  const W = Math.max(500, node.clientWidth || 900), H = 300;
  const m = { top: 12, right: 16, bottom: 58, left: 72 };
  const [t0, t1] = extent(times);
  const pad = Math.max((t1 - t0) * 0.03, 1e6);
  const x = scaleTime()
    .domain([nsToDate(t0 - pad), nsToDate(t1 + pad)])
    .range([m.left, W - m.right]);
  const ymax = max(cycles, (c) => Math.max(...SERIES.map((s) => c[s.key] || 0))) || 1;
  const y = scaleLinear().domain([0, ymax * 1.08]).nice().range([H - m.bottom, m.top]);
  const svg = select(node).append("svg").attr("width", W).attr("height", H)
    .attr("class", "timeline");
  svg.append("g").attr("transform", `translate(0,${H - m.bottom})`)
    .call(axisBottom(x).ticks(Math.floor(W / 120)));
  svg.append("g").attr("transform", `translate(${m.left},0)`)
    .call(axisLeft(y).ticks(6).tickFormat((v) => fmtValue(v)));

  // Frozen spans first, so the series draw over the shading.
  const fz = svg.append("g").selectAll("g").data(thaws).join("g")
    .attr("class", "thaw-marker")
    .attr("data-frozen-ns", (t) => t.frozen_ns);
  fz.append("rect").attr("class", "frozen-span")
    .attr("x", (t) => x(nsToDate(t.from_ns))).attr("y", m.top)
    .attr("width", (t) => Math.max(1, x(nsToDate(t.to_ns)) - x(nsToDate(t.from_ns))))
    .attr("height", H - m.bottom - m.top);
  fz.append("line")
    .attr("x1", (t) => x(nsToDate(t.to_ns))).attr("x2", (t) => x(nsToDate(t.to_ns)))
    .attr("y1", m.top).attr("y2", H - m.bottom);
  fz.append("text").attr("x", (t) => x(nsToDate(t.to_ns)) + 3).attr("y", m.top + 24)
    .text("thaw");
  fz.append("title").text((t) => `frozen ${(t.frozen_ns / 1e6).toFixed(1)} ms, ` +
    `thawed ${fmtTime(t.to_ns)}` +
    (t.rec.fields.thawed_by ? ` by ${t.rec.fields.thawed_by}` : ""));
  if (thaws.length)
    legend.append(Object.assign(document.createElement("span"),
      { className: "key s-frozen", textContent: "frozen (pre-freeze → thaw)" }));

  for (const s of SERIES) {
    const pts = cycles.filter((c) => c[s.key] !== undefined && c[s.key] >= 0);
    if (!pts.length) continue;
    legend.append(Object.assign(document.createElement("span"),
      { className: `key ${s.cls}`, textContent: s.label }));
    svg.append("path").datum(pts).attr("class", `series ${s.cls}`)
      .attr("d", line().x((c) => x(nsToDate(c.time_ns))).y((c) => y(c[s.key])));
    if (pts.length > MAX_DOTS) continue; // the line alone reads better
    svg.append("g").selectAll("circle").data(pts).join("circle")
      .attr("class", `dot ${s.cls}`).attr("r", 2.5)
      .attr("cx", (c) => x(nsToDate(c.time_ns))).attr("cy", (c) => y(c[s.key]))
      .append("title").text((c) => `${s.label}: ${fmtValue(c[s.key])}` +
        (c.cycle !== undefined ? ` (cycle ${c.cycle})` : ""));
  }

  const by = H - m.bottom + 26;
  svg.append("g").selectAll("rect").data(invocations).join("rect")
    .attr("class", (r) => "invocation-marker" +
      (Number(r.fields.status) >= 400 || r.fields.error_type ? " failed" : ""))
    .attr("data-request-id", (r) => r.request_id)
    .attr("x", (r) => x(nsToDate(r.time_ns)))
    .attr("y", by).attr("height", 12)
    .attr("width", (r) => Math.max(3,
      x(nsToDate(r.time_ns + Number(r.fields.duration_ns || 0))) - x(nsToDate(r.time_ns))))
    .on("click", (ev, r) => on.invocation(r))
    .append("title").text((r) => `${r.fields.type || "invoke"} ${r.request_id}\n` +
      `${(Number(r.fields.duration_ns) / 1e6).toFixed(2)} ms, status ${r.fields.status}` +
      `, heap ${fmtValue(r.fields.heap_before_bytes)} → ${fmtValue(r.fields.heap_after_bytes)}` +
      `, max RSS ${fmtValue(r.fields.max_rss_bytes)}`);
  svg.append("text").attr("class", "lane").attr("x", m.left - 6).attr("y", by + 10)
    .attr("text-anchor", "end").text("invocations");

  const ev = svg.append("g").selectAll("g").data(events).join("g")
    .attr("class", "event-marker")
    .attr("transform", (r) => `translate(${x(nsToDate(r.time_ns))},0)`);
  ev.append("line").attr("y1", m.top).attr("y2", H - m.bottom);
  ev.append("text").attr("y", m.top + 10).attr("x", 3)
    .text((r) => r.fields.event || r.fields.record);

  const sp = svg.append("g").selectAll("g").data(spikes).join("g")
    .attr("class", "spike-marker")
    .attr("data-cycle", (s) => s.cycle ?? "")
    .attr("transform", (s) => `translate(${x(nsToDate(s.time_ns))},${m.top})`)
    .on("click", (e, s) => on.spike(s));
  sp.append("line").attr("y1", 0).attr("y2", H - m.bottom - m.top);
  sp.append("path").attr("d", "M-8,-2 L8,-2 L0,12 Z");
  sp.append("title").text((s) => `${s.summary}\n${fmtTime(s.time_ns)} — click for the diff`);
  legend.append(Object.assign(document.createElement("span"),
    { className: "key s-spike", textContent: "spike (click: diff)" }));
}
