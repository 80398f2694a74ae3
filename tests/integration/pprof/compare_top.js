// compare_top.js GO_TOP.txt FNPROF.json ROWS [diff]
//
// Checks that `fnprof top --json` (or `fnprof diff --json` with "diff") and
// `go tool pprof -top` (run with -unit=B, so no scaled units) agree: the
// same total and the same first ROWS functions with the same flat and cum
// values. For a diff, the check is on the top growth: go's first row with a
// positive flat value must be fnprof's first "grew" function, same delta.
"use strict";
const fs = require("fs");

function die(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

// "4194304B" or "4097" (pprof appends the unit even to counts) -> number.
function num(s) {
  const m = /^(-?\d+)B?$/.exec(s);
  if (!m) die(`go printed a scaled or odd value '${s}'; want plain numbers`);
  return Number(m[1]);
}

function parseGo(text) {
  const lines = text.split("\n");
  const head = lines.find((l) => l.startsWith("Showing nodes accounting for"));
  if (!head) die("no 'Showing nodes accounting for' line in go output");
  const m = /accounting for (\S+), \S+ of (\S+) total/.exec(head);
  if (!m) die(`cannot parse '${head}'`);
  const start = lines.findIndex((l) => /^\s+flat\s+flat%\s+sum%\s+cum\s+cum%/.test(l));
  if (start < 0) die("no column header in go output");
  const rows = [];
  for (const l of lines.slice(start + 1)) {
    // Names may contain spaces (C++), so take the first five fields only.
    const r = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(l);
    if (!r) continue;
    // pprof marks frames it only saw inlined with " (inline)"; fnprof
    // names functions plainly, so compare the names without the marker.
    rows.push({ flat: num(r[1]), cum: num(r[4]), name: r[6].replace(/ \(inline\)$/, "") });
  }
  return { total: num(m[2]), rows };
}

function compareTop(go, fn, rows) {
  if (go.total !== fn.total)
    die(`${fn.sample_type}: total go ${go.total} != fnprof ${fn.total}`);
  const n = Math.min(rows, go.rows.length);
  if (n === 0 || fn.entries.length < n)
    die(`${fn.sample_type}: go has ${go.rows.length} rows, fnprof ${fn.entries.length}`);
  for (let i = 0; i < n; i++) {
    const g = go.rows[i], f = fn.entries[i];
    if (g.name !== f.name || g.flat !== f.flat || g.cum !== f.cum)
      die(`${fn.sample_type} row ${i}: go ${JSON.stringify(g)} != fnprof ` +
          JSON.stringify({ name: f.name, flat: f.flat, cum: f.cum }));
  }
  const names = go.rows.slice(0, Math.min(n, 5)).map((r) => r.name);
  console.log(`ok ${fn.sample_type}: total ${fn.total}, top ${n} rows match ` +
              `(${names.join(", ")}${n > 5 ? ", ..." : ""})`);
}

function compareDiff(go, fn) {
  const g = go.rows.find((r) => r.flat > 0);
  if (!g) die("go -base shows no growth");
  const f = fn.grew[0];
  if (!f) die("fnprof diff shows no growth");
  if (g.name !== f.name || g.flat !== f.delta)
    die(`top growth: go ${g.name} ${g.flat} != fnprof ${f.name} ${f.delta}`);
  console.log(`ok ${fn.sample_type}: top growth ${f.name} +${f.delta} in both`);
}

const [goFile, fnFile, rows, mode] = process.argv.slice(2);
const go = parseGo(fs.readFileSync(goFile, "utf8"));
const fn = JSON.parse(fs.readFileSync(fnFile, "utf8"));
if (mode === "diff") compareDiff(go, fn);
else compareTop(go, fn, Number(rows));
