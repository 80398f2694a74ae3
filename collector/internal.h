/*
 * collector/internal.h - cross-file internals of the export library and the
 * store (export__ / store__ names). Not installed, not for other components.
 */
#ifndef FNPROF_COLLECTOR_INTERNAL_H
#define FNPROF_COLLECTOR_INTERNAL_H

#include <fnprof/export.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- JSON output (json.c) ---- */

/* Appends s (len bytes, or strlen when len == SIZE_MAX) as a JSON string,
 * quotes included. Invalid UTF-8 bytes become U+FFFD so output always parses.
 */
int export__json_str(fnp_buf *b, const char *s, size_t len) FNP_MUST_CHECK;
/* Appends "key":"value" (value NULL -> null). */
int export__json_kv(fnp_buf *b, const char *key,
                    const char *value) FNP_MUST_CHECK;

/* ---- arena for protobuf-c unpacking (pb_arena.c) ---- */

#include <protobuf-c/protobuf-c.h>

/* Decoded bytes may take at most this many times the wire bytes (plus a
 * floor): generous for real messages (protobuf-c structs are ~5-15x the
 * smallest encodings), fatal for amplification bombs. */
#define EXPORT__DECODE_BUDGET(len) ((len)*32 + (64u << 10))

typedef struct export__arena {
  ProtobufCAllocator pb; /* pass &arena->pb to protobuf-c */
  struct export__arena_chunk *head;
  size_t total, budget;
  bool over_budget;
} export__arena;

void export__arena_init(export__arena *a, size_t budget);
void *export__arena_alloc(export__arena *a, size_t n); /* 16-aligned */
void export__arena_destroy(export__arena *a);

/* ---- payloads: an encoded, uncompressed batch (sink.c, spool.c) ---- */

typedef enum export__payload_kind {
  EXPORT__PAYLOAD_SLS = 1,          /* LogGroup */
  EXPORT__PAYLOAD_OTLP_LOGS = 2,    /* ExportLogsServiceRequest */
  EXPORT__PAYLOAD_OTLP_METRICS = 3, /* ExportMetricsServiceRequest */
  EXPORT__PAYLOAD_PROFILE = 4,      /* pprof bytes; meta = query string */
} export__payload_kind;

typedef struct export__payload {
  struct export__payload *next;
  export__payload_kind kind;
  uint32_t n_records;
  int64_t created_ns;
  char *meta; /* PROFILE: "instance=..&kind=..&time=.." (owned), else NULL */
  uint8_t *raw;
  size_t raw_len;
} export__payload;

void export__payload_free(export__payload *p);

/* ---- spool (spool.c): one zstd segment file per payload ---- */

typedef struct export__spool export__spool;

int export__spool_open(const char *dir, uint64_t max_bytes, int64_t max_age_ms,
                       export__spool **out, fnp_error *err) FNP_MUST_CHECK;
void export__spool_close(export__spool *sp);
/* Writes p durably (file and directory fsync'd). Drops oldest segments to
 * stay under max_bytes; the records they held are counted as dropped. */
int export__spool_put(export__spool *sp, const export__payload *p,
                      fnp_error *err) FNP_MUST_CHECK;
/* Reads the oldest segment (skipping expired ones, counted as dropped).
 * *out is NULL when the spool is empty. */
int export__spool_peek(export__spool *sp, export__payload **out,
                       fnp_error *err) FNP_MUST_CHECK;
/* Removes the oldest segment, after it was delivered. */
int export__spool_pop(export__spool *sp) FNP_MUST_CHECK;
size_t export__spool_count(const export__spool *sp);
uint64_t export__spool_bytes(const export__spool *sp);
/* Dropped records since the last call (resets the counter). */
uint64_t export__spool_take_dropped(export__spool *sp);
/* Test seam: the clock used for ages, Unix ns. */
extern int64_t (*export__spool_clock_ns)(void);

/* ---- shipping (ship.c): one POST with retries ---- */

struct curl_slist;

typedef struct export__ship export__ship;

typedef struct export__ship_opts {
  int connect_timeout_ms;
  int request_timeout_ms;
  int backoff_initial_ms;
  int backoff_max_ms;
} export__ship_opts;

/* How a request ended. retryable: a timeout, a connection failure, 429 or
 * 5xx; permanent: any other 4xx (or 3xx). */
typedef struct export__ship_result {
  int status;
  bool retryable;
  int64_t retry_after_ms; /* from Retry-After; -1 when absent */
  char why[256];
} export__ship_result;

/* Builds the headers for one attempt (re-signed per attempt: Date moves). */
typedef int (*export__headers_cb)(void *ctx, struct curl_slist **headers,
                                  fnp_error *err);

int export__ship_new(const export__ship_opts *o,
                     export__ship **out) FNP_MUST_CHECK;
void export__ship_free(export__ship *sh);
/* POSTs body to url, retrying retryable failures with exponential backoff
 * and full jitter (Retry-After honoured) until deadline_ms. 0 when a 2xx
 * came back; otherwise a negative code and res says why. */
int export__ship_post(export__ship *sh, const char *url, const void *body,
                      size_t len, export__headers_cb hcb, void *hctx,
                      int64_t deadline_ms, export__ship_result *res);
/* Sets (or, with NULL, clears) a CURLOPT_CONNECT_TO "HOST:PORT:HOST:PORT". */
int export__ship_connect_to(export__ship *sh, const char *spec) FNP_MUST_CHECK;
/* Backoff before attempt n (0-based): min(max, initial * 2^n), jittered
 * uniformly over [0, that] ("full jitter"). rnd in [0, 1). */
int64_t export__backoff_ms(const export__ship_opts *o, unsigned attempt,
                           double rnd);
/* Parses a Retry-After value (seconds or HTTP date) relative to now_s. */
int64_t export__parse_retry_after(const char *v, int64_t now_s);

/* url.c: an SLS project or logstore name we can put in a Host and a path. */
bool export__sls_name_ok(const char *s);

#endif
