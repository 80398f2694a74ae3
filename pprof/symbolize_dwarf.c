/*
 * One address in one libdwfl module to its frames: the inline chain and
 * file:line from DWARF where it covers the address, else the symbol table's
 * name. Which module, and whether it is the right file, is decided in
 * symbolize_dwfl.c; profile editing is in symbolize.c.
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdlib.h>

/* Caps the CU range index of one module (48 bytes each): far above any real
 * binary, low enough that corrupt DWARF cannot take the memory. */
#define MAX_CU_RANGES ((size_t)1 << 20)

/*
 * libdw finds an address's CU through .debug_aranges, which clang does not
 * emit by default (libdw 0.191 falls back to the CUs; 0.188 does not). For
 * such modules we index the CUs' own ranges once, sorted for bisection.
 */
typedef struct cu_range {
  Dwarf_Addr lo, hi; /* [lo, hi) in DWARF addresses */
  Dwarf_Die cu;
} cu_range;

typedef struct module_index {
  Dwfl_Module *mod;
  cu_range *range;
  size_t n;
} module_index;

struct pprof__cu_cache {
  module_index *mods;
  size_t n, cap;
};

int pprof__cu_cache_new(pprof__cu_cache **out) {
  *out = calloc(1, sizeof **out);
  return *out != NULL ? 0 : -ENOMEM;
}

void pprof__cu_cache_free(pprof__cu_cache *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++)
    free(c->mods[i].range);
  free(c->mods);
  free(c);
}

static int append_range(module_index *ix, size_t *cap, const cu_range *r) {
  if (ix->n == *cap) {
    if (*cap >= MAX_CU_RANGES)
      return FNP_ETOOBIG;
    size_t ncap = *cap ? *cap * 2 : 64;
    cu_range *grown = realloc(ix->range, ncap * sizeof *grown);
    if (grown == NULL)
      return -ENOMEM;
    ix->range = grown;
    *cap = ncap;
  }
  ix->range[ix->n++] = *r;
  return 0;
}

static int cmp_lo(const void *a, const void *b) {
  const cu_range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Collects the ranges of every compile unit. An index cut short by the
 * cap still serves the CUs it holds. */
static int index_module(Dwfl_Module *mod, module_index *ix) {
  Dwarf_Addr bias;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  Dwarf_CU *unit = NULL;
  Dwarf_Die cu;
  uint8_t type;
  size_t cap = 0;
  int rc = 0;
  while (rc == 0 && dw != NULL &&
         dwarf_get_units(dw, unit, &unit, NULL, &type, &cu, NULL) == 0) {
    if (type != DW_UT_compile)
      continue; /* type and partial units hold no code */
    cu_range r = {.cu = cu};
    Dwarf_Addr base;
    for (ptrdiff_t off = 0;
         rc == 0 && (off = dwarf_ranges(&cu, off, &base, &r.lo, &r.hi)) > 0;)
      rc = append_range(ix, &cap, &r);
  }
  if (rc == -ENOMEM)
    return rc;
  if (ix->n > 0)
    qsort(ix->range, ix->n, sizeof *ix->range, cmp_lo);
  return 0;
}

/* The module's index, built on first use. */
static int module_index_of(pprof__cu_cache *c, Dwfl_Module *mod,
                           const module_index **out) {
  for (size_t i = 0; i < c->n; i++)
    if (c->mods[i].mod == mod) {
      *out = &c->mods[i];
      return 0;
    }
  if (c->n == c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 8;
    module_index *grown = realloc(c->mods, ncap * sizeof *grown);
    if (grown == NULL)
      return -ENOMEM;
    c->mods = grown;
    c->cap = ncap;
  }
  module_index *ix = &c->mods[c->n++];
  *ix = (module_index){.mod = mod};
  *out = ix;
  return index_module(mod, ix);
}

/* The range holding pc: the last one starting at or below it. */
static const cu_range *find_range(const module_index *ix, Dwarf_Addr pc) {
  size_t lo = 0, hi = ix->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ix->range[mid].lo <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || pc >= ix->range[lo - 1].hi)
    return NULL;
  return &ix->range[lo - 1];
}

/* The CU holding addr, and addr in DWARF terms. FNP_ENOTFOUND when no
 * DWARF covers it. */
static int module_cu(pprof__cu_cache *c, Dwfl_Module *mod, Dwarf_Addr addr,
                     Dwarf_Die *cu, Dwarf_Addr *pc) {
  Dwarf_Addr bias;
  Dwarf_Die *found = dwfl_module_addrdie(mod, addr, &bias);
  if (found != NULL) {
    *cu = *found;
    *pc = addr - bias;
    return 0;
  }
  if (dwfl_module_getdwarf(mod, &bias) == NULL)
    return FNP_ENOTFOUND; /* no DWARF at all: nothing to index */
  const module_index *ix;
  int rc = module_index_of(c, mod, &ix);
  if (rc < 0)
    return rc;
  const cu_range *r = find_range(ix, addr - bias);
  if (r == NULL)
    return FNP_ENOTFOUND;
  *cu = r->cu;
  *pc = addr - bias;
  return 0;
}

/* C++ frames are named by their linkage (mangled) name, as the symbol table
 * names them, so a function reads the same with or without DWARF. */
static const char *die_name(Dwarf_Die *die) {
  Dwarf_Attribute mem;
  const char *name =
      dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &mem));
  if (name == NULL)
    name = dwarf_formstring(
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &mem));
  return name != NULL ? name : dwarf_diename(die);
}

/* The call site an inlined subroutine records is the line its caller was
 * executing: that is the caller frame's file:line. */
static void call_site(Dwarf_Die *inlined, Dwarf_Files *files,
                      pprof__frame *caller) {
  Dwarf_Attribute mem;
  Dwarf_Word v;
  if (files != NULL &&
      dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &mem), &v) == 0)
    caller->file = dwarf_filesrc(files, v, NULL, NULL);
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &mem), &v) == 0)
    caller->line = (int64_t)v;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_column, &mem), &v) == 0)
    caller->column = (int64_t)v;
}

/* DIEs that own machine code (and so ranges) and may nest others. */
static bool code_tag(int tag) {
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
         tag == DW_TAG_lexical_block || tag == DW_TAG_try_block ||
         tag == DW_TAG_catch_block;
}

/* DIEs without code that can hold functions (C++ namespaces, classes). */
static bool container_tag(int tag) {
  return tag == DW_TAG_namespace || tag == DW_TAG_class_type ||
         tag == DW_TAG_structure_type || tag == DW_TAG_union_type ||
         tag == DW_TAG_module;
}

/* Nesting bound for containers and code alike: hostile DWARF must not
 * recurse us off the stack. */
#define MAX_DIE_DEPTH 256

/*
 * Appends to chain (outermost first, from index n) the code DIEs under
 * parent whose ranges hold pc, descending only into those and into
 * containers: a pruned walk that skips every other function's subtree.
 * Returns the new length. dwarf_getscopes is not used: past an inlined
 * instance it continues into its abstract origin's parents, not its callers,
 * and recovering the concrete nesting with dwarf_getscopes_die walks the
 * whole CU again, which dominated the cost on large CUs.
 */
static int code_chain(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *chain, int n,
                      int depth) {
  Dwarf_Die child;
  if (depth >= MAX_DIE_DEPTH || n >= PPROF__MAX_FRAMES * 2 ||
      dwarf_child(parent, &child) != 0)
    return n;
  do {
    int tag = dwarf_tag(&child);
    if (code_tag(tag) && dwarf_haspc(&child, pc) == 1) {
      chain[n] = child;
      return code_chain(&child, pc, chain, n + 1, depth + 1);
    }
    if (container_tag(tag)) {
      int found = code_chain(&child, pc, chain, n, depth + 1);
      if (found > n)
        return found;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return n;
}

/* One frame per subprogram or inlined subroutine around pc, innermost
 * first, ending at the out-of-line function. Each frame but the innermost
 * gets its line from the inlined callee it contains; the innermost one's
 * comes from the line table (see line_table). */
static void dwarf_frames(Dwarf_Die *cu, Dwarf_Addr pc, pprof__frames *out) {
  Dwarf_Die chain[PPROF__MAX_FRAMES * 2];
  int n = code_chain(cu, pc, chain, 0, 0);
  if (n == 0)
    return; /* no function covers pc (assembly): the symbol table remains */
  Dwarf_Files *files = NULL;
  if (dwarf_getsrcfiles(cu, &files, NULL) != 0)
    files = NULL;
  pprof__frame next = {0}; /* the call site the next frame is at */
  for (int i = n - 1; i >= 0 && out->n < PPROF__MAX_FRAMES; i--) {
    int tag = dwarf_tag(&chain[i]);
    if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
      continue;
    pprof__frame *f = &out->frame[out->n++];
    *f = next;
    f->name = die_name(&chain[i]);
    int decl;
    if (dwarf_decl_line(&chain[i], &decl) == 0)
      f->start_line = decl;
    if (tag == DW_TAG_subprogram)
      break;
    next = (pprof__frame){0};
    call_site(&chain[i], files, &next);
  }
  out->dwarf = true;
}

/* The innermost frame's file:line: the CU's line table row covering pc. */
static void line_table(Dwarf_Die *cu, Dwarf_Addr pc, pprof__frame *f) {
  Dwarf_Line *row = dwarf_getsrc_die(cu, pc);
  const char *file = row != NULL ? dwarf_linesrc(row, NULL, NULL) : NULL;
  int line = 0, column = 0;
  if (file == NULL || dwarf_lineno(row, &line) != 0)
    return;
  if (dwarf_linecol(row, &column) != 0)
    column = 0;
  f->file = file;
  f->line = line;
  f->column = column;
}

static const char *symbol_name(Dwfl_Module *mod, Dwarf_Addr addr) {
  GElf_Off offset;
  GElf_Sym sym;
  return dwfl_module_addrinfo(mod, addr, &offset, &sym, NULL, NULL, NULL);
}

/* Drops frames nothing could name (artificial or broken DIEs). */
static void drop_unnamed(pprof__frames *out) {
  size_t k = 0;
  for (size_t i = 0; i < out->n; i++)
    if (out->frame[i].name != NULL)
      out->frame[k++] = out->frame[i];
  out->n = k;
}

int pprof__module_frames(pprof__cu_cache *c, Dwfl_Module *mod, uint64_t addr,
                         pprof__frames *out) {
  out->n = 0;
  out->dwarf = false;
  Dwarf_Die cu;
  Dwarf_Addr pc;
  int rc = module_cu(c, mod, addr, &cu, &pc);
  if (rc < 0 && rc != FNP_ENOTFOUND)
    return rc;
  if (rc == 0)
    dwarf_frames(&cu, pc, out);
  /* The symbol table names code DWARF does not cover (or was stripped of),
   * and the outermost frame when its DIE has no name. Asked only then:
   * libdwfl scans the whole table for each address. */
  if (out->n == 0)
    out->frame[out->n++] = (pprof__frame){0};
  if (out->frame[out->n - 1].name == NULL)
    out->frame[out->n - 1].name = symbol_name(mod, addr);
  if (rc == 0)
    line_table(&cu, pc, &out->frame[0]);
  drop_unnamed(out);
  return out->n > 0 ? 0 : FNP_ENOTFOUND;
}
