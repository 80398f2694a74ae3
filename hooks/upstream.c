/*
 * upstream.c - the sidecar's HTTP/1.1 client for the function's loopback
 * port: a pool of keep-alive connections, one request at a time on each,
 * the whole response buffered (proxy.c says why).
 *
 * Why not evhttp's client, as before: it stops and restarts reading a
 * connection around every request and every response (two epoll_ctl per
 * request even with libevent's changelist) and asks the kernel how much is
 * readable before each read (an ioctl): three system calls of about twelve
 * per proxied request, on a VM where each costs microseconds. Here a
 * connection's read event is added once when it opens and stays (it also
 * notices a function that closes an idle connection), a request is written
 * at once with one writev, and a response is read with plain recv.
 *
 * Responses follow RFC 9112: interim 1xx responses are skipped; a body is
 * framed by chunked transfer coding, else Content-Length, else the close
 * of the connection; HEAD answers and 204/304 have none. Bounds: 64 KiB of
 * status line and headers, 16 MB of body (the platform's); past them, or on
 * anything that is not HTTP, the request fails and the connection closes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "internal.h"

/* Bytes asked of recv at a time. */
#define UP_READ_BYTES 65536

enum up_state {
  UP_STATUS,      /* reading the status line */
  UP_HEADERS,     /* reading header lines */
  UP_BODY_LENGTH, /* `left` bytes of body */
  UP_CHUNK_SIZE,  /* a chunk-size line */
  UP_CHUNK_DATA,  /* `left` bytes of chunk, then its CRLF */
  UP_CHUNK_CRLF,
  UP_TRAILERS, /* trailer lines until an empty one */
  UP_BODY_EOF, /* everything until the connection closes */
};

static void up_read_cb(evutil_socket_t fd, short what, void *arg);
static void up_write_cb(evutil_socket_t fd, short what, void *arg);

static void resp_clear(sc_response *r) {
  evhttp_clear_headers(&r->headers);
  if (r->body)
    evbuffer_free(r->body);
  r->body = NULL;
  r->code = 0;
  r->reason[0] = '\0';
}

/* Closes the connection (the slot stays, free for a new one). */
static void up_close(sc_upstream *u) {
  if (u->rev)
    event_free(u->rev);
  if (u->wev)
    event_free(u->wev);
  u->rev = u->wev = NULL;
  if (u->fd >= 0)
    close(u->fd);
  u->fd = -1;
  if (u->in)
    evbuffer_drain(u->in, evbuffer_get_length(u->in));
  if (u->out)
    evbuffer_drain(u->out, evbuffer_get_length(u->out));
  resp_clear(&u->resp);
  u->connecting = 0;
}

/* The request in flight is over: the connection is free again (or closed:
 * an error, Connection: close, or bytes past the response), then its call
 * hears how (resp NULL: it failed, err says why). The response is moved
 * out first: the callback may send a request on this very connection. */
static void up_finish(sc_upstream *u, int err) {
  sc_call *call = u->call;
  sc_response r = {.code = u->resp.code, .body = u->resp.body};
  memcpy(r.reason, u->resp.reason, sizeof(r.reason));
  TAILQ_INIT(&r.headers);
  TAILQ_CONCAT(&r.headers, &u->resp.headers, next);
  u->resp.body = NULL;
  u->call = NULL;
  if (err != 0 || u->close_after || evbuffer_get_length(u->in) > 0)
    up_close(u);
  resp_clear(&u->resp);
  if (call) {
    call->up = NULL;
    sc__proxy_upstream_done(call, err == 0 ? &r : NULL, err);
  }
  resp_clear(&r);
}

static int up_open(sidecar *sc, sc_upstream *u) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)sc->inner_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  u->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u->fd < 0)
    return -errno;
  (void)setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  u->connecting = connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0;
  if (u->connecting && errno != EINPROGRESS) {
    int rc = -errno;
    up_close(u);
    return rc;
  }
  u->rev = event_new(sc->base, u->fd, EV_READ | EV_PERSIST, up_read_cb, u);
  u->wev = event_new(sc->base, u->fd, EV_WRITE, up_write_cb, u);
  if ((!u->in && !(u->in = evbuffer_new())) ||
      (!u->out && !(u->out = evbuffer_new())) || !u->rev || !u->wev ||
      event_add(u->rev, NULL) < 0) {
    up_close(u);
    return -ENOMEM;
  }
  return 0;
}

/* Writes what waits in out; the rest when the socket takes it. */
static void up_flush(sc_upstream *u) {
  if (!u->connecting && evbuffer_get_length(u->out) > 0 &&
      evbuffer_write(u->out, u->fd) < 0 && errno != EAGAIN && errno != EINTR)
    return up_finish(u, -EIO);
  if (u->connecting || evbuffer_get_length(u->out) > 0)
    event_add(u->wev, NULL);
}

static void up_write_cb(evutil_socket_t fd, short what, void *arg) {
  sc_upstream *u = arg;
  int err = 0;
  socklen_t len = sizeof(err);
  (void)what;
  if (u->connecting) {
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
      return up_finish(u, -ECONNREFUSED);
    u->connecting = 0;
  }
  up_flush(u);
}

/* "HTTP/1.x CODE REASON" (by hand: sscanf was a visible part of a
 * request's user time). */
static int parse_status(sc_upstream *u, const char *line) {
  if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return -1;
  const char *c = line + 9;
  if (c[0] < '1' || c[0] > '9' || c[1] < '0' || c[1] > '9' || c[2] < '0' ||
      c[2] > '9' || (c[3] != ' ' && c[3] != '\0'))
    return -1;
  u->resp.code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
  snprintf(u->resp.reason, sizeof(u->resp.reason), "%s", c[3] ? c + 4 : "");
  u->close_after = line[7] == '0'; /* HTTP/1.0 unless it says keep-alive */
  return 0;
}

/* One header line; a line starting with whitespace continues the last. */
static int parse_header(sc_upstream *u, char *line) {
  struct evkeyval *last = TAILQ_LAST(&u->resp.headers, evkeyvalq);
  if (*line == ' ' || *line == '\t') {
    if (last == NULL)
      return -1;
    size_t a = strlen(last->value), b = strlen(line);
    char *v = realloc(last->value, a + b + 1);
    if (v == NULL)
      return -1;
    memcpy(v + a, line, b + 1);
    last->value = v;
    return 0;
  }
  char *colon = strchr(line, ':');
  if (colon == NULL || colon == line)
    return -1;
  *colon = '\0';
  char *v = colon + 1, *end = v + strlen(v);
  v += strspn(v, " \t");
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    *--end = '\0';
  return evhttp_add_header(&u->resp.headers, line, v);
}

/* The headers are in: how is the body framed? */
static int body_framing(sc_upstream *u) {
  struct evkeyvalq *h = &u->resp.headers;
  const char *te = evhttp_find_header(h, "Transfer-Encoding");
  const char *cl = evhttp_find_header(h, "Content-Length");
  const char *conn = evhttp_find_header(h, "Connection");
  if (conn && strcasestr(conn, "close"))
    u->close_after = 1;
  else if (conn && strcasestr(conn, "keep-alive"))
    u->close_after = 0;
  if (u->head_request || u->resp.code == 204 || u->resp.code == 304) {
    u->left = 0;
    u->state = UP_BODY_LENGTH;
  } else if (te && strcasestr(te, "chunked")) {
    u->state = UP_CHUNK_SIZE;
  } else if (cl) {
    char *end;
    errno = 0;
    long long n = strtoll(cl, &end, 10);
    if (errno || end == cl || *end || n < 0)
      return -1;
    if (n > SC_BODY_MAX_BYTES)
      return -EFBIG;
    u->left = n;
    u->state = UP_BODY_LENGTH;
  } else {
    u->close_after = 1;
    u->state = UP_BODY_EOF;
  }
  return 0;
}

/* Moves up to `left` body bytes from in to the body; -EFBIG past 16 MB. */
static int take_body(sc_upstream *u, int64_t want) {
  size_t have = evbuffer_get_length(u->in);
  size_t n = want < 0 || (uint64_t)want > have ? have : (size_t)want;
  if (evbuffer_get_length(u->resp.body) + n > SC_BODY_MAX_BYTES)
    return -EFBIG;
  if (n > 0 && evbuffer_remove_buffer(u->in, u->resp.body, n) != (int)n)
    return -ENOMEM;
  if (want > 0)
    u->left -= (int64_t)n;
  return 0;
}

/* Reads a CRLF line (without it) into line: 1, or 0 when none is whole
 * yet. Lines of the head count against its bound; any line is bounded. */
static int take_line(sc_upstream *u, char **line) {
  size_t n;
  int head = u->state == UP_STATUS || u->state == UP_HEADERS;
  *line = evbuffer_readln(u->in, &n, EVBUFFER_EOL_CRLF);
  u->header_bytes += *line && head ? n + 2 : 0;
  if (u->header_bytes > SC_HEADERS_PARSER_MAX_BYTES ||
      (*line == NULL &&
       evbuffer_get_length(u->in) > SC_HEADERS_PARSER_MAX_BYTES)) {
    free(*line);
    *line = NULL;
    return -1;
  }
  return *line != NULL;
}

/* Runs the parser over what has arrived: 1 when the response is whole, 0
 * when more is needed, < 0 when it cannot be one. */
static int up_parse(sc_upstream *u) {
  char *line = NULL;
  int rc = 0;
  for (;;) {
    switch (u->state) {
    case UP_STATUS:
    case UP_HEADERS:
    case UP_CHUNK_SIZE:
    case UP_TRAILERS:
      if ((rc = take_line(u, &line)) <= 0)
        return rc;
      break;
    case UP_BODY_LENGTH:
      if ((rc = take_body(u, u->left)) < 0)
        return rc;
      return u->left == 0;
    case UP_CHUNK_DATA:
      if ((rc = take_body(u, u->left)) < 0)
        return rc;
      if (u->left > 0)
        return 0;
      u->state = UP_CHUNK_CRLF;
      continue;
    case UP_CHUNK_CRLF:
      if ((rc = take_line(u, &line)) <= 0)
        return rc;
      rc = *line ? -1 : 0;
      free(line);
      if (rc < 0)
        return rc;
      u->state = UP_CHUNK_SIZE;
      continue;
    case UP_BODY_EOF:
      return take_body(u, -1); /* whole only at the close */
    }
    switch (u->state) {
    case UP_STATUS:
      rc = parse_status(u, line);
      u->state = UP_HEADERS;
      break;
    case UP_HEADERS:
      if (*line != '\0') {
        rc = parse_header(u, line);
      } else if (u->resp.code < 200 && u->resp.code != 101) {
        evhttp_clear_headers(&u->resp.headers); /* interim: the next one */
        u->state = UP_STATUS;
      } else {
        rc = body_framing(u);
      }
      break;
    case UP_CHUNK_SIZE: {
      char *end;
      errno = 0;
      long long n = strtoll(line, &end, 16);
      rc = errno || end == line || (*end && *end != ';' && *end != ' ') || n < 0
               ? -1
           : n > SC_BODY_MAX_BYTES ? -EFBIG
                                   : 0;
      u->left = n;
      u->state = n == 0 ? UP_TRAILERS : UP_CHUNK_DATA;
      break;
    }
    default: /* UP_TRAILERS: dropped, as evhttp did */
      if (*line == '\0') {
        free(line);
        return 1;
      }
      break;
    }
    free(line);
    line = NULL;
    if (rc < 0)
      return rc;
  }
}

static void up_read_cb(evutil_socket_t fd, short what, void *arg) {
  sc_upstream *u = arg;
  struct evbuffer_iovec v;
  (void)what;
  if (evbuffer_reserve_space(u->in, UP_READ_BYTES, &v, 1) < 1)
    return up_finish(u, -ENOMEM);
  ssize_t r = recv(fd, v.iov_base, v.iov_len, 0);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r > 0) {
    v.iov_len = (size_t)r;
    evbuffer_commit_space(u->in, &v, 1);
  }
  if (u->call == NULL) { /* idle: the function closed it, or said nothing */
    up_close(u);
    return;
  }
  int rc = up_parse(u);
  if (r <= 0 && rc == 0) /* closed: whole only when framed by the close */
    rc = u->state == UP_BODY_EOF ? 1 : -ECONNRESET;
  if (rc < 0)
    return up_finish(u, rc == -EFBIG ? -EFBIG : -EIO);
  if (rc > 0)
    up_finish(u, 0);
}

/* The request line, end-to-end headers and the body, in out. */
static int up_request(sc_upstream *u, const char *method, const char *uri,
                      struct evkeyvalq *headers, struct evbuffer *body) {
  struct evkeyval *kv;
  int host = 0, rc = 0;
  /* evbuffer_add, not printf: formatting was a visible part of a request's
   * user time. */
  rc |= evbuffer_add(u->out, method, strlen(method));
  rc |= evbuffer_add(u->out, " ", 1);
  rc |= evbuffer_add(u->out, uri, strlen(uri));
  rc |= evbuffer_add(u->out, " HTTP/1.1\r\n", 11);
  TAILQ_FOREACH(kv, headers, next) {
    host |= strcasecmp(kv->key, "Host") == 0;
    rc |= evbuffer_add(u->out, kv->key, strlen(kv->key));
    rc |= evbuffer_add(u->out, ": ", 2);
    rc |= evbuffer_add(u->out, kv->value, strlen(kv->value));
    rc |= evbuffer_add(u->out, "\r\n", 2);
  }
  if (rc != 0)
    return -ENOMEM;
  if (!host && evbuffer_add_printf(u->out, "Host: 127.0.0.1:%d\r\n",
                                   u->sc->inner_port) < 0)
    return -ENOMEM;
  if (evbuffer_add(u->out, "\r\n", 2) < 0 ||
      evbuffer_add_buffer(u->out, body) < 0)
    return -ENOMEM;
  return 0;
}

int sc__upstream_send(sc_call *call, const char *method, const char *uri,
                      struct evkeyvalq *headers, struct evbuffer *body) {
  sidecar *sc = call->sc;
  sc_upstream *u = NULL, *fresh = NULL;
  for (size_t i = 0; i < SC_UPSTREAM_MAX && !u; i++) {
    sc_upstream *s = &sc->upstream[i];
    if (s->fd >= 0 && s->call == NULL)
      u = s; /* an idle keep-alive connection */
    else if (s->fd < 0 && s->call == NULL && !fresh)
      fresh = s;
  }
  if (u == NULL && fresh == NULL)
    return -EBUSY;
  if (u == NULL) {
    u = fresh;
    u->sc = sc;
    int rc = up_open(sc, u);
    if (rc < 0)
      return rc;
  }
  u->resp.body = evbuffer_new();
  if (u->resp.body == NULL)
    return -ENOMEM;
  TAILQ_INIT(&u->resp.headers);
  u->state = UP_STATUS;
  u->header_bytes = 0;
  u->close_after = 0;
  u->head_request = strcmp(method, "HEAD") == 0;
  int rc = up_request(u, method, uri, headers, body);
  if (rc < 0) {
    up_close(u);
    return rc;
  }
  u->call = call;
  call->up = u;
  up_flush(u); /* may finish the call at once (a refused connection) */
  return 0;
}

void sc__upstream_init(sidecar *sc) {
  for (size_t i = 0; i < SC_UPSTREAM_MAX; i++) {
    memset(&sc->upstream[i], 0, sizeof(sc->upstream[i]));
    sc->upstream[i].fd = -1;
    sc->upstream[i].sc = sc;
    TAILQ_INIT(&sc->upstream[i].resp.headers);
  }
}

void sc__upstream_release(sidecar *sc) {
  for (size_t i = 0; i < SC_UPSTREAM_MAX; i++) {
    sc_upstream *u = &sc->upstream[i];
    if (u->call)
      u->call->up = NULL; /* not called back: the sidecar is going away */
    u->call = NULL;
    up_close(u);
    if (u->in)
      evbuffer_free(u->in);
    if (u->out)
      evbuffer_free(u->out);
    u->in = u->out = NULL;
  }
}
