/*
 * The invocation page (fnprof/fnprof.h): shared memory from fnprof-sidecar
 * naming the running invocation, read by the sample path, and the ring in
 * which invocation ends are answered.
 *
 * Why: told over the control socket, a start woke the background thread
 * (poll, read) on every invocation, and the function's thread could take
 * samples before it had read the line, labelled with no request or the
 * previous one. Read from the page at the sample itself, the label is the
 * sidecar's at that moment, and a start costs the agent nothing.
 *
 * The sample path must not block and runs in any context malloc runs in:
 * it reads the label under the sequence count (a few tries; a label being
 * rewritten keeps the previous one), interns it with a trylock (busy: the
 * previous one), and caches (sequence, index) so that only the first sample
 * after a change does either.
 */
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE_READ_TRIES 4

static fnprof_page *page; /* NULL: none handed down, or not ours */
/* The label last interned: sequence << 32 | index. */
static _Atomic uint64_t label_cache;

void agent__page_map(int fd) {
  struct stat st;
  if (fd < 0 || page || fstat(fd, &st) != 0 ||
      st.st_size < (off_t)sizeof(fnprof_page))
    return;
  void *m = mmap(NULL, sizeof(fnprof_page), PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd, 0);
  if (m == MAP_FAILED)
    return;
  fnprof_page *p = m;
  if (p->magic != FNPROF_PAGE_MAGIC || p->size != sizeof(fnprof_page)) {
    munmap(m, sizeof(fnprof_page)); /* another build's layout: not read */
    return;
  }
  page = p;
  agent__sample_events = &p->sample_events; /* region.c counts there */
  agent__page_want_cycles(true); /* the spike rule's history is empty */
}

void agent__page_want_cycles(bool want) {
  if (page)
    atomic_store_explicit(&page->cycles_wanted, want, memory_order_relaxed);
}

bool agent__page_on(void) { return page != NULL; }

/* Copies the label as of one even sequence count; false when the sidecar
 * was writing it every time we looked. */
static bool label_read(uint32_t *seq, char *id) {
  uint64_t w[FNPROF_PAGE_LABEL_WORDS];
  for (int t = 0; t < PAGE_READ_TRIES; t++) {
    uint32_t s = atomic_load_explicit(&page->label_seq, memory_order_acquire);
    if (s & 1)
      continue;
    for (int i = 0; i < FNPROF_PAGE_LABEL_WORDS; i++)
      w[i] = atomic_load_explicit(&page->label[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&page->label_seq, memory_order_relaxed) != s)
      continue;
    memcpy(id, w, sizeof(w));
    id[sizeof(w) - 1] = '\0';
    *seq = s;
    return true;
  }
  return false;
}

uint32_t agent__current_req(void) {
  uint32_t s =
      page ? atomic_load_explicit(&page->label_seq, memory_order_relaxed) : 0;
  if (s == 0) /* no page, or the sidecar has not named one yet */
    return atomic_load_explicit(&agent__cur_req, memory_order_relaxed);
  uint64_t c = atomic_load_explicit(&label_cache, memory_order_relaxed);
  if ((uint32_t)(c >> 32) == s)
    return (uint32_t)c;
  char id[FNPROF_PAGE_LABEL_WORDS * 8];
  if (!label_read(&s, id))
    return (uint32_t)c;
  uint32_t idx = 0;
  if (id[0] && !agent__req_intern_try(id, &idx))
    return (uint32_t)c; /* the table is busy: the previous label */
  atomic_store_explicit(&label_cache, (uint64_t)s << 32 | idx,
                        memory_order_relaxed);
  return idx;
}

void agent__page_end_done(uint64_t seq, uint64_t cycle, int64_t live) {
  if (!page || seq == 0)
    return;
  fnprof_page_end *e = &page->ends[seq % FNPROF_PAGE_ENDS];
  atomic_store_explicit(&e->cycle, cycle, memory_order_relaxed);
  atomic_store_explicit(&e->live_bytes, live, memory_order_relaxed);
  atomic_store_explicit(&e->seq, seq, memory_order_release);
  /* Sequentially consistent against the sidecar's store of wait_seq and
   * its load of ends_done: either it sees this end, or we see it waiting.
   * Only the end it waits for wakes it: a batch of ends is one wake-up. */
  atomic_store(&page->ends_done, (uint32_t)seq);
  uint32_t w = atomic_load(&page->wait_seq);
  if (w != 0 && (int32_t)((uint32_t)seq - w) >= 0)
    syscall(SYS_futex, &page->ends_done, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
