/*
 * Per-batch log spans, in place of B-tree indexes on logs.time_ns and
 * logs(instance_key, time_ns). Each index took one entry per row, and
 * each was ~12% of the store's CPU at ingest; a batch's rows are already
 * contiguous by id, so one row per (batch, instance) in log_spans --
 * (first_log_id, last_log_id, min_time_ns, max_time_ns, n_rows) -- says
 * where an instance's rows of that batch are and which times they cover.
 * Queries take the spans that overlap their time window (and instance),
 * then read those spans' id ranges of logs. Like PostgreSQL's BRIN, but
 * exact per instance.
 *
 * Ordered, limited queries ("the first 100 rows by time") would read every
 * span's rows; store__span_bound gives a time T such that the window's
 * rows up to T number at least a target, so the query can stop at T (see
 * its comment for why that is exact).
 */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As the Bloom filter's keys: a batch is at most 1M logs. */
#define SPAN_MAX_ROWS (1u << 21)

int store__span_add(store *s, const char *instance, int64_t id,
                    int64_t time_ns) {
  int rc = store__grow((void **)&s->span_rows, &s->cap_span_rows,
                       s->n_span_rows, sizeof *s->span_rows, SPAN_MAX_ROWS);
  if (rc < 0)
    return rc;
  store_span_row *r = &s->span_rows[s->n_span_rows++];
  r->has_key = instance != NULL;
  r->key = instance ? store__key(instance) : 0;
  r->id = id;
  r->time_ns = time_ns;
  return 0;
}

static int same_instance(const store_span_row *a, const store_span_row *b) {
  return a->has_key == b->has_key && a->key == b->key;
}

static int by_instance_then_id(const void *pa, const void *pb) {
  const store_span_row *a = pa, *b = pb;
  if (a->has_key != b->has_key)
    return a->has_key ? 1 : -1;
  if (a->key != b->key)
    return a->key < b->key ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static int insert_span(store *s, const store_span_row *r, size_t n,
                       fnp_error *err) {
  int64_t lo = r[0].time_ns, hi = r[0].time_ns;
  for (size_t i = 1; i < n; i++) {
    lo = r[i].time_ns < lo ? r[i].time_ns : lo;
    hi = r[i].time_ns > hi ? r[i].time_ns : hi;
  }
  sqlite3_stmt *st = s->st[STMT_ADD_SPAN];
  sqlite3_bind_int64(st, 1, s->batch_id);
  if (r[0].has_key)
    sqlite3_bind_int64(st, 2, r[0].key);
  else
    sqlite3_bind_null(st, 2);
  sqlite3_bind_int64(st, 3, r[0].id);
  sqlite3_bind_int64(st, 4, r[n - 1].id);
  sqlite3_bind_int64(st, 5, lo);
  sqlite3_bind_int64(st, 6, hi);
  sqlite3_bind_int64(st, 7, (int64_t)n);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : store__sqlite_fail(s, err, "insert span");
}

int store__span_flush(store *s, fnp_error *err) {
  store_span_row *r = s->span_rows;
  size_t n = s->n_span_rows, i, start;
  int rc = 0;
  s->n_span_rows = 0;
  /* Rows arrive in id order; one instance per batch (the usual case from
   * a sidecar or an SDK) needs no sort. */
  for (i = 1; i < n && same_instance(&r[i], &r[0]); i++)
    ;
  if (i < n)
    qsort(r, n, sizeof *r, by_instance_then_id);
  for (start = 0, i = 1; i <= n && rc == 0; i++)
    if (i == n || !same_instance(&r[i], &r[start])) {
      rc = insert_span(s, &r[start], i - start, err);
      start = i;
    }
  return rc;
}

/* A database from before the spans has logs and no spans (and may have the
 * two per-row indexes): its logs get their spans, and the indexes, which
 * every insert paid for, go. Once any span exists this is a no-op. */
int store__span_migrate(store *s, fnp_error *err) {
  static const char *const SQL =
      "BEGIN IMMEDIATE;"
      "INSERT INTO log_spans(batch_id, instance_key, first_log_id,"
      " last_log_id, min_time_ns, max_time_ns, n_rows)"
      " SELECT batch_id, instance_key, min(id), max(id), min(time_ns),"
      " max(time_ns), count(*) FROM logs"
      " WHERE NOT EXISTS (SELECT 1 FROM log_spans)"
      " GROUP BY batch_id, instance_key;"
      "DROP INDEX IF EXISTS logs_time;"
      "DROP INDEX IF EXISTS logs_instance;"
      "COMMIT;";
  return store__migrate(s, SQL, "migrate log indexes", err);
}

/*
 * Oldest first: walk the window's spans by min_time_ns and stop once their
 * rows reach `target`; T is the largest max_time_ns walked. Those rows all
 * lie at or before T, so the window holds at least `target` rows up to T,
 * and every row up to T is in a span whose min_time_ns <= T. A query that
 * keeps only rows (and spans) up to T and still finds its `limit` rows
 * (limit <= target) has found exactly the first `limit` of the whole
 * window; with row filters it may find fewer, and then asks again with a
 * larger target. Newest first mirrors it on max_time_ns. *complete says
 * that no span was left out (T bounds nothing).
 */
static const char BOUND_SQL[] =
    "SELECT %s(CASE WHEN before < ?4 THEN edge END),"
    " COALESCE(SUM(before >= ?4), 0) FROM"
    " (SELECT %s AS edge, SUM(n_rows) OVER (ORDER BY %s"
    " ROWS UNBOUNDED PRECEDING) - n_rows AS before FROM log_spans"
    " WHERE (?1 = 0 OR instance_key = ?5)"
    " AND max_time_ns >= ?2 AND min_time_ns < ?3)";

int store__span_bound(store *s, const store_span_scope *sc, int64_t target,
                      int64_t *bound, bool *complete, fnp_error *err) {
  char sql[sizeof BOUND_SQL + 64];
  snprintf(sql, sizeof sql, BOUND_SQL, sc->newest_first ? "MIN" : "MAX",
           sc->newest_first ? "min_time_ns" : "max_time_ns",
           sc->newest_first ? "max_time_ns DESC" : "min_time_ns");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "span bound");
  sqlite3_bind_int(st, 1, sc->has_instance);
  sqlite3_bind_int64(st, 2, sc->from_ns);
  sqlite3_bind_int64(st, 3, sc->to_ns ? sc->to_ns : INT64_MAX);
  sqlite3_bind_int64(st, 4, target);
  sqlite3_bind_int64(st, 5, sc->instance_key);
  int r = sqlite3_step(st), rc = 0;
  if (r != SQLITE_ROW) {
    rc = store__sqlite_fail(s, err, "span bound");
  } else {
    *complete = sqlite3_column_int64(st, 1) == 0;
    *bound = sqlite3_column_type(st, 0) == SQLITE_NULL
                 ? (sc->newest_first ? INT64_MIN : INT64_MAX)
                 : sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return rc;
}

int store__span_limited(store *s, const store_span_scope *sc, int limit,
                        fnp_buf *json, store_span_run run, void *ctx,
                        fnp_error *err) {
  size_t start = json->len;
  /* Row filters may drop rows the bound counted: when too few are left,
   * ask again with a bound that takes in 16 times more rows. */
  for (int64_t target = limit;; target *= 16) {
    int64_t bound;
    bool complete;
    int n = 0, rc = store__span_bound(s, sc, target, &bound, &complete, err);
    if (rc < 0)
      return rc;
    json->len = start;
    rc = run(ctx, complete ? NULL : &bound, json, &n, err);
    if (rc < 0 || complete || n >= limit)
      return rc;
  }
}
