/* collector/store_internal.h - the store object shared by store.c,
 * store_query.c and store_profile.c. */
#ifndef FNPROF_COLLECTOR_STORE_INTERNAL_H
#define FNPROF_COLLECTOR_STORE_INTERNAL_H

#include "internal.h"

#include <fnprof/store.h>
#include <sqlite3.h>

enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_FIND_BATCH,
  STMT_ADD_BATCH,
  STMT_COUNT_BATCH,
  STMT_ADD_LOG,
  STMT_ADD_METRIC,
  STMT_ADD_MARK,
  STMT_ADD_BLOOM,
  STMT_ADD_SPAN,
  STMT_COUNT
};

/* One log row of the open batch, for its span (store_span.c). */
typedef struct store_span_row {
  int64_t key; /* store__key of the instance, when has_key */
  int64_t id, time_ns;
  bool has_key;
} store_span_row;

struct store {
  sqlite3 *db;
  sqlite3_stmt *st[STMT_COUNT];
  store_opts opts;
  bool in_batch;
  int64_t batch_id;
  int64_t n_records;
  int64_t last_log_id, last_metric_id; /* of the open batch */
  int64_t first_log_id;                /* of the open batch; 0: none yet */
  int64_t *req_keys;                   /* the open batch's request keys */
  size_t n_req_keys, cap_req_keys;
  store_span_row *span_rows; /* the open batch's log rows */
  size_t n_span_rows, cap_span_rows;
  const char *tag_instance; /* borrowed from the open batch's tags */
  fnp_buf scratch;          /* JSON of one record's fields */
  uint64_t rollback_failures;
};

/* Room for item n in *items (*cap items of size bytes): doubles from 1024,
 * FNP_ETOOBIG past max_items, -ENOMEM. For the open batch's arrays. */
int store__grow(void **items, size_t *cap, size_t n, size_t size,
                size_t max_items);

/* Runs a schema migration (its own BEGIN ... COMMIT); rolls back on error. */
int store__migrate(store *s, const char *sql, const char *what, fnp_error *err);

/* The 64-bit key indexed in place of an instance or request id string. */
int64_t store__key(const char *s);

/* store_bloom.c: per-batch request-id filters. add: during a batch;
 * flush: before its commit (writes the batch_requests row, if any keys);
 * register: the fnprof_bloom_has SQL function; migrate: at open. */
int store__bloom_add(store *s, int64_t key);
int store__bloom_flush(store *s, fnp_error *err);
int store__bloom_register(store *s, fnp_error *err);
int store__bloom_migrate(store *s, fnp_error *err);

/* store_span.c: per-(batch, instance) spans of log rows, in place of
 * per-row time and instance indexes. add: each log row of the open batch;
 * flush: at commit; migrate: at open, for databases with the indexes. */
int store__span_add(store *s, const char *instance, int64_t id,
                    int64_t time_ns);
int store__span_flush(store *s, fnp_error *err);
int store__span_migrate(store *s, fnp_error *err);

/* Which spans a query reads: an instance's or all, in [from_ns, to_ns)
 * (to_ns 0: no end), oldest or newest rows first. */
typedef struct store_span_scope {
  bool has_instance;
  int64_t instance_key;
  int64_t from_ns, to_ns;
  bool newest_first;
} store_span_scope;

/* A time T such that the scope holds at least `target` rows at or before T
 * (at or after T, newest first); *complete: T leaves no span out. */
int store__span_bound(store *s, const store_span_scope *sc, int64_t target,
                      int64_t *bound, bool *complete, fnp_error *err);

/* An ordered query of at most `limit` rows over the scope's spans: run(ctx,
 * bound, json, &count, err) appends its answer for rows up to bound (NULL:
 * no bound) and counts them; it is run again, with json cut back, while a
 * bound left rows out and too few were found. */
typedef int (*store_span_run)(void *ctx, const int64_t *bound, fnp_buf *json,
                              int *count, fnp_error *err);
int store__span_limited(store *s, const store_span_scope *sc, int limit,
                        fnp_buf *json, store_span_run run, void *ctx,
                        fnp_error *err);

/* FROM fragment: the spans k, and for each its rows l of its instance. */
#define STORE_SPAN_ROWS                                                        \
  " log_spans k CROSS JOIN logs l NOT INDEXED"                                 \
  " ON l.id BETWEEN k.first_log_id AND k.last_log_id"                          \
  " AND l.instance_key IS k.instance_key"

/* Fills err from SQLite's last error on s->db; returns the code. */
int store__sqlite_fail(store *s, fnp_error *err, const char *what);

#endif
