/*
 * The file:// sink: records as JSON lines appended to DIR/records.jsonl
 * (fsync'd at each flush), profiles as DIR/profile-INSTANCE-KIND-TIME.pb[.gz]
 * written atomically. For machines with no store at all.
 */
#include "sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES (8u << 20) /* one record's JSON line */

static const char *const kinds[] = {"log", "metric", "event", "profile"};

int export__file_open(export_sink *s, fnp_error *err) {
  if (mkdir(s->url.path, 0755) != 0 && errno != EEXIST)
    return fnp_fail(err, -errno, "file sink %s: %s", s->url.path,
                    strerror(errno));
  char path[1100];
  snprintf(path, sizeof path, "%s/records.jsonl", s->url.path);
  s->file = fopen(path, "ae");
  if (s->file == NULL)
    return fnp_fail(err, -errno, "file sink %s: %s", path, strerror(errno));
  return 0;
}

void export__file_close(export_sink *s) {
  if (s->file) {
    fclose(s->file);
    s->file = NULL;
  }
}

static int record_json(fnp_buf *b, const export_record *r) {
  int rc = fnp_buf_printf(b, "{\"time_ns\":%" PRId64 ",\"kind\":\"%s\"",
                          r->time_ns, kinds[r->kind & 3]);
  if (rc == 0 && r->instance) {
    rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, "instance", r->instance);
  }
  if (rc == 0 && r->request_id) {
    rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, "request_id", r->request_id);
  }
  if (rc == 0 && r->kind == EXPORT_KIND_METRIC) {
    rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, "metric", r->metric_name);
    rc = rc ? rc : fnp_buf_printf(b, ",\"value\":%.17g", r->metric_value);
    rc = rc ? rc : fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, "unit", r->metric_unit);
  }
  rc = rc ? rc : fnp_buf_append(b, ",\"fields\":{", 11);
  for (size_t i = 0; i < r->n_fields && rc == 0; i++) {
    if (i)
      rc = fnp_buf_append(b, ",", 1);
    rc = rc ? rc : export__json_kv(b, r->fields[i].key, r->fields[i].value);
  }
  return rc ? rc : fnp_buf_append(b, "}}\n", 3);
}

int export__file_push(export_sink *s, const export_batch *b, fnp_error *err) {
  fnp_buf line;
  fnp_buf_init(&line, LINE_MAX_BYTES);
  int rc = 0;
  for (size_t i = 0; i < export_batch_count(b) && rc == 0; i++) {
    fnp_buf_reset(&line);
    rc = record_json(&line, export_batch_get(b, i));
    if (rc < 0)
      fnp_fail(err, rc, "file sink: record %zu: %s", i, fnp_strerror(rc));
    else if (fwrite(line.data, 1, line.len, s->file) != line.len)
      rc = fnp_fail(err, -EIO, "file sink: write failed");
  }
  fnp_buf_destroy(&line);
  return rc;
}

/* File name parts: anything but [A-Za-z0-9._-] becomes '_'. */
static void safe_name(char *dst, size_t cap, const char *s) {
  size_t i = 0;
  for (; s && s[i] && i + 1 < cap; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    dst[i] = ok ? c : '_';
  }
  dst[i] = '\0';
  if (i == 0)
    snprintf(dst, cap, "unknown");
}

int export__file_profile(export_sink *s, const char *instance, const char *kind,
                         int64_t time_ns, const void *data, size_t len,
                         fnp_error *err) {
  char inst[128], k[64], path[1400];
  safe_name(inst, sizeof inst, instance);
  safe_name(k, sizeof k, kind);
  const unsigned char *d = data;
  bool gz = len >= 2 && d[0] == 0x1f && d[1] == 0x8b;
  snprintf(path, sizeof path, "%s/profile-%s-%s-%" PRId64 ".pb%s", s->url.path,
           inst, k, time_ns, gz ? ".gz" : "");
  return fnp_write_file(path, data, len, err);
}

int export__file_flush(export_sink *s, export_flush_result *res) {
  if (fflush(s->file) != 0 || fsync(fileno(s->file)) != 0) {
    res->error = -errno;
    snprintf(res->why, sizeof res->why, "file sink: %s", strerror(errno));
  }
  return res->error;
}
