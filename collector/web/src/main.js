// fnprof-collector's page: instances, one instance's timeline, profiles and
// logs, flame graphs and spike diffs. Everything is paged from the JSON API
// (never all at once) and read-only.
import "./app.css";
import { api, el, fmtTime, fmtValue, showError } from "./api.js";
import { drawTimeline, seriesFrom } from "./timeline.js";
import { initFlame, openFlame } from "./flame.js";

const $ = (id) => document.getElementById(id);
// Times are Unix ns, past 2^53: a JS number keeps them to 256 ns. So pages
// overlap by SLACK_NS and rows are deduplicated (by id, instance name).
const SLACK_NS = 1000;
const PAGE = { instances: 50, logs: 200, profiles: 50, timeline: 2000 };
const state = { instance: null, instancesTo: 0, instanceNames: new Set(),
  logsFrom: 0, logIds: new Set(),
  profilesFrom: 0, profileIds: new Set(), gen: 0 };

function banner(err) {
  showError($("banner"), err);
}

// ---- instances ----

async function loadInstances(more) {
  const ans = await api("/api/ui/instances",
    { limit: PAGE.instances, to: more ? state.instancesTo + SLACK_NS : undefined });
  const body = $("instances").tBodies[0];
  if (!more) {
    body.textContent = "";
    state.instanceNames.clear();
  }
  for (const i of ans.instances) {
    if (state.instanceNames.has(i.instance)) continue;
    state.instanceNames.add(i.instance);
    const tr = el("tr", { class: "instance", "data-instance": i.instance,
      onclick: () => selectInstance(i.instance) },
      el("td", { text: i.instance }),
      el("td", { text: [i.project, i.logstore].filter(Boolean).join(" / ") }),
      el("td", { text: fmtTime(i.first_ns) }),
      el("td", { text: fmtTime(i.last_ns) }),
      el("td", { text: i.invocations }),
      el("td", { text: i.errors, class: i.errors ? "bad" : "" }),
      el("td", { text: i.spikes, class: i.spikes ? "bad" : "" }));
    body.append(tr);
    state.instancesTo = i.last_ns;
  }
  $("instances-empty").hidden = body.rows.length > 0;
  $("instances-more").hidden = ans.count < PAGE.instances;
  return ans.instances;
}

// ---- one instance ----

function spikeOf(rec, cycles) {
  let report = {};
  try {
    report = JSON.parse(rec.fields.report || "{}");
  } catch {
    /* summary alone still marks the spike */
  }
  const c = cycles.find((x) => x.cycle === report.trigger_cycle && x.time_ns);
  return { rec, report, cycle: report.trigger_cycle,
    time_ns: c ? c.time_ns : rec.time_ns,
    summary: rec.fields.summary || report.summary || "heap spike" };
}

async function loadTimeline(inst, gen) {
  const [recs, metrics] = await Promise.all([
    api("/api/ui/records", { instance: inst, kinds: "invocation,spike,instance",
      limit: PAGE.timeline }),
    api("/api/ui/records", { instance: inst, kinds: "agent_metrics",
      order: "desc", limit: 1 }),
  ]);
  if (gen !== state.gen) return;
  const invocations = recs.records.filter((r) => r.fields.record === "invocation");
  const events = recs.records.filter((r) => r.fields.record === "instance");
  const { cycles, source } = seriesFrom(metrics.records[0], invocations);
  const spikes = recs.records.filter((r) => r.fields.record === "spike")
    .map((r) => spikeOf(r, cycles));
  drawTimeline($("timeline"), $("timeline-legend"),
    { cycles, invocations, events, spikes },
    { invocation: (r) => filterLogs({ rid: r.request_id }), spike: openSpike });
  $("timeline-note").textContent = `heap from ${source}; ` +
    `${invocations.length} invocations, ${spikes.length} spike(s)` +
    (recs.count >= PAGE.timeline ? ` (first ${PAGE.timeline} records)` : "");
}

// The spike's record, found again by id in a window around its time.
const SPIKE_MATCH_NS = 1e6;
// The profiles a spike produced are uploaded right after its report.
const SPIKE_WINDOW_NS = 60e9;

async function profileNear(kind, t) {
  const ans = await api("/api/profiles", { instance: state.instance, kind,
    from: t - SPIKE_WINDOW_NS, to: t + SPIKE_WINDOW_NS, limit: 100 });
  let best = null;
  for (const p of ans.profiles)
    if (!best || Math.abs(p.time_ns - t) < Math.abs(best.time_ns - t)) best = p;
  return best;
}

// The spike's profiles: /api/spikes links them through the report's file
// names; a store without those links (older rows) falls back to time.
async function spikeProfiles(s) {
  const t = s.rec.time_ns;
  try {
    const ans = await api("/api/spikes", { instance: state.instance,
      from: t - SPIKE_MATCH_NS, to: t + SPIKE_MATCH_NS, limit: 100 });
    const hit = ans.spikes.find((x) => x.id === s.rec.id);
    if (hit && (hit.after_profile_id || hit.diff_profile_id)) {
      const p = (id) => (id ? { id } : null);
      $("flame-panel").dataset.linkedBy = "report";
      return [p(hit.before_profile_id), p(hit.after_profile_id),
        p(hit.diff_profile_id)];
    }
  } catch {
    /* no /api/spikes: fall back below */
  }
  $("flame-panel").dataset.linkedBy = "time";
  return Promise.all(
    ["spike-before", "spike-after", "spike-diff"].map((k) => profileNear(k, t)));
}

async function openSpike(s) {
  try {
    const [before, after, diff] = await spikeProfiles(s);
    const title = `spike at cycle ${s.cycle ?? "?"}, ${fmtTime(s.time_ns)}`;
    if (before && after)
      return openFlame({ id: after.id, base: before.id, summary: s.summary,
        title: `${title}: after #${after.id} minus before #${before.id}` });
    if (diff)
      return openFlame({ id: diff.id, summary: s.summary,
        title: `${title}: stored diff #${diff.id}` });
    banner(new Error("this spike's before/after profiles are not in the store"));
  } catch (e) {
    banner(e);
  }
}

async function loadProfiles(more) {
  const inst = state.instance, gen = state.gen;
  const ans = await api("/api/profiles", { instance: inst, limit: PAGE.profiles,
    from: more ? state.profilesFrom - SLACK_NS : undefined });
  if (gen !== state.gen) return;
  const body = $("profiles").tBodies[0];
  for (const p of ans.profiles) {
    if (state.profileIds.has(p.id)) continue;
    state.profileIds.add(p.id);
    state.profilesFrom = p.time_ns;
    body.append(el("tr", { class: "profile", "data-id": p.id, "data-kind": p.kind },
      el("td", { text: fmtTime(p.time_ns) }),
      el("td", { text: p.kind }),
      el("td", { text: fmtValue(p.size) }),
      el("td", {},
        el("button", { text: "flame graph", onclick: () => openFlame(
          { id: p.id, title: `#${p.id} ${p.kind} ${fmtTime(p.time_ns)}` }) }),
        " ",
        el("a", { href: `/api/profiles/${p.id}`, download: `${p.kind}-${p.id}.pb.gz`,
          text: "pprof" }))));
  }
  $("profiles-empty").hidden = body.rows.length > 0;
  $("profiles-more").hidden = ans.count < PAGE.profiles;
}

// ---- logs ----

function levelOf(f) {
  const m = /\[(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\]/.exec(f.message || "");
  if (m) return m[1];
  if (f.level) return String(f.level).toUpperCase();
  return f.stream === "stderr" ? "STDERR" : "";
}

function messageOf(f) {
  if (f.message !== undefined) return f.message;
  if (f.summary !== undefined) return f.summary;
  const keys = ["event", "type", "profile_kind", "status", "duration_ns", "live_bytes"];
  return keys.filter((k) => f[k] !== undefined).map((k) => `${k}=${f[k]}`).join(" ");
}

async function loadLogs(more) {
  const gen = state.gen, body = $("logs").tBodies[0];
  if (!more) {
    body.textContent = "";
    state.logIds.clear();
    state.logsFrom = 0;
  }
  const ans = await api("/api/logs", { instance: state.instance,
    q: $("log-q").value.trim(), request_id: $("log-rid").value.trim(),
    from: state.logsFrom ? state.logsFrom - SLACK_NS : undefined,
    limit: PAGE.logs });
  if (gen !== state.gen) return;
  for (const r of ans.records) {
    if (state.logIds.has(r.id)) continue; // pages overlap at equal times
    state.logIds.add(r.id);
    state.logsFrom = r.time_ns;
    const f = r.fields || {};
    body.append(el("tr", { class: `log-row rec-${f.record || "log"}`,
      "data-request-id": r.request_id || "" },
      el("td", { text: fmtTime(r.time_ns) }),
      el("td", { class: "rid", text: r.request_id || "",
        onclick: () => r.request_id && filterLogs({ rid: r.request_id }) }),
      el("td", { text: levelOf(f) }),
      el("td", { text: f.record || "" }),
      el("td", { class: "msg", text: messageOf(f) })));
  }
  $("log-count").textContent = `${body.rows.length} line(s)` +
    (ans.count >= PAGE.logs ? ", more below" : "");
  $("logs-more").hidden = ans.count < PAGE.logs;
}

function filterLogs({ rid, q }) {
  if (rid !== undefined) $("log-rid").value = rid;
  if (q !== undefined) $("log-q").value = q;
  loadLogs(false).catch(banner);
}

async function selectInstance(inst) {
  state.instance = inst;
  state.gen++;
  state.profileIds.clear();
  state.profilesFrom = 0;
  for (const tr of $("instances").tBodies[0].rows)
    tr.classList.toggle("selected", tr.dataset.instance === inst);
  $("detail").hidden = false;
  $("flame-panel").hidden = true;
  $("profiles").tBodies[0].textContent = "";
  $("timeline-title").textContent = inst;
  $("log-q").value = "";
  $("log-rid").value = "";
  history.replaceState(null, "", `#instance=${encodeURIComponent(inst)}`);
  const results = await Promise.allSettled([
    loadTimeline(inst, state.gen), loadProfiles(false), loadLogs(false)]);
  const failed = results.find((r) => r.status === "rejected");
  banner(failed ? failed.reason : null);
  document.body.dataset.instanceReady = inst;
}

// ---- start ----

function debounce(fn, ms) {
  let t = 0;
  return () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
}

async function start() {
  initFlame();
  $("instances-more").onclick = () => loadInstances(true).catch(banner);
  $("profiles-more").onclick = () => loadProfiles(true).catch(banner);
  $("logs-more").onclick = () => loadLogs(true).catch(banner);
  const refilter = debounce(() => loadLogs(false).catch(banner), 250);
  $("log-q").addEventListener("input", refilter);
  $("log-rid").addEventListener("input", refilter);
  $("log-clear").onclick = () => filterLogs({ rid: "", q: "" });
  try {
    const list = await loadInstances(false);
    $("status").textContent = list.length ? "" : "empty store";
    const want = new URLSearchParams(location.hash.slice(1)).get("instance");
    const pick = list.find((i) => i.instance === want) || list[0];
    if (pick) await selectInstance(pick.instance);
  } catch (e) {
    $("status").textContent = "";
    banner(e);
  }
  document.body.dataset.ready = "1";
}

window.addEventListener("error", (e) => banner(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => banner(e.reason));
start();
