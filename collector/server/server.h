/*
 * collector/server/server.h - fnprof-collector's parts: the HTTP front
 * (http.c: limits, routing, error answers), authentication (auth.c: SLS v1
 * signatures, bearer keys), SLS PutLogs ingest (sls.c), OTLP ingest
 * (otlp.c), the query and profile API (api.c), and main.c (CLI, loop).
 * Everything runs on the one libevent thread; no locks.
 */
#ifndef FNPROF_COLLECTOR_SERVER_H
#define FNPROF_COLLECTOR_SERVER_H

#include <fnprof/export.h>
#include <fnprof/store.h>

#include "internal.h" /* export__json_str */

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>

#define SRV_MAX_KEYS 16

typedef struct srv_key {
  char *id;
  char *secret; /* never logged, never echoed */
} srv_key;

typedef struct srv_limits {
  size_t max_body_bytes;   /* wire bytes; evhttp refuses more with 413 */
  size_t max_raw_bytes;    /* after decompression (SLS bodyrawsize, OTLP) */
  size_t max_header_bytes; /* all request headers */
  int max_connections;
  int timeout_s;      /* idle/slow client timeout per connection */
  size_t max_logs;    /* per LogGroup / OTLP request */
  int64_t max_skew_s; /* Date vs server clock (SLS: 15 minutes) */
} srv_limits;

typedef struct srv_stats {
  uint64_t batches, records, duplicates, rejected, refused_connections;
} srv_stats;

typedef struct srv {
  struct event_base *base;
  struct evhttp *http;
  store *db;
  srv_key keys[SRV_MAX_KEYS];
  int n_keys;
  srv_limits lim;
  srv_stats stats;
  int live_connections;
  struct evconnlistener *listener;
  bool paused; /* listener disabled at max_connections */
  uint64_t next_request_id;
  char request_prefix[17];
  fnp_buf plain;       /* decompressed body, reused between requests */
  const char *web_dir; /* --web (argv, borrowed); NULL: the default */
} srv;

/* http.c */
int srv_http_start(srv *s, const char *host, int port, int *bound_port,
                   fnp_error *err);
/* Answers an SLS-style error: status, JSON errorCode/errorMessage,
 * x-log-requestid. Returns -1, so checks can `return srv_reply_error()`. */
int srv_reply_error(srv *s, struct evhttp_request *req, int status,
                    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void srv_reply(srv *s, struct evhttp_request *req, int status,
               const char *content_type, const void *body, size_t len);
/* The request body, linearized (evhttp already capped its size). */
const uint8_t *srv_body(struct evhttp_request *req, size_t *len);
const char *srv_header(struct evhttp_request *req, const char *name);

/* auth.c: 0 when authorized; otherwise the error was answered. resource is
 * the path as sent plus the decoded query. */
int srv_auth_sls(srv *s, struct evhttp_request *req, const char *resource,
                 const uint8_t *body, size_t len);
/* OTLP: an SLS v1 signature or "Authorization: Bearer ID:SECRET". */
int srv_auth_otlp(srv *s, struct evhttp_request *req, const char *resource,
                  const uint8_t *body, size_t len);
/* Builds "path[?k=v&...]" with query values %-decoded, for signing. */
int srv_resource(struct evhttp_request *req, const char *path, char *out,
                 size_t cap);
/* A query parameter, %-decoded into out; NULL when absent. */
const char *srv_query(struct evhttp_request *req, const char *key, char *out,
                      size_t cap);

/* sls.c, otlp.c, api.c */
/* signed_path: the path the client signed (path-style prefix removed). */
void srv_sls_putlogs(srv *s, struct evhttp_request *req, const char *project,
                     const char *logstore, const char *signed_path);
void srv_otlp(srv *s, struct evhttp_request *req, bool metrics);
void srv_api(srv *s, struct evhttp_request *req, const char *path);
/* api_ui.c: /api/ui/... (the page's JSON), called after api.c's access
 * check. static.c: the page's files; false when path is not one of them. */
void srv_api_ui(srv *s, struct evhttp_request *req, const char *path);
bool srv_static(srv *s, struct evhttp_request *req, const char *path);

int64_t srv_now_ns(void);
/* The reusable decompression buffer, emptied (capped at max_raw_bytes);
 * srv_plain_done releases it if one large request grew it. */
fnp_buf *srv_plain(srv *s);
void srv_plain_done(srv *s);

#endif
