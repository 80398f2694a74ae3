// node page_test.mjs MODE URL ARTIFACTS CHROMIUM
//   demo:  after scripts/demo.sh's scenario: the instance is listed, the
//          timeline has a spike marker and one thaw marker (frozen span
//          shaded) per thaw record in the API, clicking the spike opens a
//          diff flame graph whose widest frame by own growth is
//          build_report_cache (measured from the drawn SVG, not from the
//          page's own label), clicking the spike's invocation filters the
//          logs to its request id (compared with /api/logs); malformed and
//          truncated profiles show an error while the rest of the page
//          stays.
//   big:   100k log lines, 300 profiles, 121 instances: ready within
//          LOAD_BUDGET_MS, showing pages (with "more" buttons), not all.
//   empty: an empty store renders, says so, and shows no error.
// Expected values come from the scenario (the example's culprit) and the
// JSON API, never from the page. Screenshots: ARTIFACTS/*.png.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";

const [mode, url, art, exe] = process.argv.slice(2);
const CULPRIT = "build_report_cache";
const TIMEOUT_MS = 20000;
// Without the background-networking flags Chromium keeps trying to reach
// Google's services, which a closed network answers with timeouts.
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update",
  "--disable-sync"];

async function getJSON(path) {
  const r = await fetch(url + path);
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

// Uploads bytes as a profile. This collector runs without access keys, so
// it checks SLS's headers (Date, API version, Content-MD5) but no signature.
function upload(kind, bytes) {
  const body = Buffer.from(bytes);
  const headers = { "Content-Type": "application/octet-stream",
    "Content-Length": body.length, Date: new Date().toUTCString(),
    "x-log-apiversion": "0.6.0", "x-log-signaturemethod": "hmac-sha1",
    "Content-MD5": createHash("md5").update(body).digest("hex").toUpperCase() };
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/profiles?instance=demo-instance&kind=${kind}`,
      { method: "POST", headers }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => res.statusCode === 200 ? resolve(JSON.parse(text).id)
          : reject(new Error(`upload ${kind}: ${res.statusCode} ${text}`)));
      });
    req.on("error", reject);
    req.end(body);
  });
}

// The flame graph's frames as drawn: name, x, depth row and width, then the
// frame whose own width (minus the frames drawn on top of it) is largest.
async function widestOwnFrame(page) {
  return page.evaluate(() => {
    const frames = [...document.querySelectorAll("#flame g.frame")].map((g) => {
      const m = /translate\(([-\d.e]+),\s*([-\d.e]+)\)/.exec(g.getAttribute("transform"));
      return { name: g.getAttribute("name"), x: +m[1], y: +m[2],
        w: +g.querySelector("rect").getAttribute("width") };
    });
    let best = null, rootW = 0;
    for (const f of frames) {
      rootW = Math.max(rootW, f.w);
      const above = frames.filter((c) => c.y < f.y && Math.abs(f.y - c.y - 18) < 1 &&
        c.x >= f.x - 0.5 && c.x + c.w <= f.x + f.w + 0.5);
      const own = f.w - above.reduce((s, c) => s + c.w, 0);
      if (!best || own > best.own) best = { ...f, own };
    }
    return { best, rootW, n: frames.length, names: frames.map((f) => f.name) };
  });
}

async function demo(page) {
  await page.goto(url + "/");
  await page.waitForSelector("body[data-ready]", { timeout: TIMEOUT_MS });
  await page.waitForSelector('tr.instance[data-instance="demo-instance"]');
  await page.waitForSelector("body[data-instance-ready]");
  const invCell = await page.locator('tr.instance[data-instance="demo-instance"] td')
    .nth(4).textContent();
  const inv = (await getJSON("/api/ui/records?instance=demo-instance&kinds=invocation&limit=1000"))
    .records.filter((r) => r.fields.type === "invoke");
  assert.equal(Number(invCell), inv.length, "invocations column");
  await page.screenshot({ path: join(art, "instance.png"), fullPage: true });

  // The timeline's spike marker opens the diff.
  const marker = page.locator("#timeline .spike-marker");
  await marker.first().waitFor({ timeout: TIMEOUT_MS });
  assert.equal(await marker.count(), 1, "one spike marker");

  // Freezes and thaws on the same axis: one thaw marker (a dotted rule with
  // the frozen span shaded) per thaw record, each ending a pre-freeze.
  const events = (await getJSON("/api/ui/records?instance=demo-instance&kinds=instance&limit=1000"))
    .records.sort((a, b) => a.time_ns - b.time_ns);
  const thawRecs = events.filter((r) => r.fields.event === "thaw");
  assert.ok(thawRecs.length >= 1, `the demo's freeze was thawed: ${JSON.stringify(events)}`);
  for (const t of thawRecs) {
    const before = events.filter((r) => r.time_ns < t.time_ns);
    assert.equal(before.at(-1)?.fields.event, "pre-freeze", "a thaw follows a pre-freeze");
  }
  const thawMarkers = page.locator("#timeline .thaw-marker");
  assert.equal(await thawMarkers.count(), thawRecs.length, "one thaw marker per thaw record");
  const drawn = await thawMarkers.evaluateAll((gs) => gs.map((g) => ({
    frozen: Number(g.dataset.frozenNs),
    span: Number(g.querySelector("rect.frozen-span").getAttribute("width")),
    label: g.querySelector("text").textContent })));
  const byNum = (a, b) => a - b;
  assert.deepEqual(drawn.map((d) => d.frozen).sort(byNum),
    thawRecs.map((r) => Number(r.fields.frozen_ns)).sort(byNum), "frozen spans from the records");
  for (const d of drawn) {
    assert.equal(d.label, "thaw");
    assert.ok(d.span >= 1, `frozen span drawn ${d.span} px wide`);
  }
  // The thaw is its own marker, not one of the dashed instance events.
  const dashed = await page.locator("#timeline .event-marker text").allTextContents();
  assert.ok(!dashed.includes("thaw") && dashed.includes("pre-freeze"), `events: ${dashed}`);
  await page.locator("#timeline").screenshot({ path: join(art, "timeline.png") });
  await marker.first().click({ force: true });
  await page.waitForSelector('#flame-panel[data-state="ready"]', { timeout: TIMEOUT_MS });
  const title = await page.locator("#flame-title").textContent();
  assert.match(title, /minus before|stored diff/, "a diff is shown");
  // The spike's own profiles, linked through its report (/api/spikes).
  assert.equal(await page.getAttribute("#flame-panel", "data-linked-by"), "report");
  const f = await widestOwnFrame(page);
  assert.ok(f.n > 2, `flame graph drew ${f.n} frames`);
  assert.equal(f.best.name, CULPRIT, `widest frame: ${JSON.stringify(f.best)}`);
  assert.ok(f.best.w >= 0.9 * f.rootW, `${CULPRIT} spans ${f.best.w} of ${f.rootW}`);
  await page.locator("#flame-panel").screenshot({ path: join(art, "spike-diff.png") });

  // Clicking the spike's invocation filters the logs to its request id.
  const spiky = inv.reduce((a, b) =>
    (+b.fields.heap_after_bytes - +b.fields.heap_before_bytes) >
    (+a.fields.heap_after_bytes - +a.fields.heap_before_bytes) ? b : a);
  const rid = spiky.request_id;
  await page.locator(`#timeline rect.invocation-marker[data-request-id="${rid}"]`)
    .click({ force: true });
  const want = (await getJSON(`/api/logs?instance=demo-instance&request_id=${rid}&limit=1000`)).count;
  assert.ok(want >= 3, `the spike invocation has ${want} records`);
  await page.waitForFunction(([r, n]) => {
    const rows = [...document.querySelectorAll("#logs tr.log-row")];
    return rows.length === n && rows.every((tr) => tr.dataset.requestId === r);
  }, [rid, want], { timeout: TIMEOUT_MS });
  assert.equal(await page.inputValue("#log-rid"), rid);
  const text = await page.locator("#logs").textContent();
  assert.ok(text.includes(`FC Invoke Start RequestId: ${rid}`), "its Start line");
  await page.screenshot({ path: join(art, "logs-by-request.png"), fullPage: true });

  // Text filter, typed.
  await page.fill("#log-rid", "");
  await page.fill("#log-q", "pre-freeze");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#logs tr.log-row")];
    return rows.length > 0 && rows.every((tr) => tr.textContent.includes("pre-freeze"));
  }, null, { timeout: TIMEOUT_MS });
}

async function malformed(page) {
  const good = await getJSON("/api/profiles?instance=demo-instance&kind=spike-after");
  const bytes = new Uint8Array(await (await fetch(
    `${url}/api/profiles/${good.profiles[0].id}`)).arrayBuffer());
  const garbage = new Uint8Array(512).map((_, i) => (i * 37 + 11) & 0xff);
  garbage[0] = 0x1f; // gzip magic, so the store takes it
  garbage[1] = 0x8b;
  await upload("garbage", garbage);
  await upload("truncated", bytes.slice(0, Math.floor(bytes.length / 2)));
  // A new document (not a hash change), so the list is fetched again.
  await page.goto(url + "/?after-upload#instance=demo-instance");
  await page.waitForSelector("body[data-instance-ready]", { timeout: TIMEOUT_MS });
  for (const kind of ["garbage", "truncated"]) {
    await page.locator(`tr.profile[data-kind="${kind}"] button`).click();
    await page.waitForSelector('#flame-panel[data-state="error"]', { timeout: TIMEOUT_MS });
    const msg = await page.locator("#flame-error").textContent();
    assert.match(msg, /cannot draw this profile: .*422/, `${kind}: ${msg}`);
    assert.ok(await page.locator("tr.instance").count() > 0, "page still there");
    await page.locator("#flame-panel").screenshot({ path: join(art, `malformed-${kind}.png`) });
  }
  // A good profile still draws afterwards.
  await page.locator('tr.profile[data-kind="final"] button').click();
  await page.waitForSelector('#flame-panel[data-state="ready"]', { timeout: TIMEOUT_MS });
  await page.screenshot({ path: join(art, "profile-final.png"), fullPage: true });
}

// 100k log lines and 300 profiles on one instance, 120 more instances: the
// page must come up quickly and show pages of them, never everything. The
// budget leaves room for a loaded build machine (about 3 s at load 5 on 2
// cores, most of it Chromium's software rendering).
const LOAD_BUDGET_MS = 8000;

async function big(page) {
  const sizes = [];
  page.on("response", async (r) => {
    if (r.url().includes("/api/")) sizes.push([r.url(), (await r.body()).length]);
  });
  const t0 = Date.now();
  await page.goto(url + "/#instance=big-instance");
  await page.waitForSelector('body[data-instance-ready="big-instance"]',
    { timeout: TIMEOUT_MS });
  await page.locator("#timeline svg").waitFor();
  const ms = Date.now() - t0;
  console.log(`page_test big: ready in ${ms} ms; API answers ${JSON.stringify(
    sizes.map(([u, n]) => [u.replace(url, ""), n]))}`);
  assert.ok(ms < LOAD_BUDGET_MS, `ready in ${ms} ms`);
  const logs = await page.locator("#logs tr.log-row").count();
  assert.ok(logs > 0 && logs <= 500, `${logs} log rows shown, not all`);
  assert.ok(await page.locator("#logs-more").isVisible(), "more lines offered");
  const profs = await page.locator("#profiles tr.profile").count();
  assert.ok(profs > 0 && profs < 300, `${profs} profile rows shown, not all`);
  assert.ok(await page.locator("#profiles-more").isVisible(), "more profiles offered");
  const insts = await page.locator("tr.instance").count();
  assert.ok(insts > 0 && insts < 121, `${insts} instances shown, not all`);
  for (const [u, n] of sizes)
    assert.ok(n < 4 << 20, `${u} answered ${n} bytes`);
  // Paging works: one more page of log lines.
  await page.locator("#logs-more").click();
  await page.waitForFunction((n) =>
    document.querySelectorAll("#logs tr.log-row").length > n, logs,
  { timeout: TIMEOUT_MS });
  // ... and of instances and profiles, without repeats.
  for (const [btn, row, key] of [["#instances-more", "tr.instance", "data-instance"],
    ["#profiles-more", "tr.profile", "data-id"]]) {
    const before = await page.locator(row).count();
    await page.locator(btn).click();
    await page.waitForFunction(([r, n]) => document.querySelectorAll(r).length > n,
      [row, before], { timeout: TIMEOUT_MS });
    const keys = await page.locator(row).evaluateAll((els, k) =>
      els.map((e) => e.getAttribute(k)), key);
    assert.equal(new Set(keys).size, keys.length, `${row}: no repeats`);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(art, "big-store.png") });
}

async function empty(page) {
  await page.goto(url + "/");
  await page.waitForSelector("body[data-ready]", { timeout: TIMEOUT_MS });
  assert.equal(await page.locator("tr.instance").count(), 0);
  assert.ok(await page.locator("#instances-empty").isVisible(), "says it is empty");
  assert.ok(!(await page.locator("#banner").isVisible()), "no error banner");
  await page.screenshot({ path: join(art, "empty-store.png"), fullPage: true });
}

const dir = mkdtempSync(join(tmpdir(), "fnprof-chromium-"));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: exe, headless: true, args: ARGS,
  viewport: { width: 1400, height: 1000 } });
const errors = [];
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  // The page must not reach outside its origin (no run-time fetches).
  page.on("request", (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith("data:"))
      errors.push(`outside request: ${r.url()}`);
  });
  if (mode === "demo") {
    await demo(page);
    await malformed(page);
  } else if (mode === "big") {
    await big(page);
  } else {
    await empty(page);
  }
  assert.deepEqual(errors, [], "page errors");
  console.log(`page_test ${mode}: ok`);
} catch (e) {
  const page = ctx.pages()[0];
  if (page) await page.screenshot({ path: join(art, `failure-${mode}.png`), fullPage: true }).catch(() => {});
  console.error(`page_test ${mode}: FAILED: ${e.stack || e}`);
  if (errors.length) console.error(errors.join("\n"));
  process.exitCode = 1;
} finally {
  await ctx.close();
  rmSync(dir, { recursive: true, force: true });
}
