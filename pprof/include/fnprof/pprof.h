/*
 * fnprof/pprof.h - the pprof profile library: an in-memory profile model,
 * profile.proto encode/decode (gzip'd or raw), symbolization with elfutils
 * libdw, and the operations fnprof's tools and agent need (merge, diff
 * against a base, top-N, folded stacks, flame graphs).
 *
 * Ownership. A pprof_profile owns everything reachable from it: strings,
 * samples, locations, lines, functions, mappings. Pointers the library hands
 * out (pprof_str, pprof_find_*, p->sample[i] ...) are borrowed and stay valid
 * until the profile is freed or until the next pprof_add_* call of the same
 * kind, which may move the array they live in. Objects passed to pprof_add_*
 * are copied; the caller keeps its own.
 *
 * Threads. A profile is not synchronized: one writer, or many readers.
 *
 * Errors. Functions return 0 or a negative code (fnprof/common.h). Those that
 * take an fnp_error * fill it (if non-NULL) with what was wrong and where.
 */
#ifndef FNPROF_PPROF_H
#define FNPROF_PPROF_H

#include <fnprof/common.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model ------------------------------------------------------------ */

/* All int64_t "string" fields are indexes into the profile's string table;
 * 0 is always "". */
typedef struct pprof_value_type {
  int64_t type;
  int64_t unit;
} pprof_value_type;

typedef struct pprof_label {
  int64_t key;
  int64_t str;      /* string value, or 0 */
  int64_t num;      /* numeric value when str == 0 */
  int64_t num_unit; /* unit of num, or 0 */
} pprof_label;

typedef struct pprof_sample {
  uint64_t *location_id; /* leaf first */
  size_t n_location;
  int64_t *value; /* one per sample type (p->n_sample_type) */
  pprof_label *label;
  size_t n_label;
} pprof_sample;

typedef struct pprof_mapping {
  uint64_t id; /* nonzero, unique */
  uint64_t memory_start;
  uint64_t memory_limit; /* exclusive */
  uint64_t file_offset;
  int64_t filename;
  int64_t build_id; /* hex of the ELF build id */
  bool has_functions;
  bool has_filenames;
  bool has_line_numbers;
  bool has_inline_frames;
} pprof_mapping;

typedef struct pprof_line {
  uint64_t function_id;
  int64_t line;
  int64_t column;
} pprof_line;

/* line[0] is the innermost inlined callee, line[n_line-1] the outermost. */
typedef struct pprof_location {
  uint64_t id; /* nonzero, unique */
  uint64_t mapping_id;
  uint64_t address; /* points into the call instruction (return PC - 1) */
  pprof_line *line;
  size_t n_line;
  bool is_folded;
} pprof_location;

typedef struct pprof_function {
  uint64_t id; /* nonzero, unique */
  int64_t name;
  int64_t system_name;
  int64_t filename;
  int64_t start_line;
} pprof_function;

typedef struct pprof_profile {
  pprof_value_type *sample_type;
  size_t n_sample_type;
  pprof_sample *sample;
  size_t n_sample;
  pprof_mapping *mapping;
  size_t n_mapping;
  pprof_location *location;
  size_t n_location;
  pprof_function *function;
  size_t n_function;
  const char **string; /* string[0] == "" */
  size_t n_string;
  int64_t drop_frames;
  int64_t keep_frames;
  int64_t time_nanos;
  int64_t duration_nanos;
  pprof_value_type period_type;
  int64_t period;
  int64_t *comment;
  size_t n_comment;
  int64_t default_sample_type;
  int64_t doc_url;
  struct pprof__store *store_; /* private: arena, string and id indexes */
} pprof_profile;

/* A new empty profile (string table holds ""). NULL when out of memory.
 * Free with pprof_profile_free. */
pprof_profile *pprof_profile_new(void);
void pprof_profile_free(pprof_profile *p); /* NULL is a no-op */

/* Interns s (copied) and returns its index, or a negative error code. */
int64_t pprof_string(pprof_profile *p, const char *s);
/* The string at idx; "" when idx is out of range. Borrowed. */
const char *pprof_str(const pprof_profile *p, int64_t idx);

/* Appends; the add functions copy their argument. Ids must be nonzero and
 * not used yet by the same kind (FNP_EUSAGE otherwise). */
int pprof_add_sample_type(pprof_profile *p, const char *type,
                          const char *unit) FNP_MUST_CHECK;
int pprof_add_mapping(pprof_profile *p, const pprof_mapping *m) FNP_MUST_CHECK;
int pprof_add_function(pprof_profile *p,
                       const pprof_function *f) FNP_MUST_CHECK;
int pprof_add_location(pprof_profile *p,
                       const pprof_location *l) FNP_MUST_CHECK;
/* values has p->n_sample_type entries; labels may be NULL when n_label 0. */
int pprof_add_sample(pprof_profile *p, const uint64_t *location_id,
                     size_t n_location, const int64_t *value,
                     const pprof_label *label, size_t n_label) FNP_MUST_CHECK;
int pprof_add_comment(pprof_profile *p, const char *text) FNP_MUST_CHECK;

/* Look-ups by id (hash index). NULL when absent. Borrowed. */
const pprof_mapping *pprof_find_mapping(const pprof_profile *p, uint64_t id);
const pprof_location *pprof_find_location(const pprof_profile *p, uint64_t id);
const pprof_function *pprof_find_function(const pprof_profile *p, uint64_t id);
/* Mutable variants for symbolization and normalization. */
pprof_mapping *pprof_mapping_mut(pprof_profile *p, uint64_t id);
pprof_location *pprof_location_mut(pprof_profile *p, uint64_t id);
/* Replaces a location's lines (copied). */
int pprof_set_lines(pprof_profile *p, pprof_location *l, const pprof_line *line,
                    size_t n_line) FNP_MUST_CHECK;

/* Index of the sample type named `type`; with NULL, the default one (the
 * default_sample_type if set, else the last, as pprof does). -1 if absent. */
int pprof_sample_type_index(const pprof_profile *p, const char *type);

/* Checks the invariants a reader relies on: string indexes in range, ids
 * nonzero and unique, no dangling references, value counts. */
int pprof_validate(const pprof_profile *p, fnp_error *err) FNP_MUST_CHECK;

/* ---- wire format ------------------------------------------------------ */

/* Limits for decoding untrusted input; zero fields take the defaults. */
typedef struct pprof_decode_opts {
  size_t max_raw_bytes; /* decompressed protobuf; default 512 MiB */
} pprof_decode_opts;

#define PPROF_DEFAULT_MAX_RAW_BYTES ((size_t)512 << 20)

/* Decodes a profile from gzip'd or raw protobuf (detected by the gzip magic)
 * and validates it. On success *out is a new profile the caller frees. */
int pprof_decode(const void *data, size_t len, const pprof_decode_opts *opts,
                 pprof_profile **out, fnp_error *err) FNP_MUST_CHECK;
int pprof_read_file(const char *path, const pprof_decode_opts *opts,
                    pprof_profile **out, fnp_error *err) FNP_MUST_CHECK;

/* Encodes as protobuf; gzip'd when `gzip` (what files and HTTP carry). The
 * caller frees *data with free(). */
int pprof_encode(const pprof_profile *p, bool gzip, uint8_t **data, size_t *len,
                 fnp_error *err) FNP_MUST_CHECK;
/* Writes gzip'd protobuf to path atomically. */
int pprof_write_file(const pprof_profile *p, const char *path,
                     fnp_error *err) FNP_MUST_CHECK;

/* gzip helpers (zlib), capped output. */
bool pprof_is_gzip(const void *data, size_t len);
int pprof_gunzip(const void *data, size_t len, size_t max_out, uint8_t **out,
                 size_t *out_len, fnp_error *err) FNP_MUST_CHECK;
int pprof_gzip(const void *data, size_t len, uint8_t **out, size_t *out_len,
               fnp_error *err) FNP_MUST_CHECK;

/* ---- symbolization (libdw) -------------------------------------------- */

typedef struct pprof_symbolize_opts {
  /* > 0: read the live process's modules (out of process, /proc/PID/maps);
   * 0: open each mapping's filename, checking its build id when present. */
  int pid;
  /* Re-symbolize locations that already have lines. */
  bool force;
} pprof_symbolize_opts;

/* Fills functions, file and line (and inline frames where DWARF has them)
 * for locations without lines; function names from symbol tables where there
 * is no debug info; stripped code keeps bare addresses. Sets each mapping's
 * has_* flags to what all its locations ended up with (a mapping without
 * locations keeps its flags). Locations are looked up at their address as
 * stored (already return PC - 1). Counts of resolved/unresolved locations go
 * to *resolved / *unresolved when non-NULL; locations left alone because
 * they had lines count in neither. A missing file, a build id mismatch or a
 * pseudo mapping ("[vdso]" in file mode) only leaves its locations
 * unresolved; a pid that cannot be read fails the call. On failure (e.g.
 * -ENOMEM) the profile stays valid, possibly partly symbolized. opts may be
 * NULL (file mode, no force). */
int pprof_symbolize(pprof_profile *p, const pprof_symbolize_opts *opts,
                    size_t *resolved, size_t *unresolved,
                    fnp_error *err) FNP_MUST_CHECK;

/* ---- operations ------------------------------------------------------- */

/* Merges profiles of the same kind (equal period type and sample types) into
 * a new profile; samples with equal symbolized stacks and labels add up. */
int pprof_merge(const pprof_profile *const *in, size_t n, pprof_profile **out,
                fnp_error *err) FNP_MUST_CHECK;

/* cur minus base, matched by symbolized stacks (function, file, line per
 * frame) and labels, as `go tool pprof -base` does; samples that cancel to
 * all-zero are dropped. New profile in *out. */
int pprof_diff(const pprof_profile *base, const pprof_profile *cur,
               pprof_profile **out, fnp_error *err) FNP_MUST_CHECK;

/* The display name of a frame: function name, else the address in hex. */
typedef struct pprof_top_entry {
  const char *name; /* borrowed from the profile */
  int64_t flat;
  int64_t cum;
} pprof_top_entry;

typedef enum pprof_sort { PPROF_SORT_FLAT, PPROF_SORT_CUM } pprof_sort;

/* Per-function totals for one sample type, like `go tool pprof -top`: flat
 * counts the leaf frame, cum every function on the stack once per sample.
 * Sorted by the chosen key, largest magnitude first (ties by name). *total
 * is the sum of |value| over samples, pprof's denominator for percentages
 * (the plain sum unless values are negative, as in a diff). *entries is
 * malloc'd; free() it (names are borrowed from p). */
int pprof_top(const pprof_profile *p, int sample_index, pprof_sort sort,
              pprof_top_entry **entries, size_t *n_entries,
              int64_t *total) FNP_MUST_CHECK;

/* Folded stacks ("root;caller;leaf value\n", Brendan Gregg's format), one
 * line per distinct stack, for one sample type. Zero-valued stacks skipped. */
int pprof_write_folded(const pprof_profile *p, int sample_index,
                       FILE *out) FNP_MUST_CHECK;

typedef struct pprof_flame_opts {
  const char *title; /* NULL: "fnprof flame graph" */
  int width_px;      /* 0: 1200 */
} pprof_flame_opts;

/* A self-contained SVG flame graph (no external scripts or fonts). For a diff
 * profile, frames that grew are drawn red and frames that shrank blue. */
int pprof_write_flame_svg(const pprof_profile *p, int sample_index,
                          const pprof_flame_opts *opts,
                          FILE *out) FNP_MUST_CHECK;

/* The name pprof displays for a location's line i (function name, or
 * "0x<address>" written into buf when there is none). */
const char *pprof_frame_name(const pprof_profile *p, const pprof_location *l,
                             size_t line_index, char *buf, size_t buflen);

#ifdef __cplusplus
}
#endif
#endif
