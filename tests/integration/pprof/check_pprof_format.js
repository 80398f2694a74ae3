// check_pprof_format.js PROFILE.pb.gz FNPROF_TOP.json [HEADER.json]
//
// Decodes PROFILE with the npm package pprof-format (DataDog's independent
// pure-JS decoder) and checks it against `fnprof top --json -n 0` of the same
// file: identical totals for every sample type and identical per-function
// flat values (hence the same top functions), plus the header fields the
// writer sets. pprof-format has no gzip support, so zlib inflates first.
//
// HEADER (a JSON object) names the header fields to check; each key present
// is checked, absent ones are not:
//   types       "alloc_objects/count ..." every sample type/unit, in order
//   period      the Period value (the period type must be space/bytes)
//   comments    the number of comments
//   comment     a substring some comment contains
//   mappings    the number of mappings
//   buildIds    true: every mapping has a 40-digit build id
//   mainFile    the first mapping's file ends with "/" + this
//   bytesLabel  true: every sample has a numeric "bytes" label > 0
// Without HEADER, what write_sample_profile writes is checked.
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

const [file, fnFile, headerArg] = process.argv.slice(2);
const header = headerArg ? JSON.parse(headerArg) : {
  types: "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes",
  period: 524288, comments: 2, mappings: 2, buildIds: true, bytesLabel: true,
};
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
// A location without a named function (the agent writes bare addresses for
// pprof to symbolize) is named as fnprof names it: 0x and its address in hex.
const k = types.indexOf(fn.sample_type);
if (k < 0) die(`no sample type ${fn.sample_type}`);
const loc = new Map(prof.location.map((l) => [n(l.id), l]));
const func = new Map(prof.function.map((f) => [n(f.id), f]));
const leafName = (l) => {
  const f = l.line.length > 0 ? func.get(n(l.line[0].functionId)) : undefined;
  if (f && n(f.name) !== 0) return str(f.name);
  return "0x" + BigInt.asUintN(64, BigInt(l.address)).toString(16);
};
const flat = new Map();
for (const s of prof.sample) {
  const l = loc.get(n(s.locationId[0]));
  if (!l) die(`sample references unknown location ${s.locationId[0]}`);
  const name = leafName(l);
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
const typeUnits = prof.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`).join(" ");
if ("types" in header && typeUnits !== header.types)
  die(`sample types '${typeUnits}', want '${header.types}'`);
if (str(prof.periodType.type) !== "space" || str(prof.periodType.unit) !== "bytes")
  die("period type is not space/bytes");
if ("period" in header && n(prof.period) !== header.period)
  die(`period ${prof.period}, want ${header.period}`);
const comments = prof.comment.map(str);
if ("comments" in header && comments.length !== header.comments)
  die(`${comments.length} comments, want ${header.comments}`);
if ("comment" in header && !comments.some((c) => c.includes(header.comment)))
  die(`no comment contains '${header.comment}': ${JSON.stringify(comments)}`);
if ("mappings" in header && prof.mapping.length !== header.mappings)
  die(`${prof.mapping.length} mappings, want ${header.mappings}`);
if (header.buildIds && !prof.mapping.every((m) => str(m.buildId).length === 40))
  die("a mapping lacks its build id");
if ("mainFile" in header &&
    !(prof.mapping.length > 0 && str(prof.mapping[0].filename).endsWith("/" + header.mainFile)))
  die(`first mapping is not .../${header.mainFile}`);
if (header.bytesLabel &&
    !prof.sample.every((s) => s.label.some((l) => str(l.key) === "bytes" && n(l.num) > 0)))
  die("a sample lacks its numeric 'bytes' label");

const top = fn.entries.slice(0, 3).map((e) => e.name).join(", ");
console.log(`ok pprof-format: ${types.length} sample types, totals ` +
            `${JSON.stringify(fn.totals)}, top ${fn.sample_type}: ${top}`);
