/*
 * Test driver: sends fnprof-collector what the sidecar sends for heap
 * spikes, through the export library as hooks/sink_lib.c does: per spike a
 * record (record=spike, summary, report = the agent's JSON report naming its
 * profile files), per profile file a record (record=profile, profile_kind,
 * profile_time_ns, source = the file) and the upload (instance, kind,
 * time = profile_time_ns); profiles first, then the records, as
 * hooks/export.c orders a flush.
 *
 *   spike_push URL ID:SECRET PROFILE INSTANCE CYCLE KINDS
 *
 * KINDS lists the profiles this spike has, e.g. "before,after,diff" or
 * "before,after" (the diff failed: the report names no diff file). Prints
 * "KIND TIME_NS" per uploaded profile, so the test knows what each link
 * must point at.
 */
#include <fnprof/export.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *const KINDS[] = {"before", "after", "diff"};

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: spike_push URL ID:SECRET PROFILE INSTANCE CYCLE "
                    "KINDS\n");
    return 2;
  }
  const char *url = argv[1], *profile = argv[3], *inst = argv[4];
  const char *cycle = argv[5], *kinds = argv[6];
  char id[128], *secret;
  snprintf(id, sizeof id, "%s", argv[2]);
  secret = strchr(id, ':');
  if (secret == NULL)
    return 2;
  *secret++ = '\0';
  uint8_t *data;
  size_t len;
  fnp_error err = {0};
  if (fnp_read_file(profile, 32u << 20, &data, &len, &err) < 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  export_field tags[] = {{"instance", inst}};
  export_sink_opts o = {.access_key_id = id,
                        .access_key_secret = secret,
                        .source = inst,
                        .topic = "fnprof",
                        .tags = tags,
                        .n_tags = 1,
                        .connect_timeout_ms = 1000};
  export_sink *s;
  export_batch *b;
  if (export_sink_new(url, &o, &s, &err) < 0 ||
      export_batch_new(NULL, now_ns(), &b) < 0) {
    fprintf(stderr, "setup: %s\n", err.msg);
    return 1;
  }
  /* The spike record comes first in the buffer (agent_ctl.c spike_record). */
  char path[3][256] = {"", "", ""}, report[2048], summary[256];
  for (int k = 0; k < 3; k++)
    if (strstr(kinds, KINDS[k]))
      snprintf(path[k], sizeof path[k],
               "/tmp/fnprof-d/fnprof-4242-spike-%s-%s"
               ".pb.gz",
               KINDS[k], cycle);
  snprintf(summary, sizeof summary,
           "heap spike at cycle %s: 1.0 MiB -> 24.0 MiB; grew most "
           "(+23.0 MiB): build_cache <- main",
           cycle);
  snprintf(report, sizeof report,
           "{\"summary\":\"%s\",\"trigger_cycle\":%s,\"after_cycle\":%s,"
           "\"before_live_bytes\":1048576,\"after_live_bytes\":25165824,"
           "\"growth_bytes\":24117248,\"top_stack\":[\"build_cache\",\"main\"],"
           "\"before_profile\":\"%s\",\"after_profile\":\"%s\","
           "\"diff_profile\":\"%s\",\"diff_error\":\"%s\"}",
           summary, cycle, cycle, path[0], path[1], path[2],
           path[2][0] ? "" : "no common samples");
  export_field sf[] = {{"record", "spike"},
                       {"event", "spike"},
                       {"summary", summary},
                       {"report", report}};
  export_record sr = {.time_ns = now_ns(),
                      .kind = EXPORT_KIND_EVENT,
                      .instance = inst,
                      .fields = sf,
                      .n_fields = 4};
  int rc = export_batch_add(b, &sr);
  for (int k = 0; k < 3 && rc == 0; k++) {
    if (path[k][0] == '\0')
      continue;
    char kind[32], bytes[32], pt[32];
    int64_t t = now_ns();
    snprintf(kind, sizeof kind, "spike-%s", KINDS[k]);
    snprintf(bytes, sizeof bytes, "%zu", len);
    snprintf(pt, sizeof pt, "%lld", (long long)t);
    export_field pf[] = {{"record", "profile"},
                         {"profile_kind", kind},
                         {"bytes", bytes},
                         {"profile_time_ns", pt},
                         {"source", path[k]}};
    export_record pr = {.time_ns = t,
                        .kind = EXPORT_KIND_PROFILE,
                        .instance = inst,
                        .fields = pf,
                        .n_fields = 5};
    rc = export_sink_push_profile(s, inst, kind, t, data, len, &err);
    rc = rc ? rc : export_batch_add(b, &pr);
    printf("%s %lld\n", kind, (long long)t);
  }
  rc = rc ? rc : export_sink_push(s, b, &err);
  export_flush_result r = {0};
  rc = rc ? rc : export_sink_flush(s, export_now_ms() + 5000, &r);
  if (rc < 0)
    fprintf(stderr, "push: %s %s\n", err.msg, r.why);
  free(data);
  export_sink_free(s);
  return rc < 0 ? 1 : 0;
}
