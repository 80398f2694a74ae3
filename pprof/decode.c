/*
 * Decoding profile.proto (gzip'd or raw) into the model with protobuf-c.
 * Hostile input is expected: the protobuf-c allocator has a budget tied to
 * the input size, so a tiny file cannot make us allocate gigabytes, and when
 * protobuf-c rejects the bytes a small wire scanner says where and why.
 */
#include "internal.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * protobuf-c allocates at most a small multiple of the input for structs
 * (a 2-byte Sample becomes a ~80-byte struct plus arrays). A budget of
 * DECODE_BUDGET_FACTOR times the input plus a floor covers every real profile
 * and still bounds a hostile one.
 */
#define DECODE_BUDGET_FACTOR 64
#define DECODE_BUDGET_FLOOR_BYTES ((size_t)1 << 20)

typedef struct budget {
  size_t left;
} budget;

static void *budget_alloc(void *ctx, size_t size) {
  budget *b = ctx;
  if (size > b->left)
    return NULL;
  b->left -= size;
  return malloc(size);
}

static void budget_free(void *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

/* ---- diagnostics: where is the wire format broken? -------------------- */

static const char *const profile_field_names[] = {"?",
                                                  "sample_type",
                                                  "sample",
                                                  "mapping",
                                                  "location",
                                                  "function",
                                                  "string_table",
                                                  "drop_frames",
                                                  "keep_frames",
                                                  "time_nanos",
                                                  "duration_nanos",
                                                  "period_type",
                                                  "period",
                                                  "comment",
                                                  "default_sample_type",
                                                  "doc_url"};

static const char *field_name(uint64_t f) {
  if (f < sizeof profile_field_names / sizeof profile_field_names[0])
    return profile_field_names[f];
  return "unknown";
}

/* Reads a varint; returns bytes used, 0 when truncated, -1 when too long. */
static int read_varint(const uint8_t *d, size_t len, uint64_t *v) {
  uint64_t r = 0;
  for (size_t i = 0; i < len && i < 10; i++) {
    r |= (uint64_t)(d[i] & 0x7f) << (7 * i);
    if ((d[i] & 0x80) == 0) {
      *v = r;
      return (int)i + 1;
    }
  }
  return len >= 10 ? -1 : 0;
}

/* Walks one message level; on the first problem fills err and returns <0.
 * depth 0 is Profile (field names known). */
static int scan_message(const uint8_t *d, size_t len, size_t base, int depth,
                        fnp_error *err) {
  size_t off = 0;
  while (off < len) {
    uint64_t key, v;
    int n = read_varint(d + off, len - off, &key);
    if (n <= 0)
      return fnp_fail(err, FNP_EPARSE, "%s field key at offset %zu",
                      n == 0 ? "truncated" : "bad varint in", base + off);
    size_t key_off = off;
    off += (size_t)n;
    uint64_t field = key >> 3;
    const char *fname = depth == 0 ? field_name(field) : "nested";
    if (field == 0)
      return fnp_fail(err, FNP_EPARSE, "field number 0 at offset %zu",
                      base + key_off);
    switch (key & 7) {
    case 0:
      n = read_varint(d + off, len - off, &v);
      if (n <= 0)
        return fnp_fail(err, FNP_EPARSE,
                        "%s varint in field %s (%llu) at "
                        "offset %zu",
                        n == 0 ? "truncated" : "bad", fname,
                        (unsigned long long)field, base + off);
      off += (size_t)n;
      break;
    case 1:
    case 5: {
      size_t w = (key & 7) == 1 ? 8 : 4;
      if (len - off < w)
        return fnp_fail(err, FNP_EPARSE,
                        "truncated fixed field %s at "
                        "offset %zu",
                        fname, base + off);
      off += w;
      break;
    }
    case 2:
      n = read_varint(d + off, len - off, &v);
      if (n <= 0)
        return fnp_fail(err, FNP_EPARSE,
                        "%s length of field %s (%llu) at "
                        "offset %zu",
                        n == 0 ? "truncated" : "bad varint for", fname,
                        (unsigned long long)field, base + off);
      off += (size_t)n;
      if (v > len - off)
        return fnp_fail(err, FNP_EPARSE,
                        "field %s (%llu) at offset %zu claims %llu bytes, "
                        "only %zu remain (truncated data)",
                        fname, (unsigned long long)field, base + key_off,
                        (unsigned long long)v, len - off);
      /* Profile's embedded messages are one level deeper; strings and packed
       * scalars (6, 13) are not messages. */
      if (depth == 0 && field != 6 && field != 13 && field <= 5) {
        int rc = scan_message(d + off, (size_t)v, base + off, 1, err);
        if (rc < 0)
          return rc;
      }
      off += (size_t)v;
      break;
    default:
      return fnp_fail(err, FNP_EPARSE,
                      "unsupported wire type %u for field %s at offset %zu",
                      (unsigned)(key & 7), fname, base + key_off);
    }
  }
  return 0;
}

/* ---- conversion ------------------------------------------------------- */

static int convert(const Perftools__Profiles__Profile *m, pprof_profile *p,
                   fnp_error *err) {
  int rc;
  if (m->n_string_table > 0 && m->string_table[0][0] != '\0')
    return fnp_fail(err, FNP_EPARSE,
                    "string_table[0] must be empty, is \"%.40s\"",
                    m->string_table[0]);
  for (size_t i = 1; i < m->n_string_table; i++) {
    int64_t idx = pprof__string_append(p, m->string_table[i]);
    if (idx < 0)
      return fnp_fail(err, (int)idx, "string table: out of memory");
  }
  for (size_t i = 0; i < m->n_sample_type; i++) {
    const Perftools__Profiles__ValueType *vt = m->sample_type[i];
    /* Sample types are validated (index range) by pprof_validate; go through
     * the strings we have so the add keeps indexes. */
    pprof_value_type t = {vt->type, vt->unit};
    if (t.type < 0 || (uint64_t)t.type >= p->n_string || t.unit < 0 ||
        (uint64_t)t.unit >= p->n_string)
      return fnp_fail(err, FNP_EPARSE,
                      "sample_type[%zu]: string index out of range", i);
    rc = pprof_add_sample_type(p, pprof_str(p, t.type), pprof_str(p, t.unit));
    if (rc < 0)
      return fnp_fail(err, rc, "sample_type[%zu]: %s", i, fnp_strerror(rc));
    p->sample_type[i] = t;
  }
  for (size_t i = 0; i < m->n_mapping; i++) {
    const Perftools__Profiles__Mapping *mm = m->mapping[i];
    pprof_mapping map = {.id = mm->id,
                         .memory_start = mm->memory_start,
                         .memory_limit = mm->memory_limit,
                         .file_offset = mm->file_offset,
                         .filename = mm->filename,
                         .build_id = mm->build_id,
                         .has_functions = mm->has_functions,
                         .has_filenames = mm->has_filenames,
                         .has_line_numbers = mm->has_line_numbers,
                         .has_inline_frames = mm->has_inline_frames};
    rc = pprof_add_mapping(p, &map);
    if (rc < 0)
      return fnp_fail(err, rc == FNP_EUSAGE ? FNP_EPARSE : rc,
                      "mapping[%zu]: id %llu is zero or repeated", i,
                      (unsigned long long)mm->id);
  }
  for (size_t i = 0; i < m->n_function; i++) {
    const Perftools__Profiles__Function *mf = m->function[i];
    pprof_function f = {mf->id, mf->name, mf->system_name, mf->filename,
                        mf->start_line};
    rc = pprof_add_function(p, &f);
    if (rc < 0)
      return fnp_fail(err, rc == FNP_EUSAGE ? FNP_EPARSE : rc,
                      "function[%zu]: id %llu is zero or repeated", i,
                      (unsigned long long)mf->id);
  }
  pprof_line stack_lines[16];
  for (size_t i = 0; i < m->n_location; i++) {
    const Perftools__Profiles__Location *ml = m->location[i];
    pprof_line *lines = stack_lines;
    if (ml->n_line > sizeof stack_lines / sizeof stack_lines[0]) {
      lines = pprof__alloc(p, ml->n_line * sizeof *lines);
      if (lines == NULL)
        return fnp_fail(err, -ENOMEM, "location[%zu]: out of memory", i);
    }
    for (size_t j = 0; j < ml->n_line; j++)
      lines[j] = (pprof_line){ml->line[j]->function_id, ml->line[j]->line,
                              ml->line[j]->column};
    pprof_location l = {.id = ml->id,
                        .mapping_id = ml->mapping_id,
                        .address = ml->address,
                        .line = lines,
                        .n_line = ml->n_line,
                        .is_folded = ml->is_folded};
    rc = pprof_add_location(p, &l);
    if (rc < 0)
      return fnp_fail(err, rc == FNP_EUSAGE ? FNP_EPARSE : rc,
                      "location[%zu]: id %llu is zero or repeated", i,
                      (unsigned long long)ml->id);
  }
  for (size_t i = 0; i < m->n_sample; i++) {
    const Perftools__Profiles__Sample *ms = m->sample[i];
    if (ms->n_value != p->n_sample_type)
      return fnp_fail(err, FNP_EPARSE,
                      "sample[%zu]: %zu values for %zu sample types", i,
                      ms->n_value, p->n_sample_type);
    pprof_label *labels = NULL;
    if (ms->n_label > 0) {
      labels = pprof__alloc(p, ms->n_label * sizeof *labels);
      if (labels == NULL)
        return fnp_fail(err, -ENOMEM, "sample[%zu]: out of memory", i);
      for (size_t j = 0; j < ms->n_label; j++)
        labels[j] = (pprof_label){ms->label[j]->key, ms->label[j]->str,
                                  ms->label[j]->num, ms->label[j]->num_unit};
    }
    rc = pprof_add_sample(p, ms->location_id, ms->n_location_id, ms->value,
                          labels, ms->n_label);
    if (rc < 0)
      return fnp_fail(err, rc, "sample[%zu]: %s", i, fnp_strerror(rc));
  }
  for (size_t i = 0; i < m->n_comment; i++) {
    if (m->comment[i] < 0 || (uint64_t)m->comment[i] >= p->n_string)
      return fnp_fail(err, FNP_EPARSE,
                      "comment[%zu]: string index %lld out of range", i,
                      (long long)m->comment[i]);
    rc = pprof_add_comment(p, pprof_str(p, m->comment[i]));
    if (rc < 0)
      return fnp_fail(err, rc, "comment: %s", fnp_strerror(rc));
    p->comment[i] = m->comment[i];
  }
  p->drop_frames = m->drop_frames;
  p->keep_frames = m->keep_frames;
  p->time_nanos = m->time_nanos;
  p->duration_nanos = m->duration_nanos;
  if (m->period_type != NULL)
    p->period_type =
        (pprof_value_type){m->period_type->type, m->period_type->unit};
  p->period = m->period;
  p->default_sample_type = m->default_sample_type;
  p->doc_url = m->doc_url;
  return 0;
}

static int decode_raw(const uint8_t *d, size_t len, pprof_profile **out,
                      fnp_error *err) {
  if (len == 0)
    return fnp_fail(err, FNP_EPARSE, "empty profile");
  budget b = {.left =
                  len > (SIZE_MAX - DECODE_BUDGET_FLOOR_BYTES) /
                              DECODE_BUDGET_FACTOR
                      ? SIZE_MAX
                      : len * DECODE_BUDGET_FACTOR + DECODE_BUDGET_FLOOR_BYTES};
  ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
  Perftools__Profiles__Profile *m =
      perftools__profiles__profile__unpack(&alloc, len, d);
  if (m == NULL) {
    int rc = scan_message(d, len, 0, 0, err);
    if (rc < 0)
      return rc;
    if (b.left == 0 || b.left < 1024)
      return fnp_fail(err, FNP_ETOOBIG,
                      "profile needs more memory than its size justifies");
    return fnp_fail(err, FNP_EPARSE,
                    "not a valid profile.proto message (%zu bytes)", len);
  }
  pprof_profile *p = pprof_profile_new();
  int rc =
      p == NULL ? fnp_fail(err, -ENOMEM, "out of memory") : convert(m, p, err);
  perftools__profiles__profile__free_unpacked(m, &alloc);
  if (rc == 0)
    rc = pprof_validate(p, err);
  if (rc < 0) {
    pprof_profile_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int pprof_decode(const void *data, size_t len, const pprof_decode_opts *opts,
                 pprof_profile **out, fnp_error *err) {
  size_t max_raw = PPROF_DEFAULT_MAX_RAW_BYTES;
  if (opts != NULL && opts->max_raw_bytes != 0)
    max_raw = opts->max_raw_bytes;
  *out = NULL;
  if (!pprof_is_gzip(data, len)) {
    if (len > max_raw)
      return fnp_fail(err, FNP_ETOOBIG,
                      "profile of %zu bytes exceeds the "
                      "%zu byte limit",
                      len, max_raw);
    return decode_raw(data, len, out, err);
  }
  uint8_t *raw;
  size_t raw_len;
  int rc = pprof_gunzip(data, len, max_raw, &raw, &raw_len, err);
  if (rc < 0)
    return rc;
  rc = decode_raw(raw, raw_len, out, err);
  free(raw);
  return rc;
}

int pprof_read_file(const char *path, const pprof_decode_opts *opts,
                    pprof_profile **out, fnp_error *err) {
  size_t max = PPROF_DEFAULT_MAX_RAW_BYTES;
  if (opts != NULL && opts->max_raw_bytes != 0)
    max = opts->max_raw_bytes;
  uint8_t *data;
  size_t len;
  int rc = fnp_read_file(path, max, &data, &len, err);
  if (rc < 0)
    return rc;
  rc = pprof_decode(data, len, opts, out, err);
  free(data);
  if (rc < 0 && err != NULL) {
    /* Prefix the file name so the CLI's message says which input. */
    char tmp[sizeof err->msg];
    memcpy(tmp, err->msg, sizeof tmp);
    fnp_fail(err, rc, "%s: %.*s", path, (int)(sizeof tmp / 2), tmp);
  }
  return rc;
}
