/*
 * collector/sink.h - the sink object shared by sink.c (life cycle),
 * sink_flush.c (push, deliver, spool) and sink_file.c (file://).
 */
#ifndef FNPROF_COLLECTOR_SINK_H
#define FNPROF_COLLECTOR_SINK_H

#include "internal.h"

#include <stdio.h>

struct export_sink {
  export_url url;
  export_compress compress;
  char *key_id, *key_secret, *token; /* never logged; wiped on free */
  char *topic, *source;
  export_field *tags;
  size_t n_tags;
  char *id_prefix;
  uint64_t next_id;
  export__ship *ship;
  export__spool *spool;         /* NULL: no spool */
  export__spool *rejected;      /* permanent failures, kept for inspection */
  export__payload *head, *tail; /* queue, oldest first */
  size_t queued_bytes;
  uint64_t dropped; /* queue overflow since the last flush */
  FILE *file;       /* file:// JSON lines */
  fnp_buf body;     /* compressed request, reused between sends */
};

int export__file_open(export_sink *s, fnp_error *err) FNP_MUST_CHECK;
void export__file_close(export_sink *s);
int export__file_push(export_sink *s, const export_batch *b,
                      fnp_error *err) FNP_MUST_CHECK;
int export__file_profile(export_sink *s, const char *instance, const char *kind,
                         int64_t time_ns, const void *data, size_t len,
                         fnp_error *err) FNP_MUST_CHECK;
int export__file_flush(export_sink *s, export_flush_result *res);

#endif
