/*
 * collector/server/server.h - fnprof-collector's parts: the HTTP front
 * (http.c: limits, routing, error answers), authentication (auth.c: SLS v1
 * signatures, bearer keys), SLS PutLogs ingest (sls.c), OTLP ingest
 * (otlp.c), the query and profile API (api.c), the store's writer thread
 * (writer.c: group commit of SLS batches) and main.c (CLI, loop).
 * Everything but the writer runs on the one libevent thread; the store is
 * shared with the writer under store_lock (see writer.c).
 */
#ifndef FNPROF_COLLECTOR_SERVER_H
#define FNPROF_COLLECTOR_SERVER_H

#include <fnprof/export.h>
#include <fnprof/store.h>

#include "internal.h" /* export__json_str */

#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
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

typedef struct srv_writer srv_writer;

typedef struct srv {
  struct event_base *base;
  struct evhttp *http;
  store *db;                  /* under store_lock: the writer uses it too */
  pthread_mutex_t store_lock; /* held for each use of db */
  srv_writer *writer;         /* writer.c */
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

/* One decoded SLS PutLogs request on its way through the writer thread:
 * filled by the loop (sls.c), stored by the writer, answered by the loop. */
typedef struct srv_job {
  struct srv_job *next;
  struct evhttp_request *req;
  fnp_buf plain; /* the decompressed body the group points into */
  export_sls_group *group;
  char project[128], logstore[128];
  int64_t received_ns;
  int rc; /* the writer's result: 0 stored (or duplicate), or an error */
  bool duplicate;
  fnp_error err;
} srv_job;

/* writer.c. start: before the loop runs; stop: after it, answers what was
 * stored. new/free: loop thread, from a small pool. submit: loop thread;
 * the job is the writer's until it comes back to srv_sls_answer. */
int srv_writer_start(srv *s, fnp_error *err);
void srv_writer_stop(srv *s);
srv_job *srv_job_new(srv *s);
void srv_job_free(srv *s, srv_job *j);
void srv_writer_submit(srv *s, srv_job *j);
/* sls.c: store: the writer thread, under store_lock, in an open group;
 * answer: the loop thread, once the group committed (or failed). */
int srv_sls_store(srv *s, srv_job *j);
void srv_sls_answer(srv *s, srv_job *j);

/* Takes and releases store_lock around the loop thread's uses of s->db. */
void srv_store_lock(srv *s);
void srv_store_unlock(srv *s);

int64_t srv_now_ns(void);
/* The reusable decompression buffer, emptied (capped at max_raw_bytes);
 * srv_plain_done releases it if one large request grew it. */
fnp_buf *srv_plain(srv *s);
void srv_plain_done(srv *s);

#endif
