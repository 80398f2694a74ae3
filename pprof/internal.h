/*
 * pprof/internal.h - what the pprof library's files share and nobody else
 * sees: the per-profile store (arena, string intern table, id indexes) and
 * the hash helpers.
 */
#ifndef FNPROF_PPROF_INTERNAL_H
#define FNPROF_PPROF_INTERNAL_H

#include <fnprof/pprof.h>

/* Bump allocator: chunks are never moved, all freed with the profile. */
void *pprof__alloc(pprof_profile *p, size_t size);
char *pprof__strdup(pprof_profile *p, const char *s, size_t len);

/* Appends str to the string table even if it is there already (decoding
 * keeps a file's indexes). Returns the new index or a negative code. */
int64_t pprof__string_append(pprof_profile *p, const char *str);

/* 64-bit hash mixing (splitmix64 finalizer): cheap and well distributed. */
static inline uint64_t pprof__mix(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

/* FNV-1a over bytes. */
static inline uint64_t pprof__hash_bytes(const void *data, size_t len,
                                         uint64_t h) {
  const unsigned char *s = data;
  for (size_t i = 0; i < len; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
#define PPROF__HASH_SEED 0xcbf29ce484222325ULL

/*
 * u64 -> u64 open-addressing map (linear probing, power-of-two capacity,
 * key 0 reserved as empty, which suits pprof ids since 0 means "none").
 */
typedef struct pprof__u64map {
  uint64_t *key;
  uint64_t *val;
  size_t cap; /* slots, power of two or 0 */
  size_t len;
} pprof__u64map;

int pprof__u64map_put(pprof__u64map *m, uint64_t key, uint64_t val);
/* Returns true and sets *val when key is present. */
bool pprof__u64map_get(const pprof__u64map *m, uint64_t key, uint64_t *val);
void pprof__u64map_destroy(pprof__u64map *m);

#endif
