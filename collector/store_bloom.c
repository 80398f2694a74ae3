/*
 * Per-batch Bloom filters of request ids, in place of a B-tree index on
 * logs.request_key. Request ids are random, so an index on them took a
 * random leaf page per row: at commit every batch rewrote most of that
 * index's pages into the WAL (~14% of the store's CPU at 400k rows, more as
 * it grows). A filter per batch is built in memory and written once, as one
 * row of batch_requests(batch_id, first_log_id, last_log_id, bloom); a
 * request-id query tests each batch's filter (fnprof_bloom_has, an SQL
 * function) and reads only the matching batches' id ranges of logs.
 *
 * Math: m = 10 bits per key rounded up to a power of two, k = 7 probes by
 * double hashing (Kirsch and Mitzenmacher, "Less hashing, same
 * performance", 2006): false positives ~0.8%, each costing one batch read.
 */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BLOOM_BITS_PER_KEY 10
#define BLOOM_PROBES 7
#define BLOOM_MIN_BITS 64
/* A batch is at most srv_limits.max_logs (1M) logs: 16 MiB of keys. */
#define BLOOM_MAX_KEYS (1u << 21)

/* FNV-1a keys of similar ids differ in few bits; splitmix64's finalizer
 * spreads them before they are split into two probe hashes. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void probes(uint64_t key, uint64_t m_bits, uint64_t out[BLOOM_PROBES]) {
  uint64_t h = mix(key), h1 = h & 0xffffffffu, h2 = (h >> 32) | 1;
  for (int i = 0; i < BLOOM_PROBES; i++)
    out[i] = (h1 + (uint64_t)i * h2) & (m_bits - 1);
}

int store__bloom_add(store *s, int64_t key) {
  int rc = store__grow((void **)&s->req_keys, &s->cap_req_keys, s->n_req_keys,
                       sizeof *s->req_keys, BLOOM_MAX_KEYS);
  if (rc < 0)
    return rc;
  s->req_keys[s->n_req_keys++] = key;
  return 0;
}

int store__bloom_flush(store *s, fnp_error *err) {
  if (s->n_req_keys == 0)
    return 0; /* nothing to find in this batch by request id */
  uint64_t m = BLOOM_MIN_BITS;
  while (m < (uint64_t)s->n_req_keys * BLOOM_BITS_PER_KEY)
    m <<= 1;
  uint8_t *bits = calloc(m / 8, 1);
  if (bits == NULL)
    return fnp_fail(err, -ENOMEM, "store: out of memory");
  for (size_t i = 0; i < s->n_req_keys; i++) {
    uint64_t p[BLOOM_PROBES];
    probes((uint64_t)s->req_keys[i], m, p);
    for (int j = 0; j < BLOOM_PROBES; j++)
      bits[p[j] >> 3] |= (uint8_t)(1u << (p[j] & 7));
  }
  sqlite3_stmt *st = s->st[STMT_ADD_BLOOM];
  sqlite3_bind_int64(st, 1, s->batch_id);
  sqlite3_bind_int64(st, 2, s->first_log_id);
  sqlite3_bind_int64(st, 3, s->last_log_id);
  sqlite3_bind_blob(st, 4, bits, (int)(m / 8), SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  free(bits);
  s->n_req_keys = 0;
  return r == SQLITE_DONE ? 0 : store__sqlite_fail(s, err, "insert bloom");
}

/* fnprof_bloom_has(bloom, key): 1 when key may be in the batch. An empty
 * or NULL filter matches everything (the row that stands for the logs of a
 * database from before the filters, see store__bloom_migrate). */
static void bloom_has(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const uint8_t *bits = sqlite3_value_blob(argv[0]);
  uint64_t len = (uint64_t)sqlite3_value_bytes(argv[0]);
  uint64_t m = len * 8, p[BLOOM_PROBES];
  int has = 1;
  if (bits && len && (m & (m - 1)) == 0) {
    probes((uint64_t)sqlite3_value_int64(argv[1]), m, p);
    for (int j = 0; j < BLOOM_PROBES && has; j++)
      has = (bits[p[j] >> 3] >> (p[j] & 7)) & 1;
  }
  sqlite3_result_int(ctx, has);
}

int store__bloom_register(store *s, fnp_error *err) {
  if (sqlite3_create_function_v2(
          s->db, "fnprof_bloom_has", 2,
          SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
          bloom_has, NULL, NULL, NULL) != SQLITE_OK)
    return store__sqlite_fail(s, err, "register bloom function");
  return 0;
}

/* A database from before the filters has the logs_request index and no
 * filter rows: one match-everything row covers its logs (request-id
 * queries scan them), and the index, which every insert paid for, goes. */
int store__bloom_migrate(store *s, fnp_error *err) {
  static const char *const SQL =
      "BEGIN IMMEDIATE;"
      "INSERT OR IGNORE INTO batch_requests(batch_id, first_log_id,"
      " last_log_id, bloom) SELECT 0, 1, max(id), x'' FROM logs"
      " WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index'"
      " AND name = 'logs_request') HAVING max(id) IS NOT NULL;"
      "DROP INDEX IF EXISTS logs_request;"
      "COMMIT;";
  return store__migrate(s, SQL, "migrate request index", err);
}
