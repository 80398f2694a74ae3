/*
 * ops_fixture.h - hand-built profiles for the operations' tests, through the
 * public pprof_add_* API only. Every expected result in the tests is worked
 * out by hand from these small inputs.
 */
#ifndef OPS_FIXTURE_H
#define OPS_FIXTURE_H

#include <fnprof/pprof.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A profile with period type space/bytes and the given sample types
 * (NULL-terminated pairs: type, unit, type, unit, ..., NULL). */
static inline pprof_profile *fx_new(const char *type, const char *unit, ...) {
  pprof_profile *p = pprof_profile_new();
  assert_non_null(p);
  va_list ap;
  va_start(ap, unit);
  while (type != NULL) {
    assert_int_equal(pprof_add_sample_type(p, type, unit), 0);
    type = va_arg(ap, const char *);
    if (type != NULL)
      unit = va_arg(ap, const char *);
  }
  va_end(ap);
  p->period_type =
      (pprof_value_type){pprof_string(p, "space"), pprof_string(p, "bytes")};
  p->period = 524288;
  return p;
}

/* The function called name (file app.c), added on first use. Its id is
 * deliberately not 1..n and differs between profiles, so a test would catch
 * an operation that confuses ids of different profiles. */
static inline uint64_t fx_func(pprof_profile *p, const char *name) {
  for (size_t i = 0; i < p->n_function; i++)
    if (strcmp(pprof_str(p, p->function[i].name), name) == 0)
      return p->function[i].id;
  pprof_function f = {.id = p->n_function + 1 + p->n_string,
                      .name = pprof_string(p, name),
                      .system_name = pprof_string(p, name),
                      .filename = pprof_string(p, "app.c"),
                      .start_line = 1};
  assert_int_equal(pprof_add_function(p, &f), 0);
  return f.id;
}

/* Location id at addr in mapping (0: none) with one line per name, innermost
 * first (names[0] is inlined into names[1] ...), line numbers 10, 20, ... */
static inline void fx_loc_n(pprof_profile *p, uint64_t id, uint64_t mapping,
                            uint64_t addr, size_t n, const char *const *names) {
  pprof_line line[8];
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++)
    line[i] = (pprof_line){fx_func(p, names[i]), 10 * (int64_t)(i + 1), 0};
  pprof_location l = {.id = id,
                      .mapping_id = mapping,
                      .address = addr,
                      .line = line,
                      .n_line = n};
  assert_int_equal(pprof_add_location(p, &l), 0);
}
#define FX_LOC(p, id, mapping, addr, ...)                                      \
  fx_loc_n((p), (id), (mapping), (addr),                                       \
           sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),       \
           (const char *[]){__VA_ARGS__})

/* A sample of the given values (one per sample type) over location ids,
 * leaf first. */
#define FX_SAMPLE(p, values, ...)                                              \
  assert_int_equal(                                                            \
      pprof_add_sample((p), (const uint64_t[]){__VA_ARGS__},                   \
                       sizeof((uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t),   \
                       (values), NULL, 0),                                     \
      0)

static inline void fx_mapping(pprof_profile *p, uint64_t id, uint64_t start,
                              const char *file, const char *build_id) {
  pprof_mapping m = {.id = id,
                     .memory_start = start,
                     .memory_limit = start + 0x100000,
                     .filename = pprof_string(p, file),
                     .build_id = pprof_string(p, build_id)};
  assert_int_equal(pprof_add_mapping(p, &m), 0);
}

/* Sample s's frames as "leaf;...;root" by function name (or 0x address). */
static inline void fx_stack(const pprof_profile *p, const pprof_sample *s,
                            char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t j = 0; j < s->n_location; j++) {
    const pprof_location *l = pprof_find_location(p, s->location_id[j]);
    assert_non_null(l);
    for (size_t k = 0; k < (l->n_line ? l->n_line : 1); k++) {
      char addr[32];
      const char *name = pprof_frame_name(p, l, k, addr, sizeof addr);
      used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ";" : "",
                               name);
      assert_true(used < len);
    }
  }
}

/* The sample whose stack fx_stack spells `stack`; fails if not exactly one. */
static inline const pprof_sample *fx_find(const pprof_profile *p,
                                          const char *stack) {
  const pprof_sample *found = NULL;
  char buf[512];
  for (size_t i = 0; i < p->n_sample; i++) {
    fx_stack(p, &p->sample[i], buf, sizeof buf);
    if (strcmp(buf, stack) == 0) {
      if (found != NULL)
        fail_msg("two samples with stack %s", stack);
      found = &p->sample[i];
    }
  }
  if (found == NULL)
    fail_msg("no sample with stack %s", stack);
  return found;
}

/* Runs fn's output through a memory stream; returns a malloc'd string. */
#define FX_CAPTURE(out_str, call)                                              \
  do {                                                                         \
    size_t fx_len_;                                                            \
    FILE *out = open_memstream(&(out_str), &fx_len_);                          \
    assert_non_null(out);                                                      \
    assert_int_equal((call), 0);                                               \
    assert_int_equal(fclose(out), 0);                                          \
  } while (0)

#endif
