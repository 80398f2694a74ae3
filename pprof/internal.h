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

/* Saturating arithmetic for sample values: sums over hostile input must not
 * overflow (undefined behaviour); a pinned total is still a visible answer. */
static inline int64_t pprof__sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}
static inline int64_t pprof__sat_neg(int64_t v) {
  return v == INT64_MIN ? INT64_MAX : -v;
}
/* |v| as unsigned, so |INT64_MIN| is representable. */
static inline uint64_t pprof__abs(int64_t v) {
  return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

/* ---- stacks.c: what a stack is, across profiles ----------------------- */

/* Grows *arr (elem bytes each) to hold at least `need`; doubles so appends
 * stay amortized O(1). -ENOMEM on overflow or allocation failure. */
int pprof__reserve(void **arr, size_t *cap, size_t need,
                   size_t elem) FNP_MUST_CHECK;

/* Flushes what a writer function wrote to the caller's stream, so a full
 * disk shows up in our return value: -errno of the failed write, or -EIO. */
int pprof__flush(FILE *out) FNP_MUST_CHECK;

/* A growable vector of uint32 ids (a sample's frame names); grow it with
 * pprof__reserve. Zero-initialize; free(v). */
typedef struct pprof__idvec {
  uint32_t *v;
  size_t n;
  size_t cap;
} pprof__idvec;

/*
 * Interns int64 tuples to dense indexes 0, 1, 2 ... in first-seen order, so
 * callers keep per-key data in plain parallel arrays. Used for stack keys
 * (merge, folded) and for function/location/mapping keys (the interner).
 * Zero-initialize; free with pprof__keytab_destroy.
 */
typedef struct pprof__keytab {
  int64_t *keys; /* every key, back to back */
  size_t keys_len, keys_cap;
  struct pprof__keyent *ent; /* per index: where its key is, its hash */
  size_t n, ent_cap;
  uint32_t *slot; /* open addressing: index + 1, 0 = empty */
  size_t n_slot;
} pprof__keytab;

/* Finds key (len int64s) or adds it; *index is its dense index, *added tells
 * which. FNP_ETOOBIG past UINT32_MAX - 1 keys, -ENOMEM. */
int pprof__keytab_intern(pprof__keytab *t, const int64_t *key, size_t len,
                         size_t *index, bool *added) FNP_MUST_CHECK;
/* The key at index (borrowed until the next intern). */
const int64_t *pprof__keytab_key(const pprof__keytab *t, size_t index,
                                 size_t *len);
void pprof__keytab_destroy(pprof__keytab *t);

/*
 * One profile's frames by display name (pprof_frame_name), computed once per
 * location so per-sample work is a look-up and a copy. A location with
 * inline lines gives one frame per line, innermost (line[0]) first; one
 * without lines gives its address. Equal names get equal ids (by content:
 * decoded string tables may hold duplicates).
 */
typedef struct pprof__frame_names {
  const pprof_profile *p;
  size_t *loc_first; /* location index i: frames [loc_first[i], [i+1]) */
  uint32_t *frame;   /* name id per frame */
  const char **name; /* name id -> name, borrowed from p or from addr */
  size_t n_name;
  bool *name_is_addr; /* name id -> the name lives in addr, not in p */
  uint32_t *dense;    /* location id -> index + 1, when ids are small */
  size_t n_dense;
  char *addr; /* storage for the "0x..." names of frames without function */
} pprof__frame_names;

/* The name id folded stacks and flame graphs give a sample without any
 * location, so its value still shows up (as "[unknown]", perf's word). */
#define PPROF__UNKNOWN_FRAME UINT32_MAX
static inline const char *pprof__frame_name_str(const pprof__frame_names *f,
                                                uint32_t id) {
  return id == PPROF__UNKNOWN_FRAME ? "[unknown]" : f->name[id];
}

int pprof__frame_names_init(pprof__frame_names *f,
                            const pprof_profile *p) FNP_MUST_CHECK;
void pprof__frame_names_destroy(pprof__frame_names *f);
/* Sample s's frames as name ids, leaf first, appended to out (emptied
 * first). FNP_EPARSE when s names a location p does not have. */
int pprof__sample_names(const pprof__frame_names *f, const pprof_sample *s,
                        pprof__idvec *out) FNP_MUST_CHECK;

/*
 * Re-creates other profiles' functions, locations and mappings in `out`,
 * deduplicated by content, so that equal stacks from different profiles get
 * equal output location ids (see stacks.c for the keys). Output ids are
 * dense: keytab index + 1. Feed sources one at a time with _begin.
 */
typedef struct pprof__interner {
  pprof_profile *out;
  pprof__keytab mappings, functions, locations;
  const pprof_profile *src;
  /* Per source: src string index + 1 -> out index; src id -> out id. */
  pprof__u64map str, mapping, function, location;
  int64_t *key; /* scratch for building keys */
  size_t key_cap;
  pprof_line *line; /* scratch for a location's translated lines */
  size_t line_cap;
} pprof__interner;

/* out stays owned by the caller. */
void pprof__interner_init(pprof__interner *in, pprof_profile *out);
/* Switches to a new source and carries over all its mappings (the first
 * source's mapping[0] thus stays first: pprof reads it as the main binary). */
int pprof__interner_begin(pprof__interner *in,
                          const pprof_profile *src) FNP_MUST_CHECK;
int pprof__interner_string(pprof__interner *in, int64_t src_idx,
                           int64_t *out_idx) FNP_MUST_CHECK;
int pprof__interner_location(pprof__interner *in, uint64_t src_id,
                             uint64_t *out_id) FNP_MUST_CHECK;
void pprof__interner_destroy(pprof__interner *in);

/* ---- merge.c ----------------------------------------------------------- */

/* pprof_merge with every value of in[i] negated where negate[i] (pprof_diff
 * is a merge with the base negated, as `go tool pprof -base` does). */
int pprof__merge_signed(const pprof_profile *const *in, const bool *negate,
                        size_t n, pprof_profile **out,
                        fnp_error *err) FNP_MUST_CHECK;

#endif
