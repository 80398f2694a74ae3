// Bundles src/ into OUTDIR (argv[2]): app.js (d3, d3-flame-graph and our
// code, minified, no run-time fetches), app.css, index.html.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) {
  console.error("usage: node build.mjs OUTDIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: "src/main.js" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15"],
  outdir: out,
  loader: { ".css": "css" },
  logLevel: "warning",
});
copyFileSync("src/index.html", join(out, "index.html"));
