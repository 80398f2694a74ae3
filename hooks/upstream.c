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
 * Responses are parsed by http_msg.c (RFC 9112 framing, its bounds: 64
 * KiB of head, 16 MB of body); past them, or on anything that is not HTTP,
 * the request fails and the connection closes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "internal.h"

static void up_read_cb(evutil_socket_t fd, short what, void *arg);
static void up_write_cb(evutil_socket_t fd, short what, void *arg);

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
  sc__http_msg_clear(&u->resp);
  u->connecting = 0;
}

/* The request in flight is over: the connection is free again (or closed:
 * an error, Connection: close, or bytes past the response), then its call
 * hears how (resp NULL: it failed, err says why). The response is moved
 * out first: the callback may send a request on this very connection. */
static void up_finish(sc_upstream *u, int err) {
  sc_call *call = u->call;
  sc_http_msg r;
  sc__http_msg_move(&r, &u->resp);
  u->call = NULL;
  if (err != 0 || r.close_after || evbuffer_get_length(u->in) > 0)
    up_close(u);
  if (call) {
    call->up = NULL;
    sc__proxy_upstream_done(call, err == 0 ? &r : NULL, err);
  }
  sc__http_msg_clear(&r);
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

static void up_read_cb(evutil_socket_t fd, short what, void *arg) {
  sc_upstream *u = arg;
  (void)what;
  ssize_t r = sc__http_recv(fd, u->in);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r < 0 && errno == ENOMEM)
    return up_finish(u, -ENOMEM);
  if (u->call == NULL) { /* idle: the function closed it, or said nothing */
    up_close(u);
    return;
  }
  int rc = sc__http_parse(&u->resp, u->in);
  if (r <= 0 && rc == 0) /* closed: whole only when framed by the close */
    rc = sc__http_msg_eof_framed(&u->resp) ? 1 : -ECONNRESET;
  if (rc < 0)
    return up_finish(u, rc == -EFBIG ? -EFBIG : -EIO);
  if (rc > 0)
    up_finish(u, 0);
}

/* The request line, end-to-end headers and the body, in out. */
static int up_request(sc_upstream *u, const char *method, const char *uri,
                      struct evkeyvalq *headers, struct evbuffer *body) {
  char host[48];
  size_t n = 0;
  struct iovec line[4] = {
      {.iov_base = (char *)method, .iov_len = strlen(method)},
      {.iov_base = " ", .iov_len = 1},
      {.iov_base = (char *)uri, .iov_len = strlen(uri)},
      {.iov_base = " HTTP/1.1", .iov_len = 9}};
  if (sc__hdr_find(headers, "Host") == NULL) {
    memcpy(host, "Host: 127.0.0.1:", 16);
    n = 16 + fnp_i64_text(u->sc->inner_port, host + 16);
    memcpy(host + n, "\r\n", 2);
    n += 2;
  }
  if (sc__http_write_head(u->out, line, 4, headers, host, n) < 0 ||
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
    int rc = up_open(sc, u);
    if (rc < 0)
      return rc;
  }
  int rc = sc__http_msg_init(&u->resp, 0, strcmp(method, "HEAD") == 0);
  if (rc == 0)
    rc = up_request(u, method, uri, headers, body);
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
    TAILQ_INIT(&sc->upstream[i].resp.headers); /* cleared when not used */
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
