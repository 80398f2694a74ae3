/*
 * pprof_symbolize: gives locations their lines. Frames come from the symbol
 * source (symbolize_dwfl.c, elfutils); this file turns them into functions
 * (deduplicated by name and file), lines and the mappings' has_* flags. It
 * never reads ELF or DWARF itself.
 */
#include "symbolize.h"

#include <errno.h>
#include <stdlib.h>

/* What a mapping's locations ended up with; the has_* flags are the AND. */
typedef struct mapping_acc {
  size_t n_loc;
  bool functions, filenames, line_numbers, inline_frames;
} mapping_acc;

typedef struct symbolizer {
  pprof_profile *p;
  bool force;
  pprof__symsrc *src;
  pprof__u64map fn_ids; /* fn_key(name, filename) -> function id */
  uint64_t next_fn_id;
  mapping_acc *acc;     /* one per p->mapping, same index */
  pprof__frames frames; /* scratch, too big for the stack */
  size_t resolved, unresolved;
} symbolizer;

/* Exact key for a (name, filename) pair of string indexes. Name is never 0
 * for functions we make, so the key is never the map's empty key. */
static int fn_key(int64_t name, int64_t filename, uint64_t *key) {
  if (name < 0 || filename < 0 || name > UINT32_MAX || filename > UINT32_MAX)
    return FNP_ETOOBIG;
  *key = (uint64_t)name << 32 | (uint64_t)filename;
  return 0;
}

/* Existing functions take part in deduplication (a second pass, or a
 * profile symbolized in parts, reuses them); new ids follow the largest. */
static int index_functions(symbolizer *st) {
  const pprof_profile *p = st->p;
  st->next_fn_id = 1;
  for (size_t i = 0; i < p->n_function; i++) {
    const pprof_function *f = &p->function[i];
    if (f->id >= st->next_fn_id)
      st->next_fn_id = f->id + 1;
    uint64_t key, ignored;
    if (f->name == 0 || fn_key(f->name, f->filename, &key) < 0 ||
        pprof__u64map_get(&st->fn_ids, key, &ignored))
      continue; /* first of equal functions wins */
    if (pprof__u64map_put(&st->fn_ids, key, f->id) < 0)
      return -ENOMEM;
  }
  return 0;
}

/* The id of the function named by frame f, made on first sight. */
static int function_id(symbolizer *st, const pprof__frame *f, uint64_t *id) {
  int64_t name = pprof_string(st->p, f->name);
  int64_t file = f->file != NULL ? pprof_string(st->p, f->file) : 0;
  if (name < 0 || file < 0)
    return (int)(name < 0 ? name : file);
  uint64_t key;
  int rc = fn_key(name, file, &key);
  if (rc < 0 || pprof__u64map_get(&st->fn_ids, key, id))
    return rc;
  if (st->next_fn_id == 0)
    return FNP_ETOOBIG; /* an existing id was UINT64_MAX: none left */
  pprof_function fn = {.id = st->next_fn_id,
                       .name = name,
                       .system_name = name, /* no demangling: they agree */
                       .filename = file,
                       .start_line = f->start_line};
  rc = pprof_add_function(st->p, &fn);
  if (rc < 0 || (rc = pprof__u64map_put(&st->fn_ids, key, fn.id)) < 0)
    return rc;
  st->next_fn_id++;
  *id = fn.id;
  return 0;
}

/* Replaces l's lines with the frames just looked up. */
static int set_frames(symbolizer *st, pprof_location *l) {
  pprof_line line[PPROF__MAX_FRAMES];
  const pprof__frames *fr = &st->frames;
  for (size_t i = 0; i < fr->n; i++) {
    int rc = function_id(st, &fr->frame[i], &line[i].function_id);
    if (rc < 0)
      return rc;
    line[i].line = fr->frame[i].line;
    line[i].column = fr->frame[i].column;
  }
  return pprof_set_lines(st->p, l, line, fr->n);
}

/* Adds what l's final lines carry to its mapping's flags. inline_frames
 * says whether its inline expansion is known to be complete. */
static void accumulate(symbolizer *st, const pprof_location *l,
                       bool inline_frames) {
  const pprof_mapping *m = pprof_find_mapping(st->p, l->mapping_id);
  if (m == NULL)
    return;
  mapping_acc *a = &st->acc[m - st->p->mapping];
  bool functions = l->n_line > 0, filenames = functions, lines = functions;
  for (size_t i = 0; i < l->n_line; i++) {
    const pprof_function *f =
        pprof_find_function(st->p, l->line[i].function_id);
    functions = functions && f != NULL && f->name != 0;
    filenames = filenames && f != NULL && f->filename != 0;
    lines = lines && l->line[i].line > 0;
  }
  a->n_loc++;
  a->functions = a->functions && functions;
  a->filenames = a->filenames && filenames;
  a->line_numbers = a->line_numbers && lines;
  a->inline_frames = a->inline_frames && functions && inline_frames;
}

/* Symbolizes one location unless it has lines already (and !force). A
 * failed lookup keeps whatever lines the location had. */
static int symbolize_location(symbolizer *st, pprof_location *l) {
  const pprof_mapping *m = pprof_find_mapping(st->p, l->mapping_id);
  if (l->n_line > 0 && !st->force) {
    accumulate(st, l, m != NULL && m->has_inline_frames);
    return 0;
  }
  int rc = pprof__symsrc_lookup(st->src, st->p, l, &st->frames);
  if (rc == FNP_ENOTFOUND) {
    st->unresolved++;
    accumulate(st, l, false);
    return 0;
  }
  if (rc < 0 || (rc = set_frames(st, l)) < 0)
    return rc;
  st->resolved++;
  accumulate(st, l, st->frames.dwarf);
  return 0;
}

/* Mappings no location points into keep the flags they had. */
static void apply_flags(symbolizer *st) {
  for (size_t i = 0; i < st->p->n_mapping; i++) {
    const mapping_acc *a = &st->acc[i];
    pprof_mapping *m = &st->p->mapping[i];
    if (a->n_loc == 0)
      continue;
    m->has_functions = a->functions;
    m->has_filenames = a->filenames;
    m->has_line_numbers = a->line_numbers;
    m->has_inline_frames = a->inline_frames;
  }
}

static int symbolizer_init(symbolizer *st, pprof_profile *p,
                           const pprof_symbolize_opts *opts, fnp_error *err) {
  st->p = p;
  st->force = opts->force;
  st->acc = calloc(p->n_mapping ? p->n_mapping : 1, sizeof *st->acc);
  if (st->acc == NULL || index_functions(st) < 0)
    return fnp_fail(err, -ENOMEM, "symbolize: out of memory");
  for (size_t i = 0; i < p->n_mapping; i++)
    st->acc[i] = (mapping_acc){0, true, true, true, true};
  return pprof__symsrc_open(p, opts->pid, &st->src, err);
}

int pprof_symbolize(pprof_profile *p, const pprof_symbolize_opts *opts,
                    size_t *resolved, size_t *unresolved, fnp_error *err) {
  static const pprof_symbolize_opts defaults = {0};
  if (p == NULL)
    return fnp_fail(err, FNP_EUSAGE, "symbolize: no profile");
  symbolizer *st = calloc(1, sizeof *st);
  if (st == NULL)
    return fnp_fail(err, -ENOMEM, "symbolize: out of memory");
  int rc = symbolizer_init(st, p, opts != NULL ? opts : &defaults, err);
  if (rc < 0)
    goto fail;
  for (size_t i = 0; i < p->n_location; i++)
    if ((rc = symbolize_location(st, &p->location[i])) < 0) {
      fnp_fail(err, rc, "symbolize: location %llu: %s",
               (unsigned long long)p->location[i].id, fnp_strerror(rc));
      goto fail;
    }
  apply_flags(st);
  if (resolved != NULL)
    *resolved = st->resolved;
  if (unresolved != NULL)
    *unresolved = st->unresolved;
fail:
  pprof__symsrc_close(st->src);
  pprof__u64map_destroy(&st->fn_ids);
  free(st->acc);
  free(st);
  return rc;
}
