// Drives the official SLS Node SDK (@alicloud/log) against fnprof-collector.
// usage: node node_sdk.js PORT ID SECRET PROJECT LOGSTORE COUNT
// Prints "ok" or "err <name> <code>". PROJECT "" means Host 127.0.0.1:PORT.
const Client = require('@alicloud/log');
const [port, id, secret, project, logstore, count] = process.argv.slice(2);
const client = new Client({accessKeyId: id, accessKeySecret: secret,
                           endpoint: '127.0.0.1:' + port});
const now = Math.floor(Date.now() / 1000);
const logs = [];
for (let i = 0; i < Number(count); i++)
  logs.push({timestamp: now, timestampNsPart: 1000 + i,
             content: {message: 'node says hi ' + i, request_id: 'req-node-' + i,
                       seq: String(i)}});
// As the reference describes: keep Host "{project}.127.0.0.1:PORT" while
// connecting to loopback (proj.127.0.0.1 does not resolve).
const opts = project ? {beforeRequest: o => {
  o.headers.host = o.host + ':' + o.port; o.host = '127.0.0.1'; return o; }} : {};
client.postLogStoreLogs(project, logstore,
    {logs, tags: [{instance: 'node-inst'}, {function: 'fn-node'}],
     topic: 'node-topic', source: '10.1.2.3'}, opts)
  .then(r => console.log('ok' + (r === '' ? '' : ' ' + JSON.stringify(r))),
        e => console.log('err ' + e.name + ' ' + e.code));
