/*
 * fnprof/store.h - the SQLite store behind fnprof-collector: batches of logs
 * and metrics (from SLS PutLogs or OTLP), profiles, and the JSON queries the
 * query API answers. A second public surface of the collector component
 * (export.h is the other): the server and `fnprof logs/metrics/profiles`
 * use it, the export library does not.
 *
 * Durability. One SQLite transaction per batch (store_begin ... commit) in
 * WAL mode; store_commit returns only after the commit, so a batch the
 * server acknowledged after it survives kill -9 (and power loss with
 * sync_full). A batch whose dedupe key was already stored is reported as a
 * duplicate and not stored again.
 *
 * Threads. A store is one SQLite connection: one thread at a time.
 * Ownership. store_open/store_close; JSON goes into caller-owned fnp_bufs.
 */
#ifndef FNPROF_STORE_H
#define FNPROF_STORE_H

#include <fnprof/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct store store;

typedef struct store_opts {
  int64_t max_age_ms; /* retention by age; 0 keeps forever */
  uint64_t max_bytes; /* retention by database size; 0: unlimited */
  bool sync_normal;   /* WAL synchronous=NORMAL: survives kill -9, not a
                         power cut; the default FULL survives both */
} store_opts;

EXPORT_API int store_open(const char *path, const store_opts *o, store **out,
                          fnp_error *err) FNP_MUST_CHECK;
EXPORT_API void store_close(store *s);

/* What a batch came with. Borrowed until store_commit/store_rollback. */
typedef struct store_batch {
  const char *dedupe_key; /* NULL: never treated as a duplicate */
  const char *kind;       /* "sls", "otlp-logs", "otlp-metrics" */
  const char *project;
  const char *logstore;
  const char *topic;
  const char *source;
  const export_field *tags;
  size_t n_tags;
  int64_t received_ns;
} store_batch;

/* Opens the batch's transaction. *duplicate set: nothing was opened, the
 * batch is already stored; acknowledge it and skip the adds. */
EXPORT_API int store_begin(store *s, const store_batch *b, bool *duplicate,
                           fnp_error *err) FNP_MUST_CHECK;
EXPORT_API int store_add_log(store *s, int64_t time_ns, const export_field *f,
                             size_t n, fnp_error *err) FNP_MUST_CHECK;
EXPORT_API int store_add_metric(store *s, int64_t time_ns, const char *name,
                                const char *unit, double value,
                                const export_field *f, size_t n,
                                fnp_error *err) FNP_MUST_CHECK;
EXPORT_API int store_commit(store *s, fnp_error *err) FNP_MUST_CHECK;
EXPORT_API void store_rollback(store *s);

typedef struct store_profile {
  const char *project;
  const char *instance;
  const char *kind; /* heap, spike-before, spike-after, ... */
  int64_t time_ns;
} store_profile;

/* Stores a profile; *id is its id. A profile with the same metadata and
 * bytes (a retried upload) is a duplicate: *duplicate, the first's id. */
EXPORT_API int store_put_profile(store *s, const store_profile *p,
                                 const void *data, size_t len, int64_t *id,
                                 bool *duplicate,
                                 fnp_error *err) FNP_MUST_CHECK;
/* The profile's bytes (malloc'd, caller frees); FNP_ENOTFOUND if none. */
EXPORT_API int store_get_profile(store *s, int64_t id, uint8_t **data,
                                 size_t *len, fnp_error *err) FNP_MUST_CHECK;

/* Filters; NULL / 0 means "any". Times are Unix ns, [from, to). */
typedef struct store_query {
  const char *project;
  const char *logstore;
  const char *request_id;
  const char *instance;
  const char *text; /* substring of any field (logs) */
  const char *name; /* metric name (metrics), kind (profiles) */
  int64_t from_ns, to_ns;
  int limit; /* 0: 100; capped at STORE_QUERY_MAX_LIMIT */
} store_query;

#define STORE_QUERY_MAX_LIMIT 10000

/* Append {"count":N,"records":[...]} (logs: fields, time_ns, project,
 * logstore, topic, source, tags, instance, request_id), {"count":N,
 * "points":[...]} (metrics) or {"count":N,"profiles":[...]} to json. */
EXPORT_API int store_query_logs(store *s, const store_query *q, fnp_buf *json,
                                fnp_error *err) FNP_MUST_CHECK;
EXPORT_API int store_query_metrics(store *s, const store_query *q,
                                   fnp_buf *json,
                                   fnp_error *err) FNP_MUST_CHECK;
EXPORT_API int store_list_profiles(store *s, const store_query *q,
                                   fnp_buf *json,
                                   fnp_error *err) FNP_MUST_CHECK;

/* Append {"count":N,"spikes":[{id, time_ns, instance, request_id, summary,
 * report (the agent's report: an object, or the string as sent if it is
 * not JSON), fields (the spike record's), before_profile_id,
 * after_profile_id, diff_profile_id (null when that profile was not
 * stored)}]}: the sidecar's spike records (field record=spike), oldest
 * first, filtered by instance and time. Only logs stored since log_marks
 * exists are found (see store.c). */
EXPORT_API int store_query_spikes(store *s, const store_query *q, fnp_buf *json,
                                  fnp_error *err) FNP_MUST_CHECK;

/* Applies the retention limits now; *deleted counts removed batches. */
EXPORT_API int store_retain(store *s, int64_t now_ns, uint64_t *deleted,
                            fnp_error *err) FNP_MUST_CHECK;

/* ---- the web page's queries (store_ui.c) ---- */

/* Appends {"instances":[{instance,first_ns,last_ns,records,invocations,
 * errors,spikes,project,logstore}],"count":N}, newest last-seen first.
 * q->to_ns (when nonzero) pages: only instances last seen before it;
 * q->limit as for the other queries. Scans the logs table (json_extract). */
EXPORT_API int store_ui_instances(store *s, const store_query *q, fnp_buf *json,
                                  fnp_error *err) FNP_MUST_CHECK;
/* Appends {"records":[{id,time_ns,request_id,fields:{}}],"count":N}: the
 * q->instance's log records whose "record" field is one of kinds ("a,b,c",
 * at most 8), in [q->from_ns, q->to_ns), oldest first or newest first.
 * FNP_EUSAGE without an instance or kinds. */
EXPORT_API int store_ui_records(store *s, const store_query *q,
                                const char *kinds, bool newest_first,
                                fnp_buf *json, fnp_error *err) FNP_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
