// d3-flame-graph's ES build (its stylesheet is imported by app.css).
export { default as flamegraph, colorMapper } from "d3-flame-graph";
