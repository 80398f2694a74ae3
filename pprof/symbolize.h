/*
 * pprof/symbolize.h - what the symbolizer's two files share, private to
 * the pprof library: symbolize.c edits the profile (functions, lines, has_*
 * flags, counts) and symbolize_dwfl.c reads ELF and DWARF with elfutils
 * libdwfl. They meet at one lookup: a location in, frames out.
 */
#ifndef FNPROF_PPROF_SYMBOLIZE_H
#define FNPROF_PPROF_SYMBOLIZE_H

#include "internal.h"

/* One source frame. Strings are borrowed from libdw and stay valid until the
 * symbol source is closed. */
typedef struct pprof__frame {
  const char *name; /* never NULL in a returned frame */
  const char *file; /* NULL when unknown */
  int64_t line;     /* 0 when unknown */
  int64_t column;
  int64_t start_line; /* line the function is declared on, 0 unknown */
} pprof__frame;

/* Inline chains deeper than this are cut short; real code stays far below
 * it, and a bound keeps the lookup free of allocation. */
#define PPROF__MAX_FRAMES 64

/* A location's frames, innermost first (pprof's Line order). */
typedef struct pprof__frames {
  pprof__frame frame[PPROF__MAX_FRAMES];
  size_t n;
  bool dwarf; /* DWARF scopes were read, so inline frames are all there */
} pprof__frames;

typedef struct pprof__symsrc pprof__symsrc;
struct Dwfl_Module; /* elfutils' type, kept out of this header */

/* Opens a symbol source for p's mappings: the live process pid's modules
 * when pid > 0, else each mapping's file, opened lazily on first use. The
 * profile's mapping array must not change while the source is open. */
int pprof__symsrc_open(const pprof_profile *p, int pid, pprof__symsrc **out,
                       fnp_error *err) FNP_MUST_CHECK;
/* Fills out with the frames at l->address. FNP_ENOTFOUND when the mapping
 * cannot be used (missing file, build id mismatch, pseudo name) or nothing
 * is known at that address; -ENOMEM on allocation failure. */
int pprof__symsrc_lookup(pprof__symsrc *s, const pprof_profile *p,
                         const pprof_location *l,
                         pprof__frames *out) FNP_MUST_CHECK;
void pprof__symsrc_close(pprof__symsrc *s); /* NULL is a no-op */

/* symbolize_dwarf.c: the frames at addr in one module (innermost first):
 * DWARF's inline chain and file:line where it covers addr, else the symbol
 * table's name. FNP_ENOTFOUND when nothing names addr. cache keeps CU
 * indexes of modules that lack .debug_aranges (one per symbol source). */
typedef struct pprof__cu_cache pprof__cu_cache;
int pprof__cu_cache_new(pprof__cu_cache **out) FNP_MUST_CHECK;
void pprof__cu_cache_free(pprof__cu_cache *c); /* NULL is a no-op */
int pprof__module_frames(pprof__cu_cache *cache, struct Dwfl_Module *mod,
                         uint64_t addr, pprof__frames *out) FNP_MUST_CHECK;

/* A PT_LOAD program header, reduced to what the load bias needs. */
typedef struct pprof__load_seg {
  uint64_t vaddr;
  uint64_t offset;
  uint64_t filesz;
  uint64_t align;
  bool exec;
} pprof__load_seg;

/* The load bias (runtime address minus link-time address) of an ET_DYN file
 * whose bytes at file_offset are mapped at memory_start; see the derivation
 * in symbolize_dwfl.c. FNP_ENOTFOUND when no segment holds file_offset. */
int pprof__load_bias(const pprof__load_seg *seg, size_t n,
                     uint64_t memory_start, uint64_t file_offset,
                     uint64_t *bias) FNP_MUST_CHECK;

#endif
