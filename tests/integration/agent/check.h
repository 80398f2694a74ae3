/*
 * Helpers for programs that run under LD_PRELOAD=libfnprof.so and check
 * the agent's own profile of themselves: the fnprof_* API is found with
 * dlsym (the programs do not link the agent), profiles are decoded with the
 * pprof library, and frames are attributed to functions with dladdr (the
 * programs are linked with -rdynamic), independently of pprof's symbolizer.
 */
#ifndef AGENT_CHECK_H
#define AGENT_CHECK_H

#include <fnprof/fnprof.h>
#include <fnprof/pprof.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static void *agent_fn(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (!f) {
    fprintf(stderr, "%s not found: is libfnprof.so preloaded?\n", name);
    exit(1);
  }
  return f;
}

static inline uint64_t agent_end_cycle(void) {
  int (*f)(uint64_t *) = (int (*)(uint64_t *))agent_fn("fnprof_end_cycle");
  uint64_t c = 0;
  CHECK(f(&c) == 0);
  return c;
}

static inline pprof_profile *agent_profile(fnprof_kind kind) {
  int (*f)(fnprof_kind, uint8_t **, size_t *) =
      (int (*)(fnprof_kind, uint8_t **, size_t *))agent_fn("fnprof_profile");
  uint8_t *data = NULL;
  size_t len = 0;
  CHECK(f(kind, &data, &len) == 0);
  pprof_profile *p = NULL;
  fnp_error err;
  memset(&err, 0, sizeof(err));
  int rc = pprof_decode(data, len, NULL, &p, &err);
  if (rc != 0)
    fprintf(stderr, "decode: %s\n", err.msg);
  CHECK(rc == 0);
  free(data);
  CHECK(pprof_validate(p, NULL) == 0);
  return p;
}

static inline char *agent_json(const char *fn) {
  int (*f)(char **, size_t *) = (int (*)(char **, size_t *))agent_fn(fn);
  char *j = NULL;
  size_t n = 0;
  CHECK(f(&j, &n) == 0);
  CHECK(j && strlen(j) == n);
  return j;
}

/* Does any frame of sample s resolve (dladdr) to the function `name`? */
static inline int sample_has(const pprof_profile *p, const pprof_sample *s,
                             const char *name) {
  for (size_t i = 0; i < s->n_location; i++) {
    const pprof_location *l = pprof_find_location(p, s->location_id[i]);
    Dl_info di;
    if (l && dladdr((void *)(uintptr_t)l->address, &di) && di.dli_sname &&
        strcmp(di.dli_sname, name) == 0)
      return 1;
  }
  return 0;
}

/* Sum of value[index] over samples whose stack contains `name`. */
static inline int64_t site_total(const pprof_profile *p, const char *type,
                                 const char *name) {
  int idx = pprof_sample_type_index(p, type);
  CHECK(idx >= 0);
  int64_t sum = 0;
  for (size_t i = 0; i < p->n_sample; i++)
    if (sample_has(p, &p->sample[i], name))
      sum += p->sample[i].value[idx];
  return sum;
}

#endif
