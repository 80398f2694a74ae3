/*
 * The SQLite store: schema, one transaction per batch, dedupe by batch key,
 * profiles, retention. Queries are in store_query.c.
 *
 * Schema (version 1):
 *   batches(id, dedupe_key UNIQUE, kind, received_ns, project, logstore,
 *           topic, source, tags JSON, n_records, last_log_id,
 *           last_metric_id)      index: received_ns
 *   logs(id, batch_id -> batches.id, time_ns, instance, request_id,
 *        instance_key, request_key, fields JSON)   no secondary index
 *   log_spans(batch_id, instance_key, first_log_id, last_log_id,
 *             min_time_ns, max_time_ns, n_rows)
 *        one row per (batch, instance): where that instance's rows of the
 *        batch lie and the times they cover, in place of per-row indexes
 *        on time and instance (store_span.c; dropped from older databases)
 *   batch_requests(batch_id, first_log_id, last_log_id, bloom BLOB)
 *        a Bloom filter of the batch's request keys (store_bloom.c), in
 *        place of an index on request_key (dropped from older databases;
 *        the column is no longer written)
 *   metrics(id, batch_id, time_ns, name, unit, value, instance, attrs JSON)
 *                            index: (name, time_ns)
 *   profiles(id, sha256 UNIQUE, received_ns, time_ns, project, instance,
 *            kind, size, data BLOB)   index: (instance, time_ns)
 *   log_marks(log_id -> logs.id, mark, instance_key, time_ns)
 *                            index: (mark, instance_key, time_ns)
 * log_marks (added without a version bump: CREATE IF NOT EXISTS, so older
 * databases gain it and only new rows are marked) flags the few log rows
 * the spikes query needs among millions: the sidecar's spike reports
 * (field record=spike, mark "spike") and its records of spike profiles
 * (record=profile, profile_kind spike-*, mark "spike-profile"), which say
 * which uploaded profile (instance, kind, profile_time_ns) came from which
 * file the report names (source). See store_query_spikes.
 * Rows get increasing ids in arrival order, so retention deletes a prefix
 * of logs/metrics by id (last_*_id of the newest expired batch) and needs no
 * batch_id index, which would cost every insert.
 * Instance and request id are lifted out of the fields ("instance",
 * "request_id"/"requestId", or the batch tag "instance") so queries find
 * them: the instance as a 64-bit hash (store__key) in the spans, matched
 * there and then against the string; request ids go into the batch's
 * Bloom filter (store_bloom.c).
 */
#include "store_internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000
#define FIELDS_JSON_MAX_BYTES (16u << 20)

static const char *const SCHEMA =
    "CREATE TABLE IF NOT EXISTS batches("
    " id INTEGER PRIMARY KEY, dedupe_key TEXT UNIQUE, kind TEXT NOT NULL,"
    " received_ns INTEGER NOT NULL, project TEXT NOT NULL,"
    " logstore TEXT NOT NULL, topic TEXT NOT NULL, source TEXT NOT NULL,"
    " tags TEXT NOT NULL, n_records INTEGER NOT NULL DEFAULT 0,"
    " last_log_id INTEGER, last_metric_id INTEGER);"
    "CREATE INDEX IF NOT EXISTS batches_received ON batches(received_ns);"
    "CREATE TABLE IF NOT EXISTS logs("
    " id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, instance TEXT, request_id TEXT,"
    " instance_key INTEGER, request_key INTEGER, fields TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS log_spans("
    " batch_id INTEGER NOT NULL, instance_key INTEGER,"
    " first_log_id INTEGER NOT NULL, last_log_id INTEGER NOT NULL,"
    " min_time_ns INTEGER NOT NULL, max_time_ns INTEGER NOT NULL,"
    " n_rows INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS batch_requests("
    " batch_id INTEGER PRIMARY KEY, first_log_id INTEGER NOT NULL,"
    " last_log_id INTEGER NOT NULL, bloom BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS metrics("
    " id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL,"
    " value REAL NOT NULL, instance TEXT, attrs TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS metrics_name ON metrics(name, time_ns);"
    "CREATE TABLE IF NOT EXISTS profiles("
    " id INTEGER PRIMARY KEY, sha256 TEXT UNIQUE, received_ns INTEGER,"
    " time_ns INTEGER NOT NULL, project TEXT, instance TEXT, kind TEXT,"
    " size INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS profiles_instance"
    " ON profiles(instance, time_ns);"
    "CREATE TABLE IF NOT EXISTS log_marks("
    " log_id INTEGER PRIMARY KEY, mark TEXT NOT NULL,"
    " instance_key INTEGER, time_ns INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS log_marks_mark"
    " ON log_marks(mark, instance_key, time_ns);"
    "PRAGMA user_version = 1;";

static const char *const STMTS[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_FIND_BATCH] = "SELECT id FROM batches WHERE dedupe_key = ?1",
    [STMT_ADD_BATCH] =
        "INSERT INTO batches(dedupe_key, kind, received_ns, project,"
        " logstore, topic, source, tags) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
    [STMT_COUNT_BATCH] = "UPDATE batches SET n_records = ?2,"
                         " last_log_id = ?3, last_metric_id = ?4 WHERE id = ?1",
    [STMT_ADD_LOG] = "INSERT INTO logs(batch_id, time_ns, instance,"
                     " request_id, instance_key, fields)"
                     " VALUES (?1,?2,?3,?4,?5,?6)",
    [STMT_ADD_METRIC] = "INSERT INTO metrics(batch_id, time_ns, name, unit,"
                        " value, instance, attrs)"
                        " VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [STMT_ADD_BLOOM] = "INSERT INTO batch_requests(batch_id, first_log_id,"
                       " last_log_id, bloom) VALUES (?1,?2,?3,?4)",
    [STMT_ADD_SPAN] = "INSERT INTO log_spans(batch_id, instance_key,"
                      " first_log_id, last_log_id, min_time_ns, max_time_ns,"
                      " n_rows) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [STMT_ADD_MARK] = "INSERT INTO log_marks(log_id, mark, instance_key,"
                      " time_ns) VALUES (?1,?2,?3,?4)",
};

int store__sqlite_fail(store *s, fnp_error *err, const char *what) {
  int code = sqlite3_extended_errcode(s->db);
  int rc = (code & 0xff) == SQLITE_FULL    ? -ENOSPC
           : (code & 0xff) == SQLITE_NOMEM ? -ENOMEM
                                           : -EIO;
  return fnp_fail(err, rc, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

int64_t store__key(const char *s) {
  /* FNV-1a, 64 bit (Fowler/Noll/Vo): fast, and collisions only cost a
   * string comparison in the query. */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return (int64_t)h;
}

int store__grow(void **items, size_t *cap, size_t n, size_t size,
                size_t max_items) {
  if (n < *cap)
    return 0;
  size_t want = *cap ? *cap * 2 : 1024;
  if (want > max_items)
    return FNP_ETOOBIG;
  void *p = realloc(*items, want * size);
  if (p == NULL)
    return -ENOMEM;
  *items = p;
  *cap = want;
  return 0;
}

int store__migrate(store *s, const char *sql, const char *what,
                   fnp_error *err) {
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK)
    return 0;
  int rc = store__sqlite_fail(s, err, what);
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int prepare_all(store *s, fnp_error *err) {
  for (int i = 0; i < STMT_COUNT; i++)
    if (sqlite3_prepare_v3(s->db, STMTS[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &s->st[i], NULL) != SQLITE_OK)
      return store__sqlite_fail(s, err, "prepare");
  return 0;
}

int store_open(const char *path, const store_opts *o, store **out,
               fnp_error *err) {
  *out = NULL;
  store *s = calloc(1, sizeof *s);
  if (s == NULL)
    return fnp_fail(err, -ENOMEM, "store: out of memory");
  if (o)
    s->opts = *o;
  int rc;
  if (sqlite3_open_v2(path, &s->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    rc = store__sqlite_fail(s, err, path);
    goto fail;
  }
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  fnp_buf_init(&s->scratch, FIELDS_JSON_MAX_BYTES);
  char pragmas[320];
  /* 16 KiB pages (new databases only: WAL fixes the size at creation):
   * each WAL frame costs two pwrites and each checkpoint a pread and a
   * pwrite per page, and syscalls are what ingest pays for most on a VM;
   * a quarter of the frames took the server's CPU per record to ~0.65x.
   * The price is small batches: a commit rewrites its ~6 touched pages
   * whole, ~1.2x the CPU per 64-record batch. An 8 MiB cache holds what
   * ingest touches (the tables' right edges); a larger one only faulted
   * in fresh memory as it filled. Checkpoints every 4k pages (64 MiB of
   * WAL) rather than 1k rewrite each hot page less often. */
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA page_size=16384; PRAGMA journal_mode=WAL;"
           " PRAGMA synchronous=%s; PRAGMA cache_size=-8192;"
           " PRAGMA wal_autocheckpoint=4096;"
           " PRAGMA journal_size_limit=67108864;",
           s->opts.sync_normal ? "NORMAL" : "FULL");
  if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
    rc = store__sqlite_fail(s, err, "schema");
    goto fail;
  }
  if ((rc = store__bloom_register(s, err)) < 0 ||
      (rc = store__bloom_migrate(s, err)) < 0 ||
      (rc = store__span_migrate(s, err)) < 0 || (rc = prepare_all(s, err)) < 0)
    goto fail;
  *out = s;
  return 0;
fail:
  store_close(s);
  return rc;
}

void store_close(store *s) {
  if (s == NULL)
    return;
  for (int i = 0; i < STMT_COUNT; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  fnp_buf_destroy(&s->scratch);
  free(s->req_keys);
  free(s->span_rows);
  free(s);
}

/* Runs a prepared statement that binds every parameter each time, and
 * resets it without clearing the bindings (a row's worth of work less). */
static int step_keep_bindings(store *s, int idx, fnp_error *err,
                              const char *what) {
  int r = sqlite3_step(s->st[idx]);
  sqlite3_reset(s->st[idx]);
  return r == SQLITE_DONE ? 0 : store__sqlite_fail(s, err, what);
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int step_done(store *s, int idx, fnp_error *err, const char *what) {
  int r = sqlite3_step(s->st[idx]);
  sqlite3_reset(s->st[idx]);
  sqlite3_clear_bindings(s->st[idx]);
  return r == SQLITE_DONE ? 0 : store__sqlite_fail(s, err, what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static int fields_json(fnp_buf *b, const export_field *f, size_t n) {
  int rc = fnp_buf_append(b, "{", 1);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (i)
      rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, f[i].key, f[i].value);
  }
  rc = rc ? rc : fnp_buf_append(b, "}", 1);
  return rc ? rc : fnp_buf_append(b, "", 1) /* NUL for SQLite */;
}

static const char *lookup(const export_field *f, size_t n, const char *k) {
  for (size_t i = 0; i < n; i++)
    if (f[i].key && strcmp(f[i].key, k) == 0)
      return f[i].value;
  return NULL;
}

static int insert_batch(store *s, const store_batch *b, fnp_error *err) {
  fnp_buf tags;
  fnp_buf_init(&tags, FIELDS_JSON_MAX_BYTES);
  int rc = fields_json(&tags, b->tags, b->n_tags);
  if (rc < 0) {
    fnp_buf_destroy(&tags);
    return fnp_fail(err, rc, "store: batch tags: %s", fnp_strerror(rc));
  }
  sqlite3_stmt *st = s->st[STMT_ADD_BATCH];
  bind_text(st, 1, b->dedupe_key);
  bind_text(st, 2, b->kind ? b->kind : "");
  sqlite3_bind_int64(st, 3, b->received_ns);
  bind_text(st, 4, b->project ? b->project : "");
  bind_text(st, 5, b->logstore ? b->logstore : "");
  bind_text(st, 6, b->topic ? b->topic : "");
  bind_text(st, 7, b->source ? b->source : "");
  sqlite3_bind_text(st, 8, (char *)tags.data, (int)tags.len - 1, SQLITE_STATIC);
  rc = step_done(s, STMT_ADD_BATCH, err, "insert batch");
  fnp_buf_destroy(&tags);
  s->batch_id = sqlite3_last_insert_rowid(s->db);
  s->tag_instance = lookup(b->tags, b->n_tags, "instance");
  return rc;
}

int store_begin(store *s, const store_batch *b, bool *duplicate,
                fnp_error *err) {
  *duplicate = false;
  if (s->in_batch)
    return fnp_fail(err, FNP_EUSAGE, "store: a batch is already open");
  int rc = step_done(s, STMT_BEGIN, err, "begin");
  if (rc < 0)
    return rc;
  if (b->dedupe_key) {
    sqlite3_stmt *st = s->st[STMT_FIND_BATCH];
    bind_text(st, 1, b->dedupe_key);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r == SQLITE_ROW || r != SQLITE_DONE) {
      rc = r == SQLITE_ROW ? 0 : store__sqlite_fail(s, err, "dedupe lookup");
      *duplicate = r == SQLITE_ROW;
      if (step_done(s, STMT_ROLLBACK, NULL, "rollback") < 0 && rc == 0)
        rc = store__sqlite_fail(s, err, "rollback");
      return rc;
    }
  }
  s->in_batch = true;
  s->n_records = 0;
  s->last_log_id = s->last_metric_id = s->first_log_id = 0;
  s->n_req_keys = s->n_span_rows = 0;
  if ((rc = insert_batch(s, b, err)) < 0)
    store_rollback(s);
  return rc;
}

static const char *request_id_of(const export_field *f, size_t n) {
  const char *r = lookup(f, n, "request_id");
  return r ? r : lookup(f, n, "requestId");
}

/* The log_marks mark of a log row, or NULL for the common row. */
static const char *mark_of(const export_field *f, size_t n) {
  const char *rec = lookup(f, n, "record");
  if (rec == NULL)
    return NULL;
  if (strcmp(rec, "spike") == 0)
    return "spike";
  const char *kind = lookup(f, n, "profile_kind");
  if (strcmp(rec, "profile") == 0 && kind && strncmp(kind, "spike-", 6) == 0)
    return "spike-profile";
  return NULL;
}

static int add_mark(store *s, const char *mark, const char *inst,
                    int64_t time_ns, fnp_error *err) {
  sqlite3_stmt *st = s->st[STMT_ADD_MARK];
  sqlite3_bind_int64(st, 1, s->last_log_id);
  sqlite3_bind_text(st, 2, mark, -1, SQLITE_STATIC);
  if (inst)
    sqlite3_bind_int64(st, 3, store__key(inst));
  sqlite3_bind_int64(st, 4, time_ns);
  return step_done(s, STMT_ADD_MARK, err, "insert log mark");
}

int store_add_log(store *s, int64_t time_ns, const export_field *f, size_t n,
                  fnp_error *err) {
  if (!s->in_batch)
    return fnp_fail(err, FNP_EUSAGE, "store: no open batch");
  fnp_buf_reset(&s->scratch);
  int rc = fields_json(&s->scratch, f, n);
  if (rc < 0)
    return fnp_fail(err, rc, "store: log fields: %s", fnp_strerror(rc));
  const char *inst = lookup(f, n, "instance");
  const char *req = request_id_of(f, n);
  if (inst == NULL)
    inst = s->tag_instance;
  sqlite3_stmt *st = s->st[STMT_ADD_LOG];
  sqlite3_bind_int64(st, 1, s->batch_id);
  sqlite3_bind_int64(st, 2, time_ns);
  bind_text(st, 3, inst);
  bind_text(st, 4, req);
  if (inst)
    sqlite3_bind_int64(st, 5, store__key(inst));
  else
    sqlite3_bind_null(st, 5);
  /* logs.request_key stays NULL: the batch's Bloom filter replaced its
   * index, and nothing reads it (a column kept for older databases). */
  sqlite3_bind_text(st, 6, (char *)s->scratch.data, (int)s->scratch.len - 1,
                    SQLITE_STATIC);
  rc = step_keep_bindings(s, STMT_ADD_LOG, err, "insert log");
  s->n_records += rc == 0;
  s->last_log_id = sqlite3_last_insert_rowid(s->db);
  if (s->first_log_id == 0)
    s->first_log_id = s->last_log_id;
  if (rc == 0 && req && (rc = store__bloom_add(s, store__key(req))) < 0)
    return fnp_fail(err, rc, "store: request ids: %s", fnp_strerror(rc));
  if (rc == 0 && (rc = store__span_add(s, inst, s->last_log_id, time_ns)) < 0)
    return fnp_fail(err, rc, "store: log spans: %s", fnp_strerror(rc));
  const char *mark = rc == 0 ? mark_of(f, n) : NULL;
  return mark ? add_mark(s, mark, inst, time_ns, err) : rc;
}

int store_add_metric(store *s, int64_t time_ns, const char *name,
                     const char *unit, double value, const export_field *f,
                     size_t n, fnp_error *err) {
  if (!s->in_batch)
    return fnp_fail(err, FNP_EUSAGE, "store: no open batch");
  fnp_buf_reset(&s->scratch);
  int rc = fields_json(&s->scratch, f, n);
  if (rc < 0)
    return fnp_fail(err, rc, "store: metric attributes: %s", fnp_strerror(rc));
  const char *inst = lookup(f, n, "instance");
  if (inst == NULL)
    inst = lookup(f, n, "faas.instance");
  sqlite3_stmt *st = s->st[STMT_ADD_METRIC];
  sqlite3_bind_int64(st, 1, s->batch_id);
  sqlite3_bind_int64(st, 2, time_ns);
  bind_text(st, 3, name ? name : "");
  bind_text(st, 4, unit ? unit : "");
  sqlite3_bind_double(st, 5, value);
  bind_text(st, 6, inst ? inst : s->tag_instance);
  sqlite3_bind_text(st, 7, (char *)s->scratch.data, (int)s->scratch.len - 1,
                    SQLITE_STATIC);
  rc = step_done(s, STMT_ADD_METRIC, err, "insert metric");
  s->n_records += rc == 0;
  s->last_metric_id = sqlite3_last_insert_rowid(s->db);
  return rc;
}

/* The JSON scratch buffer is kept between batches (it was a large share of
 * ingest's mallocs) unless one huge record grew it past what is worth
 * keeping. */
#define SCRATCH_KEEP_BYTES (1u << 20)
static void release_scratch(store *s) {
  if (s->scratch.alloc > SCRATCH_KEEP_BYTES) {
    fnp_buf_destroy(&s->scratch);
    fnp_buf_init(&s->scratch, FIELDS_JSON_MAX_BYTES);
  }
  fnp_buf_reset(&s->scratch);
}

int store_commit(store *s, fnp_error *err) {
  if (!s->in_batch)
    return fnp_fail(err, FNP_EUSAGE, "store: no open batch");
  sqlite3_stmt *st = s->st[STMT_COUNT_BATCH];
  sqlite3_bind_int64(st, 1, s->batch_id);
  sqlite3_bind_int64(st, 2, s->n_records);
  if (s->last_log_id)
    sqlite3_bind_int64(st, 3, s->last_log_id);
  if (s->last_metric_id)
    sqlite3_bind_int64(st, 4, s->last_metric_id);
  int rc = step_done(s, STMT_COUNT_BATCH, err, "count batch");
  rc = rc ? rc : store__bloom_flush(s, err);
  rc = rc ? rc : store__span_flush(s, err);
  rc = rc ? rc : step_done(s, STMT_COMMIT, err, "commit");
  if (rc < 0) {
    store_rollback(s);
    return rc;
  }
  s->in_batch = false;
  release_scratch(s);
  return 0;
}

void store_rollback(store *s) {
  if (!s->in_batch)
    return;
  /* A failed ROLLBACK leaves SQLite to roll back on the next BEGIN or on
   * close; there is nothing better to do with the error here. */
  int r = sqlite3_step(s->st[STMT_ROLLBACK]);
  sqlite3_reset(s->st[STMT_ROLLBACK]);
  s->rollback_failures += r != SQLITE_DONE;
  s->in_batch = false;
  release_scratch(s);
}
