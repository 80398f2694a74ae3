/*
 * Test driver for the export library: pushes numbered records through a
 * sink and flushes, printing what the flush reported. Integration scripts
 * use it as "the sidecar". Records carry seq=N so a reader can check order
 * and completeness.
 *
 *   export_push URL [--records N] [--batch M] [--compress zstd|deflate|lz4|
 *     none] [--spool DIR] [--deadline-ms MS] [--flush-each] [--metrics]
 *     [--dump FILE] [--profile FILE] [--start N] [--key ID:SECRET]
 *     [--prefix BATCH_ID_PREFIX]
 *
 * --flush-each flushes after every batch and prints "acked_total N" lines
 * (delivery is in order, so records [start, start+N) are acknowledged).
 */
#include <fnprof/export.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct args {
  const char *url, *spool, *dump, *profile, *key, *prefix;
  long records, batch, start, deadline_ms;
  export_compress compress;
  bool flush_each, metrics;
} args;

static int parse(int argc, char **argv, args *a) {
  *a = (args){.records = 10, .batch = 5, .deadline_ms = 3000};
  if (argc < 2)
    return -1;
  a->url = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--flush-each") == 0) {
      a->flush_each = true;
      continue;
    }
    if (strcmp(o, "--metrics") == 0) {
      a->metrics = true;
      continue;
    }
    if (v == NULL)
      return -1;
    i++;
    if (strcmp(o, "--records") == 0)
      a->records = atol(v);
    else if (strcmp(o, "--batch") == 0)
      a->batch = atol(v);
    else if (strcmp(o, "--start") == 0)
      a->start = atol(v);
    else if (strcmp(o, "--deadline-ms") == 0)
      a->deadline_ms = atol(v);
    else if (strcmp(o, "--spool") == 0)
      a->spool = v;
    else if (strcmp(o, "--dump") == 0)
      a->dump = v;
    else if (strcmp(o, "--profile") == 0)
      a->profile = v;
    else if (strcmp(o, "--key") == 0)
      a->key = v;
    else if (strcmp(o, "--prefix") == 0)
      a->prefix = v;
    else if (strcmp(o, "--compress") == 0) {
      if (export_compress_parse(strcmp(v, "none") ? v : "", &a->compress) < 0)
        return -1;
    } else
      return -1;
  }
  return a->batch > 0 ? 0 : -1;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(const export_flush_result *r, uint64_t total) {
  printf("acked=%llu pending=%llu spooled=%llu spool=%llu rejected=%llu "
         "dropped=%llu status=%d error=%d acked_total %llu why=%s\n",
         (unsigned long long)r->acked_records,
         (unsigned long long)r->pending_records,
         (unsigned long long)r->spooled_records,
         (unsigned long long)r->spool_batches,
         (unsigned long long)r->rejected_records,
         (unsigned long long)r->dropped_records, r->last_status, r->error,
         (unsigned long long)total, r->why);
  fflush(stdout);
}

static export_batch *make_batch(const args *a, long from, long n) {
  export_batch *b;
  if (export_batch_new(NULL, now_ns(), &b) < 0)
    return NULL;
  for (long i = from; i < from + n; i++) {
    char seq[32], msg[96];
    snprintf(seq, sizeof seq, "%ld", i);
    snprintf(msg, sizeof msg, "GET /api/items/%ld 200 in %ld ms", i, i % 97);
    export_field f[] = {{"message", msg}, {"seq", seq}, {"level", "INFO"}};
    export_record r = {.time_ns = now_ns(),
                       .instance = "inst-7",
                       .request_id = seq,
                       .fields = f,
                       .n_fields = 3};
    if (a->metrics) {
      r.kind = EXPORT_KIND_METRIC;
      r.metric_name = "heap_live_bytes";
      r.metric_unit = "By";
      r.metric_value = (double)i * 1024;
    }
    if (export_batch_add(b, &r) < 0) {
      export_batch_free(b);
      return NULL;
    }
  }
  return b;
}

static int dump(const args *a, export_batch *b) {
  fnp_buf out;
  fnp_buf_init(&out, 64u << 20);
  export_sls_meta m = {.topic = "fnprof", .pack_id = "DUMP-0"};
  export_otlp_meta om = {.batch_id = "DUMP-0"};
  int rc = strncmp(a->url, "otlp", 4) != 0
               ? export_sls_encode(b, &m, &out, NULL)
           : a->metrics ? export_otlp_encode_metrics(b, &om, &out, NULL)
                        : export_otlp_encode_logs(b, &om, &out, NULL);
  FILE *f = rc == 0 ? fopen(a->dump, "wb") : NULL;
  if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len)
    rc = -1;
  if (f && fclose(f) != 0)
    rc = -1;
  fnp_buf_destroy(&out);
  return rc;
}

static int push_profile(export_sink *s, const char *path) {
  uint8_t *data;
  size_t len;
  fnp_error err = {0};
  if (fnp_read_file(path, 32u << 20, &data, &len, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  int rc =
      export_sink_push_profile(s, "inst-7", "heap", now_ns(), data, len, &err);
  free(data);
  if (rc < 0)
    fprintf(stderr, "push_profile: %s\n", err.msg);
  return rc;
}

int main(int argc, char **argv) {
  args a;
  if (parse(argc, argv, &a) < 0) {
    fprintf(stderr, "usage: export_push URL [options] (see source)\n");
    return 2;
  }
  char id[128] = "", *secret = NULL;
  if (a.key) {
    snprintf(id, sizeof id, "%s", a.key);
    secret = strchr(id, ':');
    if (secret)
      *secret++ = '\0';
  }
  export_field tags[] = {{"instance", "inst-7"}, {"function", "fn-demo"}};
  export_sink_opts o = {.compress = a.compress,
                        .topic = "fnprof",
                        .tags = tags,
                        .n_tags = 2,
                        .spool_dir = a.spool,
                        .batch_id_prefix = a.prefix,
                        .access_key_id = a.key ? id : NULL,
                        .access_key_secret = secret,
                        .connect_timeout_ms = 500,
                        .request_timeout_ms = 2000,
                        .backoff_initial_ms = 50,
                        .backoff_max_ms = 400};
  export_sink *s;
  fnp_error err = {0};
  if (export_sink_new(a.url, &o, &s, &err) < 0) {
    fprintf(stderr, "export_sink_new: %s\n", err.msg);
    return 1;
  }
  export_flush_result r = {0};
  uint64_t total = 0;
  int rc = a.profile ? push_profile(s, a.profile) : 0;
  for (long i = a.start; rc == 0 && i < a.start + a.records; i += a.batch) {
    long n =
        a.start + a.records - i < a.batch ? a.start + a.records - i : a.batch;
    export_batch *b = make_batch(&a, i, n);
    if (b == NULL || (a.dump && i == a.start && dump(&a, b) < 0)) {
      fprintf(stderr, "cannot build batch\n");
      rc = 1;
      break;
    }
    if ((rc = export_sink_push(s, b, &err)) < 0)
      fprintf(stderr, "push: %s\n", err.msg);
    if (rc == 0 && a.flush_each) {
      export_sink_flush(s, export_now_ms() + a.deadline_ms, &r);
      total += r.acked_records;
      report(&r, total);
    }
  }
  if (rc == 0) {
    rc = export_sink_flush(s, export_now_ms() + a.deadline_ms, &r) < 0;
    total += r.acked_records;
    report(&r, total);
  }
  export_sink_free(s);
  return rc ? 1 : 0;
}
