/*
 * fnprof/export.h - the export library: a record model and batcher, the SLS
 * PutLogs and OTLP/HTTP encoders (and the decoders fnprof-collector uses to
 * read them back), compression, SLS v1 request signing, and sinks that ship
 * batches with libcurl, retry, and spool what they cannot deliver.
 *
 * Ownership. _new/_free pairs allocate; _free(NULL) is a no-op. Strings and
 * arrays passed in are copied unless a comment says "borrowed". Decoded
 * messages (export_sls_group, export_otlp_*) own everything reachable from
 * them and are freed with their _free function.
 *
 * Threads. No object is synchronized: one thread per batch, sink or decoded
 * message. Distinct objects may be used from distinct threads.
 *
 * Errors. 0 or a negative code (fnprof/common.h); an fnp_error *, where
 * taken, says what was wrong and where. Credentials (AccessKey secrets, STS
 * tokens) never appear in error messages, logs, spool files or exports.
 */
#ifndef FNPROF_EXPORT_H
#define FNPROF_EXPORT_H

#include <fnprof/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EXPORT_API __attribute__((visibility("default")))

/* ---- record model and batcher ----------------------------------------- */

typedef enum export_kind {
  EXPORT_KIND_LOG = 0,
  EXPORT_KIND_METRIC = 1,
  EXPORT_KIND_EVENT = 2,   /* lifecycle events: freeze, spike, invoke end */
  EXPORT_KIND_PROFILE = 3, /* a profile's metadata; the bytes go separately */
} export_kind;

typedef struct export_field {
  const char *key;
  const char *value;
} export_field;

/*
 * One record. Strings may be NULL (treated as absent). For metrics, name,
 * value and unit describe one data point; counter selects a monotonic DELTA
 * sum over a gauge in OTLP. SLS carries every record as key/value contents.
 */
typedef struct export_record {
  int64_t time_ns; /* Unix time in nanoseconds */
  export_kind kind;
  const char *instance;
  const char *request_id;
  const export_field *fields;
  size_t n_fields;
  const char *metric_name;
  const char *metric_unit;
  double metric_value;
  bool metric_counter;
} export_record;

/* When a batch is sealed: whichever limit is reached first. */
typedef struct export_batch_limits {
  size_t max_records; /* 0: EXPORT_BATCH_MAX_RECORDS */
  size_t max_bytes;   /* copied string bytes; 0: EXPORT_BATCH_MAX_BYTES */
  int64_t max_age_ms; /* 0: EXPORT_BATCH_MAX_AGE_MS */
} export_batch_limits;

/* The C producer's defaults (2048 logs / 3 MB / 3 s), see sls-putlogs.md. */
#define EXPORT_BATCH_MAX_RECORDS 2048
#define EXPORT_BATCH_MAX_BYTES (3u << 20)
#define EXPORT_BATCH_MAX_AGE_MS 3000

typedef struct export_batch export_batch;

EXPORT_API int export_batch_new(const export_batch_limits *lim, int64_t now_ns,
                                export_batch **out) FNP_MUST_CHECK;
EXPORT_API void export_batch_free(export_batch *b);
/*
 * Copies r into the batch. FNP_ETOOBIG when the batch is full (nothing was
 * added: seal it and start another) or when r alone exceeds max_bytes.
 */
EXPORT_API int export_batch_add(export_batch *b,
                                const export_record *r) FNP_MUST_CHECK;
EXPORT_API size_t export_batch_count(const export_batch *b);
/* Borrowed; valid until the batch is freed. i < export_batch_count(). */
EXPORT_API const export_record *export_batch_get(const export_batch *b,
                                                 size_t i);
/* True when the batch is full or older than max_age_ms at now_ns. */
EXPORT_API bool export_batch_due(const export_batch *b, int64_t now_ns);

/* ---- compression (x-log-compresstype) ---------------------------------- */

typedef enum export_compress {
  EXPORT_COMPRESS_ZSTD = 0, /* the default: best ratio for its speed */
  EXPORT_COMPRESS_NONE = 1,
  EXPORT_COMPRESS_DEFLATE = 2, /* zlib format (RFC 1950) */
  EXPORT_COMPRESS_LZ4 = 3,     /* raw LZ4 block, size from bodyrawsize */
  EXPORT_COMPRESS_GZIP = 4,    /* OTLP Content-Encoding: gzip */
} export_compress;

/* "zstd", "deflate", "lz4", "gzip", or "" for NONE. Static string. */
EXPORT_API const char *export_compress_name(export_compress c);
/* Parses an x-log-compresstype value; "" and NULL mean NONE. */
EXPORT_API int export_compress_parse(const char *name,
                                     export_compress *out) FNP_MUST_CHECK;
/* Appends the compressed form of in to out (out's cap applies). */
EXPORT_API int export_compress_buf(export_compress c, const void *in,
                                   size_t len, fnp_buf *out,
                                   fnp_error *err) FNP_MUST_CHECK;
/*
 * Appends the decompressed form of in to out. raw_size is the announced size
 * (x-log-bodyrawsize; required for LZ4, checked for all): it must be at most
 * max_raw, which is checked before anything is allocated, and the output
 * must match it exactly. raw_size < 0 means unknown (gzip), in which case
 * max_raw still caps the output.
 */
EXPORT_API int export_decompress_buf(export_compress c, const void *in,
                                     size_t len, int64_t raw_size,
                                     size_t max_raw, fnp_buf *out,
                                     fnp_error *err) FNP_MUST_CHECK;

/* ---- SLS signature v1 --------------------------------------------------- */

typedef struct export_header {
  const char *name;
  const char *value;
} export_header;

/*
 * What an SLS v1 signature covers. headers may hold any headers: only
 * x-log-* and x-acs-* (case-insensitive, x-log-date excluded) are signed.
 * resource is the path as sent plus the query string, which is
 * canonicalized (sorted, empty values kept, trailing "?" ignored).
 */
typedef struct export_sls_sign_input {
  const char *verb;
  const char *content_md5;  /* uppercase hex, or NULL/"" without a body */
  const char *content_type; /* NULL/"" when absent */
  const char *date;         /* RFC 1123 GMT */
  const export_header *headers;
  size_t n_headers;
  const char *resource;
} export_sls_sign_input;

#define EXPORT_SLS_SIG_LEN 28 /* base64 of a 20-byte HMAC-SHA1 */

/* Writes the base64 signature (NUL-terminated) to sig. */
EXPORT_API int export_sls_sign(const export_sls_sign_input *in,
                               const char *secret,
                               char sig[EXPORT_SLS_SIG_LEN + 1],
                               fnp_error *err) FNP_MUST_CHECK;
/* Uppercase hex MD5 of data, as SLS Content-MD5 wants. */
EXPORT_API void export_md5_hex(const void *data, size_t len, char out[33]);
/* RFC 1123 GMT date for the Date header. */
EXPORT_API void export_http_date(int64_t unix_s, char out[32]);
/* Parses an RFC 1123 date; FNP_EPARSE if malformed. */
EXPORT_API int export_parse_http_date(const char *s,
                                      int64_t *unix_s) FNP_MUST_CHECK;

/* ---- SLS LogGroup encode / decode --------------------------------------- */

/* What the LogGroup carries besides the records (all optional). */
typedef struct export_sls_meta {
  const char *topic;
  const char *source;
  const char *pack_id; /* __pack_id__ tag: the receiver's dedupe key */
  const export_field *tags;
  size_t n_tags;
} export_sls_meta;

/*
 * Serializes records [0, n) of b as one LogGroup and appends it to out.
 * Each record's contents: its fields, then kind, instance, request_id and
 * metric name/value/unit as named keys when set.
 */
EXPORT_API int export_sls_encode(const export_batch *b,
                                 const export_sls_meta *meta, fnp_buf *out,
                                 fnp_error *err) FNP_MUST_CHECK;

typedef struct export_sls_log {
  int64_t time_ns;
  export_field *contents;
  size_t n_contents;
} export_sls_log;

typedef struct export_sls_group {
  const char *topic;  /* never NULL ("" when absent) */
  const char *source; /* never NULL */
  export_sls_log *logs;
  size_t n_logs;
  export_field *tags;
  size_t n_tags;
  void *priv; /* the decoding arena every pointer above points into */
} export_sls_group;

/* Decodes and validates one LogGroup (at most max_logs logs). */
EXPORT_API int export_sls_decode(const void *data, size_t len, size_t max_logs,
                                 export_sls_group **out,
                                 fnp_error *err) FNP_MUST_CHECK;
EXPORT_API void export_sls_group_free(export_sls_group *g);

/* ---- OTLP/HTTP encode / decode ------------------------------------------ */

/* Resource attributes (service.name, faas.instance ...) and the batch id. */
typedef struct export_otlp_meta {
  const export_field *resource;
  size_t n_resource;
  const char *batch_id; /* resource attribute fnprof.batch.id: dedupe key */
} export_otlp_meta;

/* ExportLogsServiceRequest of b's non-metric records, appended to out. */
EXPORT_API int export_otlp_encode_logs(const export_batch *b,
                                       const export_otlp_meta *meta,
                                       fnp_buf *out,
                                       fnp_error *err) FNP_MUST_CHECK;
/* ExportMetricsServiceRequest of b's metric records, appended to out. */
EXPORT_API int export_otlp_encode_metrics(const export_batch *b,
                                          const export_otlp_meta *meta,
                                          fnp_buf *out,
                                          fnp_error *err) FNP_MUST_CHECK;

/* A decoded OTLP log record or data point, flattened for storage. */
typedef struct export_otlp_item {
  int64_t time_ns;
  char *name;           /* metrics: metric name; logs: NULL */
  char *unit;           /* metrics only */
  double value;         /* metrics only; histograms store their sum */
  export_field *fields; /* resource attrs, scope, attributes, body, severity */
  size_t n_fields;
} export_otlp_item;

typedef struct export_otlp_data {
  char *batch_id; /* fnprof.batch.id of the first resource, or NULL */
  export_otlp_item *items;
  size_t n_items;
} export_otlp_data;

/* Decodes /v1/logs (metrics = false) or /v1/metrics; max_items caps it. */
EXPORT_API int export_otlp_decode(const void *data, size_t len, bool metrics,
                                  size_t max_items, export_otlp_data **out,
                                  fnp_error *err) FNP_MUST_CHECK;
EXPORT_API void export_otlp_data_free(export_otlp_data *d);

/* ---- sinks: ship, retry, spool ------------------------------------------ */

typedef struct export_sink_opts {
  /* SLS credentials. NULL: read FNPROF_ACCESS_KEY_ID, _SECRET and
   * FNPROF_SECURITY_TOKEN (or ALIBABA_CLOUD_*) from the environment. */
  const char *access_key_id;
  const char *access_key_secret;
  const char *security_token;
  export_compress compress; /* SLS body; default zstd. OTLP always gzip. */
  const char *topic;
  const char *source;
  const export_field *tags; /* LogGroup tags / OTLP resource attributes */
  size_t n_tags;
  const char *batch_id_prefix; /* NULL: random, per sink */
  /* Spool for undeliverable batches; NULL disables it (they stay queued). */
  const char *spool_dir;
  uint64_t spool_max_bytes; /* 0: EXPORT_SPOOL_MAX_BYTES */
  int64_t spool_max_age_ms; /* 0: EXPORT_SPOOL_MAX_AGE_MS */
  int connect_timeout_ms;   /* 0: 2000 */
  int request_timeout_ms;   /* 0: 10000, per attempt */
  int backoff_initial_ms;   /* 0: 100 */
  int backoff_max_ms;       /* 0: 5000 */
} export_sink_opts;

#define EXPORT_SPOOL_MAX_BYTES (64u << 20)
#define EXPORT_SPOOL_MAX_AGE_MS (6 * 3600 * 1000) /* the C producer's 6 h */

/* What a flush achieved. Counters are for this flush unless noted. */
typedef struct export_flush_result {
  uint64_t acked_batches, acked_records;
  uint64_t pending_batches, pending_records;   /* still queued in memory */
  uint64_t spooled_batches, spooled_records;   /* written to the spool now */
  uint64_t spool_batches;                      /* in the spool after flush */
  uint64_t rejected_batches, rejected_records; /* 4xx: not retried */
  uint64_t dropped_records; /* spool limits, since the previous flush */
  int last_status;          /* last HTTP status, 0 for none */
  int error;                /* 0 when nothing is left undelivered */
  char why[256];            /* what went wrong last; never holds secrets */
} export_flush_result;

typedef struct export_sink export_sink;

/*
 * URL forms: sls://HOST:PORT[/PROJECT/LOGSTORE] (http; sls+https:// for
 * TLS; without PROJECT/LOGSTORE see export_sink_set_destination),
 * otlp+http://HOST:PORT[/BASE] (posts BASE/v1/logs and BASE/v1/metrics),
 * file://DIR (JSON lines and pprof files). A local fnprof-collector is an
 * sls:// sink. opts may be NULL. Strings in opts are copied.
 */
EXPORT_API int export_sink_new(const char *url, const export_sink_opts *opts,
                               export_sink **out,
                               fnp_error *err) FNP_MUST_CHECK;
EXPORT_API void export_sink_free(export_sink *s);
/* Replaces the credentials (e.g. from the platform's per-request headers). */
EXPORT_API int export_sink_set_credentials(export_sink *s, const char *id,
                                           const char *secret,
                                           const char *token) FNP_MUST_CHECK;
/* The project and logstore of an sls:// sink whose URL named none (from
 * the platform's x-fc-service-logproject/logstore headers). Until then it
 * sends nothing: its batches stay queued (or spooled) and a flush says
 * why. The first destination stays: a URL's, or the first one set here
 * (later calls are ignored, returning 0). FNP_EPARSE for a name that
 * cannot be one, FNP_EUSAGE for a sink that is not sls://. */
EXPORT_API int export_sink_set_destination(export_sink *s, const char *project,
                                           const char *logstore) FNP_MUST_CHECK;
/*
 * Encodes b and queues it (or, for file://, writes it). Takes ownership of
 * b in every case. Nothing is sent until export_sink_pump or
 * export_sink_flush.
 */
EXPORT_API int export_sink_push(export_sink *s, export_batch *b,
                                fnp_error *err) FNP_MUST_CHECK;
/* Queues a profile upload (pprof bytes, gzip'd or not; copied). */
EXPORT_API int export_sink_push_profile(export_sink *s, const char *instance,
                                        const char *kind, int64_t time_ns,
                                        const void *data, size_t len,
                                        fnp_error *err) FNP_MUST_CHECK;
/*
 * Delivers the spool (oldest first), then the queue, until deadline_ms
 * (CLOCK_MONOTONIC milliseconds, see export_now_ms). What is left at the
 * deadline is spooled when a spool is configured. Returns res->error.
 */
EXPORT_API int export_sink_flush(export_sink *s, int64_t deadline_ms,
                                 export_flush_result *res);
/*
 * Starts sending what is queued (a few requests at a time) and returns
 * without waiting, so a caller can encode the next batch while earlier ones
 * are on the wire. The next export_sink_flush waits for them and counts
 * them in its result. Does nothing while the spool holds older batches
 * (they go first, in the flush) and for file://. Returns 0.
 */
EXPORT_API int export_sink_pump(export_sink *s, int64_t deadline_ms);
/* CLOCK_MONOTONIC in milliseconds, the clock flush deadlines use. */
EXPORT_API int64_t export_now_ms(void);
/* For a process whose main work is producing batches (the sidecar, the
 * benchmark client): sets glibc's trim and mmap thresholds so that each
 * batch reuses the memory the last one freed instead of faulting it in
 * again (process-wide; up to 16 MiB of freed memory stays resident). 0, or
 * FNP_EUSAGE when malloc refused. */
EXPORT_API int export_keep_heap(void);

/* Parsed sink URL (exposed for tests and for the CLI's messages). */
typedef enum export_scheme {
  EXPORT_SCHEME_SLS,
  EXPORT_SCHEME_OTLP,
  EXPORT_SCHEME_FILE,
} export_scheme;

typedef struct export_url {
  export_scheme scheme;
  bool tls;
  char host[256];
  int port;
  char project[128];  /* sls */
  char logstore[128]; /* sls */
  char path[1024];    /* otlp base path or file directory */
} export_url;

EXPORT_API int export_url_parse(const char *url, export_url *out,
                                fnp_error *err) FNP_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
