// An FC custom-runtime function in Node.js (http module only). Same endpoints
// as examples/python/server.py: /steady, /spike (buildReportCache keeps
// ~10 MiB), /echo, /crash, the lifecycle hooks; POST /invoke picks the action
// from its payload. Listens on FC_SERVER_PORT (9000) on FC_SERVER_HOST
// (0.0.0.0, as the platform requires).
'use strict';
const http = require('http');
const crypto = require('crypto');

const reportCache = []; // what the spike endpoint keeps alive

function log(requestId, level, message) {
  console.log(`${new Date().toISOString()} ${requestId} [${level}] ${message}`);
}

// The spike: ~10 MiB that stays allocated (off the JS heap, in native memory).
function buildReportCache() {
  const block = Buffer.alloc(10 * 1024 * 1024, 1);
  reportCache.push(block);
  return block.length;
}

function answer(res, code, body) {
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'x-fc-status': '200',
  });
  res.end(body);
}

function echo(req, payload) {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (!['connection', 'keep-alive', 'content-length'].includes(k)) headers[k] = v;
  }
  const sorted = Object.fromEntries(Object.entries(headers).sort());
  return JSON.stringify({
    body_len: payload.length,
    body_sha256: crypto.createHash('sha256').update(payload).digest('hex'),
    headers: sorted, method: req.method, target: req.url,
  });
}

function handle(req, res, payload) {
  const rid = req.headers['x-fc-request-id'] || '-';
  let path = req.url.split('?')[0];
  if (path === '/invoke') path = '/' + (payload.toString().trim() || 'steady');
  if (path === '/spike') {
    const n = buildReportCache();
    log(rid, 'INFO', `report cache built: ${n} bytes`);
    return answer(res, 200, JSON.stringify({ cached: reportCache.length }));
  }
  if (path === '/crash') {
    log(rid, 'ERROR', 'about to crash');
    process.exit(3);
  }
  if (['/pre-freeze', '/pre-stop', '/initialize'].includes(path)) {
    log(rid, 'INFO', `hook ${path}`);
    return answer(res, 200, '{}');
  }
  if (path.startsWith('/echo')) {
    console.log('echo request');
    return answer(res, 200, echo(req, payload));
  }
  log(rid, 'INFO', 'steady request');
  console.log(`plain line for ${path}`);
  return answer(res, 200, JSON.stringify({ ok: true, path }));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => handle(req, res, Buffer.concat(chunks)));
});
// FC keeps connections open between invocations: no idle timeouts.
server.keepAliveTimeout = 0;
server.requestTimeout = 0;
server.headersTimeout = 0;
const port = Number(process.env.FC_SERVER_PORT || 9000);
const host = process.env.FC_SERVER_HOST || '0.0.0.0';
server.listen(port, host, () => console.log(`node example listening on ${host}:${port}`));
process.on('SIGTERM', () => process.exit(0));
