/*
 * Names for JIT-compiled code, from the perf map a runtime writes about
 * itself: /tmp/perf-<pid>.map, one "START SIZE NAME" line (hex, hex, text)
 * per compiled function, the convention of Linux perf that V8 (node
 * --perf-basic-prof), the JVM's perf agents, .NET and CPython 3.12's -X
 * perf follow. The unwinder already walks through such code (it keeps
 * frame pointers); without these names its frames are bare addresses in
 * anonymous memory, and the function a user wrote — a JavaScript
 * function, say — is exactly the frame that is missing from a spike
 * report. Read only when a report or a profile is made (rare), never on
 * the sampling path; the agent's own memory (guard held by the callers).
 *
 * Code can be freed and its address reused for another function: the map
 * then has two lines for one address, and the later line is the live one.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A busy node process writes a few MiB; past this the map is not read. */
#define PERFMAP_MAX_BYTES ((size_t)64 << 20)

typedef struct perfmap_ent {
  uintptr_t start, end;
  uint32_t name_off, line; /* name: text + name_off, to the newline */
} perfmap_ent;

static int by_start_then_line(const void *a, const void *b) {
  const perfmap_ent *x = a, *y = b;
  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* Parses one "START SIZE NAME" line at p (the text ends in a NUL, so
 * strtoull cannot run past it); *name is set to NAME's first byte. */
static bool parse_line(const char *p, const char *end, perfmap_ent *e,
                       const char **name) {
  char *q;
  unsigned long long start = strtoull(p, &q, 16);
  if (q == p || q >= end || *q != ' ')
    return false;
  p = q + 1;
  unsigned long long size = strtoull(p, &q, 16);
  if (q == p || q + 1 >= end || *q != ' ' || size == 0 || start + size < start)
    return false;
  e->start = (uintptr_t)start;
  e->end = (uintptr_t)(start + size);
  *name = q + 1;
  return true;
}

void agent__perfmap_close(agent__perfmap *m) {
  free(m->text);
  free(m->ent);
  memset(m, 0, sizeof(*m));
}

int agent__perfmap_open_path(agent__perfmap *m, const char *path) {
  memset(m, 0, sizeof(*m));
  uint8_t *data;
  size_t len;
  if (fnp_read_file(path, PERFMAP_MAX_BYTES, &data, &len, NULL) != 0)
    return -1; /* no map: not a JIT runtime, or it was not asked to write */
  char *text = realloc(data, len + 1);
  if (!text) {
    free(data);
    return -1;
  }
  text[len] = '\0';
  m->text = text;
  m->len = len;
  size_t cap = 0;
  uint32_t line = 0;
  for (size_t i = 0; i < len; line++) {
    const char *p = text + i;
    const char *nl = memchr(p, '\n', len - i);
    const char *end = nl ? nl : text + len;
    perfmap_ent e;
    const char *name;
    if (parse_line(p, end, &e, &name) && len <= UINT32_MAX) {
      e.name_off = (uint32_t)(name - text);
      e.line = line;
      if (m->n == cap) {
        size_t ncap = cap ? cap * 2 : 1024;
        perfmap_ent *g = realloc(m->ent, ncap * sizeof(*g));
        if (!g)
          break; /* what was parsed so far still names frames */
        m->ent = g;
        cap = ncap;
      }
      m->ent[m->n++] = e;
    }
    i = (size_t)(end - text) + 1;
  }
  if (m->n == 0) {
    agent__perfmap_close(m);
    return -1;
  }
  qsort(m->ent, m->n, sizeof(*m->ent), by_start_then_line);
  return 0;
}

int agent__perfmap_open(agent__perfmap *m, pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)pid);
  return agent__perfmap_open_path(m, path);
}

bool agent__perfmap_find(const agent__perfmap *m, uintptr_t addr, char *buf,
                         size_t len) {
  if (m->n == 0 || len == 0)
    return false;
  /* The last entry starting at or below addr; among entries with the same
   * start the sort put the latest line last. */
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->ent[mid].start <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0 || addr >= m->ent[lo - 1].end)
    return false;
  const char *name = m->text + m->ent[lo - 1].name_off;
  const char *stop = memchr(name, '\n', m->len - m->ent[lo - 1].name_off);
  size_t n = stop ? (size_t)(stop - name) : m->len - m->ent[lo - 1].name_off;
  if (n >= len)
    n = len - 1;
  memcpy(buf, name, n);
  buf[n] = '\0';
  return n > 0;
}
