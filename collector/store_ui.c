/*
 * Queries for the collector's web page: the instance list (per-instance
 * totals over the logs table) and an instance's records of chosen kinds
 * (invocations, spikes, agent metrics...) for its timeline. JSON out; the
 * page and api_ui.c decide what to ask for. Values are always bound.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#define UI_DEFAULT_LIMIT 100
#define UI_MAX_RECORD_KINDS 8
#define UI_RECORD_KIND_MAX 32

static int ui_limit(const store_query *q) {
  if (q->limit <= 0)
    return UI_DEFAULT_LIMIT;
  return q->limit > STORE_QUERY_MAX_LIMIT ? STORE_QUERY_MAX_LIMIT : q->limit;
}

static int col_str(fnp_buf *j, sqlite3_stmt *st, int col, const char *key) {
  const char *v = (const char *)sqlite3_column_text(st, col);
  int rc = fnp_buf_printf(j, ",\"%s\":", key);
  return rc ? rc : export__json_str(j, v ? v : "", SIZE_MAX);
}

/*
 * Instances in two steps, so a store with millions of lines answers fast:
 * first the page of instances from the log spans alone (seen times,
 * counts; no row is read), then, for those only, the name and batch of the
 * newest row and the record totals, which need the fields.
 * Two names with one 64-bit key would show as one instance; FNV-1a makes
 * that unlikely enough for a listing.
 */
static const char INSTANCE_PAGE_SQL[] =
    "SELECT instance_key, MIN(min_time_ns), MAX(max_time_ns), SUM(n_rows),"
    " MAX(last_log_id) FROM log_spans WHERE instance_key IS NOT NULL"
    " GROUP BY instance_key HAVING ?1 = 0 OR MAX(max_time_ns) < ?1"
    " ORDER BY MAX(max_time_ns) DESC LIMIT ?2";

static const char INSTANCE_NAME_SQL[] =
    "SELECT l.instance, b.project, b.logstore FROM logs l"
    " LEFT JOIN batches b ON b.id = l.batch_id WHERE l.id = ?";

static const char INSTANCE_TOTALS_SQL[] =
    "SELECT"
    " SUM(json_extract(l.fields, '$.record') = 'invocation'"
    "     AND json_extract(l.fields, '$.type') = 'invoke'),"
    " SUM(json_extract(l.fields, '$.record') = 'invocation'"
    "     AND (CAST(json_extract(l.fields, '$.status') AS INTEGER) >= 400"
    "          OR COALESCE(json_extract(l.fields, '$.error_type'), '') != '')),"
    " SUM(json_extract(l.fields, '$.record') = 'spike')"
    " FROM" STORE_SPAN_ROWS " WHERE k.instance_key = ?";

/* Runs sql with one int64 bound and leaves *st on its first row. */
static int one_row(store *s, const char *sql, int64_t v, sqlite3_stmt **st,
                   fnp_error *err) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "instances");
  sqlite3_bind_int64(*st, 1, v);
  if (sqlite3_step(*st) != SQLITE_ROW)
    return store__sqlite_fail(s, err, "instances");
  return 0;
}

static int instance_json(store *s, sqlite3_stmt *page, fnp_buf *j, int n,
                         fnp_error *err) {
  sqlite3_stmt *name = NULL, *tot = NULL;
  int rc =
      one_row(s, INSTANCE_NAME_SQL, sqlite3_column_int64(page, 4), &name, err);
  rc = rc ? rc
          : one_row(s, INSTANCE_TOTALS_SQL, sqlite3_column_int64(page, 0), &tot,
                    err);
  rc = rc ? rc : fnp_buf_printf(j, "%s{\"instance\":", n ? "," : "");
  const char *inst = rc ? NULL : (const char *)sqlite3_column_text(name, 0);
  rc = rc ? rc : export__json_str(j, inst ? inst : "", SIZE_MAX);
  rc = rc ? rc : col_str(j, name, 1, "project");
  rc = rc ? rc : col_str(j, name, 2, "logstore");
  rc = rc ? rc
          : fnp_buf_printf(j,
                           ",\"first_ns\":%lld,\"last_ns\":%lld,"
                           "\"records\":%lld,\"invocations\":%lld,"
                           "\"errors\":%lld,\"spikes\":%lld}",
                           (long long)sqlite3_column_int64(page, 1),
                           (long long)sqlite3_column_int64(page, 2),
                           (long long)sqlite3_column_int64(page, 3),
                           (long long)sqlite3_column_int64(tot, 0),
                           (long long)sqlite3_column_int64(tot, 1),
                           (long long)sqlite3_column_int64(tot, 2));
  sqlite3_finalize(name);
  sqlite3_finalize(tot);
  return rc;
}

int store_ui_instances(store *s, const store_query *q, fnp_buf *json,
                       fnp_error *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, INSTANCE_PAGE_SQL, -1, &st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "instances");
  sqlite3_bind_int64(st, 1, q->to_ns);
  sqlite3_bind_int(st, 2, ui_limit(q));
  int rc = fnp_buf_append(json, "{\"instances\":[", 14), r = SQLITE_DONE, n = 0;
  while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
    rc = instance_json(s, st, json, n++, err);
  sqlite3_finalize(st);
  if (rc < 0)
    return err->msg[0] ? rc
                       : fnp_fail(err, rc, "instances: answer too large (%s)",
                                  fnp_strerror(rc));
  if (r != SQLITE_DONE)
    return store__sqlite_fail(s, err, "instances");
  return fnp_buf_printf(json, "],\"count\":%d}", n);
}

/* "a,b,c" into at most UI_MAX_RECORD_KINDS names; returns how many. */
static int split_kinds(const char *list, char out[][UI_RECORD_KIND_MAX]) {
  int n = 0;
  while (list && *list && n < UI_MAX_RECORD_KINDS) {
    size_t len = strcspn(list, ",");
    if (len > 0 && len < UI_RECORD_KIND_MAX) {
      memcpy(out[n], list, len);
      out[n++][len] = '\0';
    }
    list += len + (list[len] == ',');
  }
  return n;
}

/* bound: see store__span_bound; the newest first keep rows at or after
 * it, the oldest first at or before it. */
static int records_sql(char *sql, size_t cap, int n_kinds, bool newest_first,
                       bool bound) {
  int len = snprintf(
      sql, cap,
      "SELECT l.id, l.time_ns, l.request_id, l.fields FROM" STORE_SPAN_ROWS
      " WHERE k.instance_key = ?1 AND l.instance = ?2"
      " AND k.max_time_ns >= ?3 AND k.min_time_ns < ?4"
      " AND l.time_ns >= ?3 AND l.time_ns < ?4%s"
      " AND json_extract(l.fields, '$.record') IN (",
      !bound         ? ""
      : newest_first ? " AND k.max_time_ns >= ?5 AND l.time_ns >= ?5"
                     : " AND k.min_time_ns <= ?5 AND l.time_ns <= ?5");
  for (int i = 0; i < n_kinds && len > 0 && (size_t)len < cap; i++)
    len += snprintf(sql + len, cap - (size_t)len, "%s?%d", i ? "," : "", 7 + i);
  if (len > 0 && (size_t)len < cap)
    len += snprintf(sql + len, cap - (size_t)len,
                    ") ORDER BY l.time_ns %s, l.id %s LIMIT ?6",
                    newest_first ? "DESC" : "", newest_first ? "DESC" : "");
  return len > 0 && (size_t)len < cap ? 0 : -1;
}

static int record_json(sqlite3_stmt *st, fnp_buf *j, int n) {
  const char *rid = (const char *)sqlite3_column_text(st, 2);
  const char *fields = (const char *)sqlite3_column_text(st, 3);
  int rc = fnp_buf_printf(j, "%s{\"id\":%lld,\"time_ns\":%lld,\"request_id\":",
                          n ? "," : "", (long long)sqlite3_column_int64(st, 0),
                          (long long)sqlite3_column_int64(st, 1));
  rc = rc ? rc : export__json_str(j, rid ? rid : "", SIZE_MAX);
  rc = rc ? rc : fnp_buf_append(j, ",\"fields\":", 10);
  rc = rc ? rc
          : fnp_buf_append(j, fields ? fields : "{}",
                           fields ? strlen(fields) : 2);
  return rc ? rc : fnp_buf_append(j, "}", 1);
}

typedef struct records_ctx {
  store *s;
  const store_query *q;
  char (*kind)[UI_RECORD_KIND_MAX];
  int n_kinds;
  bool newest_first;
} records_ctx;

/* One run of the records query (a store_span_run). */
static int records_run(void *ctx, const int64_t *bound, fnp_buf *json,
                       int *count, fnp_error *err) {
  records_ctx *c = ctx;
  store *s = c->s;
  const store_query *q = c->q;
  char sql[1024];
  if (records_sql(sql, sizeof sql, c->n_kinds, c->newest_first, bound != NULL) <
      0)
    return fnp_fail(err, FNP_EUSAGE, "records: query too long");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "records");
  sqlite3_bind_int64(st, 1, store__key(q->instance));
  sqlite3_bind_text(st, 2, q->instance, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, q->from_ns);
  sqlite3_bind_int64(st, 4, q->to_ns ? q->to_ns : INT64_MAX);
  if (bound)
    sqlite3_bind_int64(st, 5, *bound);
  sqlite3_bind_int(st, 6, ui_limit(q));
  for (int i = 0; i < c->n_kinds; i++)
    sqlite3_bind_text(st, 7 + i, c->kind[i], -1, SQLITE_STATIC);
  int rc = fnp_buf_append(json, "{\"records\":[", 12), r = SQLITE_DONE, n = 0;
  while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
    rc = record_json(st, json, n++);
  sqlite3_finalize(st);
  *count = n;
  if (rc < 0)
    return fnp_fail(err, rc, "records: answer too large (%s)",
                    fnp_strerror(rc));
  if (r != SQLITE_DONE)
    return store__sqlite_fail(s, err, "records");
  return fnp_buf_printf(json, "],\"count\":%d}", n);
}

int store_ui_records(store *s, const store_query *q, const char *kinds,
                     bool newest_first, fnp_buf *json, fnp_error *err) {
  char kind[UI_MAX_RECORD_KINDS][UI_RECORD_KIND_MAX];
  int n_kinds = split_kinds(kinds, kind);
  if (q->instance == NULL || *q->instance == '\0' || n_kinds == 0)
    return fnp_fail(err, FNP_EUSAGE, "records: instance and kinds required");
  store_span_scope sc = {.has_instance = true,
                         .instance_key = store__key(q->instance),
                         .from_ns = q->from_ns,
                         .to_ns = q->to_ns,
                         .newest_first = newest_first};
  records_ctx c = {s, q, kind, n_kinds, newest_first};
  return store__span_limited(s, &sc, ui_limit(q), json, records_run, &c, err);
}
