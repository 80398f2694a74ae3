/*
 * sink_file.c - INTERIM file://DIR sink (until the collector's export
 * library lands): each batch becomes DIR/<instance>-<offset>.jsonl, written
 * atomically (temp + fsync + rename). Naming by the batch's start offset makes
 * a retry of the same data overwrite, never duplicate. A missing or
 * unwritable DIR is a store that is down: the batch stays buffered.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct file_sink {
  char dir[PATH_MAX];
  char instance[128];
} file_sink;

static int file_open(const char *url, const char *instance_id, void **ctx,
                     fnp_error *err) {
  const char *dir = url + strlen("file://");
  file_sink *f;
  if (*dir == '\0' || strlen(dir) >= PATH_MAX - 64)
    return fnp_fail(err, FNP_EUSAGE, "--export %s: bad directory", url);
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return fnp_fail(err, -ENOMEM, "file sink: out of memory");
  snprintf(f->dir, sizeof(f->dir), "%s", dir);
  snprintf(f->instance, sizeof(f->instance), "%s", instance_id);
  *ctx = f;
  return 0;
}

static int file_send(void *ctx, const uint8_t *data, size_t len,
                     uint64_t start, int64_t deadline_mono_ns,
                     fnp_error *err) {
  file_sink *f = ctx;
  char path[PATH_MAX + 200];
  (void)deadline_mono_ns; /* local writes finish long before any budget */
  snprintf(path, sizeof(path), "%s/%s-%016llx.jsonl", f->dir, f->instance,
           (unsigned long long)start);
  return fnp_write_file(path, data, len, err);
}

static void file_close(void *ctx) { free(ctx); }

const sc_sink_ops sc__sink_file = {"file", file_open, file_send, file_close};
