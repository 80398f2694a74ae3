/*
 * agent_page.c - the sidecar's side of the invocation page (the layout and
 * its rules are in fnprof/fnprof.h): a memfd handed to the function as
 * FNPROF_PAGE_FD, in which the sidecar writes the running invocation's
 * request id and the agent answers invocation ends.
 *
 * Why: over the control socket a start cost a send here and a wake-up,
 * poll and read in the function's process, and each end's answer a send
 * there and a read here; on this kind of VM each is microseconds of a
 * request of ~100. Through the page a start is a few stores, an answer is
 * read from memory, and only a wait that finds it missing enters the
 * kernel (a futex, woken by the agent when it answers the end awaited).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int sc__page_open(sc_page *pg) {
  memset(pg, 0, sizeof(*pg));
  pg->fd = memfd_create("fnprof-page", MFD_CLOEXEC);
  if (pg->fd < 0)
    return -errno;
  void *m = MAP_FAILED;
  if (ftruncate(pg->fd, sizeof(fnprof_page)) == 0)
    m = mmap(NULL, sizeof(fnprof_page), PROT_READ | PROT_WRITE, MAP_SHARED,
             pg->fd, 0);
  if (m == MAP_FAILED) {
    int rc = -errno;
    close(pg->fd);
    pg->fd = -1;
    return rc;
  }
  pg->p = m; /* zeroed by ftruncate: no label, no ends */
  pg->p->magic = FNPROF_PAGE_MAGIC;
  pg->p->size = sizeof(fnprof_page);
  return 0;
}

void sc__page_close(sc_page *pg) {
  if (pg->p)
    munmap(pg->p, sizeof(fnprof_page));
  if (pg->fd >= 0)
    close(pg->fd);
  pg->p = NULL;
  pg->fd = -1;
}

void sc__page_label(sc_page *pg, const char *id) {
  fnprof_page *p = pg->p;
  uint64_t w[FNPROF_PAGE_LABEL_WORDS] = {0};
  if (p == NULL)
    return;
  size_t n = strnlen(id, sizeof(w) - 1); /* the agent keeps 127 bytes too */
  memcpy(w, id, n);
  uint32_t s = atomic_load_explicit(&p->label_seq, memory_order_relaxed);
  atomic_store_explicit(&p->label_seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  for (int i = 0; i < FNPROF_PAGE_LABEL_WORDS; i++)
    atomic_store_explicit(&p->label[i], w[i], memory_order_relaxed);
  /* Even again; 0 is "never written", so a wrap skips it. */
  atomic_store_explicit(&p->label_seq, s + 2 ? s + 2 : 2, memory_order_release);
}

uint64_t sc__page_next_seq(sc_page *pg) { return ++pg->seq; }

uint64_t sc__page_events(const sc_page *pg) {
  return pg->p
             ? atomic_load_explicit(&pg->p->sample_events, memory_order_acquire)
             : 0;
}

int sc__page_cycles_wanted(const sc_page *pg) {
  return !pg->p ||
         atomic_load_explicit(&pg->p->cycles_wanted, memory_order_relaxed) != 0;
}

int sc__page_answer(const sc_page *pg, uint64_t seq, int64_t *live) {
  const fnprof_page_end *e = &pg->p->ends[seq % FNPROF_PAGE_ENDS];
  uint64_t got = atomic_load_explicit(&e->seq, memory_order_acquire);
  if (got == seq) {
    *live = atomic_load_explicit(&e->live_bytes, memory_order_relaxed);
    /* Reread: the agent may have moved on to seq + FNPROF_PAGE_ENDS. */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) == seq)
      return 1;
  }
  /* Not there: not answered yet, unless the agent is past it (the slot was
   * reused: the answer is lost). */
  uint32_t done = atomic_load_explicit(&pg->p->ends_done, memory_order_acquire);
  return (int32_t)(done - (uint32_t)seq) >= 0 ? -1 : 0;
}

/* Has the agent answered seq (or some later end)? */
static int page_done(const fnprof_page *p, uint64_t seq, uint32_t *done) {
  *done = atomic_load(&p->ends_done);
  return (int32_t)(*done - (uint32_t)seq) >= 0;
}

int sc__page_wait(sc_page *pg, uint64_t seq, int timeout_ms) {
  fnprof_page *p = pg->p;
  uint32_t done;
  if (page_done(p, seq, &done))
    return 0;
  int64_t deadline = sc__mono_ns() + (int64_t)timeout_ms * 1000000;
  int rc = 0;
  /* Before the load of ends_done (fnprof.h); 0 means none, so an end
   * numbered 0 mod 2^32 is awaited as 1 (the next: a wake-up later). */
  atomic_store(&p->wait_seq, (uint32_t)seq ? (uint32_t)seq : 1);
  while (!page_done(p, seq, &done)) {
    int64_t ns = deadline - sc__mono_ns();
    if (ns <= 0) {
      rc = -ETIMEDOUT;
      break;
    }
    struct timespec left = {ns / 1000000000, ns % 1000000000};
    /* Returns at a wake, a change of ends_done since the load, or the
     * timeout; the loop looks again each time. */
    syscall(SYS_futex, &p->ends_done, FUTEX_WAIT, done, &left, NULL, 0);
  }
  atomic_store(&p->wait_seq, 0);
  return rc;
}
