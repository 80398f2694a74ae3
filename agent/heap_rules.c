/*
 * heap_rules.c - two rules about the exact live heap, kept apart from
 * cycle.c and spike.c (which need the whole agent) so that unit tests
 * reach them:
 *
 * When mallinfo2 may run. It walks every free chunk in every arena, each
 * arena locked while it does: 1.5 us on a small heap, 2.5 ms with 50k free
 * chunks and 100 ms with 500k (measured). Past MALLINFO_CHEAP_NS the next
 * call waits MALLINFO_SPACING times its cost (1 % of the time at most).
 * The cost counted is the time the call took, but no more than its walk
 * explains (MALLINFO_BASE_NS plus MALLINFO_CHUNK_NS a free chunk, about
 * what was measured): on a loaded machine a call on a small heap that was
 * preempted took milliseconds, and the cycles after it fell back on the
 * sampled estimate for a hundred times that, for no heap reason.
 *
 * Which heap the spike rule compares. Its history holds one kind of
 * number: once the allocator has told an exact heap, a cycle without one
 * (mallinfo2 spaced out) is left out rather than averaged in as an
 * estimate. The sampled estimate of a 12 MiB heap can be off by a third;
 * mixed in, it made a steady heap look like a 50 % spike under a loaded CI.
 */
#include "internal.h"

#define MALLINFO_CHEAP_NS ((int64_t)20000)
#define MALLINFO_SPACING 100
#define MALLINFO_BASE_NS ((int64_t)2000)
#define MALLINFO_CHUNK_NS ((int64_t)60)

int64_t agent__mallinfo_wait_ns(int64_t took_ns, uint64_t free_chunks) {
  int64_t walk = MALLINFO_BASE_NS + (int64_t)free_chunks * MALLINFO_CHUNK_NS;
  int64_t cost = took_ns < walk ? took_ns : walk;
  return cost < MALLINFO_CHEAP_NS ? 0 : cost * MALLINFO_SPACING;
}

int agent__spike_heap(const agent__cycle_rec *rec, bool *seen_exact,
                      int64_t *cur) {
  if (rec->exact_live_bytes >= 0) {
    *seen_exact = true;
    *cur = rec->exact_live_bytes;
    return 0;
  }
  *cur = rec->est_live_bytes;
  return *seen_exact ? -1 : 0;
}
