/* The SQLite store: a batch per transaction, dedupe by batch key, query
 * filters and JSON shape, retention by age, profile dedupe semantics. */
#include <fnprof/store.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char db[64];

static int setup(void **state) {
  (void)state;
  snprintf(db, sizeof db, "/tmp/fnp_store_%d.db", (int)getpid());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char p[80];
  unlink(db);
  snprintf(p, sizeof p, "%s-wal", db);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", db);
  unlink(p);
  return 0;
}

static void put_batch(store *s, const char *key, int64_t received,
                      const char *req, bool want_dup) {
  export_field tags[] = {{"instance", "inst-a"}};
  store_batch b = {.dedupe_key = key,
                   .kind = "sls",
                   .project = "p",
                   .logstore = "ls",
                   .topic = "t",
                   .source = "src",
                   .tags = tags,
                   .n_tags = 1,
                   .received_ns = received};
  bool dup;
  fnp_error err = {0};
  assert_int_equal(store_begin(s, &b, &dup, &err), 0);
  assert_int_equal(dup, want_dup);
  if (dup)
    return;
  export_field f[] = {{"message", "hello \"quoted\" \xff"},
                      {"request_id", req}};
  assert_int_equal(store_add_log(s, received, f, 2, &err), 0);
  assert_int_equal(store_commit(s, &err), 0);
}

static char *query(store *s, const store_query *q) {
  fnp_buf j;
  fnp_buf_init(&j, 1u << 20);
  assert_int_equal(store_query_logs(s, q, &j, NULL), 0);
  assert_int_equal(fnp_buf_append(&j, "", 1), 0);
  return (char *)fnp_buf_steal(&j, NULL);
}

static void batches_dedupe_query(void **state) {
  (void)state;
  store *s;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  put_batch(s, "k1", 1000, "r-1", false);
  put_batch(s, "k1", 2000, "r-1", true); /* same key: acknowledged, skipped */
  put_batch(s, NULL, 3000, "r-2", false);
  put_batch(s, NULL, 4000, "r-2", false); /* no key: never a duplicate */
  store_query q = {.logstore = "ls"};
  char *j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":3}"));
  /* Fields and tags come back as JSON objects; bad UTF-8 is replaced. */
  assert_non_null(strstr(j, "\"fields\":{\"message\":\"hello \\\"quoted\\\" "
                            "\\ufffd\",\"request_id\":\"r-1\"}"));
  assert_non_null(strstr(j, "\"tags\":{\"instance\":\"inst-a\"}"));
  assert_non_null(strstr(j, "\"instance\":\"inst-a\""));
  free(j);
  q = (store_query){.request_id = "r-2"};
  j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":2}"));
  free(j);
  q = (store_query){.text = "quoted", .from_ns = 2000, .to_ns = 4000};
  j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":1}")); /* [from, to) */
  free(j);
  q = (store_query){.text = "%"}; /* LIKE wildcards match literally */
  j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":0}"));
  free(j);
  q = (store_query){.instance = "inst-b"};
  j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":0}"));
  free(j);
  store_close(s);
}

static int count_of(const char *j) {
  const char *c = strstr(j, "\"count\":");
  assert_non_null(c);
  return atoi(c + 8);
}

static int count_request(store *s, const char *req, const char *inst) {
  store_query q = {.request_id = req, .instance = inst, .limit = 10000};
  char *j = query(s, &q);
  int n = count_of(j);
  free(j);
  return n;
}

/* Request ids are found through per-batch Bloom filters (store_bloom.c):
 * every id in every batch, an id spread over several batches, none that
 * was never stored (false positives only cost a batch read, never a
 * wrong row), and with other filters combined. */
static void request_ids(void **state) {
  (void)state;
  enum { BATCHES = 30, PER_BATCH = 300 };
  store *s;
  fnp_error err = {0};
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  for (int b = 0; b < BATCHES; b++) {
    store_batch sb = {.kind = "sls", .project = "p", .logstore = "ls"};
    bool dup;
    assert_int_equal(store_begin(s, &sb, &dup, &err), 0);
    for (int i = 0; i < PER_BATCH; i++) {
      char req[32];
      snprintf(req, sizeof req, "req-%d-%d", b, i);
      export_field f[] = {{"request_id", i == 7 ? "shared" : req},
                          {"instance", b % 2 ? "odd" : "even"}};
      assert_int_equal(store_add_log(s, b * 1000 + i, f, 2, &err), 0);
    }
    if (b == 5) { /* a batch without request ids gets no filter */
      export_field f[] = {{"message", "no request"}};
      assert_int_equal(store_add_log(s, 1, f, 1, &err), 0);
    }
    assert_int_equal(store_commit(s, &err), 0);
  }
  for (int b = 0; b < BATCHES; b++)
    for (int i = 0; i < PER_BATCH; i += 37) {
      char req[32];
      snprintf(req, sizeof req, "req-%d-%d", b, i);
      assert_int_equal(count_request(s, req, NULL), i == 7 ? 0 : 1);
    }
  for (int i = 0; i < 200; i++) {
    char req[32];
    snprintf(req, sizeof req, "absent-%d", i);
    assert_int_equal(count_request(s, req, NULL), 0);
  }
  assert_int_equal(count_request(s, "shared", NULL), BATCHES);
  assert_int_equal(count_request(s, "shared", "odd"), BATCHES / 2);
  assert_int_equal(count_request(s, "req-3-5", "even"), 0);
  store_close(s);
}

/* A database written before the filters (index logs_request, no
 * batch_requests) still answers request-id queries after an upgrade, for
 * its old rows and new ones, and loses the index every insert paid for. */
static void request_ids_old_database(void **state) {
  (void)state;
  sqlite3 *raw;
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(
          raw,
          "CREATE TABLE batches(id INTEGER PRIMARY KEY, dedupe_key TEXT UNIQUE,"
          " kind TEXT NOT NULL, received_ns INTEGER NOT NULL, project TEXT NOT"
          " NULL, logstore TEXT NOT NULL, topic TEXT NOT NULL, source TEXT NOT"
          " NULL, tags TEXT NOT NULL, n_records INTEGER NOT NULL DEFAULT 0,"
          " last_log_id INTEGER, last_metric_id INTEGER);"
          "CREATE TABLE logs(id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL,"
          " time_ns INTEGER NOT NULL, instance TEXT, request_id TEXT,"
          " instance_key INTEGER, request_key INTEGER, fields TEXT NOT NULL);"
          "CREATE INDEX logs_request ON logs(request_key);"
          "INSERT INTO batches VALUES (1, NULL, 'sls', 5, 'p', 'ls', '', '',"
          " '{}', 2, 2, NULL);"
          "INSERT INTO logs VALUES (1, 1, 5, NULL, 'old-1', NULL, 1, '{}'),"
          " (2, 1, 6, NULL, 'old-2', NULL, 2, '{}');",
          NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(raw);
  store *s;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  put_batch(s, NULL, 7, "new-1", false);
  assert_int_equal(count_request(s, "old-2", NULL), 1);
  assert_int_equal(count_request(s, "new-1", NULL), 1);
  assert_int_equal(count_request(s, "old-3", NULL), 0);
  store_close(s);
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(raw,
                                      "SELECT count(*) FROM sqlite_master"
                                      " WHERE name = 'logs_request'",
                                      -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

/* ---- log spans (store_span.c) against a brute-force answer ---- */

enum { SPAN_BATCHES = 40, SPAN_PER_BATCH = 60 };
typedef struct span_row {
  long id;
  int64_t time_ns;
  int inst; /* 0, 1: "i0", "i1"; 2: none */
  bool hit, invocation;
} span_row;
static span_row span_rows[SPAN_BATCHES * SPAN_PER_BATCH];

/* Batches whose rows interleave in time with other batches' and carry two
 * instances and rows without one, so a span's id range holds other
 * instances' rows. Ids are 1..N in insertion order (a fresh database). */
static void put_span_batches(store *s) {
  fnp_error err = {0};
  unsigned seed = 12345;
  long id = 0;
  for (int b = 0; b < SPAN_BATCHES; b++) {
    store_batch sb = {.kind = "sls", .project = "p", .logstore = "ls"};
    bool dup;
    assert_int_equal(store_begin(s, &sb, &dup, &err), 0);
    for (int i = 0; i < SPAN_PER_BATCH; i++) {
      seed = seed * 1103515245u + 12345u;
      span_row *r = &span_rows[id];
      r->id = ++id;
      r->time_ns =
          (int64_t)((b * 37) % SPAN_BATCHES) * 1000 + (seed >> 8) % 5000;
      r->inst = (int)((seed >> 4) % 3);
      r->hit = (seed >> 12) % 7 == 0;
      r->invocation = (seed >> 16) % 5 == 0;
      export_field f[] = {{"message", r->hit ? "a hit here" : "nothing"},
                          {"record", r->invocation ? "invocation" : "log"},
                          {"instance", r->inst == 0 ? "i0" : "i1"}};
      assert_int_equal(
          store_add_log(s, r->time_ns, f, r->inst == 2 ? 2 : 3, &err), 0);
    }
    assert_int_equal(store_commit(s, &err), 0);
  }
}

static int by_time_then_id(const void *pa, const void *pb) {
  const span_row *a = pa, *b = pb;
  if (a->time_ns != b->time_ns)
    return a->time_ns < b->time_ns ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* The ids an answer lists, in order ("id": keys of the records). */
static int ids_of(const char *j, long *ids, int cap) {
  int n = 0;
  for (const char *p = j; (p = strstr(p, "{\"id\":")) != NULL && n < cap; p++)
    ids[n++] = atol(p + 6);
  return n;
}

/* Filters (inst -1: any; only_hits: the text filter; kinds: invocations
 * only), [from, to), then time order, newest first if asked, and limit. */
static int expected_ids(int inst, bool only_hits, bool invocations,
                        int64_t from, int64_t to, bool newest, int limit,
                        long *out) {
  static span_row sorted[SPAN_BATCHES * SPAN_PER_BATCH];
  int n = 0, total = SPAN_BATCHES * SPAN_PER_BATCH;
  for (int i = 0; i < total; i++) {
    const span_row *r = &span_rows[i];
    if ((inst < 0 || r->inst == inst) && (!only_hits || r->hit) &&
        (!invocations || r->invocation) && r->time_ns >= from &&
        (to == 0 || r->time_ns < to))
      sorted[n++] = *r;
  }
  qsort(sorted, (size_t)n, sizeof *sorted, by_time_then_id);
  int m = n < limit ? n : limit;
  for (int i = 0; i < m; i++)
    out[i] = sorted[newest ? n - 1 - i : i].id;
  return m;
}

/* The answer j lists, in order, exactly the rows expected_ids picks. */
static void assert_answer(const char *j, int inst, bool only_hits,
                          bool invocations, int64_t from, int64_t to,
                          bool newest, int limit) {
  static long want[STORE_QUERY_MAX_LIMIT], got[STORE_QUERY_MAX_LIMIT];
  int n_want =
      expected_ids(inst, only_hits, invocations, from, to, newest, limit, want);
  assert_int_equal(count_of(j), n_want);
  int n = ids_of(j, got, STORE_QUERY_MAX_LIMIT);
  assert_int_equal(n, n_want);
  for (int i = 0; i < n; i++)
    assert_int_equal(got[i], want[i]);
}

/* Logs by time, instance, text and limit come from the spans (no per-row
 * index): the same rows in the same order as filtering everything by hand,
 * no row twice though spans of one batch overlap by id, and with a text
 * filter that leaves too few rows under the first bound (the retry). */
static void spans_logs_query(void **state) {
  (void)state;
  store *s;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  put_span_batches(s);
  static const struct {
    const char *inst;
    int inst_no;
    bool hits;
    int64_t from, to;
    int limit;
  } cases[] = {
      {NULL, -1, false, 0, 0, 10},      {NULL, -1, false, 0, 0, 10000},
      {"i0", 0, false, 0, 0, 25},       {"i1", 1, false, 12000, 30000, 40},
      {NULL, -1, true, 0, 0, 30},       {"i1", 1, true, 5000, 0, 7},
      {NULL, -1, false, 39000, 0, 100}, {"i0", 0, true, 0, 1000, 3},
      {"nope", 3, false, 0, 0, 10},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    store_query q = {.instance = cases[c].inst,
                     .text = cases[c].hits ? "hit" : NULL,
                     .from_ns = cases[c].from,
                     .to_ns = cases[c].to,
                     .limit = cases[c].limit};
    char *j = query(s, &q);
    assert_answer(j, cases[c].inst_no, cases[c].hits, false, cases[c].from,
                  cases[c].to, false, cases[c].limit);
    free(j);
  }
  store_close(s);
}

/* The web page's timeline (store_ui_records): an instance's records of a
 * kind, newest or oldest first, through the spans. */
static void spans_ui_records(void **state) {
  (void)state;
  store *s;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  put_span_batches(s);
  for (int newest = 0; newest < 2; newest++)
    for (int limit = 1; limit <= 200; limit *= 7) {
      store_query q = {.instance = "i1", .from_ns = 3000, .limit = limit};
      fnp_buf j;
      fnp_buf_init(&j, 1u << 20);
      assert_int_equal(store_ui_records(s, &q, "invocation", newest, &j, NULL),
                       0);
      assert_int_equal(fnp_buf_append(&j, "", 1), 0);
      assert_answer((char *)j.data, 1, false, true, 3000, 0, newest, limit);
      fnp_buf_destroy(&j);
    }
  store_close(s);
}

/* A database with the per-row time and instance indexes and no spans gets
 * spans for its rows at open, answers as before, and loses the indexes. */
static void spans_old_database(void **state) {
  (void)state;
  store *s;
  sqlite3 *raw;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  put_span_batches(s);
  store_close(s);
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(raw,
                                "DELETE FROM log_spans;"
                                "CREATE INDEX logs_time ON logs(time_ns);"
                                "CREATE INDEX logs_instance"
                                " ON logs(instance_key, time_ns);",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(raw);
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  store_query q = {.instance = "i0", .limit = 50};
  char *j = query(s, &q);
  assert_int_equal(count_of(j), 50);
  assert_answer(j, 0, false, false, 0, 0, false, 50);
  free(j);
  store_close(s);
  assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(
      sqlite3_prepare_v2(raw,
                         "SELECT (SELECT count(*) FROM sqlite_master"
                         " WHERE name IN ('logs_time',"
                         " 'logs_instance')),"
                         " (SELECT sum(n_rows) FROM log_spans)",
                         -1, &st, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 0);
  assert_int_equal(sqlite3_column_int(st, 1), SPAN_BATCHES * SPAN_PER_BATCH);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

static void retention_by_age(void **state) {
  (void)state;
  store_opts o = {.max_age_ms = 1000};
  store *s;
  assert_int_equal(store_open(db, &o, &s, NULL), 0);
  const int64_t sec = 1000000000LL;
  put_batch(s, "old", 1 * sec, "r-old", false);
  put_batch(s, "new", 10 * sec, "r-new", false);
  uint64_t deleted = 0;
  assert_int_equal(store_retain(s, 10 * sec + sec / 2, &deleted, NULL), 0);
  assert_true(deleted >= 2); /* the old batch and its log */
  store_query q = {0};
  char *j = query(s, &q);
  assert_non_null(strstr(j, "\"count\":1}"));
  assert_non_null(strstr(j, "r-new"));
  free(j);
  /* The expired batch's key is gone with it: a late retry is stored. */
  put_batch(s, "old", 11 * sec, "r-old", false);
  store_close(s);
}

static void profiles(void **state) {
  (void)state;
  store *s;
  assert_int_equal(store_open(db, NULL, &s, NULL), 0);
  const char bytes[] = "\x1f\x8bprofile";
  store_profile a = {.instance = "i", .kind = "inuse", .time_ns = 5};
  store_profile b = {.instance = "i", .kind = "final", .time_ns = 5};
  int64_t id1, id2, id3;
  bool dup;
  assert_int_equal(store_put_profile(s, &a, bytes, 10, &id1, &dup, NULL), 0);
  assert_false(dup);
  /* Same bytes, other kind: a different profile. */
  assert_int_equal(store_put_profile(s, &b, bytes, 10, &id2, &dup, NULL), 0);
  assert_false(dup);
  assert_int_not_equal(id1, id2);
  /* A retried upload: same metadata and bytes. */
  assert_int_equal(store_put_profile(s, &a, bytes, 10, &id3, &dup, NULL), 0);
  assert_true(dup);
  assert_int_equal(id3, id1);
  uint8_t *data;
  size_t len;
  assert_int_equal(store_get_profile(s, id2, &data, &len, NULL), 0);
  assert_int_equal(len, 10);
  assert_memory_equal(data, bytes, 10);
  free(data);
  fnp_error err = {0};
  assert_int_equal(store_get_profile(s, 999, &data, &len, &err), FNP_ENOTFOUND);
  fnp_buf j;
  fnp_buf_init(&j, 1u << 16);
  store_query q = {.name = "final"};
  assert_int_equal(store_list_profiles(s, &q, &j, NULL), 0);
  assert_int_equal(fnp_buf_append(&j, "", 1), 0);
  assert_non_null(strstr((char *)j.data, "\"count\":1}"));
  fnp_buf_destroy(&j);
  store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(batches_dedupe_query, setup, teardown),
      cmocka_unit_test_setup_teardown(request_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(request_ids_old_database, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(spans_logs_query, setup, teardown),
      cmocka_unit_test_setup_teardown(spans_ui_records, setup, teardown),
      cmocka_unit_test_setup_teardown(spans_old_database, setup, teardown),
      cmocka_unit_test_setup_teardown(retention_by_age, setup, teardown),
      cmocka_unit_test_setup_teardown(profiles, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
