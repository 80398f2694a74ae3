/*
 * http_msg.c - one HTTP/1.x message (a request from the platform or a
 * response from the function) parsed incrementally from a connection's
 * input buffer, for server.c and upstream.c.
 *
 * RFC 9112: a start line, header lines (a line starting with whitespace
 * continues the previous one), an empty line, then a body framed by the
 * chunked transfer coding (extensions and trailers dropped), else
 * Content-Length, else (responses only) the close of the connection; a
 * request without either has none, and so have answers to HEAD, 204 and
 * 304. Interim 1xx responses are skipped. Bounds: 64 KiB of start line and
 * headers (SC_HEADERS_PARSER_MAX_BYTES), 16 MB of body (SC_BODY_MAX_BYTES);
 * past them, and on anything that is not HTTP, the message fails and the
 * connection is not read again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>

#include "internal.h"

enum msg_state {
  MSG_START,       /* the request or status line */
  MSG_HEADERS,     /* header lines */
  MSG_BODY_LENGTH, /* `left` bytes of body */
  MSG_CHUNK_SIZE,  /* a chunk-size line */
  MSG_CHUNK_DATA,  /* `left` bytes of chunk, then its CRLF */
  MSG_CHUNK_CRLF,
  MSG_TRAILERS, /* trailer lines until an empty one */
  MSG_BODY_EOF, /* everything until the connection closes */
};

int sc__http_msg_init(sc_http_msg *m, int request, int head_request) {
  memset(m, 0, sizeof(*m));
  TAILQ_INIT(&m->headers);
  m->request = request;
  m->head_request = head_request;
  m->body = evbuffer_new();
  return m->body ? 0 : -ENOMEM;
}

void sc__http_msg_clear(sc_http_msg *m) {
  sc__hdrs_clear(&m->headers);
  if (m->body)
    evbuffer_free(m->body);
  free(m->target);
  m->body = NULL;
  m->target = NULL;
}

void sc__http_msg_move(sc_http_msg *dst, sc_http_msg *src) {
  *dst = *src;
  TAILQ_INIT(&dst->headers);
  TAILQ_CONCAT(&dst->headers, &src->headers, next);
  src->body = NULL;
  src->target = NULL;
}

/* "HTTP/1.x": the minor version, or -1. */
static int version(const char *v) {
  if (strncmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1'))
    return -1;
  return v[7] - '0';
}

/* "HTTP/1.x CODE REASON" (by hand: sscanf was a visible part of a
 * request's user time). */
static int parse_status(sc_http_msg *m, const char *line) {
  const char *c = line + 9;
  if ((m->minor = version(line)) < 0 || line[8] != ' ' || c[0] < '1' ||
      c[0] > '9' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9' ||
      (c[3] != ' ' && c[3] != '\0'))
    return -EPROTO;
  m->code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
  size_t n = c[3] ? strnlen(c + 4, sizeof(m->reason) - 1) : 0;
  memcpy(m->reason, c + 4, n);
  m->reason[n] = '\0';
  return 0;
}

/* "METHOD TARGET HTTP/1.x" */
static int parse_request_line(sc_http_msg *m, const char *line) {
  const char *sp1 = strchr(line, ' ');
  const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  size_t mlen = sp1 ? (size_t)(sp1 - line) : 0;
  if (sp2 == NULL || mlen == 0 || mlen >= sizeof(m->method) || sp2 == sp1 + 1 ||
      strchr(sp2 + 1, ' ') || (m->minor = version(sp2 + 1)) < 0 ||
      sp2[9] != '\0')
    return -EPROTO;
  memcpy(m->method, line, mlen);
  m->method[mlen] = '\0';
  m->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
  return m->target ? 0 : -ENOMEM;
}

/* One header line of n bytes; a line starting with whitespace continues
 * the last. */
static int parse_header(sc_http_msg *m, const char *line, size_t n) {
  if (*line == ' ' || *line == '\t') {
    int rc = sc__hdr_extend_last(&m->headers, line, n);
    return rc == -EINVAL ? -EPROTO : rc;
  }
  const char *colon = memchr(line, ':', n);
  const char *space = strpbrk(line, " \t");
  if (colon == NULL || colon == line || (space && space < colon))
    return -EPROTO; /* no name, or whitespace before the colon */
  const char *v = colon + 1, *end = line + n;
  v += strspn(v, " \t");
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  return sc__hdr_add(&m->headers, line, (size_t)(colon - line), v,
                     (size_t)(end - v));
}

/* The head is in: is the connection kept, and how is the body framed? */
static int body_framing(sc_http_msg *m) {
  const char *te = NULL, *cl = NULL, *conn = NULL, *expect = NULL;
  struct evkeyval *kv;
  /* One pass for the four fields (the first of each name counts). */
  TAILQ_FOREACH(kv, &m->headers, next) {
    const char *k = kv->key, *v = kv->value;
    switch (k[0] | 0x20) {
    case 't':
      te = te == NULL && strcasecmp(k, "Transfer-Encoding") == 0 ? v : te;
      break;
    case 'c':
      if (strcasecmp(k, "Content-Length") == 0) {
        if (cl && strcmp(cl, v) != 0)
          return -EPROTO; /* two lengths that differ: which is it? */
        cl = v;
      } else if (conn == NULL && strcasecmp(k, "Connection") == 0) {
        conn = v;
      }
      break;
    case 'e':
      expect = expect == NULL && strcasecmp(k, "Expect") == 0 ? v : expect;
      break;
    }
  }
  m->close_after = m->minor == 0; /* HTTP/1.0 unless it says keep-alive */
  if (conn && strcasestr(conn, "close"))
    m->close_after = 1;
  else if (conn && strcasestr(conn, "keep-alive"))
    m->close_after = 0;
  m->expect_continue =
      m->request && expect && strcasecmp(expect, "100-continue") == 0;
  m->state = MSG_BODY_LENGTH;
  m->left = 0;
  if (!m->request &&
      (m->head_request || m->code == 204 || m->code == 304 || m->code < 200))
    return 0;
  if (te) { /* chunked must be the last coding; we decode no other */
    const char *last = strrchr(te, ',');
    last = last ? last + 1 : te;
    last += strspn(last, " \t");
    if (strncasecmp(last, "chunked", 7) != 0 ||
        last[7 + strspn(last + 7, " \t")] != '\0')
      return -EPROTO;
    m->state = MSG_CHUNK_SIZE;
    m->close_after |= cl != NULL; /* both: a smuggling attempt, or a bug */
    return 0;
  }
  if (cl) {
    char *end;
    errno = 0;
    long long n = strtoll(cl, &end, 10);
    if (errno || end == cl || *end || n < 0 || cl[0] == '+' || cl[0] == ' ')
      return -EPROTO;
    if (n > SC_BODY_MAX_BYTES)
      return -EFBIG;
    m->left = n;
  } else if (!m->request) {
    m->close_after = 1;
    m->state = MSG_BODY_EOF;
  }
  return 0;
}

/* Moves up to `want` body bytes (all: -1) from in to the body. */
static int take_body(sc_http_msg *m, struct evbuffer *in, int64_t want) {
  size_t have = evbuffer_get_length(in);
  size_t n = want < 0 || (uint64_t)want > have ? have : (size_t)want;
  if (evbuffer_get_length(m->body) + n > SC_BODY_MAX_BYTES)
    return -EFBIG;
  if (n > 0 && evbuffer_remove_buffer(in, m->body, n) != (int)n)
    return -ENOMEM;
  if (want > 0)
    m->left -= (int64_t)n;
  return 0;
}

/* The next line, ended by LF or CRLF: 1 with *line (*n bytes, NUL in
 * place of its end, in `in` itself) and *used (the bytes to drain once it
 * is handled), or 0 when none is whole yet. Read in place: a line copied
 * out was a malloc and a free, for every line of every message. (Input
 * buffers hold copies, sc__http_recv, so their bytes may be written.)
 * Lines of the head count against its bound; any line is bounded. */
static int take_line(sc_http_msg *m, struct evbuffer *in, char **line,
                     size_t *n, size_t *used) {
  size_t eol = 0;
  int head = m->state == MSG_START || m->state == MSG_HEADERS;
  struct evbuffer_ptr at =
      evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
  if (at.pos < 0)
    return evbuffer_get_length(in) > SC_HEADERS_PARSER_MAX_BYTES ? -EMSGSIZE
                                                                 : 0;
  *n = (size_t)at.pos;
  m->head_bytes += head ? *n + 2 : 0;
  if (m->head_bytes > SC_HEADERS_PARSER_MAX_BYTES ||
      *n > SC_HEADERS_PARSER_MAX_BYTES)
    return -EMSGSIZE;
  *line = (char *)evbuffer_pullup(in, (ssize_t)(*n + eol));
  if (*line == NULL)
    return -ENOMEM;
  /* A NUL or a bare CR: passed on, it could split a message. */
  if (memchr(*line, '\0', *n) || memchr(*line, '\r', *n))
    return -EPROTO;
  (*line)[*n] = '\0';
  *used = *n + eol;
  return 1;
}

/* Acts on one line (n bytes) read in state m->state. */
static int on_line(sc_http_msg *m, char *line, size_t n) {
  switch (m->state) {
  case MSG_START:
    if (m->request && *line == '\0' && m->head_bytes <= 2)
      return 0; /* an empty line before a request: allowed, skipped */
    m->state = MSG_HEADERS;
    return m->request ? parse_request_line(m, line) : parse_status(m, line);
  case MSG_HEADERS:
    if (*line != '\0')
      return parse_header(m, line, n);
    if (!m->request && m->code < 200 && m->code != 101) {
      sc__hdrs_clear(&m->headers); /* interim: the next one */
      m->state = MSG_START;
      return 0;
    }
    return body_framing(m);
  case MSG_CHUNK_SIZE: {
    char *end;
    errno = 0;
    long long n = strtoll(line, &end, 16);
    if (errno || end == line ||
        (*end && *end != ';' && *end != ' ' && *end != '\t') || n < 0 ||
        line[0] == '-' || line[0] == '+')
      return -EPROTO;
    if (n > SC_BODY_MAX_BYTES)
      return -EFBIG;
    m->left = n;
    m->state = n == 0 ? MSG_TRAILERS : MSG_CHUNK_DATA;
    return 0;
  }
  case MSG_CHUNK_CRLF:
    m->state = MSG_CHUNK_SIZE;
    return *line ? -EPROTO : 0;
  default: /* MSG_TRAILERS: dropped, as evhttp did */
    return *line == '\0' ? 1 : 0;
  }
}

int sc__http_parse(sc_http_msg *m, struct evbuffer *in) {
  char *line = NULL;
  size_t n = 0, used = 0;
  int rc;
  for (;;) {
    switch (m->state) {
    case MSG_BODY_LENGTH:
      if ((rc = take_body(m, in, m->left)) < 0)
        return rc;
      return m->left == 0;
    case MSG_CHUNK_DATA:
      if ((rc = take_body(m, in, m->left)) < 0)
        return rc;
      if (m->left > 0)
        return 0;
      m->state = MSG_CHUNK_CRLF;
      continue;
    case MSG_BODY_EOF:
      return take_body(m, in, -1); /* whole only at the close */
    default:
      break;
    }
    if ((rc = take_line(m, in, &line, &n, &used)) <= 0)
      return rc;
    rc = on_line(m, line, n);
    evbuffer_drain(in, used);
    if (rc != 0)
      return rc;
  }
}

ssize_t sc__http_recv(int fd, struct evbuffer *in) {
  /* Into the stack, then copied: reserving 64 KiB in the buffer for each
   * read made glibc allocate (and consolidate its fastbins for) a fresh
   * 64 KiB chunk per message; a message is usually a few hundred bytes. */
  char buf[SC_HTTP_READ_BYTES];
  ssize_t r = recv(fd, buf, sizeof(buf), 0);
  if (r > 0 && evbuffer_add(in, buf, (size_t)r) < 0) {
    errno = ENOMEM;
    return -1;
  }
  return r;
}

int sc__http_write_head(struct evbuffer *out, const struct iovec *line,
                        int n_line, const struct evkeyvalq *h, const char *tail,
                        size_t tail_len) {
  const struct evkeyval *kv;
  size_t need = tail_len + 4, at = 0;
  struct evbuffer_iovec v;
  int i;
  for (i = 0; i < n_line; i++)
    need += line[i].iov_len;
  TAILQ_FOREACH(kv, h, next) need += strlen(kv->key) + strlen(kv->value) + 4;
  /* One reserved piece, filled and committed: an evbuffer_add per name,
   * separator and value was a visible part of a request's user time. */
  if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) != 1 ||
      v.iov_len < need)
    return -ENOMEM;
  char *p = v.iov_base;
#define PUT(s, n) (memcpy(p + at, (s), (n)), at += (n))
  for (i = 0; i < n_line; i++)
    PUT(line[i].iov_base, line[i].iov_len);
  PUT("\r\n", 2);
  TAILQ_FOREACH(kv, h, next) {
    PUT(kv->key, strlen(kv->key));
    PUT(": ", 2);
    PUT(kv->value, strlen(kv->value));
    PUT("\r\n", 2);
  }
  PUT(tail, tail_len);
  PUT("\r\n", 2);
#undef PUT
  v.iov_len = at;
  return evbuffer_commit_space(out, &v, 1) == 0 ? 0 : -ENOMEM;
}

int sc__http_msg_in_body(const sc_http_msg *m) {
  return m->state >= MSG_BODY_LENGTH;
}

int sc__http_msg_eof_framed(const sc_http_msg *m) {
  return m->state == MSG_BODY_EOF;
}
