/*
 * Module maps for profiles: the executable lines of /proc/self/maps (Go's
 * rule: inode-0 anonymous pieces skipped except [vdso], " (deleted)"
 * trimmed) with the GNU build id of the object each one belongs to, read
 * from the loaded object's PT_NOTE in memory (dl_iterate_phdr), so it works
 * for deleted files too. Called outside the hot path with the guard held.
 */
#include "internal.h"

#include <fnprof/pprof.h>

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAPS_MAX_BYTES ((size_t)16 << 20)
#define BUILD_ID_MAX 64

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
  return rc;
}
