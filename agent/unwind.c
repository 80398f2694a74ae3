/*
 * Stack capture with libunwind's local unwinder (UNW_LOCAL_ONLY): its
 * unw_backtrace fast path walks with a per-thread cache of unwind info
 * (UNW_CACHE_PER_THREAD: no lock between threads). Frames inside
 * libfnprof.so (the shim and the slow path) are skipped by address, so the
 * skip does not depend on what the compiler inlined. Raw return PCs are
 * kept; the profile writer subtracts one (pprof-format.md section 3).
 */
#define UNW_LOCAL_ONLY
#include "internal.h"

#include <libunwind.h>
#include <link.h>
#include <sched.h>

/* libfnprof.so's executable segment, found once at init. */
static uintptr_t self_lo, self_hi;

static int find_self(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  uintptr_t me = (uintptr_t)data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    uintptr_t hi = lo + ph->p_memsz;
    if (me >= lo && me < hi) {
      self_lo = lo;
      self_hi = hi;
      return 1;
    }
  }
  return 0;
}

void agent__unwind_init(void) {
  dl_iterate_phdr(find_self, (void *)(uintptr_t)&agent__unwind_init);
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

bool agent__is_self_pc(uintptr_t pc) {
  return pc - self_lo < self_hi - self_lo;
}

/* Fork gate. libunwind and dl_iterate_phdr take locks of their own that
 * pthread_atfork cannot reach; a fork while another thread holds one would
 * leave it locked forever in the child. So the prepare handler closes the
 * gate and waits until no thread is inside an unwind; samples taken while
 * it is closed get an empty stack (counted under an unknown location)
 * rather than waiting. */
static _Atomic int unwinders;
static _Atomic int fork_gate;

void agent__unwind_fork_prepare(void) {
  atomic_store(&fork_gate, 1);
  while (atomic_load(&unwinders) != 0)
    sched_yield();
}

void agent__unwind_fork_done(bool child) {
  if (child)
    atomic_store(&unwinders, 0);
  atomic_store(&fork_gate, 0);
}

static int unwind_raw(uintptr_t *pcs, int max);

int agent__unwind(uintptr_t *pcs, int max) {
  atomic_fetch_add(&unwinders, 1);
  int n = 0;
  if (!atomic_load(&fork_gate))
    n = unwind_raw(pcs, max);
  atomic_fetch_sub(&unwinders, 1);
  return n;
}

/* Kept out of line so its frame is one of ours, skipped like the rest. */
__attribute__((noinline)) static int unwind_raw(uintptr_t *pcs, int max) {
  /* Room for our own frames on top of what the caller keeps. */
  enum { SELF_FRAMES_MAX = 8 };
  void *buf[AGENT_MAX_DEPTH + SELF_FRAMES_MAX];
  int want = max + SELF_FRAMES_MAX;
  if (want > (int)(sizeof(buf) / sizeof(buf[0])))
    want = (int)(sizeof(buf) / sizeof(buf[0]));
  int n = unw_backtrace(buf, want);
  int i = 0;
  while (i < n && agent__is_self_pc((uintptr_t)buf[i]))
    i++;
  int out = 0;
  for (; i < n && out < max; i++)
    pcs[out++] = (uintptr_t)buf[i];
  return out;
}
