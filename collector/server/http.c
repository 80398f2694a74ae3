/*
 * fnprof-collector's HTTP front: binds, sets evhttp's limits (body, headers,
 * slow-client timeout), caps live connections by pausing the listener, routes
 * requests and writes SLS-style error answers. The handlers live in sls.c,
 * otlp.c and api.c.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERROR_MESSAGE_MAX 400

int64_t srv_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reusing the buffer spared a malloc + page faults of the whole raw body
 * per request; more than this is not worth keeping between requests. */
#define PLAIN_KEEP_BYTES (8u << 20)

fnp_buf *srv_plain(srv *s) {
  if (s->plain.cap != s->lim.max_raw_bytes) {
    fnp_buf_destroy(&s->plain);
    fnp_buf_init(&s->plain, s->lim.max_raw_bytes);
  }
  fnp_buf_reset(&s->plain);
  return &s->plain;
}

void srv_plain_done(srv *s) {
  if (s->plain.alloc > PLAIN_KEEP_BYTES) {
    fnp_buf_destroy(&s->plain);
    fnp_buf_init(&s->plain, s->lim.max_raw_bytes);
  }
}

const char *srv_header(struct evhttp_request *req, const char *name) {
  return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

const uint8_t *srv_body(struct evhttp_request *req, size_t *len) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  *len = evbuffer_get_length(in);
  if (*len == 0)
    return (const uint8_t *)"";
  return evbuffer_pullup(in, -1);
}

static void add_request_id(srv *s, struct evhttp_request *req) {
  char id[40];
  snprintf(id, sizeof id, "%s%08llX", s->request_prefix,
           (unsigned long long)++s->next_request_id);
  evhttp_add_header(evhttp_request_get_output_headers(req), "x-log-requestid",
                    id);
}

void srv_reply(srv *s, struct evhttp_request *req, int status,
               const char *content_type, const void *body, size_t len) {
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  add_request_id(s, req);
  if (content_type)
    evhttp_add_header(h, "Content-Type", content_type);
  struct evbuffer *out = evbuffer_new();
  if (out != NULL && len > 0 && evbuffer_add(out, body, len) != 0) {
    evbuffer_free(out);
    out = NULL;
  }
  if (out == NULL) { /* out of memory: still answer, without a body */
    evhttp_send_reply(req, 500, "Internal Server Error", NULL);
    return;
  }
  evhttp_send_reply(req, status, NULL, out);
  evbuffer_free(out);
}

int srv_reply_error(srv *s, struct evhttp_request *req, int status,
                    const char *code, const char *fmt, ...) {
  char msg[ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fnp_buf b;
  fnp_buf_init(&b, 2 * ERROR_MESSAGE_MAX + 256);
  int rc = fnp_buf_printf(&b, "{\"errorCode\":\"%s\",\"errorMessage\":", code);
  rc = rc ? rc : export__json_str(&b, msg, SIZE_MAX);
  rc = rc ? rc : fnp_buf_append(&b, "}", 1);
  s->stats.rejected++;
  /* The Node SDK only recognizes errors sent as application/json. */
  srv_reply(s, req, status, "application/json", rc ? "{}" : (char *)b.data,
            rc ? 2 : b.len);
  fnp_buf_destroy(&b);
  return -1;
}

/* ---- routing ---- */

/* Splits "/logstores/LS[/shards/lb|/shards/route]" into the logstore. */
static bool logstore_path(const char *p, char *ls, size_t cap) {
  if (strncmp(p, "/logstores/", 11) != 0)
    return false;
  p += 11;
  size_t n = strcspn(p, "/");
  if (n == 0 || n >= cap)
    return false;
  const char *rest = p + n;
  if (*rest && strcmp(rest, "/shards/lb") != 0 &&
      strcmp(rest, "/shards/route") != 0)
    return false;
  memcpy(ls, p, n);
  ls[n] = '\0';
  return true;
}

/*
 * The project, as SLS finds it: the first label of the Host header
 * ("{project}.{endpoint}"). A Host that is an IP literal or a single label
 * (127.0.0.1:PORT, localhost) names no project: then the path-style form
 * /projects/{project}/logstores/... gives it, or it is "default".
 */
static void project_from_host(const char *host, char *out, size_t cap) {
  out[0] = '\0';
  if (host == NULL || host[0] == '[')
    return;
  char h[256];
  snprintf(h, sizeof h, "%s", host);
  h[strcspn(h, ":")] = '\0';
  struct in_addr a;
  const char *dot = strchr(h, '.');
  if (dot == NULL || inet_pton(AF_INET, h, &a) == 1)
    return;
  size_t n = (size_t)(dot - h);
  if (n == 0 || n >= cap)
    return;
  memcpy(out, h, n);
  out[n] = '\0';
}

static void route_post(srv *s, struct evhttp_request *req, const char *path) {
  char project[128], ls[128];
  if (strcmp(path, "/v1/logs") == 0) {
    srv_otlp(s, req, false);
    return;
  }
  if (strcmp(path, "/v1/metrics") == 0) {
    srv_otlp(s, req, true);
    return;
  }
  if (strcmp(path, "/api/profiles") == 0) {
    srv_api(s, req, path);
    return;
  }
  project_from_host(srv_header(req, "Host"), project, sizeof project);
  if (strncmp(path, "/projects/", 10) == 0) {
    const char *p = path + 10;
    size_t n = strcspn(p, "/");
    if (n > 0 && n < sizeof project && project[0] == '\0') {
      memcpy(project, p, n);
      project[n] = '\0';
    }
    path = p + n;
  }
  if (logstore_path(path, ls, sizeof ls)) {
    srv_sls_putlogs(s, req, project[0] ? project : "default", ls, path);
    return;
  }
  srv_reply_error(s, req, 404, "ParameterInvalid", "no such resource");
}

static void on_request(struct evhttp_request *req, void *arg) {
  srv *s = arg;
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *path = u ? evhttp_uri_get_path(u) : NULL;
  if (path == NULL || path[0] != '/') {
    srv_reply_error(s, req, 400, "ParameterInvalid", "bad request URI");
    return;
  }
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  if (cmd == EVHTTP_REQ_POST) {
    route_post(s, req, path);
    return;
  }
  if (cmd == EVHTTP_REQ_GET &&
      (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/healthz") == 0)) {
    srv_api(s, req, path);
    return;
  }
  if (cmd == EVHTTP_REQ_GET && srv_static(s, req, path))
    return;
  srv_reply_error(s, req, 405, "ParameterInvalid", "method not allowed here");
}

/* ---- connection accounting ---- */

/*
 * evhttp has no connection limit (2.1), so fnprof-collector keeps one: the
 * bufferevent callback counts each accepted connection, and a zero-delay
 * event, which runs in the same loop iteration before any I/O on the new
 * socket, finds its evhttp_connection (the bufferevent's callback argument)
 * and hooks its close callback to uncount it. At the limit the listener is
 * disabled, so further clients wait in the kernel's backlog.
 */
typedef struct conn_hook {
  srv *s;
  struct bufferevent *bev;
} conn_hook;

static void update_listener(srv *s) {
  bool full = s->live_connections >= s->lim.max_connections;
  if (full && !s->paused)
    evconnlistener_disable(s->listener);
  else if (!full && s->paused)
    evconnlistener_enable(s->listener);
  s->paused = full;
}

static void on_close(struct evhttp_connection *c, void *arg) {
  (void)c;
  srv *s = arg;
  s->live_connections--;
  update_listener(s);
}

static void hook_close(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  conn_hook *h = arg;
  void *cbarg = NULL;
  bufferevent_getcb(h->bev, NULL, NULL, NULL, &cbarg);
  if (cbarg != NULL)
    evhttp_connection_set_closecb(cbarg, on_close, h->s);
  else
    on_close(NULL, h->s); /* evhttp refused it: nothing to wait for */
  free(h);
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg) {
  srv *s = arg;
  struct bufferevent *bev =
      bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  conn_hook *h = malloc(sizeof *h);
  if (bev == NULL || h == NULL) {
    free(h);
    return bev; /* uncounted, but the listener limit is only a soft cap */
  }
  *h = (conn_hook){s, bev};
  if (event_base_once(base, -1, EV_TIMEOUT, hook_close, h, NULL) != 0) {
    free(h);
    return bev;
  }
  s->live_connections++;
  update_listener(s);
  return bev;
}

int srv_http_start(srv *s, const char *host, int port, int *bound_port,
                   fnp_error *err) {
  s->http = evhttp_new(s->base);
  if (s->http == NULL)
    return fnp_fail(err, -ENOMEM, "evhttp_new failed");
  evhttp_set_max_body_size(s->http, (ev_ssize_t)s->lim.max_body_bytes);
  evhttp_set_max_headers_size(s->http, (ev_ssize_t)s->lim.max_header_bytes);
  evhttp_set_timeout(s->http, s->lim.timeout_s);
  evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_set_gencb(s->http, on_request, s);
  evhttp_set_bevcb(s->http, on_new_bev, s);
  struct evhttp_bound_socket *b =
      evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
  if (b == NULL)
    return fnp_fail(err, -EADDRINUSE, "cannot listen on %s:%d", host, port);
  s->listener = evhttp_bound_socket_get_listener(b);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&ss, &sl) !=
      0)
    return fnp_fail(err, -errno, "getsockname: %s", strerror(errno));
  *bound_port =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}
