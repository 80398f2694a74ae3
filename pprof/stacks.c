/*
 * What a stack is, across profiles: a tuple interner (stack and object keys),
 * each location's frames by display name, and the interner that re-creates
 * other profiles' functions, locations and mappings in an output profile.
 * The operations (merge.c, top.c, folded.c, flame.c) decide what to add up.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEYTAB_MIN_SLOTS 64
/* "0x" + 16 hex digits + NUL: the longest name pprof_frame_name writes. */
#define ADDR_NAME_BYTES 19
/* Mapping sizes are rounded up to a page so that two runs whose loader
 * rounded the limit differently still match, as pprof's merge does. */
#define MAPPING_SIZE_ROUND_BYTES 0x1000u

struct pprof__keyent {
  size_t off;
  size_t len;
  uint64_t hash;
};

int pprof__reserve(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2)
      return -ENOMEM;
    ncap *= 2;
  }
  if (ncap > SIZE_MAX / elem)
    return -ENOMEM;
  void *a = realloc(*arr, ncap * elem);
  if (a == NULL)
    return -ENOMEM;
  *arr = a;
  *cap = ncap;
  return 0;
}

int pprof__flush(FILE *out) {
  errno = 0;
  if (fflush(out) != 0 || ferror(out))
    return errno > 0 ? -errno : -EIO;
  return 0;
}

/* ---- keytab ------------------------------------------------------------ */

static uint64_t key_hash(const int64_t *key, size_t len) {
  uint64_t h = pprof__mix(PPROF__HASH_SEED ^ len);
  for (size_t i = 0; i < len; i++)
    h = pprof__mix(h ^ (uint64_t)key[i]);
  return h;
}

static int keytab_grow(pprof__keytab *t) {
  size_t n_slot = t->n_slot ? t->n_slot * 2 : KEYTAB_MIN_SLOTS;
  uint32_t *slot = calloc(n_slot, sizeof *slot);
  if (slot == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < t->n; i++) {
    size_t j = t->ent[i].hash & (n_slot - 1);
    while (slot[j] != 0)
      j = (j + 1) & (n_slot - 1);
    slot[j] = (uint32_t)(i + 1);
  }
  free(t->slot);
  t->slot = slot;
  t->n_slot = n_slot;
  return 0;
}

int pprof__keytab_intern(pprof__keytab *t, const int64_t *key, size_t len,
                         size_t *index, bool *added) {
  if ((t->n + 1) * 2 > t->n_slot) {
    int rc = keytab_grow(t);
    if (rc < 0)
      return rc;
  }
  uint64_t h = key_hash(key, len);
  size_t j = h & (t->n_slot - 1);
  for (; t->slot[j] != 0; j = (j + 1) & (t->n_slot - 1)) {
    const struct pprof__keyent *e = &t->ent[t->slot[j] - 1];
    if (e->hash == h && e->len == len &&
        (len == 0 || memcmp(t->keys + e->off, key, len * sizeof *key) == 0)) {
      *index = t->slot[j] - 1;
      *added = false;
      return 0;
    }
  }
  /* Slots hold index + 1 in 32 bits. */
  if (t->n >= UINT32_MAX - 1 || len > SIZE_MAX - t->keys_len)
    return FNP_ETOOBIG;
  if (pprof__reserve((void **)&t->keys, &t->keys_cap, t->keys_len + len,
                     sizeof *t->keys) < 0 ||
      pprof__reserve((void **)&t->ent, &t->ent_cap, t->n + 1, sizeof *t->ent) <
          0)
    return -ENOMEM;
  if (len > 0)
    memcpy(t->keys + t->keys_len, key, len * sizeof *key);
  t->ent[t->n] = (struct pprof__keyent){t->keys_len, len, h};
  t->keys_len += len;
  t->slot[j] = (uint32_t)(t->n + 1);
  *index = t->n++;
  *added = true;
  return 0;
}

const int64_t *pprof__keytab_key(const pprof__keytab *t, size_t index,
                                 size_t *len) {
  *len = t->ent[index].len;
  return t->keys + t->ent[index].off;
}

void pprof__keytab_destroy(pprof__keytab *t) {
  free(t->keys);
  free(t->ent);
  free(t->slot);
  memset(t, 0, sizeof *t);
}

/* ---- frames by name ---------------------------------------------------- */

/* A throwaway string set for pprof__frame_names_init: name -> name id, by
 * content. */
typedef struct name_set {
  uint32_t *slot; /* name id + 1 */
  uint64_t *hash; /* per name id */
  size_t n_slot;
} name_set;

static uint32_t name_id(pprof__frame_names *f, name_set *set, const char *name,
                        bool is_addr) {
  uint64_t h = pprof__hash_bytes(name, strlen(name), PPROF__HASH_SEED);
  size_t j = h & (set->n_slot - 1);
  for (; set->slot[j] != 0; j = (j + 1) & (set->n_slot - 1)) {
    uint32_t k = set->slot[j] - 1;
    if (set->hash[k] == h && strcmp(f->name[k], name) == 0)
      return k;
  }
  uint32_t id = (uint32_t)f->n_name;
  f->name[id] = name;
  f->name_is_addr[id] = is_addr;
  set->hash[id] = h;
  set->slot[j] = id + 1;
  f->n_name++;
  return id;
}

/* Counts the frames of all locations so every array is sized once. */
static size_t count_frames(const pprof_profile *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->n_location; i++)
    n += p->location[i].n_line ? p->location[i].n_line : 1;
  return n;
}

static int frames_alloc(pprof__frame_names *f, size_t n_frames, name_set *set) {
  /* At most one name per frame; the set stays at most half full. */
  size_t n_slot = KEYTAB_MIN_SLOTS;
  while (n_slot < n_frames * 2)
    n_slot *= 2;
  f->loc_first = calloc(f->p->n_location + 1, sizeof *f->loc_first);
  f->frame = calloc(n_frames ? n_frames : 1, sizeof *f->frame);
  f->name = calloc(n_frames ? n_frames : 1, sizeof *f->name);
  f->name_is_addr = calloc(n_frames ? n_frames : 1, sizeof *f->name_is_addr);
  f->addr = calloc(n_frames ? n_frames : 1, ADDR_NAME_BYTES);
  set->slot = calloc(n_slot, sizeof *set->slot);
  set->hash = calloc(n_frames ? n_frames : 1, sizeof *set->hash);
  set->n_slot = n_slot;
  if (f->loc_first == NULL || f->frame == NULL || f->name == NULL ||
      f->name_is_addr == NULL || f->addr == NULL || set->slot == NULL ||
      set->hash == NULL)
    return -ENOMEM;
  return 0;
}

/* Profiles from Go and from our agent number locations 1..n; a direct
 * table then beats hashing on the per-frame path. Sparse ids fall back to
 * the profile's hash index. */
#define DENSE_IDS_PER_LOCATION 4

static int dense_init(pprof__frame_names *f) {
  const pprof_profile *p = f->p;
  uint64_t max = 0;
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i].id > max)
      max = p->location[i].id;
  if (p->n_location == 0 ||
      max > (uint64_t)p->n_location * DENSE_IDS_PER_LOCATION)
    return 0;
  f->dense = calloc(max + 1, sizeof *f->dense);
  if (f->dense == NULL)
    return -ENOMEM;
  f->n_dense = max + 1;
  for (size_t i = 0; i < p->n_location; i++)
    f->dense[p->location[i].id] = (uint32_t)(i + 1);
  return 0;
}

int pprof__frame_names_init(pprof__frame_names *f, const pprof_profile *p) {
  memset(f, 0, sizeof *f);
  f->p = p;
  name_set set = {0};
  size_t n_frames = count_frames(p);
  int rc = FNP_ETOOBIG; /* name ids, and PPROF__UNKNOWN_FRAME, fit 32 bits */
  if (n_frames >= UINT32_MAX || n_frames > SIZE_MAX / 4)
    goto fail;
  if ((rc = frames_alloc(f, n_frames, &set)) < 0)
    goto fail;
  size_t k = 0, addr_used = 0;
  for (size_t i = 0; i < p->n_location; i++) {
    const pprof_location *l = &p->location[i];
    f->loc_first[i] = k;
    for (size_t j = 0; j < (l->n_line ? l->n_line : 1); j++) {
      char *buf = f->addr + addr_used;
      const char *nm = pprof_frame_name(p, l, j, buf, ADDR_NAME_BYTES);
      if (nm == buf)
        addr_used += strlen(buf) + 1;
      f->frame[k++] = name_id(f, &set, nm, nm == buf);
    }
  }
  f->loc_first[p->n_location] = k;
  rc = dense_init(f);
  if (rc < 0)
    goto fail;
  free(set.slot);
  free(set.hash);
  return 0;
fail:
  free(set.slot);
  free(set.hash);
  pprof__frame_names_destroy(f);
  return rc;
}

void pprof__frame_names_destroy(pprof__frame_names *f) {
  free(f->loc_first);
  free(f->frame);
  free(f->name);
  free(f->name_is_addr);
  free(f->addr);
  free(f->dense);
  memset(f, 0, sizeof *f);
}

static bool location_index(const pprof__frame_names *f, uint64_t id,
                           size_t *index) {
  if (id < f->n_dense) {
    *index = (size_t)f->dense[id] - 1;
    return f->dense[id] != 0;
  }
  const pprof_location *l = pprof_find_location(f->p, id);
  if (l == NULL)
    return false;
  *index = (size_t)(l - f->p->location);
  return true;
}

int pprof__sample_names(const pprof__frame_names *f, const pprof_sample *s,
                        pprof__idvec *out) {
  out->n = 0;
  for (size_t j = 0; j < s->n_location; j++) {
    size_t i;
    if (!location_index(f, s->location_id[j], &i))
      return FNP_EPARSE;
    size_t first = f->loc_first[i], end = f->loc_first[i + 1];
    if (out->cap - out->n < end - first &&
        pprof__reserve((void **)&out->v, &out->cap, out->n + end - first,
                       sizeof *out->v) < 0)
      return -ENOMEM;
    for (size_t k = first; k < end; k++) /* usually 1-3: no memcpy call */
      out->v[out->n++] = f->frame[k];
  }
  return 0;
}

/* ---- interner ---------------------------------------------------------- */

/*
 * Keys, all over output string indexes (the output interns every string, so
 * equal text means equal index):
 *   mapping:  page-rounded size, file offset, build id or else filename (as
 *             pprof does: the load address is left out, so ASLR is ignored);
 *   function: name, system name, filename, start line;
 *   location: with lines, the (function, line) list only, so that the same
 *             code at different addresses (another build, ASLR) matches;
 *             without lines, mapping + address relative to the mapping.
 */
enum { KEY_BUILD_ID, KEY_FILENAME, KEY_FAKE };

void pprof__interner_init(pprof__interner *in, pprof_profile *out) {
  memset(in, 0, sizeof *in);
  in->out = out;
}

static void reset_source_maps(pprof__interner *in) {
  pprof__u64map_destroy(&in->str);
  pprof__u64map_destroy(&in->mapping);
  pprof__u64map_destroy(&in->function);
  pprof__u64map_destroy(&in->location);
}

void pprof__interner_destroy(pprof__interner *in) {
  reset_source_maps(in);
  pprof__keytab_destroy(&in->mappings);
  pprof__keytab_destroy(&in->functions);
  pprof__keytab_destroy(&in->locations);
  free(in->key);
  free(in->line);
  memset(in, 0, sizeof *in);
}

int pprof__interner_string(pprof__interner *in, int64_t src_idx,
                           int64_t *out_idx) {
  uint64_t v;
  if (src_idx <= 0 || (uint64_t)src_idx >= in->src->n_string) {
    *out_idx = 0; /* "" (pprof_str's answer for out-of-range indexes) */
    return 0;
  }
  if (pprof__u64map_get(&in->str, (uint64_t)src_idx + 1, &v)) {
    *out_idx = (int64_t)v;
    return 0;
  }
  int64_t idx = pprof_string(in->out, pprof_str(in->src, src_idx));
  if (idx < 0)
    return (int)idx;
  *out_idx = idx;
  return pprof__u64map_put(&in->str, (uint64_t)src_idx + 1, (uint64_t)idx);
}

static int add_mapping(pprof__interner *in, const pprof_mapping *m,
                       uint64_t id) {
  pprof_mapping nm = *m;
  nm.id = id;
  int rc = pprof__interner_string(in, m->filename, &nm.filename);
  if (rc == 0)
    rc = pprof__interner_string(in, m->build_id, &nm.build_id);
  if (rc == 0)
    rc = pprof_add_mapping(in->out, &nm);
  return rc;
}

static int map_mapping(pprof__interner *in, const pprof_mapping *m) {
  int64_t key[4], name = 0;
  int kind = KEY_FAKE, rc = 0;
  if (*pprof_str(in->src, m->build_id) != '\0') {
    kind = KEY_BUILD_ID;
    rc = pprof__interner_string(in, m->build_id, &name);
  } else if (*pprof_str(in->src, m->filename) != '\0') {
    kind = KEY_FILENAME;
    rc = pprof__interner_string(in, m->filename, &name);
  }
  if (rc < 0)
    return rc;
  uint64_t size = m->memory_limit - m->memory_start;
  size = (size + MAPPING_SIZE_ROUND_BYTES - 1) &
         ~(uint64_t)(MAPPING_SIZE_ROUND_BYTES - 1);
  key[0] = (int64_t)size;
  key[1] = (int64_t)m->file_offset;
  key[2] = kind;
  key[3] = name;
  size_t idx;
  bool added;
  if ((rc = pprof__keytab_intern(&in->mappings, key, 4, &idx, &added)) < 0)
    return rc;
  if (added && (rc = add_mapping(in, m, idx + 1)) < 0)
    return rc;
  return pprof__u64map_put(&in->mapping, m->id, idx + 1);
}

int pprof__interner_begin(pprof__interner *in, const pprof_profile *src) {
  reset_source_maps(in);
  in->src = src;
  for (size_t i = 0; i < src->n_mapping; i++) {
    int rc = map_mapping(in, &src->mapping[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int map_function(pprof__interner *in, uint64_t src_id,
                        uint64_t *out_id) {
  if (pprof__u64map_get(&in->function, src_id, out_id))
    return 0;
  const pprof_function *f = pprof_find_function(in->src, src_id);
  if (f == NULL)
    return FNP_EPARSE;
  pprof_function nf = {.start_line = f->start_line};
  int rc = pprof__interner_string(in, f->name, &nf.name);
  if (rc == 0)
    rc = pprof__interner_string(in, f->system_name, &nf.system_name);
  if (rc == 0)
    rc = pprof__interner_string(in, f->filename, &nf.filename);
  if (rc < 0)
    return rc;
  int64_t key[4] = {nf.name, nf.system_name, nf.filename, nf.start_line};
  size_t idx;
  bool added;
  if ((rc = pprof__keytab_intern(&in->functions, key, 4, &idx, &added)) < 0)
    return rc;
  nf.id = *out_id = idx + 1;
  if (added && (rc = pprof_add_function(in->out, &nf)) < 0)
    return rc;
  return pprof__u64map_put(&in->function, src_id, *out_id);
}

/* The output mapping of l and l's address moved into it (the output keeps
 * the first-seen load address of each mapping). */
static int relocate(pprof__interner *in, const pprof_location *l,
                    uint64_t *mapping_id, uint64_t *rel, uint64_t *addr) {
  *mapping_id = 0;
  *rel = *addr = l->address;
  if (l->mapping_id == 0)
    return 0;
  const pprof_mapping *sm = pprof_find_mapping(in->src, l->mapping_id);
  if (sm == NULL || !pprof__u64map_get(&in->mapping, l->mapping_id, mapping_id))
    return FNP_EPARSE;
  const pprof_mapping *om = &in->out->mapping[*mapping_id - 1];
  *rel = l->address - sm->memory_start; /* unsigned: wraps, never UB */
  *addr = *rel + om->memory_start;
  return 0;
}

/* Translates l's lines into in->line and builds its key in in->key. */
static int location_key(pprof__interner *in, const pprof_location *l,
                        uint64_t mapping_id, uint64_t rel, size_t *len) {
  if (l->n_line > (SIZE_MAX - 1) / 2)
    return -ENOMEM;
  if (pprof__reserve((void **)&in->key, &in->key_cap, 1 + 2 * l->n_line + 2,
                     sizeof *in->key) < 0 ||
      pprof__reserve((void **)&in->line, &in->line_cap, l->n_line,
                     sizeof *in->line) < 0)
    return -ENOMEM;
  *len = 0;
  in->key[(*len)++] = (int64_t)l->n_line;
  if (l->n_line == 0) {
    in->key[(*len)++] = (int64_t)mapping_id;
    in->key[(*len)++] = (int64_t)rel;
  }
  for (size_t i = 0; i < l->n_line; i++) {
    in->line[i] = l->line[i];
    int rc = map_function(in, l->line[i].function_id, &in->line[i].function_id);
    if (rc < 0)
      return rc;
    in->key[(*len)++] = (int64_t)in->line[i].function_id;
    in->key[(*len)++] = l->line[i].line;
  }
  return 0;
}

int pprof__interner_location(pprof__interner *in, uint64_t src_id,
                             uint64_t *out_id) {
  if (pprof__u64map_get(&in->location, src_id, out_id))
    return 0;
  const pprof_location *l = pprof_find_location(in->src, src_id);
  if (l == NULL)
    return FNP_EPARSE;
  pprof_location nl = {.is_folded = l->is_folded, .n_line = l->n_line};
  uint64_t rel;
  size_t len, idx;
  bool added;
  int rc = relocate(in, l, &nl.mapping_id, &rel, &nl.address);
  if (rc == 0)
    rc = location_key(in, l, nl.mapping_id, rel, &len);
  if (rc == 0)
    rc = pprof__keytab_intern(&in->locations, in->key, len, &idx, &added);
  if (rc < 0)
    return rc;
  nl.id = *out_id = idx + 1;
  nl.line = in->line;
  if (added && (rc = pprof_add_location(in->out, &nl)) < 0)
    return rc;
  return pprof__u64map_put(&in->location, src_id, *out_id);
}
