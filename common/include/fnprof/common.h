/*
 * fnprof/common.h - the small dependency-free helpers every fnprof component
 * shares: the one error convention, a capped growable buffer, and unit
 * formatting. Names carry the fnp_ prefix (curlx-style: shared by libraries,
 * tools and tests, never copied).
 */
#ifndef FNPROF_COMMON_H
#define FNPROF_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FNP_MUST_CHECK __attribute__((warn_unused_result))
#define FNP_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * Errors: functions return int, 0 on success, negative on failure. System
 * errors are -errno; fnprof's own codes come from this table, well below any
 * errno value. fnp_strerror() names both kinds.
 */
#define FNP_ERRNO_MAP(X)                                                       \
  X(EPARSE, -10001, "malformed input")                                         \
  X(ETOOBIG, -10002, "input exceeds a size limit")                             \
  X(EINCOMPAT, -10003, "incompatible inputs")                                  \
  X(ENOTFOUND, -10004, "not found")                                            \
  X(ECOMPRESS, -10005, "compression or decompression failed")                  \
  X(EUSAGE, -10006, "invalid argument")

enum {
#define FNP_ERR_ENUM(name, value, text) FNP_##name = (value),
  FNP_ERRNO_MAP(FNP_ERR_ENUM)
#undef FNP_ERR_ENUM
};

/* The message for a code from the table or a negated errno. Static string. */
const char *fnp_strerror(int code);

/*
 * Detail that goes with an error code: what was wrong and where (field,
 * offset). Caller-owned storage; every function that takes one accepts NULL.
 */
typedef struct fnp_error {
  int code;
  char msg[256];
} fnp_error;

/* Sets err (if non-NULL) and returns code, so callers can `return
 * fnp_fail(...)`. */
int fnp_fail(fnp_error *err, int code, const char *fmt, ...) FNP_PRINTF(3, 4);

/*
 * A growable byte buffer that must have a cap (curl dynbuf). Appending past
 * the cap fails with FNP_ETOOBIG and leaves the content as it was. Memory comes
 * from malloc; fnp_buf_destroy frees it. Not thread-safe.
 */
typedef struct fnp_buf {
  uint8_t *data;
  size_t len;
  size_t alloc;
  size_t cap;
} fnp_buf;

void fnp_buf_init(fnp_buf *b, size_t cap);
void fnp_buf_destroy(fnp_buf *b);
void fnp_buf_reset(fnp_buf *b);
int fnp_buf_append(fnp_buf *b, const void *data, size_t len) FNP_MUST_CHECK;
int fnp_buf_printf(fnp_buf *b, const char *fmt, ...)
    FNP_PRINTF(2, 3) FNP_MUST_CHECK;
/* Appends a NUL-terminated string; a decimal integer (no printf: both are
 * on hot paths that format a record per request). */
int fnp_buf_append_str(fnp_buf *b, const char *s) FNP_MUST_CHECK;
int fnp_buf_append_i64(fnp_buf *b, int64_t v) FNP_MUST_CHECK;
/* The decimal digits of v into out (at least 21 bytes, NUL added); the
 * length. */
size_t fnp_i64_text(int64_t v, char *out);
/* Makes room for n more bytes; the caller writes them and adds n to len. */
int fnp_buf_reserve(fnp_buf *b, size_t n) FNP_MUST_CHECK;
/* Hands the content over to the caller (free() it) and empties the buffer. */
uint8_t *fnp_buf_steal(fnp_buf *b, size_t *len);

/*
 * Units. fnp_format_bytes writes "512.01kB"/"1.50MB" in go tool pprof's style
 * (decimal prefixes over 1024 steps, as pprof's measurement package does);
 * negative values keep their sign. fnp_parse_bytes reads "10MiB", "512k",
 * "1.5GB", "4096" (binary multiples for both KiB and kB spellings).
 */
void fnp_format_bytes(int64_t bytes, char *out, size_t outlen);
int fnp_parse_bytes(const char *s, int64_t *out) FNP_MUST_CHECK;

/* Reads a whole file, at most max bytes (FNP_ETOOBIG past that). */
int fnp_read_file(const char *path, size_t max, uint8_t **data, size_t *len,
                  fnp_error *err) FNP_MUST_CHECK;
/* Writes data to path atomically (temp file + fsync + rename). */
int fnp_write_file(const char *path, const void *data, size_t len,
                   fnp_error *err) FNP_MUST_CHECK;

/*
 * JIT names (jit_names.c): what a launcher of programs under the agent
 * sets so JIT-compiled code is named in profiles and spike reports. For
 * node: NODE_OPTIONS with the flags that make it write its perf map, the
 * user's value kept in front (malloc'd; NULL when out of memory). For
 * CPython 3.12 and later: FNP_PYTHON_PERF_ENV=1 (its perf trampolines and
 * map; older versions ignore it), unless the user set it. Then
 * FNP_JIT_MAP_UNLINK_ENV=1 tells the agent the map is its to remove at
 * exit. FNPROF_JIT_NAMES=0 turns all of this off in every launcher.
 */
char *fnp_node_options_jit_names(const char *old);
#define FNP_PYTHON_PERF_ENV "PYTHONPERFSUPPORT"
#define FNP_JIT_MAP_UNLINK_ENV "FNPROF_JIT_MAP_UNLINK"
#define FNP_JIT_NAMES_ENV "FNPROF_JIT_NAMES"

#ifdef __cplusplus
}
#endif
#endif
