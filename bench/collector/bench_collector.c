/*
 * Collector benchmarks.
 *   bench_collector encode [RECORDS]   one core: LogGroup encode alone and
 *       encode + zstd / deflate / lz4, on realistic function log lines;
 *       records/s, MB/s of raw LogGroup, bytes per record.
 *   bench_collector ingest URL [RECORDS] [CLIENTS] [BATCH]   end to end:
 *       batches of BATCH records (default 2048) through the export library
 *       (zstd, signed) into fnprof-collector, each acknowledged (committed)
 *       before the client sends its next; CLIENTS processes (instances)
 *       push concurrently. Small batches from several clients are what the
 *       sidecar's /pre-freeze sends, and what group commit is for.
 *   bench_collector store DB [RECORDS]   the store alone (what the server
 *       does after decoding): one transaction per batch of records.
 */
#include <fnprof/export.h>
#include <fnprof/store.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH_RECORDS 2048       /* the C producer's batch size */
#define STORE_BENCH_MAX_FIELDS 8 /* make_batch's 4 + instance, request id */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lines shaped like a function's access and application logs. */
static export_batch *make_batch(long base, long n_records) {
  static const char *const paths[] = {"/api/orders", "/api/users/42", "/invoke",
                                      "/api/cart/items", "/healthz"};
  static const char *const levels[] = {"INFO", "INFO", "INFO", "WARN", "ERROR"};
  export_batch *b;
  export_batch_limits lim = {.max_records = (size_t)n_records,
                             .max_bytes = 8u << 20};
  if (export_batch_new(&lim, 0, &b) < 0)
    return NULL;
  for (long i = base; i < base + n_records; i++) {
    char msg[200], req[48], dur[16];
    snprintf(req, sizeof req, "1-6751f3a2-%08lx%08lx", i * 2654435761u, i);
    snprintf(dur, sizeof dur, "%ld", 3 + (i * 7919) % 480);
    snprintf(msg, sizeof msg, "%s %s %d %sms user=u%ld bytes=%ld cold=%s",
             i % 3 ? "GET" : "POST", paths[i % 5], i % 17 ? 200 : 500, dur,
             i % 1000, 200 + (i * 31) % 5000, i % 50 ? "false" : "true");
    export_field f[] = {{"message", msg},
                        {"level", levels[i % 5]},
                        {"duration_ms", dur},
                        {"function", "order-service"}};
    export_record r = {.time_ns = 1714564800000000000LL + i * 1000003LL,
                       .instance = "c-6751f3a2-1f9b2c8e4d01",
                       .request_id = req,
                       .fields = f,
                       .n_fields = 4};
    if (export_batch_add(b, &r) < 0) {
      export_batch_free(b);
      return NULL;
    }
  }
  return b;
}

static int bench_encode(long records) {
  long nb = records / BATCH_RECORDS;
  export_batch **bs = calloc((size_t)nb, sizeof *bs);
  for (long i = 0; i < nb; i++)
    if ((bs[i] = make_batch(i * BATCH_RECORDS, BATCH_RECORDS)) == NULL)
      return 1;
  static const struct {
    const char *name;
    int c; /* -1: encode only */
  } modes[] = {{"encode only", -1},
               {"encode+zstd", EXPORT_COMPRESS_ZSTD},
               {"encode+deflate", EXPORT_COMPRESS_DEFLATE},
               {"encode+lz4", EXPORT_COMPRESS_LZ4}};
  fnp_buf raw, out;
  fnp_buf_init(&raw, 64u << 20);
  fnp_buf_init(&out, 64u << 20);
  printf("%-16s %12s %10s %12s %8s\n", "mode", "records/s", "raw MB/s",
         "bytes/record", "ratio");
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    size_t raw_total = 0, out_total = 0;
    export_sls_meta meta = {.topic = "fnprof", .pack_id = "BENCH-1"};
    double t0 = now_s();
    for (long i = 0; i < nb; i++) {
      fnp_buf_reset(&raw);
      fnp_buf_reset(&out);
      if (export_sls_encode(bs[i], &meta, &raw, NULL) < 0)
        return 1;
      raw_total += raw.len;
      if (modes[m].c >= 0 &&
          export_compress_buf((export_compress)modes[m].c, raw.data, raw.len,
                              &out, NULL) < 0)
        return 1;
      out_total += modes[m].c >= 0 ? out.len : raw.len;
    }
    double dt = now_s() - t0;
    printf("%-16s %12.0f %10.1f %12.1f %8.2f\n", modes[m].name,
           (double)(nb * BATCH_RECORDS) / dt, (double)raw_total / dt / 1e6,
           (double)out_total / (double)(nb * BATCH_RECORDS),
           (double)raw_total / (double)out_total);
  }
  fnp_buf_destroy(&raw);
  fnp_buf_destroy(&out);
  for (long i = 0; i < nb; i++)
    export_batch_free(bs[i]);
  free(bs);
  return 0;
}

/* One client: its share of the records, one sink, batch after batch. */
static int ingest_client(const char *url, long nb, long first, long per) {
  export_sink_opts o = {.access_key_id = "BENCH",
                        .access_key_secret = "b3nch",
                        .request_timeout_ms = 30000};
  export_sink *s;
  fnp_error err = {0};
  if (export_sink_new(url, &o, &s, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  for (long i = first; i < first + nb; i++) {
    export_flush_result r = {0};
    if (export_sink_push(s, make_batch(i * per, per), &err) < 0 ||
        export_sink_flush(s, export_now_ms() + 30000, &r) < 0 ||
        r.acked_records != (uint64_t)per) {
      fprintf(stderr, "batch %ld: %s %s\n", i, err.msg, r.why);
      export_sink_free(s);
      return 1;
    }
  }
  export_sink_free(s);
  return 0;
}

static int bench_ingest(const char *url, long records, int clients, long per) {
  if (clients < 1 || per < 1)
    return 2;
  long nb = records / per / clients;
  double t0 = now_s();
  for (int c = 0; c < clients; c++)
    if (fork() == 0)
      _exit(ingest_client(url, nb, c * nb, per));
  int failed = 0, st;
  while (wait(&st) > 0)
    failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
  double dt = now_s() - t0;
  long acked = nb * clients * per;
  printf("ingest: %ld records acknowledged in %.2f s = %.0f records/s "
         "(%d clients, batches of %ld, zstd, signed, each acknowledged "
         "after its commit)\n",
         acked, dt, (double)acked / dt, clients, per);
  return failed;
}

static int bench_store(const char *path, long records) {
  store *st;
  fnp_error err = {0};
  if (store_open(path, NULL, &st, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  long nb = records / BATCH_RECORDS;
  double busy = 0;
  for (long i = 0; i < nb; i++) {
    export_batch *b = make_batch(i * BATCH_RECORDS, BATCH_RECORDS);
    export_field tags[] = {{"instance", "c-6751f3a2-1f9b2c8e4d01"}};
    char key[32];
    snprintf(key, sizeof key, "bench-%ld", i);
    store_batch sb = {.dedupe_key = key,
                      .kind = "sls",
                      .project = "p",
                      .logstore = "l",
                      .tags = tags,
                      .n_tags = 1};
    bool dup;
    double t0 = now_s();
    int rc = store_begin(st, &sb, &dup, &err);
    for (size_t j = 0; rc == 0 && j < export_batch_count(b); j++) {
      /* What the server hands the store after decoding a LogGroup: the
       * fields, then instance and request_id as contents (which the store
       * lifts out and indexes). */
      const export_record *r = export_batch_get(b, j);
      export_field f[STORE_BENCH_MAX_FIELDS];
      size_t n = 0;
      for (; n < r->n_fields && n + 2 < STORE_BENCH_MAX_FIELDS; n++)
        f[n] = r->fields[n];
      f[n++] = (export_field){"instance", r->instance};
      f[n++] = (export_field){"request_id", r->request_id};
      rc = store_add_log(st, r->time_ns, f, n, &err);
    }
    rc = rc ? rc : store_commit(st, &err);
    busy += now_s() - t0;
    export_batch_free(b);
    if (rc < 0) {
      fprintf(stderr, "%s\n", err.msg);
      store_close(st);
      return 1;
    }
  }
  printf("store: %ld records in %.2f s = %.0f records/s (a transaction "
         "per %d)\n",
         nb * BATCH_RECORDS, busy, (double)(nb * BATCH_RECORDS) / busy,
         BATCH_RECORDS);
  store_close(st);
  return 0;
}

int main(int argc, char **argv) {
  (void)export_keep_heap(); /* as the sidecar, the library's producer */
  if (argc >= 2 && strcmp(argv[1], "encode") == 0)
    return bench_encode(argc > 2 ? atol(argv[2]) : 1000000);
  if (argc >= 3 && strcmp(argv[1], "ingest") == 0)
    return bench_ingest(argv[2], argc > 3 ? atol(argv[3]) : 400000,
                        argc > 4 ? atoi(argv[4]) : 1,
                        argc > 5 ? atol(argv[5]) : BATCH_RECORDS);
  if (argc >= 3 && strcmp(argv[1], "store") == 0)
    return bench_store(argv[2], argc > 3 ? atol(argv[3]) : 400000);
  fprintf(stderr, "usage: bench_collector encode [N] | ingest URL [N "
                  "[CLIENTS [BATCH]]] | store DB [N]\n");
  return 2;
}
