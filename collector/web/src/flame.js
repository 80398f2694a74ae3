// Flame graphs of stored profiles and spike diffs, drawn by d3-flame-graph
// from the call tree /api/ui/flame builds (symbolized on the server). For a
// diff, widths are |growth| and colors the sign: red grew, blue shrank.
import { select } from "d3-selection";
import { flamegraph, colorMapper } from "./flamelib.js";
import { api, el, fmtValue, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
let current = null; // {id, base, title, summary}

// The frame with the largest own (self) growth, or own value for a plain
// profile: what "the culprit" means in a diff.
export function topSelf(tree, diff) {
  let best = null;
  const walk = (n) => {
    const kids = n.children || [];
    const key = diff ? "delta" : "value";
    const own = n[key] - kids.reduce((s, c) => s + c[key], 0);
    if (n !== tree && (best === null || own > best.own)) best = { name: n.name, own };
    kids.forEach(walk);
  };
  walk(tree);
  return best;
}

function unitOf(ans) {
  const t = ans.sample_types[ans.sample_index];
  return t && t.unit === "bytes" ? "bytes" : "count";
}

function draw(ans) {
  const node = $("flame");
  node.textContent = "";
  const unit = unitOf(ans);
  const width = Math.max(400, node.clientWidth || 960);
  const chart = flamegraph()
    .width(width)
    .cellHeight(18)
    .transitionDuration(0)
    .minFrameSize(1)
    .sort(true)
    .title("")
    .label((d) => {
      const own = d.data.delta !== undefined && ans.diff
        ? `${fmtValue(d.data.delta, unit)} growth` : fmtValue(d.data.value, unit);
      return `${d.data.name}: ${own}`;
    });
  if (ans.diff) chart.setColorMapper(colorMapper.differentialColorMapper);
  select(node).datum(ans.tree).call(chart);
  const top = topSelf(ans.tree, ans.diff);
  $("flame-top").textContent = top
    ? `${ans.diff ? "grew most" : "largest"}: ${top.name} ${fmtValue(top.own, unit)}`
    : "empty profile";
  $("flame-top").dataset.frame = top ? top.name : "";
}

function fillSamples(ans) {
  const sel = $("flame-sample");
  sel.textContent = "";
  ans.sample_types.forEach((t, i) => {
    sel.append(el("option", { value: t.type, text: `${t.type} (${t.unit})` }));
    if (i === ans.sample_index) sel.value = t.type;
  });
}

async function load(sample) {
  const c = current;
  $("flame").textContent = "";
  $("flame-top").textContent = "loading…";
  showError($("flame-error"), null);
  try {
    const ans = await api("/api/ui/flame", { id: c.id, base: c.base, sample });
    if (c !== current) return;
    fillSamples(ans);
    draw(ans);
    $("flame-panel").dataset.state = "ready";
  } catch (e) {
    if (c !== current) return;
    $("flame-top").textContent = "";
    showError($("flame-error"), new Error(`cannot draw this profile: ${e.message}`));
    $("flame-panel").dataset.state = "error";
  }
}

// Opens a flame graph: id alone, or id minus base (a diff).
export function openFlame({ id, base, title, summary }) {
  current = { id, base, title, summary };
  const p = $("flame-panel");
  p.hidden = false;
  p.dataset.state = "loading";
  $("flame-title").textContent = title || "";
  $("flame-summary").textContent = summary || "";
  $("flame-download").href = `/api/profiles/${id}`;
  $("flame-download").setAttribute("download", `profile-${id}.pb.gz`);
  const b = $("flame-download-base");
  b.hidden = !base;
  if (base) {
    b.href = `/api/profiles/${base}`;
    b.setAttribute("download", `profile-${base}.pb.gz`);
  }
  $("flame-sample").textContent = "";
  p.scrollIntoView({ block: "nearest" });
  return load(undefined);
}

export function initFlame() {
  $("flame-sample").addEventListener("change", (e) => current && load(e.target.value));
}
