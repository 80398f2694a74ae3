// The collector's JSON API, read-only, same origin. Errors carry the
// server's errorMessage so panels can show them.

export async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const url = q.toString() ? `${path}?${q}` : path;
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await r.json();
  } catch {
    /* not JSON: reported below */
  }
  if (!r.ok || body === null) {
    const msg = body && body.errorMessage ? body.errorMessage : r.statusText;
    const e = new Error(`${path}: ${r.status} ${msg}`);
    e.status = r.status;
    e.code = body && body.errorCode;
    throw e;
  }
  return body;
}

// Times arrive as Unix ns in JSON numbers; ms precision is all we draw.
export const nsToDate = (ns) => new Date(Number(ns) / 1e6);

export function fmtTime(ns) {
  const d = nsToDate(ns);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    pad(d.getMilliseconds(), 3);
}

// Human units: bytes in binary steps, counts plain, signs kept for diffs.
export function fmtValue(v, unit = "bytes") {
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  const sign = n < 0 ? "-" : "";
  let a = Math.abs(n);
  if (unit !== "bytes") return sign + a.toLocaleString("en-US");
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (a >= 1024 && i < units.length - 1) {
    a /= 1024;
    i++;
  }
  return `${sign}${i ? a.toFixed(2) : a}${units[i]}`;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

export function showError(node, err) {
  node.hidden = !err;
  node.textContent = err ? String(err.message || err) : "";
}
