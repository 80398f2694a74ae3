/*
 * collector/sink.h - the sink object shared by sink.c (life cycle),
 * sink_flush.c (push, deliver, spool) and sink_file.c (file://), and the
 * jobs ship.c keeps in flight for sink_flush.c.
 */
#ifndef FNPROF_COLLECTOR_SINK_H
#define FNPROF_COLLECTOR_SINK_H

#include "internal.h"

#include <stdio.h>

typedef struct export__send export__send; /* a payload on its way */

/* ---- several POSTs in flight (ship.c) ---- */

/* POSTs in flight at once per sink: enough to keep the receiver busy while
 * the next body is compressed and signed, few enough that a struggling
 * receiver sees little extra load (each holds one connection). */
#define EXPORT__SHIP_WINDOW 4
#define EXPORT__ERROR_BODY_MAX_BYTES 160 /* enough for an SLS errorCode */

typedef enum export__job_state {
  EXPORT__JOB_RUNNING, /* an attempt is on the wire */
  EXPORT__JOB_BACKOFF, /* waiting until retry_at_ms for the next attempt */
  EXPORT__JOB_DONE     /* rc and res are final */
} export__job_state;

/* One POST with its retries. The caller owns the job and everything it
 * points to until export__ship_wait hands it back. */
typedef struct export__ship_job {
  const char *url;
  const void *data;
  size_t len;
  export__headers_cb hcb; /* called once per attempt */
  void *hctx;
  int64_t deadline_ms;
  void *user; /* the caller's, untouched */
  /* Results, final once handed back: rc is 0 on a 2xx. */
  int rc;
  export__ship_result res;
  /* ship.c's state per attempt. */
  export__job_state state;
  unsigned attempts;
  int64_t retry_at_ms;
  struct curl_slist *hdrs;
  char body[EXPORT__ERROR_BODY_MAX_BYTES + 1];
  size_t body_len;
  char retry_after[64];
} export__ship_job;

/* Starts a job in a free slot (-EBUSY when all EXPORT__SHIP_WINDOW are
 * taken). The first attempt goes out on the next export__ship_wait. */
int export__ship_start(export__ship *sh, export__ship_job *j) FNP_MUST_CHECK;
/* Drives the transfers: returns a finished job (its slot freed), or NULL
 * when none is in flight (or, with block false, none finished yet).
 * export__ship_post (internal.h) is start + wait for one job, so it must
 * only run while no other job is in flight. */
export__ship_job *export__ship_wait(export__ship *sh, bool block);
size_t export__ship_free_slots(const export__ship *sh);

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
  uint64_t dropped;   /* queue overflow since the last flush */
  FILE *file;         /* file:// JSON lines */
  export__send *send; /* EXPORT__SHIP_WINDOW slots, made on first flush */
  uint64_t send_seq;  /* start order of payloads, for requeueing failures */
  export_flush_result carry; /* what pumps did, reported by the next flush */
};

int export__file_open(export_sink *s, fnp_error *err) FNP_MUST_CHECK;
void export__file_close(export_sink *s);
/* Frees the send slots and any payload still in them (sink_flush.c). */
void export__send_free(export_sink *s);
int export__file_push(export_sink *s, const export_batch *b,
                      fnp_error *err) FNP_MUST_CHECK;
int export__file_profile(export_sink *s, const char *instance, const char *kind,
                         int64_t time_ns, const void *data, size_t len,
                         fnp_error *err) FNP_MUST_CHECK;
int export__file_flush(export_sink *s, export_flush_result *res);

#endif
