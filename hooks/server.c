/*
 * server.c - the sidecar's HTTP/1.1 server for the platform's requests:
 * libevent's listener and event loop, http_msg.c's parser, one request at
 * a time per connection (a pipelined one waits in the buffer), answers
 * written at once.
 *
 * Why not evhttp's server, as before: it stops reading a connection when a
 * request is in and starts again when the answer is out (an epoll_ctl
 * pair per request: the two happen in different loop turns, so libevent's
 * changelist cannot fold them), and asks the kernel how much is readable
 * before each read (an ioctl): three system calls of the twelve a proxied
 * request cost at concurrency 1. Here a connection's read event is added
 * once and stays; bytes that arrive while a request is being answered wait
 * in its buffer (bounded), and the end of the connection is noticed at
 * once. The request object is ours too (sc_req), so every answer path
 * (proxy.c, hooks.c, reply.c) writes through sc__req_reply.
 *
 * Semantics kept from evhttp: keep-alive by HTTP version and Connection;
 * Expect: 100-continue answered before the body is read; a Date header
 * and Content-Length added when the answer has none; HEAD answered without
 * its body; a request whose client left is still run, its answer dropped.
 * Malformed requests, a head over 64 KiB and a body over 16 MB get 400
 * InvalidArgument (the platform's answer past its limits), an unknown or
 * unsupported method 405, all in the platform's JSON error shape
 * (reply.c), and the connection closes after them.
 *
 * A request that stops arriving halfway (a client quiet mid-head or
 * mid-body: slowloris, or one that died without a FIN) loses its
 * connection after --client-timeout without a byte. A sweep timer looks
 * at the connections every quarter of that, armed only while requests
 * arrive, so an idle instance is not woken and a frozen one counts its
 * freeze as one sweep; the request path only counts its reads. Idle
 * connections between requests stay: they are the platform's.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "internal.h"

/* What a connection may hold unread while its request is answered: a
 * whole next request at most. */
#define CONN_BUFFERED_MAX (SC_BODY_MAX_BYTES + SC_HEADERS_PARSER_MAX_BYTES)

struct sc_conn {
  TAILQ_ENTRY(sc_conn) link; /* sidecar.conns */
  sidecar *sc;
  int fd;
  struct event *rev, *wev;
  struct evbuffer *in, *out;
  sc_http_msg msg; /* the request being read */
  sc_req *req;     /* the request being answered, NULL: reading */
  int closing;     /* close once out is written */
  int continued;   /* "100 Continue" sent for msg */
  /* Reads so far, and at the last sweep; sweeps a request half-read saw
   * no new byte. */
  uint64_t reads, reads_swept;
  int quiet_sweeps;
  /* Inside conn_process: an answer given there (synchronously) asks for
   * another round instead of recursing (a client could pipeline thousands
   * of requests answered at once), and a free waits for the round's end. */
  int busy, again, dead;
};

struct sc_req {
  sc_conn *conn; /* NULL: the client left; the answer is dropped */
  sc_http_msg msg;
  enum evhttp_cmd_type cmd;
  char *path; /* the target's path, without the query */
  struct evkeyvalq out_headers;
};

static const struct {
  const char *name;
  enum evhttp_cmd_type cmd;
} METHODS[] = {{"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST},
               {"HEAD", EVHTTP_REQ_HEAD},     {"PUT", EVHTTP_REQ_PUT},
               {"DELETE", EVHTTP_REQ_DELETE}, {"OPTIONS", EVHTTP_REQ_OPTIONS},
               {"PATCH", EVHTTP_REQ_PATCH}};

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_process(sc_conn *c);

const char *sc__req_uri(const sc_req *r) { return r->msg.target; }
const char *sc__req_path(const sc_req *r) { return r->path; }
enum evhttp_cmd_type sc__req_method(const sc_req *r) { return r->cmd; }
const char *sc__req_method_name(const sc_req *r) { return r->msg.method; }
struct evkeyvalq *sc__req_in_headers(sc_req *r) {
  return &r->msg.headers;
}
struct evbuffer *sc__req_in_body(sc_req *r) {
  return r->msg.body;
}
struct evkeyvalq *sc__req_out_headers(sc_req *r) {
  return &r->out_headers;
}

static void req_free(sc_req *r) {
  sc__http_msg_clear(&r->msg);
  sc__hdrs_clear(&r->out_headers);
  free(r->path);
  free(r);
}

static void conn_free(sc_conn *c) {
  if (c->busy) {
    c->dead = 1; /* conn_process frees it when its round ends */
    return;
  }
  if (c->req)
    c->req->conn = NULL; /* still answered by its call, to nobody */
  TAILQ_REMOVE(&c->sc->conns, c, link);
  if (c->rev)
    event_free(c->rev);
  if (c->wev)
    event_free(c->wev);
  if (c->in)
    evbuffer_free(c->in);
  if (c->out)
    evbuffer_free(c->out);
  sc__http_msg_clear(&c->msg);
  close(c->fd);
  free(c);
}

/* Writes what waits; the rest when the socket takes it. -1 when the
 * connection is gone (the client left, or it was closing and all is out). */
static int conn_flush(sc_conn *c) {
  if (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, c->fd) < 0 &&
      errno != EAGAIN && errno != EINTR) {
    conn_free(c);
    return -1;
  }
  if (evbuffer_get_length(c->out) > 0) {
    event_add(c->wev, NULL);
    return 0;
  }
  if (c->closing) {
    conn_free(c);
    return -1;
  }
  return 0;
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)conn_flush(arg);
}

/* "Mon, 23 Nov 2026 03:14:00 GMT", made once a second. */
static const char *http_date(void) {
  static char text[40];
  static time_t made;
  time_t now = time(NULL);
  if (now != made) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    made = now;
  }
  return text;
}

/* Appends x, y and z (short, known pieces) at dst + at; the new length. */
static size_t put(char *dst, size_t at, const char *x, const char *y,
                  const char *z) {
  size_t a = strlen(x), b = strlen(y), c = strlen(z);
  memcpy(dst + at, x, a);
  memcpy(dst + at + a, y, b);
  memcpy(dst + at + a + b, z, c);
  return at + a + b + c;
}

void sc__req_reply(sc_req *r, int code, const char *reason,
                   struct evbuffer *body) {
  sc_conn *c = r->conn;
  char num[32];
  int rc = 0, bodyless = code < 200 || code == 204 || code == 304;
  if (c == NULL) { /* the client left */
    req_free(r);
    return;
  }
  struct evkeyvalq *h = &r->out_headers;
  struct evbuffer *o = c->out;
  size_t len = body ? evbuffer_get_length(body) : 0;
  c->closing |= r->msg.close_after;
  /* The fields the answer lacks, after its own: Date, Content-Length, and
   * what the connection does next. */
  char tail[160];
  size_t t = 0;
  if (sc__hdr_find(h, "Date") == NULL)
    t = put(tail, t, "Date: ", http_date(), "\r\n");
  if (!bodyless && sc__hdr_find(h, "Content-Length") == NULL) {
    fnp_i64_text((int64_t)len, num);
    t = put(tail, t, "Content-Length: ", num, "\r\n");
  }
  if (c->closing)
    t = put(tail, t, "Connection: close\r\n", "", "");
  else if (r->msg.minor == 0)
    t = put(tail, t, "Connection: keep-alive\r\n", "", "");
  fnp_i64_text(code, num);
  reason = reason ? reason : "";
  struct iovec line[4] = {
      {.iov_base = r->msg.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", .iov_len = 9},
      {.iov_base = num, .iov_len = strlen(num)},
      {.iov_base = " ", .iov_len = 1},
      {.iov_base = (char *)reason, .iov_len = strlen(reason)}};
  rc = sc__http_write_head(o, line, 4, h, tail, t);
  if (len > 0 && !bodyless && r->cmd != EVHTTP_REQ_HEAD)
    rc |= evbuffer_add_buffer(o, body);
  c->req = NULL;
  req_free(r);
  if (rc != 0) {
    conn_free(c); /* out of memory: half an answer is worse than none */
    return;
  }
  if (conn_flush(c) == 0)
    conn_process(c); /* a request that came while this one was answered */
}

/* A request the loop cannot serve: answered in the platform's shape, and
 * the connection ends after it. */
/* The request in c->msg becomes the one being answered; NULL (and the
 * connection gone) without memory. */
static sc_req *req_take(sc_conn *c) {
  sc_req *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    conn_free(c);
    return NULL;
  }
  TAILQ_INIT(&r->out_headers);
  sc__http_msg_move(&r->msg, &c->msg);
  r->conn = c;
  c->req = r;
  return r;
}

static void conn_refuse(sc_conn *c, int status, const char *code,
                        const char *message) {
  c->closing = 1;
  sc_req *r = req_take(c);
  if (r == NULL)
    return;
  r->msg.minor = 1;
  sc__reply_error(r, status, code, message);
}

/* The request in c->msg is whole: hand it to the proxy. */
static void conn_dispatch(sc_conn *c) {
  sc_req *r = req_take(c);
  if (r == NULL)
    return;
  size_t n = strcspn(r->msg.target, "?#");
  r->path = strndup(r->msg.target, n);
  r->cmd = (enum evhttp_cmd_type)0;
  for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++)
    if (strcmp(r->msg.method, METHODS[i].name) == 0)
      r->cmd = METHODS[i].cmd;
  if (r->path == NULL) {
    c->closing = 1;
    return sc__reply_error(r, 500, "InternalError", "out of memory");
  }
  if (r->cmd == 0) {
    c->closing = 1;
    return sc__reply_error(r, 405, "MethodNotAllowed",
                           "the method is not supported");
  }
  sc__proxy_on_request(c->sc, r);
}

/* Parses what is buffered, while no request is being answered. */
static void conn_process_once(sc_conn *c) {
  if (c->req != NULL || c->closing)
    return;
  if (c->msg.body == NULL && sc__http_msg_init(&c->msg, 1, 0) < 0)
    return conn_free(c);
  int rc = sc__http_parse(&c->msg, c->in);
  if (rc == 0 && c->msg.expect_continue && !c->continued &&
      sc__http_msg_in_body(&c->msg)) {
    c->continued = 1;
    if (evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
      (void)conn_flush(c);
    return; /* the parser took all there was: the body is still coming */
  }
  if (rc == 0)
    return;
  c->continued = 0;
  if (rc > 0)
    return conn_dispatch(c);
  /* 400 InvalidArgument, as the platform's front answers past its limits
   * (reference A.5; check_limits in proxy.c does the same below these). */
  if (rc == -EFBIG)
    return conn_refuse(c, 400, "InvalidArgument",
                       "request body too large: limit 16 MB");
  if (rc == -EMSGSIZE)
    return conn_refuse(c, 400, "InvalidArgument",
                       "request headers too large: limit 64 KB");
  if (rc == -ENOMEM)
    return conn_free(c);
  conn_refuse(c, 400, "InvalidArgument", "malformed HTTP request");
}

static void conn_process(sc_conn *c) {
  if (c->busy) {
    c->again = 1;
    return;
  }
  c->busy = 1;
  do {
    c->again = 0;
    conn_process_once(c);
  } while (c->again && !c->dead);
  c->busy = 0;
  if (c->dead)
    conn_free(c);
}

/* Sweeps per --client-timeout: a stalled request goes after between one
 * and 1 + 1/STALL_SWEEPS of it. */
#define STALL_SWEEPS 4

/* Is a request partly in (read, and neither whole nor being answered)? */
static int conn_partial(const sc_conn *c) {
  return c->req == NULL && !c->closing &&
         (evbuffer_get_length(c->in) > 0 || c->msg.head_bytes > 0);
}

static void stall_arm(sidecar *sc) {
  int64_t every = sc->cfg->client_timeout_ms / STALL_SWEEPS;
  struct timeval tv = {every / 1000, every % 1000 * 1000};
  if (sc->stall_ev && every > 0 && !evtimer_pending(sc->stall_ev, NULL))
    evtimer_add(sc->stall_ev, &tv);
}

static void stall_sweep(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  sc_conn *c, *next;
  int partial = 0;
  (void)fd;
  (void)what;
  for (c = TAILQ_FIRST(&sc->conns); c != NULL; c = next) {
    next = TAILQ_NEXT(c, link);
    if (!conn_partial(c) || c->reads != c->reads_swept) {
      c->quiet_sweeps = 0;
      c->reads_swept = c->reads;
    } else if (++c->quiet_sweeps >= STALL_SWEEPS) {
      conn_free(c); /* no answer: the client is not listening either */
      continue;
    }
    partial |= conn_partial(c);
  }
  if (partial)
    stall_arm(sc);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg) {
  sc_conn *c = arg;
  (void)what;
  ssize_t r = sc__http_recv(fd, c->in);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r <= 0) /* the client left (or closed its side: it asks no more) */
    return conn_free(c);
  c->reads++;
  stall_arm(c->sc); /* a user-space check while one is pending */
  if (c->req != NULL || c->closing) {
    /* Answering: the bytes wait, bounded (a whole next request). */
    if (evbuffer_get_length(c->in) > CONN_BUFFERED_MAX)
      conn_free(c);
    return;
  }
  conn_process(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg) {
  sidecar *sc = arg;
  sc_conn *c = calloc(1, sizeof(*c));
  int one = 1;
  (void)l;
  (void)sa;
  (void)socklen;
  if (c == NULL) {
    close(fd);
    return;
  }
  c->sc = sc;
  c->fd = fd;
  TAILQ_INSERT_TAIL(&sc->conns, c, link);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->in = evbuffer_new();
  c->out = evbuffer_new();
  c->rev = event_new(sc->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
  c->wev = event_new(sc->base, fd, EV_WRITE, conn_write_cb, c);
  if (!c->in || !c->out || !c->rev || !c->wev || event_add(c->rev, NULL) < 0)
    conn_free(c);
}

int sc__server_start(sidecar *sc, fnp_error *err) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE},
                  *ai = NULL;
  char port[16];
  TAILQ_INIT(&sc->conns);
  sc->stall_ev = evtimer_new(sc->base, stall_sweep, sc);
  if (sc->stall_ev == NULL)
    return fnp_fail(err, -ENOMEM, "out of memory");
  snprintf(port, sizeof(port), "%d", sc->cfg->port);
  int rc = getaddrinfo(sc->cfg->listen_addr, port, &hints, &ai);
  if (rc != 0)
    return fnp_fail(err, -EINVAL, "cannot listen on %s: %s",
                    sc->cfg->listen_addr, gai_strerror(rc));
  sc->listener = evconnlistener_new_bind(
      sc->base, accept_cb, sc,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, -1,
      ai->ai_addr, (int)ai->ai_addrlen);
  freeaddrinfo(ai);
  if (sc->listener == NULL)
    return fnp_fail(err, -EADDRINUSE, "cannot listen on %s:%d",
                    sc->cfg->listen_addr, sc->cfg->port);
  return 0;
}

void sc__server_release(sidecar *sc) {
  if (sc->listener)
    evconnlistener_free(sc->listener);
  sc->listener = NULL;
  while (!TAILQ_EMPTY(&sc->conns))
    conn_free(TAILQ_FIRST(&sc->conns));
  if (sc->stall_ev)
    event_free(sc->stall_ev);
  sc->stall_ev = NULL;
}
