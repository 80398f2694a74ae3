// Independent OTLP decoder: the protobufjs code generated from the official
// opentelemetry-proto files, as shipped in @opentelemetry/otlp-transformer
// 0.52.x. usage: node otlp_decode.js logs|metrics FILE  -> JSON on stdout.
const fs = require('fs');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const ns = root.opentelemetry.proto.collector;
const [kind, file] = process.argv.slice(2);
const T = kind === 'logs' ? ns.logs.v1.ExportLogsServiceRequest
                          : ns.metrics.v1.ExportMetricsServiceRequest;
const msg = T.decode(fs.readFileSync(file));
console.log(JSON.stringify(T.toObject(msg, {longs: String, enums: Number,
                                              bytes: String, defaults: false})));
