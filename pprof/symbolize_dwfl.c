/*
 * The symbol source behind pprof_symbolize: maps a profile's mappings to
 * elfutils libdwfl modules, from a live process or from the files on disk
 * (placed at their load bias, checked against their build id). Reading
 * frames out of a module is symbolize_dwarf.c's job; turning them into
 * functions and lines is symbolize.c's. Nothing here edits the profile.
 */
#include "symbolize.h"

#include <ctype.h>
#include <dwarf.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More program headers than any linker writes; bounds the allocation. */
#define MAX_PHDRS 65536

/* The live process: modules come from /proc/PID/maps, files are opened by
 * path (the vdso is read from the process's memory). */
static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

/* Files on disk: we report each ELF ourselves, so find_elf only serves
 * libdwfl's own lookups; separate debuginfo is found by build id or
 * .gnu_debuglink under the default path. */
static const Dwfl_Callbacks file_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

/* What is known about one mapping (same index as p->mapping). Resolved on
 * first use so files no location points into are never opened. */
typedef enum slot_state {
  SLOT_UNTRIED = 0,
  SLOT_READY,
  SLOT_UNUSABLE
} slot_state;

typedef struct slot {
  slot_state state;
  Dwfl_Module *mod;
  uint64_t bias; /* file mode: where the file was reported */
} slot;

struct pprof__symsrc {
  Dwfl *dwfl;
  pprof__cu_cache *cus;
  int pid; /* 0: file mode */
  size_t n_slot;
  slot slot[];
};

/*
 * Load bias. The loader maps each PT_LOAD segment so that link-time address
 * p_vaddr lands at bias + p_vaddr, with the file bytes at p_offset there.
 * Within the segment, file offset o therefore sits at
 *   bias + p_vaddr + (o - p_offset).
 * A mapping says file_offset sits at memory_start, so
 *   bias = memory_start - file_offset + p_offset - p_vaddr.
 * The kernel maps whole pages: a mapping may begin below p_offset, at
 * p_offset rounded down to the page, and memory_start is rounded down by the
 * same amount (p_vaddr and p_offset agree modulo p_align), so the formula
 * holds for any mapping of the segment. The page size of the machine that
 * ran the program is unknown here; p_align bounds it, so a segment holds
 * file offsets from p_offset rounded down to p_align. This is pprof's
 * elfexec.GetBase for ET_DYN (PIE executables and shared libraries alike).
 *
 * Small files can put two segments in one page; then several segments
 * "contain" file_offset and they disagree. Profiles list executable mappings,
 * so the executable segment wins, then the one starting latest. Arithmetic is
 * modulo 2^64 on purpose: a bias may be "negative" (prelinked files).
 */
static bool seg_holds(const pprof__load_seg *s, uint64_t file_offset) {
  uint64_t align = s->align > 1 ? s->align : 1;
  uint64_t first = s->offset - s->offset % align;
  return s->filesz > 0 && first <= file_offset &&
         file_offset < s->offset + s->filesz;
}

int pprof__load_bias(const pprof__load_seg *seg, size_t n,
                     uint64_t memory_start, uint64_t file_offset,
                     uint64_t *bias) {
  const pprof__load_seg *best = NULL;
  for (size_t i = 0; i < n; i++) {
    const pprof__load_seg *s = &seg[i];
    if (!seg_holds(s, file_offset))
      continue;
    if (best == NULL || (s->exec && !best->exec) ||
        (s->exec == best->exec && s->offset > best->offset))
      best = s;
  }
  if (best == NULL)
    return FNP_ENOTFOUND;
  *bias = memory_start - file_offset + best->offset - best->vaddr;
  return 0;
}

/* Reads the PT_LOAD headers of an ET_DYN file and computes its bias. */
static int dyn_bias(Elf *elf, const pprof_mapping *m, uint64_t *bias) {
  size_t phnum;
  if (elf_getphdrnum(elf, &phnum) != 0 || phnum > MAX_PHDRS)
    return FNP_ENOTFOUND;
  pprof__load_seg *seg = calloc(phnum ? phnum : 1, sizeof *seg);
  if (seg == NULL)
    return -ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < phnum; i++) {
    GElf_Phdr mem, *ph = gelf_getphdr(elf, (int)i, &mem);
    if (ph == NULL || ph->p_type != PT_LOAD)
      continue;
    seg[n++] = (pprof__load_seg){.vaddr = ph->p_vaddr,
                                 .offset = ph->p_offset,
                                 .filesz = ph->p_filesz,
                                 .align = ph->p_align,
                                 .exec = (ph->p_flags & PF_X) != 0};
  }
  int rc = pprof__load_bias(seg, n, m->memory_start, m->file_offset, bias);
  free(seg);
  return rc;
}

/* Executables are linked at their run-time addresses (bias 0, and libdwfl
 * ignores the base it is given for them); everything else is positioned. */
static int elf_bias(Elf *elf, const pprof_mapping *m, uint64_t *bias) {
  GElf_Ehdr mem, *eh = gelf_getehdr(elf, &mem);
  if (eh == NULL)
    return FNP_ENOTFOUND;
  if (eh->e_type == ET_EXEC) {
    *bias = 0;
    return 0;
  }
  if (eh->e_type != ET_DYN)
    return FNP_ENOTFOUND;
  return dyn_bias(elf, m, bias);
}

/* True when want (hex, any case) is empty or spells bits exactly. */
static bool build_id_matches(const unsigned char *bits, int len,
                             const char *want) {
  static const char hex[] = "0123456789abcdef";
  if (want[0] == '\0')
    return true;
  if (len <= 0 || strlen(want) != (size_t)len * 2)
    return false;
  for (int i = 0; i < len; i++)
    if (tolower((unsigned char)want[2 * i]) != hex[bits[i] >> 4] ||
        tolower((unsigned char)want[2 * i + 1]) != hex[bits[i] & 0xf])
      return false;
  return true;
}

/* Opens path and checks it is the file the mapping saw (build id) and where
 * it was loaded. Returns the open fd (for libdwfl to consume, so the file we
 * checked is the file we read) or a negative code. */
static int open_checked(const char *path, const pprof_mapping *m,
                        const char *want_id, uint64_t *bias) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOMEM ? -ENOMEM : FNP_ENOTFOUND;
  int rc = FNP_ENOTFOUND;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (elf == NULL || elf_kind(elf) != ELF_K_ELF)
    goto fail;
  const void *bits = NULL;
  ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
  if (!build_id_matches(bits, len > 0 ? (int)len : 0, want_id))
    goto fail;
  rc = elf_bias(elf, m, bias);
  if (rc < 0)
    goto fail;
  elf_end(elf);
  return fd;
fail:
  elf_end(elf);
  close(fd);
  return rc;
}

/* A module reported for an earlier mapping of the same file at the same
 * bias (a file's segments each get a mapping); libdwfl refuses to report
 * one file twice at one place. */
static Dwfl_Module *reported_already(const pprof__symsrc *s,
                                     const pprof_profile *p, size_t idx,
                                     uint64_t bias) {
  for (size_t j = 0; j < s->n_slot; j++)
    if (j != idx && s->slot[j].state == SLOT_READY && s->slot[j].bias == bias &&
        p->mapping[j].filename == p->mapping[idx].filename)
      return s->slot[j].mod;
  return NULL;
}

/* File mode: pseudo mappings ("[vdso]", "[stack]", "") have no file. */
static int file_module(pprof__symsrc *s, const pprof_profile *p, size_t idx) {
  const pprof_mapping *m = &p->mapping[idx];
  const char *path = pprof_str(p, m->filename);
  if (path[0] == '\0' || path[0] == '[')
    return FNP_ENOTFOUND;
  uint64_t bias;
  int fd = open_checked(path, m, pprof_str(p, m->build_id), &bias);
  if (fd < 0)
    return fd;
  Dwfl_Module *mod = reported_already(s, p, idx, bias);
  if (mod != NULL) {
    close(fd);
  } else {
    dwfl_report_begin_add(s->dwfl);
    /* On success libdwfl owns fd; on failure it is still ours. */
    mod = dwfl_report_elf(s->dwfl, path, path, fd, bias, true);
    if (mod == NULL)
      close(fd);
    /* Only fails when a callback does, and we pass none. */
    if (dwfl_report_end(s->dwfl, NULL, NULL) != 0 || mod == NULL)
      return FNP_ENOTFOUND;
  }
  s->slot[idx].mod = mod;
  s->slot[idx].bias = bias;
  return 0;
}

/* Pid mode: the process's module covering the mapping, if its build id
 * agrees (the pid may have been reused, or the library replaced). */
static int proc_module(pprof__symsrc *s, const pprof_profile *p, size_t idx) {
  const pprof_mapping *m = &p->mapping[idx];
  Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, m->memory_start);
  if (mod == NULL)
    return FNP_ENOTFOUND;
  /* The build id is only known once the ELF is loaded. */
  Dwarf_Addr ignored;
  const unsigned char *bits = NULL;
  GElf_Addr vaddr;
  int len = 0;
  if (dwfl_module_getelf(mod, &ignored) != NULL)
    len = dwfl_module_build_id(mod, &bits, &vaddr);
  if (!build_id_matches(bits, len, pprof_str(p, m->build_id)))
    return FNP_ENOTFOUND;
  s->slot[idx].mod = mod;
  return 0;
}

/* The module for mapping idx, resolved once. NULL when unusable. */
static int slot_module(pprof__symsrc *s, const pprof_profile *p, size_t idx,
                       Dwfl_Module **mod) {
  slot *sl = &s->slot[idx];
  if (sl->state == SLOT_UNTRIED) {
    int rc = s->pid > 0 ? proc_module(s, p, idx) : file_module(s, p, idx);
    if (rc < 0 && rc != FNP_ENOTFOUND)
      return rc;
    sl->state = rc == 0 ? SLOT_READY : SLOT_UNUSABLE;
  }
  *mod = sl->state == SLOT_READY ? sl->mod : NULL;
  return 0;
}

/* The module holding l->address. Without a mapping only a live process can
 * say which module that is. */
static int location_module(pprof__symsrc *s, const pprof_profile *p,
                           const pprof_location *l, Dwfl_Module **mod) {
  *mod = NULL;
  const pprof_mapping *m = pprof_find_mapping(p, l->mapping_id);
  if (m == NULL) {
    if (s->pid > 0)
      *mod = dwfl_addrmodule(s->dwfl, l->address);
    return 0;
  }
  int rc = slot_module(s, p, (size_t)(m - p->mapping), mod);
  if (rc < 0 || *mod == NULL)
    return rc;
  /* A location outside its mapping's module is corrupt; say nothing. */
  if (dwfl_addrmodule(s->dwfl, l->address) != *mod)
    *mod = NULL;
  return 0;
}

int pprof__symsrc_lookup(pprof__symsrc *s, const pprof_profile *p,
                         const pprof_location *l, pprof__frames *out) {
  out->n = 0;
  out->dwarf = false;
  Dwfl_Module *mod;
  int rc = location_module(s, p, l, &mod);
  if (rc < 0 || mod == NULL)
    return rc < 0 ? rc : FNP_ENOTFOUND;
  /* Looked up as stored: pprof addresses are return PC - 1, inside the call
   * instruction, so the line and inline scope are the call's own. */
  return pprof__module_frames(s->cus, mod, l->address, out);
}

/* Pid mode reads the module list once, from /proc/PID/maps. */
static int report_process(pprof__symsrc *s, int pid, fnp_error *err) {
  /* Positive: an errno (no such process, no permission); -1: libdwfl. */
  int rc = dwfl_linux_proc_report(s->dwfl, pid);
  if (rc == 0 && dwfl_report_end(s->dwfl, NULL, NULL) == 0)
    return 0;
  return fnp_fail(err, rc > 0 ? -rc : FNP_ENOTFOUND,
                  "symbolize: reading modules of pid %d: %s", pid,
                  rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
}

int pprof__symsrc_open(const pprof_profile *p, int pid, pprof__symsrc **out,
                       fnp_error *err) {
  *out = NULL;
  elf_version(EV_CURRENT);
  if (p->n_mapping > (SIZE_MAX - sizeof(pprof__symsrc)) / sizeof(slot))
    return fnp_fail(err, -ENOMEM, "symbolize: too many mappings");
  pprof__symsrc *s = calloc(1, sizeof *s + p->n_mapping * sizeof(slot));
  if (s == NULL)
    return fnp_fail(err, -ENOMEM, "symbolize: out of memory");
  int rc = 0;
  s->pid = pid;
  s->n_slot = p->n_mapping;
  s->dwfl = dwfl_begin(pid > 0 ? &proc_callbacks : &file_callbacks);
  if (s->dwfl == NULL || pprof__cu_cache_new(&s->cus) < 0) {
    rc = fnp_fail(err, -ENOMEM, "symbolize: out of memory");
    goto fail;
  }
  if (pid > 0 && (rc = report_process(s, pid, err)) < 0)
    goto fail;
  *out = s;
  return 0;
fail:
  pprof__symsrc_close(s);
  return rc;
}

void pprof__symsrc_close(pprof__symsrc *s) {
  if (s == NULL)
    return;
  pprof__cu_cache_free(s->cus);
  dwfl_end(s->dwfl); /* NULL-safe; frees every module and its fd */
  free(s);
}
