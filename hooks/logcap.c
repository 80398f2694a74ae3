/*
 * logcap.c - the function's stdout and stderr, line by line. Each line gets
 * a nanosecond timestamp when read, goes through unchanged to the sidecar's
 * stdout (the platform's own log collection keeps working), and is buffered
 * for export with the request it belongs to: the id in the function's own
 * `time requestId [LEVEL] message` prefix when there is one, else the one
 * invocation in flight. With several in flight and no id the line is left
 * unattributed rather than guessed (counted in the instance metrics).
 * The sidecar's own platform lines (FC Invoke Start/End...) go the same way,
 * held back briefly so that one write carries an invocation's three.
 *
 * A function writes its lines before its response, so the pipes become
 * readable before the response does. The pipes' events outrank the
 * connections' (SC_PRIO_LOGS), so the loop reads them first whenever both
 * are ready, and an invocation answered by the function needs no poll()
 * of the pipes before its End line (a system call per invocation). A
 * function that keeps its pipes busy would starve the connections that
 * way: after LOG_STREAK_MAX reads of the pipes without a response in
 * between, they go back to the connections' priority (and ends drain
 * with poll() again) until the next response.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define READ_CHUNK_BYTES 65536
/* How long a platform line may wait for company: a Start line waits for
 * its invocation's End, and while several invocations run an End waits
 * for the others' lines, unless that takes longer than this (the platform
 * shows the lines later by at most this much). */
#define SC_OUT_HOLD_MS 20
/* Held lines past this are written at once (a burst of invocations). */
#define OUT_HELD_MAX_BYTES 65536
/* Reads of the pipes in a row, without a response from the function in
 * between, before the pipes stop outranking the connections: a bound on
 * how many loop turns a chatty function can delay requests by. */
#define LOG_STREAK_MAX 32

/* Writes all of it; the platform reads our stdout, so a short write is
 * retried, and a failure is counted (it cannot be reported on stdout). */
static uint64_t passthrough_failures;

static void out_writev(struct iovec *iov, int n_iov) {
  ssize_t w;
  while (n_iov > 0) {
    if (iov->iov_len == 0) {
      iov++, n_iov--;
      continue;
    }
    w = writev(STDOUT_FILENO, iov, n_iov);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      passthrough_failures++;
      return;
    }
    for (; n_iov > 0 && (size_t)w >= iov->iov_len; iov++, n_iov--)
      w -= (ssize_t)iov->iov_len;
    if (n_iov > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
}

static void out_write(const void *p, size_t n) {
  struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
  out_writev(&iov, 1);
}

/* The held platform lines, then the function's bytes: one system call
 * where a flush and a write were two. */
static void out_after_held(sidecar *sc, const void *p, size_t n) {
  struct iovec iov[2] = {
      {.iov_base = sc->out_held.data, .iov_len = sc->out_held.len},
      {.iov_base = (void *)p, .iov_len = n}};
  out_writev(iov, 2);
  fnp_buf_reset(&sc->out_held);
  if (sc->out_ev)
    evtimer_del(sc->out_ev);
}

int sc__logcap_parse_reqid(const char *line, size_t n, const char **id,
                           size_t *idlen) {
  const char *p = line, *end = line + n, *t1;
  size_t len;
  /* token 1: the time; token 2: the id; token 3: [LEVEL] */
  p = memchr(p, ' ', n);
  if (p == NULL || p == line)
    return -1;
  while (p < end && *p == ' ')
    p++;
  t1 = p;
  while (p < end && *p != ' ')
    p++;
  len = (size_t)(p - t1);
  if (len == 0 || len >= SC_REQID_MAX || p >= end)
    return -1;
  while (p < end && *p == ' ')
    p++;
  if (p >= end || *p != '[')
    return -1;
  if (memchr(p, ']', (size_t)(end - p)) == NULL)
    return -1;
  *id = t1;
  *idlen = len;
  return 0;
}

static void add_record(sidecar *sc, const char *stream, int64_t ts,
                       const char *id, size_t idlen, const char *line, size_t n,
                       int partial) {
  size_t mark;
  /* Appends straight into the records (no printf, no buffer of its own):
   * a record per line, several per request. */
  fnp_buf *b = sc__records_open(&sc->records, &mark);
  int rc = fnp_buf_append_str(b, "{\"kind\":\"log\",\"time_ns\":");
  rc |= fnp_buf_append_i64(b, ts);
  rc |= fnp_buf_append_str(b, ",\"instance\":");
  rc |= sc__json_str(b, sc->cfg->instance_id, strlen(sc->cfg->instance_id));
  rc |= fnp_buf_append_str(b, ",\"stream\":\"");
  rc |= fnp_buf_append_str(b, stream);
  rc |= fnp_buf_append_str(b, "\",\"request_id\":");
  rc |= sc__json_str(b, id, idlen);
  rc |= fnp_buf_append(b, ",\"message\":", 11);
  rc |= sc__json_str(b, line, n);
  rc |= fnp_buf_append_str(b, partial ? ",\"partial\":true}" : "}");
  /* A record that cannot be encoded (or kept) is taken back and counted. */
  (void)sc__records_close(&sc->records, mark, rc);
}

/* One line from the function (without its newline). */
static void function_line(sidecar *sc, sc_logstream *s, const char *line,
                          size_t n, int partial) {
  const char *id = NULL;
  size_t idlen = 0;
  int64_t ts = sc__realtime_ns();
  if (sc__logcap_parse_reqid(line, n, &id, &idlen) < 0) {
    id = sc__call_single_id(sc);
    idlen = id ? strlen(id) : 0;
    if (id == NULL) {
      id = "";
      if (sc->n_calls > 1)
        sc->stats.log_unattributed++;
    }
  }
  sc->stats.log_lines++;
  add_record(sc, s->name, ts, id, idlen, line, n, partial);
}

/* Splits s->line into lines; a line longer than SC_LINE_MAX_BYTES is cut
 * into pieces marked partial. Bytes are passed through as they arrive. */
static void split_lines(sidecar *sc, sc_logstream *s, int at_eof) {
  uint8_t *p = s->line.data, *nl;
  size_t left = s->line.len, n;
  while (left > 0) {
    nl = memchr(p, '\n', left);
    if (nl == NULL && left < SC_LINE_MAX_BYTES && !at_eof)
      break;
    n = nl ? (size_t)(nl - p)
           : (left < SC_LINE_MAX_BYTES ? left : SC_LINE_MAX_BYTES);
    function_line(sc, s, (const char *)p, n, nl == NULL && !at_eof);
    n += nl ? 1 : 0;
    p += n;
    left -= n;
  }
  memmove(s->line.data, p, left);
  s->line.len = left;
}

/* Reads until EAGAIN or EOF; or, when !to_eof, until a short read (a
 * pipe gives what it holds, so a short read emptied it: the EAGAIN read
 * after it would be a system call for nothing). */
static void stream_read(sidecar *sc, sc_logstream *s, int to_eof) {
  ssize_t n = READ_CHUNK_BYTES;
  while (!s->eof && (to_eof || n == READ_CHUNK_BYTES)) {
    if (fnp_buf_reserve(&s->line, READ_CHUNK_BYTES) < 0)
      break; /* cannot happen: split_lines keeps len < SC_LINE_MAX_BYTES */
    n = read(s->fd, s->line.data + s->line.len, READ_CHUNK_BYTES);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break; /* EAGAIN: all read */
    if (n == 0) {
      s->eof = 1;
      event_del(s->ev);
    } else {
      /* held platform lines came first */
      out_after_held(sc, s->line.data + s->line.len, (size_t)n);
      s->line.len += (size_t)n;
    }
    split_lines(sc, s, s->eof);
  }
}

/* The pipes outrank the connections, or not (see the top). */
static void logs_urgent(sidecar *sc, int on) {
  int i, ok = 1;
  for (i = 0; i < 2; i++)
    if (sc->streams[i].ev &&
        event_priority_set(sc->streams[i].ev,
                           on ? SC_PRIO_LOGS : SC_PRIO_DEFAULT) < 0)
      ok = 0; /* it is active right now: try again at the next response */
  sc->logs_urgent = on && ok;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  sc_logstream *s = arg;
  sidecar *sc = s->sc;
  (void)fd;
  (void)what;
  if (sc->logs_urgent && ++sc->logs_streak > LOG_STREAK_MAX)
    logs_urgent(sc, 0);
  if (!sc->logs_urgent) /* also a pipe that was queued when the rest dropped */
    (void)event_priority_set(s->ev, SC_PRIO_DEFAULT);
  stream_read(sc, s, 0);
}

void sc__logcap_answered(sidecar *sc) {
  if (!sc->logs_urgent)
    sc__logcap_drain(sc);
  sc->logs_streak = 0;
  if (!sc->logs_urgent)
    logs_urgent(sc, 1);
}

/* One poll() for both pipes, and a read only of those with something in
 * them (usually neither). */
void sc__logcap_drain(sidecar *sc) {
  struct pollfd pf[2];
  int i, n;
  for (i = 0; i < 2; i++) {
    pf[i].fd = sc->streams[i].eof ? -1 : sc->streams[i].fd;
    pf[i].events = POLLIN;
    pf[i].revents = 0;
  }
  n = poll(pf, 2, 0);
  for (i = 0; i < 2; i++)
    if (sc->streams[i].fd >= 0 && (n < 0 || pf[i].revents != 0))
      stream_read(sc, &sc->streams[i], 1);
}

void sc__logcap_flush(sidecar *sc) {
  if (sc->out_held.len > 0)
    out_after_held(sc, NULL, 0);
}

static void out_hold_expired(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sc__logcap_flush(arg);
}

/* Holds a platform line (with its newline) for the next flush; written at
 * once when it cannot wait (no timer yet, too much held, no memory). */
static void out_hold(sidecar *sc, const char *line, size_t n) {
  struct timeval tv = {0, SC_OUT_HOLD_MS * 1000};
  if (sc->out_ev == NULL || sc->out_held.len + n > OUT_HELD_MAX_BYTES ||
      fnp_buf_append(&sc->out_held, line, n) < 0) {
    sc__logcap_flush(sc);
    out_write(line, n);
    return;
  }
  if (!evtimer_pending(sc->out_ev, NULL) && evtimer_add(sc->out_ev, &tv) < 0)
    sc__logcap_flush(sc);
}

int sc__logcap_start(sidecar *sc, fnp_error *err) {
  static const char *const NAMES[2] = {"stdout", "stderr"};
  int fds[2] = {sc->child.out_fd, sc->child.err_fd}, i;
  fnp_buf_init(&sc->out_held, OUT_HELD_MAX_BYTES);
  sc->out_ev = evtimer_new(sc->base, out_hold_expired, sc);
  if (sc->out_ev == NULL)
    return fnp_fail(err, -ENOMEM, "logcap: out of memory");
  for (i = 0; i < 2; i++) {
    sc_logstream *s = &sc->streams[i];
    s->sc = sc;
    s->fd = fds[i];
    s->name = NAMES[i];
    fnp_buf_init(&s->line, SC_LINE_MAX_BYTES + READ_CHUNK_BYTES);
    s->ev = event_new(sc->base, s->fd, EV_READ | EV_PERSIST, on_readable, s);
    if (s->ev == NULL || event_add(s->ev, NULL) < 0)
      return fnp_fail(err, -ENOMEM, "logcap: cannot watch %s", NAMES[i]);
  }
  logs_urgent(sc, 1);
  return 0;
}

void sc__logcap_stop(sidecar *sc) {
  int i;
  sc__logcap_flush(sc);
  if (sc->out_ev)
    event_free(sc->out_ev);
  sc->out_ev = NULL;
  fnp_buf_destroy(&sc->out_held);
  for (i = 0; i < 2; i++) {
    sc_logstream *s = &sc->streams[i];
    if (s->ev)
      event_free(s->ev);
    s->ev = NULL;
    if (s->fd >= 0)
      close(s->fd);
    s->fd = -1;
    fnp_buf_destroy(&s->line);
  }
}

void sc__log_platform_line(sidecar *sc, const char *request_id, char *line,
                           size_t n) {
  add_record(sc, "platform", sc__realtime_ns(), request_id, strlen(request_id),
             line, n, 0);
  line[n] = '\n'; /* the caller left room for it */
  out_hold(sc, line, n + 1);
}
