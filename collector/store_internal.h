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
  STMT_COUNT
};

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
  const char *tag_instance; /* borrowed from the open batch's tags */
  fnp_buf scratch;          /* JSON of one record's fields */
  uint64_t rollback_failures;
};

/* The 64-bit key indexed in place of an instance or request id string. */
int64_t store__key(const char *s);

/* store_bloom.c: per-batch request-id filters. add: during a batch;
 * flush: before its commit (writes the batch_requests row, if any keys);
 * register: the fnprof_bloom_has SQL function; migrate: at open. */
int store__bloom_add(store *s, int64_t key);
int store__bloom_flush(store *s, fnp_error *err);
int store__bloom_register(store *s, fnp_error *err);
int store__bloom_migrate(store *s, fnp_error *err);

/* Fills err from SQLite's last error on s->db; returns the code. */
int store__sqlite_fail(store *s, fnp_error *err, const char *what);

#endif
