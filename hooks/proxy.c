/*
 * proxy.c - the request path: a platform request from server.c, classified
 * (hook, /initialize, invocation), checked against the platform's limits,
 * forwarded through upstream.c, and the function's answer (or the
 * platform's error shape) sent back. Requests and responses are buffered
 * whole, never streamed: FC itself buffers both (16 MB sync limit, 502
 * BadResponse beyond), and holding the response until it is complete is
 * what lets the sidecar still answer in the platform's error shape when
 * the function dies halfway through writing it. One upstream connection
 * carries one request at a time; concurrent invocations use a pool of
 * keep-alive connections (SC_UPSTREAM_MAX).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "internal.h"

/* RFC 9110 7.6.1: these describe one connection, not the message. */
static const char *const HOP_BY_HOP[] = {"Connection",
                                         "Keep-Alive",
                                         "Proxy-Connection",
                                         "Proxy-Authenticate",
                                         "Proxy-Authorization",
                                         "TE",
                                         "Trailer",
                                         "Transfer-Encoding",
                                         "Upgrade"};

/* Is `name` listed in the message's Connection header (also hop-by-hop)? */
static int named_in_connection(const char *conn, const char *name) {
  size_t n = strlen(name);
  const char *p = conn;
  while (conn && *p) {
    p += strspn(p, " \t,");
    if (strncasecmp(p, name, n) == 0 && strchr(" \t,", p[n]))
      return 1;
    p += strcspn(p, ",");
  }
  return 0;
}

static int is_hop_by_hop(const char *name, const char *conn) {
  size_t i;
  /* Every name above starts with one of these: most fields need one test,
   * not nine comparisons. */
  if (name[0] != '\0' && strchr("ckptuCKPTU", name[0]) != NULL) {
    for (i = 0; i < sizeof(HOP_BY_HOP) / sizeof(HOP_BY_HOP[0]); i++)
      if (strcasecmp(name, HOP_BY_HOP[i]) == 0)
        return 1;
  }
  return conn != NULL && named_in_connection(conn, name);
}

/* Moves src's end-to-end headers (Content-Length too unless skip_length)
 * to the end of dst, and drops the rest. Moved, not copied: a copy was
 * three mallocs and three frees per header, twice per request. */
static int move_headers(struct evkeyvalq *dst, struct evkeyvalq *src,
                        int skip_length) {
  const char *c = sc__hdr_find(src, "Connection");
  char *conn = c ? strdup(c) : NULL; /* the header itself goes */
  struct evkeyval *kv, *next;
  if (c && conn == NULL)
    return -1;
  for (kv = TAILQ_FIRST(src); kv != NULL; kv = next) {
    next = TAILQ_NEXT(kv, next);
    if (is_hop_by_hop(kv->key, conn) ||
        (skip_length && strcasecmp(kv->key, "Content-Length") == 0))
      sc__hdr_remove(src, kv);
  }
  TAILQ_CONCAT(dst, src, next);
  free(conn);
  return 0;
}

static size_t headers_bytes(const struct evkeyvalq *h) {
  struct evkeyval *kv;
  size_t n = 0;
  TAILQ_FOREACH(kv, h, next) n += strlen(kv->key) + strlen(kv->value);
  return n;
}

static void finish_with_error(sc_call *call, int status, const char *code,
                              const char *msg) {
  if (call->req) {
    sc__reply_error(call->req, status, code, msg);
    call->req = NULL;
  }
  call->status = status;
  call->error_type = code;
  sc__call_finish(call);
}

static void crash_wait_done(evutil_socket_t fd, short what, void *arg) {
  sc_call *call = arg;
  (void)fd;
  (void)what;
  if (call->sc->child.exited)
    return; /* sc__function_exited answered it */
  finish_with_error(call, 502, "BadResponse",
                    "the function closed the connection without answering");
}

/* The connection to the function broke: if the function is dying, the
 * caller gets the crash shape (sc__function_exited); wait briefly to know. */
static void upstream_failed(sc_call *call) {
  struct timeval tv = {0, SC_CRASH_WAIT_MS * 1000};
  if (call->upstream_err == -EFBIG)
    return finish_with_error(call, 502, "BadResponse",
                             "the function's response exceeds 16 MB");
  if (call->sc->child.exited || call->req == NULL) {
    if (call->req)
      sc__reply_crash(call);
    return sc__call_finish(call);
  }
  call->timer = evtimer_new(call->sc->base, crash_wait_done, call);
  if (call->timer == NULL || evtimer_add(call->timer, &tv) < 0)
    crash_wait_done(-1, 0, call);
}

static void forward_response(sc_call *call, sc_http_msg *resp) {
  struct evkeyvalq *in = &resp->headers;
  struct evbuffer *body = resp->body;
  const char *fc_status = sc__hdr_find(in, "x-fc-status");
  int code = resp->code;
  if (call->req == NULL) /* answered already (crash) */
    return sc__call_finish(call);
  if (headers_bytes(in) > SC_RESP_HEADERS_MAX_BYTES)
    return finish_with_error(call, 502, "BadResponse",
                             "the function's response headers exceed 4 KB");
  if (move_headers(sc__req_out_headers(call->req), in, 0) < 0)
    return finish_with_error(call, 502, "BadResponse",
                             "the function's response headers are invalid");
  call->status = code;
  call->bytes_out = evbuffer_get_length(body);
  if (fc_status && strcmp(fc_status, "200") != 0)
    call->error_type = "HandledInvocationError";
  /* The caller gets its answer before the bookkeeping (a client with one
   * request at a time sends the next one while the sidecar finishes this
   * one). An agent told over the socket alone (no invocation page) hears of
   * the end first: a caller's next request must not reach the function
   * before the agent knows (its first samples would carry this label). */
  sc_req *req = call->req;
  call->req = NULL;
  if (!sc__agent_page_labels(&call->sc->agent_ctl)) {
    sc__call_finish(call);
    return sc__req_reply(req, code, resp->reason, body);
  }
  call->end_mono_ns = sc__mono_ns(); /* the duration ends before the write */
  sc__req_reply(req, code, resp->reason, body);
  sc__call_finish(call);
}

void sc__proxy_upstream_done(sc_call *call, sc_http_msg *resp, int err) {
  if (call->hook_done) /* hooks.c decides; 0: the function did not answer */
    return call->hook_done(call, resp ? resp->code : 0);
  if (resp == NULL) {
    call->upstream_err = err;
    return upstream_failed(call);
  }
  call->answered = 1;
  forward_response(call, resp);
}

/* Sends call->req on to the function: same method, target, end-to-end
 * headers and body; Content-Length recomputed since evhttp de-chunked the
 * body. A connection that cannot be made fails as a broken one does
 * (upstream_failed: the function may be dying). */
int sc__proxy_forward(sc_call *call, const char *uri) {
  struct evkeyvalq *in = sc__req_in_headers(call->req);
  struct evbuffer *body = sc__req_in_body(call->req);
  const char *method = sc__req_method_name(call->req);
  struct evkeyvalq out;
  char len[32];
  int rc = 0;
  /* The request's headers move to the upstream request: nothing reads
   * them after this. */
  int length = sc__hdr_find(in, "Content-Length") != NULL;
  TAILQ_INIT(&out);
  call->bytes_in = evbuffer_get_length(body);
  fnp_i64_text((int64_t)call->bytes_in, len);
  if (move_headers(&out, in, 1) < 0 ||
      ((call->bytes_in > 0 || length) &&
       sc__hdr_add_str(&out, "Content-Length", len) < 0))
    rc = -ENOMEM;
  if (rc == 0)
    rc = sc__upstream_send(call, method, uri, &out, body);
  sc__hdrs_clear(&out);
  if (rc == -ECONNREFUSED || rc == -ECONNRESET) {
    sc__proxy_upstream_done(call, NULL, rc);
    return 0;
  }
  return rc;
}

void sc__proxy_dispatch(sc_call *call) {
  int rc;
  if (call->held) {
    TAILQ_REMOVE(&call->sc->held, call, hold_link);
    call->held = 0;
  }
  sidecar *sc = call->sc;
  rc = sc__proxy_forward(call, sc__req_uri(call->req));
  /* The peak's reset (invoke.c) after the send, off the path the caller
   * waits on: the function has only just been woken, not run far
   * (what it holds then is in the RSS the reset starts from anyway). */
  if (sc->hwm_reset_due) {
    sc->hwm_reset_due = 0;
    (void)sc__proc_reset_hwm(&sc->child);
  }
  if (rc == -EBUSY)
    finish_with_error(call, 503, "ResourceExhausted",
                      "too many concurrent requests on this instance");
  else if (rc < 0)
    finish_with_error(call, 502, "BadResponse", "cannot reach the function");
}

static enum sc_kind classify(sc_req *req, const char *path) {
  const char *cp = sc__hdr_find(sc__req_in_headers(req), "x-fc-control-path");
  int post = sc__req_method(req) == EVHTTP_REQ_POST;
  if (cp == NULL && post)
    cp = path;
  if (cp && strcmp(cp, "/initialize") == 0)
    return SC_INITIALIZE;
  if (cp && strcmp(cp, "/invoke") == 0)
    return SC_INVOKE;
  return SC_HTTP;
}

/* The platform's request limits (reference A.5). */
static int check_limits(sc_req *req) {
  size_t h = headers_bytes(sc__req_in_headers(req));
  size_t u = strlen(sc__req_uri(req));
  char msg[128];
  if (h <= SC_HEADERS_MAX_BYTES && u <= SC_URI_MAX_BYTES)
    return 0;
  snprintf(msg, sizeof(msg), "%s too large: %zu bytes, limit %d",
           h > SC_HEADERS_MAX_BYTES ? "request headers" : "path and query",
           h > SC_HEADERS_MAX_BYTES ? h : u,
           h > SC_HEADERS_MAX_BYTES ? SC_HEADERS_MAX_BYTES : SC_URI_MAX_BYTES);
  sc__reply_error(req, 400, "InvalidArgument", msg);
  return -1;
}

void sc__proxy_on_request(sidecar *sc, sc_req *req) {
  const char *path = sc__req_path(req);
  int get = sc__req_method(req) == EVHTTP_REQ_GET;
  sc_call *call;
  if (path[0] == '\0')
    path = "/";
  if (check_limits(req) < 0)
    return;
  sc__exporter_set_creds(&sc->exporter, sc__req_in_headers(req));
  if (get && strcmp(path, "/pre-freeze") == 0)
    return sc__hook_pre_freeze(sc, req);
  if (get && strcmp(path, "/pre-stop") == 0)
    return sc__hook_pre_stop(sc, req);
  if (sc->state == SC_DEAD || sc->state == SC_STOPPING)
    return sc__reply_error(req, 503, "ServiceUnavailable",
                           "the instance is stopping");
  call = sc__call_new(sc, req, classify(req, path));
  if (call == NULL)
    return sc__reply_error(req, 503, "ResourceExhausted", "out of memory");
  sc__call_start(call);
  if (sc->state == SC_READY && TAILQ_EMPTY(&sc->held))
    return sc__proxy_dispatch(call);
  /* The function's port is not up yet: hold it, in arrival order. */
  call->held = 1;
  TAILQ_INSERT_TAIL(&sc->held, call, hold_link);
}

void sc__proxy_release_held(sidecar *sc) {
  while (sc->state == SC_READY && !TAILQ_EMPTY(&sc->held))
    sc__proxy_dispatch(TAILQ_FIRST(&sc->held));
}

int sc__proxy_start(sidecar *sc, fnp_error *err) {
  sc__upstream_init(sc);
  return sc__server_start(sc, err);
}

void sc__proxy_release(sidecar *sc) {
  sc__upstream_release(sc);
  sc__server_release(sc);
}
