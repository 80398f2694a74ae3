/*
 * Store queries answered as JSON: logs (by logstore, project, time range,
 * instance, request id, text), metric points by name, profile lists. SQL is
 * built from fixed fragments; every value is bound, never spliced.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define SQL_MAX_BYTES 2048

#define MAX_BINDS 12

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
 * the rest ("name" for text, "=name" for raw JSON, "#name" for a number). */
static int rows_json(store *s, sqlite3_stmt *st, const char *list,
                     const char *const *cols, fnp_buf *j, fnp_error *err) {
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
  if (rc < 0)
    return fnp_fail(err, rc, "query: answer too large (%s)", fnp_strerror(rc));
  if (r != SQLITE_DONE)
    return store__sqlite_fail(s, err, "query");
  return fnp_buf_printf(j, "],\"count\":%d}", n);
}

int store_query_logs(store *s, const store_query *q, fnp_buf *json,
                     fnp_error *err) {
  static const char *const cols[] = {"project", "logstore", "topic",
                                     "source",  "instance", "request_id",
                                     "=fields", "=tags",    NULL};
  sqlb b = {0};
  char like[1100];
  add_sql(&b, "SELECT l.id, l.time_ns, b.project, b.logstore, b.topic,"
              " b.source, l.instance, l.request_id, l.fields, b.tags"
              " FROM logs l JOIN batches b ON b.id = l.batch_id WHERE 1");
  where_text(&b, " AND b.project = ?", q->project);
  where_text(&b, " AND b.logstore = ?", q->logstore);
  if (q->request_id && *q->request_id)
    where_num(&b, " AND l.request_key = ?", store__key(q->request_id));
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
  rc = rc ? rc : rows_json(s, st, "records", cols, json, err);
  sqlite3_finalize(st);
  return rc;
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
  rc = rc ? rc : rows_json(s, st, "points", cols, json, err);
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
  rc = rc ? rc : rows_json(s, st, "profiles", cols, json, err);
  sqlite3_finalize(st);
  return rc;
}
