/*
 * The profile model: construction, the string intern table, id indexes and
 * the arena everything small lives in. Encoding, decoding and the operations
 * are in their own files and build profiles only through these functions.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_BYTES (256 * 1024)
#define ARENA_ALIGN 16

typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t used;
  size_t size;
  /* data follows, ARENA_ALIGN-aligned */
} arena_chunk;

#define CHUNK_HEADER                                                           \
  ((sizeof(arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

struct pprof__store {
  arena_chunk *chunks;
  /* String intern table: open addressing over string indexes + 1 (0 empty). */
  uint64_t *str_slot;
  size_t str_slots;
  size_t string_cap;
  size_t sample_cap, mapping_cap, location_cap, function_cap, comment_cap,
      sample_type_cap;
  pprof__u64map mapping_ids, location_ids, function_ids;
};

void *pprof__alloc(pprof_profile *p, size_t size) {
  struct pprof__store *s = p->store_;
  size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  arena_chunk *c = s->chunks;
  if (c == NULL || c->size - c->used < size) {
    size_t csize = size > ARENA_CHUNK_BYTES / 4 ? size : ARENA_CHUNK_BYTES;
    c = malloc(CHUNK_HEADER + csize);
    if (c == NULL)
      return NULL;
    c->used = 0;
    c->size = csize;
    if (s->chunks != NULL && csize != ARENA_CHUNK_BYTES) {
      /* A large one-off block: keep the current chunk as the bump target. */
      c->used = csize;
      c->next = s->chunks->next;
      s->chunks->next = c;
      return (char *)c + CHUNK_HEADER;
    }
    c->next = s->chunks;
    s->chunks = c;
  }
  void *r = (char *)c + CHUNK_HEADER + c->used;
  c->used += size;
  return r;
}

char *pprof__strdup(pprof_profile *p, const char *str, size_t len) {
  char *d = pprof__alloc(p, len + 1);
  if (d == NULL)
    return NULL;
  memcpy(d, str, len);
  d[len] = '\0';
  return d;
}

/* Room for one more element after the first n. */
#define RESERVE(arr, capfield, n)                                              \
  pprof__reserve((void **)&(arr), &p->store_->capfield, (n) + 1, sizeof *(arr))

pprof_profile *pprof_profile_new(void) {
  pprof_profile *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->store_ = calloc(1, sizeof *p->store_);
  if (p->store_ == NULL || pprof_string(p, "") != 0) {
    pprof_profile_free(p);
    return NULL;
  }
  return p;
}

void pprof_profile_free(pprof_profile *p) {
  if (p == NULL)
    return;
  struct pprof__store *s = p->store_;
  if (s != NULL) {
    for (arena_chunk *c = s->chunks, *n; c != NULL; c = n) {
      n = c->next;
      free(c);
    }
    free(s->str_slot);
    pprof__u64map_destroy(&s->mapping_ids);
    pprof__u64map_destroy(&s->location_ids);
    pprof__u64map_destroy(&s->function_ids);
    free(s);
  }
  free(p->sample_type);
  free(p->sample);
  free(p->mapping);
  free(p->location);
  free(p->function);
  free((void *)p->string);
  free(p->comment);
  free(p);
}

static int str_table_grow(struct pprof__store *s, const pprof_profile *p) {
  size_t slots = s->str_slots ? s->str_slots * 2 : 64;
  uint64_t *t = calloc(slots, sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < p->n_string; i++) {
    const char *str = p->string[i];
    size_t j =
        pprof__hash_bytes(str, strlen(str), PPROF__HASH_SEED) & (slots - 1);
    while (t[j] != 0)
      j = (j + 1) & (slots - 1);
    t[j] = i + 1;
  }
  free(s->str_slot);
  s->str_slot = t;
  s->str_slots = slots;
  return 0;
}

/* Finds str in the intern table; when absent (or when `append` is set, as the
 * decoder needs to keep a file's own indexes even for duplicates), appends
 * it. Returns its index. */
static int64_t intern(pprof_profile *p, const char *str, size_t len,
                      bool append) {
  struct pprof__store *s = p->store_;
  if ((p->n_string + 1) * 2 > s->str_slots) {
    int rc = str_table_grow(s, p);
    if (rc < 0)
      return rc;
  }
  size_t j = pprof__hash_bytes(str, len, PPROF__HASH_SEED) & (s->str_slots - 1);
  bool found = false;
  while (s->str_slot[j] != 0) {
    const char *have = p->string[s->str_slot[j] - 1];
    if (strncmp(have, str, len) == 0 && have[len] == '\0') {
      if (!append)
        return (int64_t)(s->str_slot[j] - 1);
      found = true;
      break;
    }
    j = (j + 1) & (s->str_slots - 1);
  }
  if (RESERVE(p->string, string_cap, p->n_string) < 0)
    return -ENOMEM;
  char *copy = pprof__strdup(p, str, len);
  if (copy == NULL)
    return -ENOMEM;
  p->string[p->n_string++] = copy;
  if (!found)
    s->str_slot[j] = p->n_string;
  return (int64_t)(p->n_string - 1);
}

int64_t pprof_string(pprof_profile *p, const char *str) {
  if (str == NULL)
    str = "";
  return intern(p, str, strlen(str), false);
}

int64_t pprof__string_append(pprof_profile *p, const char *str) {
  return intern(p, str, strlen(str), true);
}

const char *pprof_str(const pprof_profile *p, int64_t idx) {
  if (idx < 0 || (uint64_t)idx >= p->n_string)
    return "";
  return p->string[idx];
}

int pprof_add_sample_type(pprof_profile *p, const char *type,
                          const char *unit) {
  int64_t t = pprof_string(p, type);
  int64_t u = t < 0 ? t : pprof_string(p, unit);
  if (u < 0)
    return (int)u;
  if (p->n_sample != 0)
    return FNP_EUSAGE; /* samples already carry a fixed number of values */
  if (RESERVE(p->sample_type, sample_type_cap, p->n_sample_type) < 0)
    return -ENOMEM;
  p->sample_type[p->n_sample_type++] = (pprof_value_type){t, u};
  return 0;
}

int pprof_add_mapping(pprof_profile *p, const pprof_mapping *m) {
  uint64_t ignored;
  if (m->id == 0 || pprof__u64map_get(&p->store_->mapping_ids, m->id, &ignored))
    return FNP_EUSAGE;
  if (RESERVE(p->mapping, mapping_cap, p->n_mapping) < 0 ||
      pprof__u64map_put(&p->store_->mapping_ids, m->id, p->n_mapping) < 0)
    return -ENOMEM;
  p->mapping[p->n_mapping++] = *m;
  return 0;
}

int pprof_add_function(pprof_profile *p, const pprof_function *f) {
  uint64_t ignored;
  if (f->id == 0 ||
      pprof__u64map_get(&p->store_->function_ids, f->id, &ignored))
    return FNP_EUSAGE;
  if (RESERVE(p->function, function_cap, p->n_function) < 0 ||
      pprof__u64map_put(&p->store_->function_ids, f->id, p->n_function) < 0)
    return -ENOMEM;
  p->function[p->n_function++] = *f;
  return 0;
}

int pprof_set_lines(pprof_profile *p, pprof_location *l, const pprof_line *line,
                    size_t n_line) {
  pprof_line *copy = NULL;
  if (n_line > 0) {
    if (n_line > SIZE_MAX / sizeof *copy)
      return -ENOMEM;
    copy = pprof__alloc(p, n_line * sizeof *copy);
    if (copy == NULL)
      return -ENOMEM;
    memcpy(copy, line, n_line * sizeof *copy);
  }
  l->line = copy;
  l->n_line = n_line;
  return 0;
}

int pprof_add_location(pprof_profile *p, const pprof_location *l) {
  uint64_t ignored;
  if (l->id == 0 ||
      pprof__u64map_get(&p->store_->location_ids, l->id, &ignored))
    return FNP_EUSAGE;
  if (RESERVE(p->location, location_cap, p->n_location) < 0)
    return -ENOMEM;
  pprof_location *dst = &p->location[p->n_location];
  *dst = *l;
  if (pprof_set_lines(p, dst, l->line, l->n_line) < 0 ||
      pprof__u64map_put(&p->store_->location_ids, l->id, p->n_location) < 0)
    return -ENOMEM;
  p->n_location++;
  return 0;
}

int pprof_add_sample(pprof_profile *p, const uint64_t *location_id,
                     size_t n_location, const int64_t *value,
                     const pprof_label *label, size_t n_label) {
  if (RESERVE(p->sample, sample_cap, p->n_sample) < 0)
    return -ENOMEM;
  if (n_location > SIZE_MAX / 8 || n_label > SIZE_MAX / sizeof *label)
    return -ENOMEM;
  pprof_sample s = {0};
  size_t nv = p->n_sample_type;
  s.location_id =
      n_location ? pprof__alloc(p, n_location * sizeof(uint64_t)) : NULL;
  s.value = nv ? pprof__alloc(p, nv * sizeof(int64_t)) : NULL;
  s.label = n_label ? pprof__alloc(p, n_label * sizeof *label) : NULL;
  if ((n_location && s.location_id == NULL) || (nv && s.value == NULL) ||
      (n_label && s.label == NULL))
    return -ENOMEM;
  if (n_location)
    memcpy(s.location_id, location_id, n_location * sizeof(uint64_t));
  if (nv)
    memcpy(s.value, value, nv * sizeof(int64_t));
  if (n_label)
    memcpy(s.label, label, n_label * sizeof *label);
  s.n_location = n_location;
  s.n_label = n_label;
  p->sample[p->n_sample++] = s;
  return 0;
}

int pprof_add_comment(pprof_profile *p, const char *text) {
  int64_t idx = pprof_string(p, text);
  if (idx < 0)
    return (int)idx;
  if (RESERVE(p->comment, comment_cap, p->n_comment) < 0)
    return -ENOMEM;
  p->comment[p->n_comment++] = idx;
  return 0;
}

#define DEFINE_FIND(kind, type)                                                \
  type *pprof_##kind##_mut(pprof_profile *p, uint64_t id) {                    \
    uint64_t idx;                                                              \
    if (!pprof__u64map_get(&p->store_->kind##_ids, id, &idx))                  \
      return NULL;                                                             \
    return &p->kind[idx];                                                      \
  }                                                                            \
  const type *pprof_find_##kind(const pprof_profile *p, uint64_t id) {         \
    uint64_t idx;                                                              \
    if (!pprof__u64map_get(&p->store_->kind##_ids, id, &idx))                  \
      return NULL;                                                             \
    return &p->kind[idx];                                                      \
  }
DEFINE_FIND(mapping, pprof_mapping)
DEFINE_FIND(location, pprof_location)
/* Functions have no public _mut: they are replaced, never edited in place. */
const pprof_function *pprof_find_function(const pprof_profile *p, uint64_t id) {
  uint64_t idx;
  if (!pprof__u64map_get(&p->store_->function_ids, id, &idx))
    return NULL;
  return &p->function[idx];
}

int pprof_sample_type_index(const pprof_profile *p, const char *type) {
  if (type == NULL) {
    if (p->n_sample_type == 0)
      return -1;
    if (p->default_sample_type != 0) {
      const char *want = pprof_str(p, p->default_sample_type);
      for (size_t i = 0; i < p->n_sample_type; i++)
        if (strcmp(pprof_str(p, p->sample_type[i].type), want) == 0)
          return (int)i;
    }
    return (int)p->n_sample_type - 1;
  }
  for (size_t i = 0; i < p->n_sample_type; i++)
    if (strcmp(pprof_str(p, p->sample_type[i].type), type) == 0)
      return (int)i;
  return -1;
}

const char *pprof_frame_name(const pprof_profile *p, const pprof_location *l,
                             size_t line_index, char *buf, size_t buflen) {
  if (line_index < l->n_line) {
    const pprof_function *f =
        pprof_find_function(p, l->line[line_index].function_id);
    if (f != NULL && f->name != 0)
      return pprof_str(p, f->name);
  }
  snprintf(buf, buflen, "0x%llx", (unsigned long long)l->address);
  return buf;
}
