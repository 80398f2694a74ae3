/* The id -> index map behind pprof_find_* (open addressing, linear probe). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#define U64MAP_MIN_SLOTS 16

static int grow(pprof__u64map *m) {
  size_t cap = m->cap ? m->cap * 2 : U64MAP_MIN_SLOTS;
  uint64_t *key = calloc(cap, sizeof *key);
  uint64_t *val = malloc(cap * sizeof *val);
  if (key == NULL || val == NULL) {
    free(key);
    free(val);
    return -ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->key[i] == 0)
      continue;
    size_t j = pprof__mix(m->key[i]) & (cap - 1);
    while (key[j] != 0)
      j = (j + 1) & (cap - 1);
    key[j] = m->key[i];
    val[j] = m->val[i];
  }
  free(m->key);
  free(m->val);
  m->key = key;
  m->val = val;
  m->cap = cap;
  return 0;
}

int pprof__u64map_put(pprof__u64map *m, uint64_t key, uint64_t val) {
  if (key == 0)
    return FNP_EUSAGE;
  /* Keep the load under 1/2 so probes stay short. */
  if ((m->len + 1) * 2 > m->cap) {
    int rc = grow(m);
    if (rc < 0)
      return rc;
  }
  size_t j = pprof__mix(key) & (m->cap - 1);
  while (m->key[j] != 0) {
    if (m->key[j] == key) {
      m->val[j] = val;
      return 0;
    }
    j = (j + 1) & (m->cap - 1);
  }
  m->key[j] = key;
  m->val[j] = val;
  m->len++;
  return 0;
}

bool pprof__u64map_get(const pprof__u64map *m, uint64_t key, uint64_t *val) {
  if (m->cap == 0 || key == 0)
    return false;
  size_t j = pprof__mix(key) & (m->cap - 1);
  while (m->key[j] != 0) {
    if (m->key[j] == key) {
      *val = m->val[j];
      return true;
    }
    j = (j + 1) & (m->cap - 1);
  }
  return false;
}

void pprof__u64map_destroy(pprof__u64map *m) {
  free(m->key);
  free(m->val);
  m->key = m->val = NULL;
  m->cap = m->len = 0;
}
