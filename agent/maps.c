/*
 * Module maps for profiles: the executable lines of /proc/self/maps (Go's
 * rule: inode-0 anonymous pieces skipped except [vdso], " (deleted)"
 * trimmed) with the GNU build id of the object each one belongs to, read
 * from the loaded object's PT_NOTE in memory (dl_iterate_phdr), so it works
 * for deleted files too. Libraries unloaded with dlclose are remembered
 * (agent__maps_note_dlclose) and added when nothing has taken their place.
 * Called outside the hot path with the guard held.
 */
#include "internal.h"

#include <fnprof/pprof.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAPS_MAX_BYTES ((size_t)16 << 20)
#define BUILD_ID_MAX 64
#define RETAINED_MAX 256
#define RETAINED_PATH_MAX 256

/* Executable segments of libraries seen going away (dlclose), so that
 * stacks into an unloaded library keep their module and build id in later
 * profiles. Appended by the dlclose shim, newest last; arena memory,
 * bounded (past RETAINED_MAX new ones are not kept). retained_lock guards
 * both; profile builders copy under it. */
typedef struct retained_map {
  uintptr_t lo, hi, off;
  char path[RETAINED_PATH_MAX];
  char build_id[2 * BUILD_ID_MAX + 1];
} retained_map;

static pthread_mutex_t retained_lock = PTHREAD_MUTEX_INITIALIZER;
static retained_map *retained;
static uint32_t n_retained;

struct build_id_query {
  uintptr_t addr;
  char hex[2 * BUILD_ID_MAX + 1];
};

static void note_build_id(const struct dl_phdr_info *info,
                          const ElfW(Phdr) * ph, char *hex) {
  const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
  const char *end = p + ph->p_memsz;
  while (p + sizeof(ElfW(Nhdr)) <= end) {
    const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
    const char *name = p + sizeof(*n);
    const unsigned char *desc =
        (const unsigned char *)name + ((n->n_namesz + 3) & ~3u);
    const char *next = (const char *)desc + ((n->n_descsz + 3) & ~3u);
    if (next > end)
      return;
    if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
        memcmp(name, "GNU", 4) == 0 && n->n_descsz <= BUILD_ID_MAX) {
      for (unsigned i = 0; i < n->n_descsz; i++)
        snprintf(hex + 2 * i, 3, "%02x", desc[i]);
      return;
    }
    p = next;
  }
}

static int find_build_id(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct build_id_query *q = data;
  bool hit = false;
  for (int i = 0; i < info->dlpi_phnum && !hit; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    hit = ph->p_type == PT_LOAD && q->addr >= lo && q->addr < lo + ph->p_memsz;
  }
  if (!hit)
    return 0;
  for (int i = 0; i < info->dlpi_phnum && !q->hex[0]; i++)
    if (info->dlpi_phdr[i].p_type == PT_NOTE)
      note_build_id(info, &info->dlpi_phdr[i], q->hex);
  return 1;
}

struct retain_query {
  uintptr_t base;
  const char *name;
};

static int retain_segments(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct retain_query *q = data;
  if (info->dlpi_addr != q->base || !info->dlpi_name ||
      strcmp(info->dlpi_name, q->name) != 0)
    return 0;
  char hex[2 * BUILD_ID_MAX + 1] = "";
  for (int i = 0; i < info->dlpi_phnum && !hex[0]; i++)
    if (info->dlpi_phdr[i].p_type == PT_NOTE)
      note_build_id(info, &info->dlpi_phdr[i], hex);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
      continue;
    if (n_retained >= RETAINED_MAX)
      return 1;
    const uintptr_t page = 4096;
    retained_map *r = &retained[n_retained++];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    r->lo = lo & ~(page - 1);
    r->hi = (lo + ph->p_memsz + page - 1) & ~(page - 1);
    r->off = ph->p_offset & ~(page - 1);
    snprintf(r->path, sizeof(r->path), "%s", info->dlpi_name);
    memcpy(r->build_id, hex, sizeof(hex));
  }
  return 1;
}

void agent__maps_note_dlclose(void *handle) {
  struct link_map *lm = NULL;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name ||
      !lm->l_name[0])
    return;
  pthread_mutex_lock(&retained_lock);
  if (!retained)
    retained = agent__arena_alloc(sizeof(*retained) * RETAINED_MAX);
  if (retained) {
    struct retain_query q = {.base = lm->l_addr, .name = lm->l_name};
    dl_iterate_phdr(retain_segments, &q);
  }
  pthread_mutex_unlock(&retained_lock);
}

static bool overlaps_any(const pprof_profile *p, uintptr_t lo, uintptr_t hi) {
  for (size_t i = 0; i < p->n_mapping; i++)
    if (lo < p->mapping[i].memory_limit && p->mapping[i].memory_start < hi)
      return true;
  return false;
}

/* Retained mappings that nothing mapped now overlaps (the library is gone
 * and its range not reused), newest first. */
static int add_retained(pprof_profile *p, uint64_t *id) {
  int rc = 0;
  pthread_mutex_lock(&retained_lock);
  for (uint32_t i = n_retained; i-- > 0 && rc == 0;) {
    const retained_map *r = &retained[i];
    if (overlaps_any(p, r->lo, r->hi))
      continue;
    int64_t fn = pprof_string(p, r->path);
    int64_t bid = pprof_string(p, r->build_id);
    if (fn < 0 || bid < 0) {
      rc = (int)(fn < 0 ? fn : bid);
      break;
    }
    pprof_mapping m = {.id = ++*id,
                       .memory_start = r->lo,
                       .memory_limit = r->hi,
                       .file_offset = r->off,
                       .filename = fn,
                       .build_id = bid};
    rc = pprof_add_mapping(p, &m);
  }
  pthread_mutex_unlock(&retained_lock);
  return rc;
}

static char *read_maps(size_t *len) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 64 << 10, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (n == cap) {
      char *nb = cap < MAPS_MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (buf)
    buf[n] = '\0';
  *len = n;
  return buf;
}

int agent__maps_add(pprof_profile *p) {
  size_t len;
  char *maps = read_maps(&len);
  if (!maps)
    return -1;
  uint64_t id = 0;
  int rc = 0;
  for (char *line = maps, *nl; line && *line && rc == 0; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    unsigned long lo, hi, off, inode;
    char perms[8], dev[16];
    int pos = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev,
               &inode, &pos) < 6 ||
        !strchr(perms, 'x'))
      continue;
    char *path = line + pos;
    char *del = strstr(path, " (deleted)");
    if (del)
      *del = '\0';
    if (inode == 0 && strcmp(path, "[vdso]") != 0)
      continue;
    struct build_id_query q = {.addr = lo};
    dl_iterate_phdr(find_build_id, &q);
    pprof_mapping m = {
        .id = ++id, .memory_start = lo, .memory_limit = hi, .file_offset = off};
    int64_t fn = pprof_string(p, path);
    int64_t bid = pprof_string(p, q.hex);
    if (fn < 0 || bid < 0) {
      rc = (int)(fn < 0 ? fn : bid);
      break;
    }
    m.filename = fn;
    m.build_id = bid;
    rc = pprof_add_mapping(p, &m);
  }
  free(maps);
  if (rc == 0)
    rc = add_retained(p, &id);
  return rc;
}
