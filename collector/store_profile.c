/* Profiles in the store (deduped by a SHA-256 key) and retention
 * of old batches and profiles by age and database size. */
#include "store_internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000LL
/* Size retention removes this share of the oldest batches per round, so a
 * database over its limit shrinks in a few rounds, not one row at a time. */
#define SIZE_RETAIN_FRACTION 10

/* The dedupe key: SHA-256 over the metadata and the bytes, so a retried
 * upload is recognized while two profiles that happen to have identical
 * bytes (an unchanged heap at two freezes) stay two records. */
static void profile_key(const store_profile *p, const void *d, size_t len,
                        char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  char meta[64];
  snprintf(meta, sizeof meta, "%lld", (long long)p->time_ns);
  const char *parts[] = {p->project ? p->project : "",
                         p->instance ? p->instance : "", p->kind ? p->kind : "",
                         meta};
  out[0] = '\0';
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  for (size_t i = 0; ok && i < 4; i++) /* NUL-separated: unambiguous */
    ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1);
  ok = ok && EVP_DigestUpdate(c, d, len) && EVP_DigestFinal_ex(c, md, &n);
  EVP_MD_CTX_free(c);
  for (unsigned i = 0; ok && i < n && i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int exec_one(store *s, const char *sql, sqlite3_stmt **st,
                    fnp_error *err) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "prepare");
  return 0;
}

int store_put_profile(store *s, const store_profile *p, const void *data,
                      size_t len, int64_t *id, bool *duplicate,
                      fnp_error *err) {
  char sha[65];
  profile_key(p, data, len, sha);
  if (sha[0] == '\0')
    return fnp_fail(err, -ENOMEM, "profile: hashing failed");
  sqlite3_stmt *st = NULL;
  *duplicate = false;
  int rc = exec_one(s, "SELECT id FROM profiles WHERE sha256 = ?1", &st, err);
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    *duplicate = true;
    sqlite3_finalize(st);
    return 0;
  }
  sqlite3_finalize(st);
  rc = exec_one(s,
                "INSERT INTO profiles(sha256, received_ns, time_ns, project,"
                " instance, kind, size, data) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                &st, err);
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, p->time_ns);
  sqlite3_bind_int64(st, 3, p->time_ns);
  sqlite3_bind_text(st, 4, p->project ? p->project : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, p->instance ? p->instance : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, p->kind ? p->kind : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, (int64_t)len);
  sqlite3_bind_blob64(st, 8, data, len, SQLITE_STATIC);
  /* Autocommit: the INSERT is its own durable transaction. */
  rc = sqlite3_step(st) == SQLITE_DONE ? 0
                                       : store__sqlite_fail(s, err, "profile");
  sqlite3_finalize(st);
  *id = sqlite3_last_insert_rowid(s->db);
  return rc;
}

int store_get_profile(store *s, int64_t id, uint8_t **data, size_t *len,
                      fnp_error *err) {
  sqlite3_stmt *st = NULL;
  int rc = exec_one(s, "SELECT data FROM profiles WHERE id = ?1", &st, err);
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int r = sqlite3_step(st);
  if (r != SQLITE_ROW) {
    rc = r == SQLITE_DONE ? fnp_fail(err, FNP_ENOTFOUND,
                                     "profile %lld not found", (long long)id)
                          : store__sqlite_fail(s, err, "profile");
    goto done;
  }
  *len = (size_t)sqlite3_column_bytes(st, 0);
  *data = malloc(*len ? *len : 1);
  if (*data == NULL) {
    rc = fnp_fail(err, -ENOMEM, "profile: out of memory");
    goto done;
  }
  if (*len)
    memcpy(*data, sqlite3_column_blob(st, 0), *len);
done:
  sqlite3_finalize(st);
  return rc;
}

static int exec(store *s, const char *sql, int64_t arg, fnp_error *err) {
  sqlite3_stmt *st = NULL;
  int rc = exec_one(s, sql, &st, err);
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, arg);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0
                                       : store__sqlite_fail(s, err, "retain");
  sqlite3_finalize(st);
  return rc;
}

/* Deletes batches received before cutoff_ns, with their rows: a prefix of
 * logs and metrics by id (see the schema note in store.c). */
static int delete_before(store *s, int64_t cutoff_ns, fnp_error *err) {
  int rc = exec(s, "BEGIN IMMEDIATE", 0, err);
  rc = rc ? rc
          : exec(s,
                 "DELETE FROM logs WHERE id <= (SELECT max(last_log_id)"
                 " FROM batches WHERE received_ns < ?1)",
                 cutoff_ns, err);
  rc = rc ? rc
          : exec(s,
                 "DELETE FROM batch_requests WHERE last_log_id <= (SELECT"
                 " max(last_log_id) FROM batches WHERE received_ns < ?1)",
                 cutoff_ns, err);
  rc = rc ? rc
          : exec(s,
                 "DELETE FROM log_spans WHERE last_log_id <= (SELECT"
                 " max(last_log_id) FROM batches WHERE received_ns < ?1)",
                 cutoff_ns, err);
  rc = rc ? rc
          : exec(s,
                 "DELETE FROM log_marks WHERE log_id <= (SELECT"
                 " max(last_log_id) FROM batches WHERE received_ns < ?1)",
                 cutoff_ns, err);
  rc = rc ? rc
          : exec(s,
                 "DELETE FROM metrics WHERE id <= (SELECT max(last_metric_id)"
                 " FROM batches WHERE received_ns < ?1)",
                 cutoff_ns, err);
  rc = rc ? rc
          : exec(s, "DELETE FROM batches WHERE received_ns < ?1", cutoff_ns,
                 err);
  rc = rc ? rc
          : exec(s, "DELETE FROM profiles WHERE received_ns < ?1", cutoff_ns,
                 err);
  if (rc == 0)
    return exec(s, "COMMIT", 0, err);
  if (exec(s, "ROLLBACK", 0, NULL) < 0)
    s->rollback_failures++;
  return rc;
}

static int64_t db_bytes(store *s) {
  sqlite3_stmt *st = NULL;
  int64_t bytes = 0;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT (page_count - freelist_count) * page_size"
                         " FROM pragma_page_count, pragma_freelist_count,"
                         " pragma_page_size",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    bytes = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return bytes;
}

/* received_ns below which the oldest 1/SIZE_RETAIN_FRACTION batches lie. */
static int64_t size_cutoff(store *s) {
  sqlite3_stmt *st = NULL;
  int64_t cut = 0;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT received_ns FROM batches ORDER BY received_ns"
                         " LIMIT 1 OFFSET (SELECT count(*) FROM batches) / ?1",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int(st, 1, SIZE_RETAIN_FRACTION);
    if (sqlite3_step(st) == SQLITE_ROW)
      cut = sqlite3_column_int64(st, 0) + 1;
  }
  sqlite3_finalize(st);
  return cut;
}

int store_retain(store *s, int64_t now_ns, uint64_t *deleted, fnp_error *err) {
  int64_t before = sqlite3_total_changes64(s->db);
  int rc = 0;
  if (s->opts.max_age_ms > 0)
    rc = delete_before(s, now_ns - s->opts.max_age_ms * NS_PER_MS, err);
  if (rc == 0 && s->opts.max_bytes > 0 &&
      (uint64_t)db_bytes(s) > s->opts.max_bytes) {
    int64_t cut = size_cutoff(s);
    if (cut > 0)
      rc = delete_before(s, cut, err);
  }
  if (deleted)
    *deleted = (uint64_t)(sqlite3_total_changes64(s->db) - before);
  return rc;
}
