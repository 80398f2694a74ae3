/*
 * Store queries answered as JSON: logs (by logstore, project, time range,
 * instance, request id, text), metric points by name, profile lists, and
 * spikes linked to their profiles. SQL is
 * built from fixed fragments; every value is bound, never spliced.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define SQL_MAX_BYTES 4096 /* the spikes query is ~2.5 KiB */

#define MAX_BINDS 16

/* A query under construction: fixed SQL fragments, values bound later. */
typedef struct sqlb {
  char sql[SQL_MAX_BYTES];
  size_t len;
  struct {
    const char *text; /* NULL: bind num */
    int64_t num;
  } bind[MAX_BINDS];
  int n;
} sqlb;

static void add_sql(sqlb *b, const char *s) {
  size_t n = strlen(s);
  if (b->len + n < sizeof b->sql) {
    memcpy(b->sql + b->len, s, n + 1);
    b->len += n;
  }
}

static void where_text(sqlb *b, const char *clause, const char *v) {
  if (v == NULL || *v == '\0' || b->n == MAX_BINDS)
    return;
  add_sql(b, clause);
  b->bind[b->n].text = v;
  b->n++;
}

static void where_num(sqlb *b, const char *clause, int64_t v) {
  if (v == 0 || b->n == MAX_BINDS)
    return;
  add_sql(b, clause);
  b->bind[b->n].text = NULL;
  b->bind[b->n].num = v;
  b->n++;
}

/* A clause bound whatever its value (where_num skips 0, "not given"). */
static void where_always(sqlb *b, const char *clause, int64_t v) {
  if (b->n == MAX_BINDS)
    return;
  add_sql(b, clause);
  b->bind[b->n].text = NULL;
  b->bind[b->n].num = v;
  b->n++;
}

static int limit_of(const store_query *q) {
  if (q->limit <= 0)
    return DEFAULT_LIMIT;
  return q->limit > STORE_QUERY_MAX_LIMIT ? STORE_QUERY_MAX_LIMIT : q->limit;
}

static int prepare(store *s, sqlb *b, int limit, sqlite3_stmt **st,
                   fnp_error *err) {
  char tail[64];
  snprintf(tail, sizeof tail, " LIMIT %d", limit);
  add_sql(b, tail);
  if (sqlite3_prepare_v2(s->db, b->sql, -1, st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "query");
  for (int i = 0; i < b->n; i++) {
    if (b->bind[i].text)
      sqlite3_bind_text(*st, i + 1, b->bind[i].text, -1, SQLITE_STATIC);
    else
      sqlite3_bind_int64(*st, i + 1, b->bind[i].num);
  }
  return 0;
}

/* "%q%" LIKE pattern with %, _ and \ escaped, so q matches literally. */
static void like_pattern(const char *q, char *out, size_t cap) {
  size_t j = 0;
  out[j++] = '%';
  for (; *q && j + 3 < cap; q++) {
    if (*q == '%' || *q == '_' || *q == '\\')
      out[j++] = '\\';
    out[j++] = *q;
  }
  out[j++] = '%';
  out[j] = '\0';
}

static int col_json(fnp_buf *j, sqlite3_stmt *st, int col, const char *key,
                    bool raw) {
  const char *v = (const char *)sqlite3_column_text(st, col);
  int rc = fnp_buf_printf(j, ",\"%s\":", key);
  if (rc == 0 && raw)
    return fnp_buf_append(j, v ? v : "{}", v ? strlen(v) : 2);
  return rc ? rc : export__json_str(j, v, SIZE_MAX);
}

/* Rows to JSON; the first column is id, the second time_ns, and cols names
 * the rest ("name" for text, "=name" for raw JSON, "#name" for a number).
 * *count (if given) gets the number of rows. */
static int rows_json(store *s, sqlite3_stmt *st, const char *list,
                     const char *const *cols, fnp_buf *j, int *count,
                     fnp_error *err) {
  int rc = fnp_buf_printf(j, "{\"%s\":[", list), r, n = 0;
  while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
    rc = fnp_buf_printf(j, "%s{\"id\":%lld,\"time_ns\":%lld", n++ ? "," : "",
                        (long long)sqlite3_column_int64(st, 0),
                        (long long)sqlite3_column_int64(st, 1));
    for (int c = 0; cols[c] && rc == 0; c++) {
      if (cols[c][0] == '#')
        rc = fnp_buf_printf(j, ",\"%s\":%.17g", cols[c] + 1,
                            sqlite3_column_double(st, c + 2));
      else
        rc = col_json(j, st, c + 2, cols[c] + (cols[c][0] == '='),
                      cols[c][0] == '=');
    }
    rc = rc ? rc : fnp_buf_append(j, "}", 1);
  }
  if (count)
    *count = n;
  if (rc < 0)
    return fnp_fail(err, rc, "query: answer too large (%s)", fnp_strerror(rc));
  if (r != SQLITE_DONE)
    return store__sqlite_fail(s, err, "query");
  return fnp_buf_printf(j, "],\"count\":%d}", n);
}

/* The logs query; bound (when not NULL) keeps only rows, and spans, at or
 * before that time (store__span_bound). */
static int logs_query(store *s, const store_query *q, const int64_t *bound,
                      fnp_buf *json, int *count, fnp_error *err) {
  static const char *const cols[] = {"project", "logstore", "topic",
                                     "source",  "instance", "request_id",
                                     "=fields", "=tags",    NULL};
  sqlb b = {0};
  char like[1100];
  bool by_request = q->request_id && *q->request_id;
  add_sql(&b, "SELECT l.id, l.time_ns, b.project, b.logstore, b.topic,"
              " b.source, l.instance, l.request_id, l.fields, b.tags");
  if (by_request) {
    /* The batches whose filter may hold it, then their rows by id range:
     * CROSS JOIN keeps SQLite from driving the join from logs, NOT INDEXED
     * from an automatic-index search per batch. */
    add_sql(&b, " FROM batch_requests k CROSS JOIN logs l NOT INDEXED"
                " ON l.id BETWEEN k.first_log_id AND k.last_log_id"
                " JOIN batches b ON b.id = l.batch_id WHERE 1");
    where_num(&b, " AND fnprof_bloom_has(k.bloom, ?)",
              store__key(q->request_id));
  } else {
    add_sql(&b, " FROM" STORE_SPAN_ROWS
                " JOIN batches b ON b.id = l.batch_id WHERE 1");
    if (q->instance && *q->instance)
      where_num(&b, " AND k.instance_key = ?", store__key(q->instance));
    where_num(&b, " AND k.max_time_ns >= ?", q->from_ns);
    where_num(&b, " AND k.min_time_ns < ?", q->to_ns);
    if (bound) {
      where_always(&b, " AND k.min_time_ns <= ?", *bound);
      where_always(&b, " AND l.time_ns <= ?", *bound);
    }
  }
  where_text(&b, " AND b.project = ?", q->project);
  where_text(&b, " AND b.logstore = ?", q->logstore);
  where_text(&b, " AND l.request_id = ?", q->request_id);
  if (q->instance && *q->instance)
    where_num(&b, " AND l.instance_key = ?", store__key(q->instance));
  where_text(&b, " AND l.instance = ?", q->instance);
  if (q->text && *q->text && strlen(q->text) < 512) {
    like_pattern(q->text, like, sizeof like);
    where_text(&b, " AND l.fields LIKE ? ESCAPE '\\'", like);
  }
  where_num(&b, " AND l.time_ns >= ?", q->from_ns);
  where_num(&b, " AND l.time_ns < ?", q->to_ns);
  add_sql(&b, " ORDER BY l.time_ns, l.id");
  sqlite3_stmt *st = NULL;
  int rc = prepare(s, &b, limit_of(q), &st, err);
  rc = rc ? rc : rows_json(s, st, "records", cols, json, count, err);
  sqlite3_finalize(st);
  return rc;
}

typedef struct logs_ctx {
  store *s;
  const store_query *q;
} logs_ctx;

static int logs_run(void *ctx, const int64_t *bound, fnp_buf *json, int *count,
                    fnp_error *err) {
  logs_ctx *c = ctx;
  return logs_query(c->s, c->q, bound, json, count, err);
}

int store_query_logs(store *s, const store_query *q, fnp_buf *json,
                     fnp_error *err) {
  if (q->request_id && *q->request_id) /* few batches: no bound needed */
    return logs_query(s, q, NULL, json, NULL, err);
  bool by_instance = q->instance && *q->instance;
  store_span_scope sc = {.has_instance = by_instance,
                         .instance_key =
                             by_instance ? store__key(q->instance) : 0,
                         .from_ns = q->from_ns,
                         .to_ns = q->to_ns};
  logs_ctx c = {s, q};
  return store__span_limited(s, &sc, limit_of(q), json, logs_run, &c, err);
}

int store_query_metrics(store *s, const store_query *q, fnp_buf *json,
                        fnp_error *err) {
  static const char *const cols[] = {"name",     "unit",   "#value",
                                     "instance", "=attrs", NULL};
  sqlb b = {0};
  add_sql(&b, "SELECT id, time_ns, name, unit, value, instance, attrs"
              " FROM metrics WHERE 1");
  where_text(&b, " AND name = ?", q->name);
  where_text(&b, " AND instance = ?", q->instance);
  where_num(&b, " AND time_ns >= ?", q->from_ns);
  where_num(&b, " AND time_ns < ?", q->to_ns);
  add_sql(&b, " ORDER BY time_ns, id");
  sqlite3_stmt *st = NULL;
  int rc = prepare(s, &b, limit_of(q), &st, err);
  rc = rc ? rc : rows_json(s, st, "points", cols, json, NULL, err);
  sqlite3_finalize(st);
  return rc;
}

int store_list_profiles(store *s, const store_query *q, fnp_buf *json,
                        fnp_error *err) {
  static const char *const cols[] = {"project", "instance", "kind",
                                     "#size",   "sha256",   NULL};
  sqlb b = {0};
  add_sql(&b, "SELECT id, time_ns, project, instance, kind, size, sha256"
              " FROM profiles WHERE 1");
  where_text(&b, " AND instance = ?", q->instance);
  where_text(&b, " AND kind = ?", q->name);
  where_num(&b, " AND time_ns >= ?", q->from_ns);
  where_num(&b, " AND time_ns < ?", q->to_ns);
  add_sql(&b, " ORDER BY time_ns, id");
  sqlite3_stmt *st = NULL;
  int rc = prepare(s, &b, limit_of(q), &st, err);
  rc = rc ? rc : rows_json(s, st, "profiles", cols, json, NULL, err);
  sqlite3_finalize(st);
  return rc;
}

/*
 * Spikes. The sidecar sends, per spike the agent reports, one log record
 * (record=spike, summary, report = the agent's JSON report, which names the
 * files its before/after/diff profiles were written to) and, per profile
 * file it could read, a record (record=profile, profile_kind spike-*,
 * profile_time_ns, source = that file) plus the upload itself (instance,
 * kind, time = profile_time_ns). So the report's file name finds the
 * profile record, whose (instance, kind, time) finds the profile. The
 * sidecar writes a spike's profile records right after its report, so if
 * a file name was ever reused (the agent names them by pid and cycle) the
 * first such record at or after the report wins. Uploads and records travel
 * separately, so this is linked when asked, not at ingest. log_marks (see
 * store.c) keeps both kinds of record findable without a scan of logs.
 */
#define SPIKE_PROFILE_ID(key)                                                  \
  "(SELECT p.id FROM log_marks m2 JOIN logs pl ON pl.id = m2.log_id"           \
  " JOIN profiles p ON p.instance = pl.instance"                               \
  " AND p.kind = json_extract(pl.fields, '$.profile_kind')"                    \
  " AND p.time_ns = CAST(json_extract(pl.fields, '$.profile_time_ns')"         \
  " AS INTEGER)"                                                               \
  " WHERE m2.mark = 'spike-profile' AND m2.instance_key IS s.instance_key"     \
  " AND json_extract(pl.fields, '$.source') = json_extract(s.report, '$." key  \
  "') AND json_extract(s.report, '$." key "') <> ''"                           \
  " AND pl.time_ns >= s.time_ns ORDER BY pl.time_ns, p.id LIMIT 1)"

static int spike_json(fnp_buf *j, sqlite3_stmt *st, int n) {
  static const char *const ids[] = {"before_profile_id", "after_profile_id",
                                    "diff_profile_id"};
  int rc = fnp_buf_printf(j, "%s{\"id\":%lld,\"time_ns\":%lld", n ? "," : "",
                          (long long)sqlite3_column_int64(st, 0),
                          (long long)sqlite3_column_int64(st, 1));
  rc = rc ? rc : col_json(j, st, 2, "instance", false);
  rc = rc ? rc : col_json(j, st, 3, "request_id", false);
  rc = rc ? rc : col_json(j, st, 4, "summary", false);
  /* The report as an object when it parses (json() made it canonical),
   * else as the string it was. */
  if (rc == 0 && sqlite3_column_type(st, 6) != SQLITE_NULL)
    rc = col_json(j, st, 6, "report", true);
  else if (rc == 0)
    rc = col_json(j, st, 5, "report", false);
  rc = rc ? rc : col_json(j, st, 7, "fields", true);
  for (int i = 0; i < 3 && rc == 0; i++) {
    if (sqlite3_column_type(st, 8 + i) == SQLITE_NULL)
      rc = fnp_buf_printf(j, ",\"%s\":null", ids[i]);
    else
      rc = fnp_buf_printf(j, ",\"%s\":%lld", ids[i],
                          (long long)sqlite3_column_int64(st, 8 + i));
  }
  return rc ? rc : fnp_buf_append(j, "}", 1);
}

int store_query_spikes(store *s, const store_query *q, fnp_buf *json,
                       fnp_error *err) {
  sqlb b = {0};
  char tail[64];
  add_sql(&b, "WITH s AS (SELECT l.id, l.time_ns, l.instance, l.request_id,"
              " m.instance_key, l.fields,"
              " json_extract(l.fields, '$.summary') AS summary,"
              " json_extract(l.fields, '$.report') AS report_text,"
              " CASE WHEN json_valid(json_extract(l.fields, '$.report'))"
              " THEN json(json_extract(l.fields, '$.report')) END AS report"
              " FROM log_marks m JOIN logs l ON l.id = m.log_id"
              " WHERE m.mark = 'spike'");
  if (q->instance && *q->instance)
    where_num(&b, " AND m.instance_key = ?", store__key(q->instance));
  where_text(&b, " AND l.instance = ?", q->instance);
  where_num(&b, " AND m.time_ns >= ?", q->from_ns);
  where_num(&b, " AND m.time_ns < ?", q->to_ns);
  snprintf(tail, sizeof tail, " ORDER BY m.time_ns, m.log_id LIMIT %d)",
           limit_of(q));
  add_sql(&b, tail);
  add_sql(
      &b,
      " SELECT s.id, s.time_ns, s.instance, s.request_id, s.summary,"
      " s.report_text, s.report, s.fields, " SPIKE_PROFILE_ID("before_profile") ", " SPIKE_PROFILE_ID(
          "after_profile") ", " SPIKE_PROFILE_ID("diff_profile") " FROM s"
                                                                 " ORDER BY "
                                                                 "s.time_ns, "
                                                                 "s.id");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, b.sql, -1, &st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "spikes query");
  for (int i = 0; i < b.n; i++) {
    if (b.bind[i].text)
      sqlite3_bind_text(st, i + 1, b.bind[i].text, -1, SQLITE_STATIC);
    else
      sqlite3_bind_int64(st, i + 1, b.bind[i].num);
  }
  int rc = fnp_buf_append(json, "{\"spikes\":[", 11), r, n = 0;
  while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
    rc = spike_json(json, st, n++);
  if (rc < 0)
    rc = fnp_fail(err, rc, "spikes: answer too large (%s)", fnp_strerror(rc));
  else if (r != SQLITE_DONE)
    rc = store__sqlite_fail(s, err, "spikes query");
  else
    rc = fnp_buf_printf(json, "],\"count\":%d}", n);
  sqlite3_finalize(st);
  return rc;
}
