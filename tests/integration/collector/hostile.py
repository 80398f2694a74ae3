"""Hostile PutLogs/OTLP requests against fnprof-collector. Signs with its own
HMAC-SHA1 (an implementation independent of ours). Each case asserts the
status and errorCode; the server must stay up throughout.
usage: hostile.py PORT ID SECRET ZSTD_BIN"""
import base64, hashlib, hmac, http.client, json, socket, subprocess, sys, time
from email.utils import formatdate

PORT, KID, SECRET, ZSTD = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
PATH = "/logstores/hostile/shards/lb"

def varint(n):
    out = b""
    while True:
        b = n & 0x7F; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out

def ld(field, payload):  # length-delimited field
    return varint(field << 3 | 2) + varint(len(payload)) + payload

def log_group(n):
    logs = b"".join(ld(1, varint(1 << 3) + varint(int(time.time())) +
                       ld(2, ld(1, b"message") + ld(2, b"x%d" % i))) for i in range(n))
    return logs

def sign(verb, md5, ctype, date, headers, resource):
    canon = "".join("%s:%s\n" % (k, v.strip()) for k, v in sorted(
        (k.lower(), v) for k, v in headers.items()
        if k.lower().startswith(("x-log-", "x-acs-"))))
    s = "%s\n%s\n%s\n%s\n%s%s" % (verb, md5, ctype, date, canon, resource)
    return base64.b64encode(hmac.new(SECRET.encode(), s.encode(), hashlib.sha1).digest()).decode()

def put(body, raw=None, compress=None, md5=None, secret_ok=True, date=None,
        drop=(), extra=None, path=PATH, ctype="application/x-protobuf",
        signed=None):
    date = date or formatdate(usegmt=True)
    h = {"x-log-apiversion": "0.6.0", "x-log-signaturemethod": "hmac-sha1",
         "x-log-bodyrawsize": str(len(body) if raw is None else raw)}
    if compress: h["x-log-compresstype"] = compress
    for k in drop: h.pop(k, None)  # signed headers: left out before signing
    md5 = md5 or hashlib.md5(body).hexdigest().upper()
    sig = sign("POST", md5, ctype, date, h, signed or path)
    if not secret_ok: sig = sig[::-1]
    h.update({"Content-Type": ctype, "Content-MD5": md5, "Date": date,
              "Authorization": "LOG %s:%s" % (KID, sig)})
    h.update(extra or {})
    for k in drop: h.pop(k, None)
    return request("POST", path, body, h)

def request(method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    try:
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, r.getheader("Content-Type")
    except (ConnectionError, http.client.HTTPException) as e:
        return 0, str(e).encode(), None
    finally:
        c.close()

def expect(name, got, status, code=None):
    st, body, ctype = got
    ok = st == status
    if ok and code:
        ok = ctype == "application/json" and json.loads(body)["errorCode"] == code
    print("%-28s %s %s %s" % (name, "ok  " if ok else "FAIL", st, body[:120]))
    if not ok: sys.exit(1)
    alive()

def alive():
    st, _, _ = request("GET", "/healthz")
    if st != 200:
        print("server died"); sys.exit(1)

good = log_group(3)
expect("valid", put(good), 200)
# The other request forms SDKs use: Go's bare /logstores/{ls}, KeyHash
# routing (the query is signed), and the documented path-style fallback
# (signed over the path without /projects/{p}).
expect("valid, Go SDK path", put(good, path="/logstores/forms"), 200)
expect("valid, route?key=", put(good, path="/logstores/forms/shards/route?key=0fab"), 200)
expect("valid, path-style", put(good, path="/projects/pp/logstores/forms/shards/lb",
                                signed="/logstores/forms/shards/lb"), 200)
st, body, _ = request("GET", "/api/logs?logstore=forms&project=pp")
if json.loads(body)["count"] != 3: print("path-style project not stored"); sys.exit(1)
expect("truncated protobuf", put(good[:-3]), 400, "PostBodyInvalid")
expect("garbage", put(b"\xff\xfe\xfd garbage \x00" * 50), 400, "PostBodyInvalid")
expect("bad signature", put(good, secret_ok=False), 401, "SignatureNotMatch")
expect("wrong Content-MD5", put(good, md5="0" * 32), 400, "PostBodyInvalid")
expect("missing bodyrawsize", put(good, drop=["x-log-bodyrawsize"]), 400)
expect("negative bodyrawsize", put(good, raw=-5), 400, "InvalidBodyRawSize")
expect("unknown compresstype", put(good, compress="snappy"), 400, "InvalidCompressType")
expect("stale Date", put(good, date="Mon, 09 Nov 2015 06:03:03 GMT"), 400, "RequestTimeExpired")
expect("no Date", put(good, drop=["Date"]), 400, "MissingDate")
expect("wrong content type", put(good, ctype="text/plain"), 415, "InvalidContentType")

zeros = b"\0" * (64 << 20)
bomb = subprocess.run([ZSTD, "-q", "-c", "-19"], input=zeros, capture_output=True).stdout
assert len(bomb) < 64 * 1024, len(bomb)
expect("zstd bomb, honest size", put(bomb, raw=len(zeros), compress="zstd"), 413, "PostBodyTooLarge")
expect("zstd bomb, lying size", put(bomb, raw=1000, compress="zstd"), 400, "PostBodyUncompressError")
expect("huge bodyrawsize", put(good, raw=1 << 62, compress="lz4"), 413, "PostBodyTooLarge")
expect("lz4 garbage", put(b"\xf0" * 64, raw=4096, compress="lz4"), 400, "PostBodyUncompressError")
expect("deflate garbage", put(b"x\x9c" + b"\x00" * 30, raw=100, compress="deflate"), 400, "PostBodyUncompressError")
# evhttp answers 413 from Content-Length and closes; a client still writing
# the body may only see the connection go away.
st = put(b"\0" * (3 << 20))[0]
print("%-28s %s %s" % ("oversized body", "ok  " if st in (0, 413) else "FAIL", st))
if st not in (0, 413): sys.exit(1)
alive()
st, _, _ = request("GET", "/api/logs", headers={"X-Big": "a" * (64 << 10)})
print("%-28s %s %s" % ("oversized headers", "ok  " if st in (0, 400, 413, 431) else "FAIL", st))
if st not in (0, 400, 413, 431): sys.exit(1)
alive()

# OTLP: garbage, truncated, 10k-deep AnyValue nesting, gzip bomb.
def otlp(body, enc=None):
    h = {"Content-Type": "application/x-protobuf",
         "Authorization": "Bearer %s:%s" % (KID, SECRET)}
    if enc: h["Content-Encoding"] = enc
    return request("POST", "/v1/logs", body, h)
expect("otlp garbage", otlp(b"\x0a\xff\xff\xff\xff\x0f"), 400)
nest = b""
for _ in range(10000):  # AnyValue{array_value{values{...}}}
    nest = ld(5, ld(1, nest))
kv = ld(1, b"k") + ld(2, nest)
deep = ld(1, ld(2, ld(2, ld(6, kv))))  # ResourceLogs.ScopeLogs.LogRecord.attr
expect("otlp deep nesting", otlp(deep), 413)
import gzip
expect("otlp gzip bomb", otlp(gzip.compress(zeros), "gzip"), 413)
expect("otlp unauthenticated", request("POST", "/v1/logs", b"", {"Content-Type": "application/x-protobuf"}), 401)

# Slow client: half a request line, then silence. The server must keep
# serving others and drop the slow one after its timeout.
slow = socket.create_connection(("127.0.0.1", PORT))
slow.sendall(b"POST /logstores/x/shards/lb HTTP/1.1\r\nHost: a")
alive()
slow.settimeout(6)
t0 = time.time()
try:
    dropped = slow.recv(100) == b"" or True
except socket.timeout:
    dropped = False
print("%-28s %s after %.1fs" % ("slow client dropped", "ok  " if dropped else "FAIL", time.time() - t0))
if not dropped: sys.exit(1)

# Connection flood beyond --max-connections: the extra wait in the backlog,
# and the count returns to zero once they close.
socks = [socket.create_connection(("127.0.0.1", PORT)) for _ in range(60)]
for s in socks: s.close()
time.sleep(0.3)
alive()
st, body, _ = request("GET", "/api/stats")
live = json.loads(body)["live_connections"]
print("%-28s %s live=%d" % ("connection flood", "ok  " if live <= 1 else "FAIL", live))
if live > 1: sys.exit(1)
st, body, _ = request("GET", "/api/logs?logstore=hostile")
n = json.loads(body)["count"]
print("%-28s %s stored=%d" % ("only the valid batch stored", "ok  " if n == 3 else "FAIL", n))
sys.exit(0 if n == 3 else 1)
