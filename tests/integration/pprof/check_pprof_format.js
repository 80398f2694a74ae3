// check_pprof_format.js PROFILE.pb.gz FNPROF_TOP.json
//
// Decodes PROFILE with the npm package pprof-format (DataDog's independent
// pure-JS decoder) and checks it against `fnprof top --json -n 0` of the same
// file: identical totals for every sample type and identical per-function
// flat values (hence the same top functions), plus the header fields our
// writer sets. pprof-format has no gzip support, so zlib inflates first.
"use strict";
const fs = require("fs");
const zlib = require("zlib");
const { Profile } = require("pprof-format");

function die(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

// pprof-format returns small varints as numbers and longer ones as unsigned
// bigints (negative int64 included): normalize to a signed Number.
const n = (v) => Number(BigInt.asIntN(64, BigInt(v)));

const [file, fnFile] = process.argv.slice(2);
const raw = fs.readFileSync(file);
const prof = Profile.decode(zlib.gunzipSync(raw));
const fn = JSON.parse(fs.readFileSync(fnFile, "utf8"));
const str = (i) => prof.stringTable.strings[n(i)];

// Totals per sample type.
const types = prof.sampleType.map((t) => str(t.type));
types.forEach((t, k) => {
  const total = prof.sample.reduce((a, s) => a + n(s.value[k]), 0);
  if (fn.totals[t] !== total)
    die(`${t}: pprof-format total ${total} != fnprof ${fn.totals[t]}`);
});
if (types.length !== Object.keys(fn.totals).length)
  die(`sample types ${types} != fnprof ${Object.keys(fn.totals)}`);

// Per-function flat values of fnprof's sample type: the leaf frame (line[0]
// of the first location, the innermost inlined function) gets the value.
const k = types.indexOf(fn.sample_type);
if (k < 0) die(`no sample type ${fn.sample_type}`);
const loc = new Map(prof.location.map((l) => [n(l.id), l]));
const func = new Map(prof.function.map((f) => [n(f.id), f]));
const flat = new Map();
for (const s of prof.sample) {
  const l = loc.get(n(s.locationId[0]));
  if (!l) die(`sample references unknown location ${s.locationId[0]}`);
  const name = str(func.get(n(l.line[0].functionId)).name);
  flat.set(name, (flat.get(name) || 0) + n(s.value[k]));
}
for (const e of fn.entries) {
  const want = flat.get(e.name) || 0;
  if (want !== e.flat) die(`${e.name}: pprof-format flat ${want} != fnprof ${e.flat}`);
  flat.delete(e.name);
}
for (const [name, v] of flat)
  if (v !== 0) die(`pprof-format has ${name} (flat ${v}) that fnprof does not list`);

// Header fields the writer sets; a decoder that skipped them would not see.
if (str(prof.periodType.type) !== "space" || str(prof.periodType.unit) !== "bytes")
  die("period type is not space/bytes");
if (n(prof.period) !== 524288) die(`period ${prof.period}`);
if (prof.comment.length !== 2) die(`${prof.comment.length} comments, want 2`);
if (prof.mapping.length !== 2 || !prof.mapping.every((m) => str(m.buildId).length === 40))
  die("mappings or their build ids are missing");
if (!prof.sample.every((s) => s.label.some((l) => str(l.key) === "bytes" && n(l.num) > 0)))
  die("a sample lacks its numeric 'bytes' label");

const top = fn.entries.slice(0, 3).map((e) => e.name).join(", ");
console.log(`ok pprof-format: ${types.length} sample types, totals ` +
            `${JSON.stringify(fn.totals)}, top ${fn.sample_type}: ${top}`);
