/*
 * The owned region: the address range where every sampled block lives, so
 * that free() tells a sampled block from any other with one shift and one
 * compare (agent__owned in internal.h) instead of probing a table.
 *
 * Layout. 64 GiB of address space, aligned to 64 GiB, reserved PROT_NONE
 * (no memory, no commit charge). Its first AGENT_BOOT_BYTES are the
 * bootstrap pool that serves dlsym's calloc before the real allocator is
 * known. The rest is handed out in page spans from a bump pointer, made
 * read-write on first use:
 *   - small slots (up to SMALL_MAX_BYTES including header and alignment
 *     slack) come from per-size-class slabs with free lists; slabs are kept
 *     for reuse by their class, so resident overhead is bounded by one
 *     partly used slab per class (~2.7 MiB worst case over 42 classes);
 *   - larger blocks get their own span, rounded up to a span class and
 *     reused whole by the next request of that class (or of up to four
 *     classes below, when that class has no resident span); freed spans
 *     stay resident up to a cap (the RSS budget), beyond it their memory
 *     is returned (MADV_DONTNEED) and only the address range is kept; a
 *     request reuses a resident span before a returned one.
 * Every block has a 32-byte header (agent__block_hdr) just below the user
 * pointer: bucket, requested size, allocation cycle, offset back to the slot
 * start (for aligned blocks) and slot capacity (for malloc_usable_size and
 * realloc). One mutex guards the allocator; only sampled allocations and
 * frees of sampled blocks take it, and it is held for list and bump-pointer
 * updates only: the madvise that returns a freed span's pages runs after
 * it is released (held, its TLB shootdown stalled the other threads'
 * samples; perf showed region_lock as most of the futex waits of workload
 * (A) at 2 threads). Only mprotect of fresh address space, when the region
 * grows, still runs under it. Per-class locks or per-thread slot caches
 * were not needed: the list updates themselves are a few nanoseconds at
 * one sample per ~110 operations per thread. Exhaustion makes
 * agent__region_alloc return NULL and the caller drops the sample (counted),
 * never the allocation.
 *
 * Leaves to others: what to record (sample.c), whether to sample (the
 * countdown).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define REGION_BYTES ((uintptr_t)1 << AGENT_REGION_SHIFT)
#define PAGE_BYTES ((size_t)4096)
#define AGENT_BOOT_BYTES ((size_t)256 << 10)
#define SMALL_MAX_BYTES ((size_t)32 << 10)
#define SLAB_MIN_BYTES ((size_t)64 << 10)
#define SLAB_MIN_SLOTS 8
#define MAX_CLASSES 64

uintptr_t agent__region_key = UINTPTR_MAX;
agent__stats agent__st; /* mostly written here: see owned_stats_add */

/* Everything below is guarded by region_lock, except base (written once at
 * init before any owned block exists) and the boot pool (init thread only). */
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;
/* This thread holds (or waits for) region_lock; see defer_free. */
static __thread volatile uint32_t in_region
    __attribute__((tls_model("initial-exec")));
static void region_enter(void);
static void region_leave(void);
static uintptr_t region_base;
static uintptr_t region_top; /* bump pointer for new spans */
static uintptr_t region_end;
static size_t boot_used;
static uint64_t resident_bytes; /* slots handed out and not freed */

typedef struct free_slot {
  struct free_slot *next;
} free_slot;

typedef struct free_span {
  struct free_span *next;
  size_t bytes;
  bool dirty; /* pages still resident (not returned with MADV_DONTNEED) */
} free_span;

static size_t class_size[MAX_CLASSES];
static int n_classes;
static free_slot *class_free[MAX_CLASSES];
static uintptr_t class_bump[MAX_CLASSES]; /* next unused slot in the slab */
static uintptr_t class_bump_end[MAX_CLASSES];

/* Slot classes: 16-byte steps up to 256, then four per doubling (at most
 * 25 % internal waste), up to SMALL_MAX_BYTES. */
static void classes_init(void) {
  int n = 0;
  for (size_t s = 48; s <= 256; s += 16)
    class_size[n++] = s;
  for (size_t base = 256; base < SMALL_MAX_BYTES; base *= 2)
    for (int k = 1; k <= 4; k++)
      class_size[n++] = base + base / 4 * (size_t)k;
  n_classes = n;
}

static int class_of(size_t slot) {
  for (int i = 0; i < n_classes; i++)
    if (class_size[i] >= slot)
      return i;
  return -1;
}

int agent__region_init(void) {
  /* Reserve twice the size and keep the aligned middle. */
  size_t want = (size_t)REGION_BYTES * 2;
  void *m = mmap(NULL, want, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return -errno;
  uintptr_t start = (uintptr_t)m;
  uintptr_t base = (start + REGION_BYTES - 1) & ~(REGION_BYTES - 1);
  if (base > start)
    munmap(m, base - start);
  uintptr_t tail = base + REGION_BYTES;
  if (start + want > tail)
    munmap((void *)tail, start + want - tail);
  if (mprotect((void *)base, AGENT_BOOT_BYTES, PROT_READ | PROT_WRITE) != 0) {
    int e = errno;
    munmap((void *)base, REGION_BYTES);
    return -e;
  }
  classes_init();
  region_base = base;
  region_top = base + AGENT_BOOT_BYTES;
  region_end = base + REGION_BYTES;
  __atomic_store_n(&agent__region_key, base >> AGENT_REGION_SHIFT,
                   __ATOMIC_RELEASE);
  return 0;
}

bool agent__region_is_boot(const void *p) {
  return (uintptr_t)p - region_base < AGENT_BOOT_BYTES;
}

/* Places the user pointer in a slot and writes the header. */
static void *place(uintptr_t slot, size_t capacity, size_t size, size_t align) {
  uintptr_t u = (slot + AGENT_HDR_BYTES + align - 1) & ~(uintptr_t)(align - 1);
  agent__block_hdr *h = (agent__block_hdr *)(u - AGENT_HDR_BYTES);
  h->bucket = NULL;
  h->size = size;
  h->cycle = 0;
  h->offset = (uint32_t)(u - slot);
  h->capacity = capacity;
  return (void *)u;
}

/* Slot bytes needed for size at align: header plus worst-case padding. */
static size_t slot_need(size_t size, size_t align, bool *overflow) {
  size_t pad = align > 16 ? align : 16;
  size_t need = size + AGENT_HDR_BYTES + pad - 16;
  *overflow = need < size;
  return need;
}

void *agent__region_boot_alloc(size_t size) {
  bool ovf;
  size_t need = slot_need(size, 16, &ovf);
  need = (need + 15) & ~(size_t)15;
  if (ovf || region_base == 0 || need > AGENT_BOOT_BYTES - boot_used)
    return NULL;
  uintptr_t slot = region_base + boot_used;
  boot_used += need;
  return place(slot, need, size, 16); /* mmap'd memory is already zero */
}

/* Freed spans keep their pages (no madvise) up to dirty_cap bytes in
 * total, so a program that frees and reallocates sampled large blocks does
 * not pay a madvise, and its TLB shootdown on every CPU, each time
 * (jemalloc's dirty pages, without the decay). cycle.c sets the cap at
 * each cycle end from the heap and the live sampled bytes. */
#define DIRTY_MIN_BYTES ((size_t)16 << 20)
static size_t dirty_bytes;
static size_t dirty_cap = DIRTY_MIN_BYTES;

/* Span classes: exact page counts up to 16 pages, then four classes per
 * doubling. A span is only ever reused whole, by a request of its class
 * (at most 25 % larger than needed; the untouched tail costs no memory) or
 * of a class just below (SPAN_BORROW_CLASSES), and never split or merged:
 * no fragmentation, so freed spans are reused rather than left behind for
 * fresh address space. Address space used is bounded by the peak of live
 * sampled blocks per class. */
#define SPAN_EXACT_PAGES 16
#define SPAN_CLASSES (SPAN_EXACT_PAGES + 4 * 26)
/* Per class, the freed spans whose pages are resident (dirty) and those
 * whose pages went back (clean). A request takes a dirty one first: it
 * costs no page faults, and it lowers dirty_bytes so the next free can
 * stay resident. (With one LIFO list the span madvised last was reused
 * first, so at the cap every free of a hot class paid a madvise and every
 * reuse the refaults: ~1100 madvises of 1.25 MiB per run of (A) at 2
 * threads.) */
static free_span *span_bin[SPAN_CLASSES];
static free_span *span_clean[SPAN_CLASSES];
/* A request whose class has no resident span takes one from up to this
 * many classes above (at most ~2x its pages: four classes per doubling,
 * or 4 pages among the exact ones) before a returned or a fresh one. Each
 * class otherwise kept its own high-water mark of resident spans: in
 * workload (A) at 2 threads the 36-64 KiB classes held ~5 MiB resident
 * in ~115 freed spans, 13-17 per class, against ~5 live per class. The
 * borrowed span goes back to its own class when freed; its extra pages
 * were resident already. */
#define SPAN_BORROW_CLASSES 4

static int span_class(size_t pages, size_t *class_pages) {
  if (pages <= SPAN_EXACT_PAGES) {
    *class_pages = pages;
    return (int)pages - 1;
  }
  int lg = 63 - __builtin_clzll(pages - 1); /* 2^lg < pages <= 2^(lg+1) */
  size_t step = ((size_t)1 << lg) / 4;
  size_t cp = (pages + step - 1) / step * step;
  *class_pages = cp;
  /* Classes of [2^lg, 2^(lg+1)] are 2^lg + k*step, k = 1..4. */
  return SPAN_EXACT_PAGES + (lg - 4) * 4 + (int)(cp / step - 4) - 1;
}

void agent__region_set_dirty_cap(size_t bytes) {
  region_enter();
  dirty_cap = bytes < DIRTY_MIN_BYTES ? DIRTY_MIN_BYTES : bytes;
  region_leave();
}

/* A span of at least *bytes_io (page multiple), read-write; *bytes_io is
 * set to its real length. Under region_lock. */
static uintptr_t span_get(size_t *bytes_io) {
  size_t cp;
  int c = span_class(*bytes_io / PAGE_BYTES, &cp);
  size_t bytes = cp * PAGE_BYTES;
  if (c < 0 || c >= SPAN_CLASSES)
    return 0;
  /* A resident span of this class or of one up to SPAN_BORROW_CLASSES
   * above: see there. */
  for (int k = c; k <= c + SPAN_BORROW_CLASSES && k < SPAN_CLASSES; k++) {
    free_span *s = span_bin[k];
    if (s) {
      span_bin[k] = s->next;
      dirty_bytes -= s->bytes;
      *bytes_io = s->bytes;
      return (uintptr_t)s;
    }
  }
  *bytes_io = bytes;
  free_span *s = span_clean[c];
  if (s) {
    span_clean[c] = s->next;
    return (uintptr_t)s;
  }
  if (bytes > region_end - region_top)
    return 0;
  uintptr_t n = region_top;
  if (mprotect((void *)n, bytes, PROT_READ | PROT_WRITE) != 0)
    return 0;
  region_top += bytes;
  return n;
}

/* Puts a free span in its bin. Under region_lock. */
static void span_push(uintptr_t s, size_t bytes, bool dirty) {
  size_t cp;
  int c = span_class(bytes / PAGE_BYTES, &cp);
  free_span *f = (free_span *)s;
  f->bytes = bytes;
  f->dirty = dirty;
  free_span **list = dirty ? &span_bin[c] : &span_clean[c];
  f->next = *list;
  *list = f;
}

/*
 * A free that arrives while its own thread holds region_lock comes from a
 * signal handler that interrupted the agent (programs do free in handlers,
 * and glibc's tcache mostly lets them). Taking the lock again would
 * deadlock the thread against itself, so the slot goes on a lock-free
 * stack instead and the next holder of the lock puts it in its bin. The
 * thread's in_region flag is set before it waits for the lock and cleared
 * after it lets go, so no window is left where a handler would block.
 */
static _Atomic(free_span *) deferred;
/* What deferred frees take off the statistics, until a holder folds it in
 * (the deferring thread cannot update them: see owned_stats_add). */
static _Atomic int64_t deferred_frees, deferred_weight, deferred_bytes;

static void defer_free(uintptr_t slot, size_t cap) {
  free_span *f = (free_span *)slot; /* below the header's capacity field */
  f->bytes = cap;
  f->next = atomic_load_explicit(&deferred, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(
      &deferred, &f->next, f, memory_order_release, memory_order_relaxed))
    ;
}

/* Puts a freed slot in its bin; false when it is a span over the dirty
 * cap, which the caller returns to the kernel. Under region_lock. */
static bool put_back(uintptr_t slot, size_t cap, bool may_return) {
  resident_bytes -= cap;
  if (cap <= SMALL_MAX_BYTES) {
    free_slot *f = (free_slot *)slot;
    f->next = class_free[class_of(cap)];
    class_free[class_of(cap)] = f;
    return true;
  }
  if (may_return && dirty_bytes + cap > dirty_cap)
    return false;
  dirty_bytes += cap;
  span_push(slot, cap, true);
  return true;
}

/*
 * The owned blocks' statistics (agent__st: samples, sampled frees, the
 * estimated live and allocated bytes, the owned bytes) change only under
 * region_lock, which every sampled allocation and free takes anyway, so
 * they are updated with plain loads and stores: no lock-prefixed add per
 * field (six per sampled allocation and free together were a good part of
 * the per-sample cost). Readers elsewhere load them relaxed.
 */
/* Where sample events are also counted for another process to see (the
 * invocation page's sample_events, page.c), NULL when nowhere. */
_Atomic uint64_t *agent__sample_events;

static void owned_stats_add(int64_t samples, int64_t frees, int64_t weight,
                            int64_t bytes) {
  agent__stats *st = &agent__st;
#define STAT_ADD(f, d)                                                         \
  atomic_store_explicit(                                                       \
      &st->f, atomic_load_explicit(&st->f, memory_order_relaxed) + (d),        \
      memory_order_relaxed)
  STAT_ADD(samples, (uint64_t)samples);
  STAT_ADD(sampled_frees, (uint64_t)frees);
  STAT_ADD(est_alloc_bytes, (uint64_t)(samples ? weight : 0));
  STAT_ADD(est_live_bytes, samples ? weight : -weight);
  STAT_ADD(region_live_bytes, samples ? bytes : -bytes);
#undef STAT_ADD
  _Atomic uint64_t *events = agent__sample_events;
  if (events && samples + frees > 0)
    atomic_fetch_add_explicit(events, (uint64_t)(samples + frees),
                              memory_order_relaxed);
}

static void region_enter(void) {
  in_region = 1;
  atomic_signal_fence(memory_order_seq_cst);
  pthread_mutex_lock(&region_lock);
  if (atomic_load_explicit(&deferred, memory_order_relaxed) == NULL)
    return;
  owned_stats_add(
      0, atomic_exchange_explicit(&deferred_frees, 0, memory_order_relaxed),
      atomic_exchange_explicit(&deferred_weight, 0, memory_order_relaxed),
      atomic_exchange_explicit(&deferred_bytes, 0, memory_order_relaxed));
  /* Kept dirty even over the cap: madvise is not for under the lock, and
   * deferred frees are rare. */
  free_span *f =
      atomic_exchange_explicit(&deferred, NULL, memory_order_acquire);
  while (f) {
    free_span *next = f->next;
    put_back((uintptr_t)f, f->bytes, false);
    f = next;
  }
}

static void region_leave(void) {
  pthread_mutex_unlock(&region_lock);
  atomic_signal_fence(memory_order_seq_cst);
  in_region = 0;
}

void *agent__region_alloc(size_t size, size_t align, int64_t weight) {
  if (align < 16)
    align = 16;
  bool ovf;
  size_t need = slot_need(size, align, &ovf);
  if (ovf || need > (size_t)REGION_BYTES / 4)
    return NULL;
  void *out = NULL;
  if (in_region)
    return NULL; /* a signal handler's malloc: served by the real one */
  region_enter();
  if (region_base == 0)
    goto done;
  int c = need <= SMALL_MAX_BYTES ? class_of(need) : -1;
  if (c >= 0) {
    size_t cs = class_size[c];
    uintptr_t slot;
    if (class_free[c]) {
      slot = (uintptr_t)class_free[c];
      class_free[c] = class_free[c]->next;
    } else {
      if (class_bump_end[c] - class_bump[c] < cs) {
        size_t slab = cs * SLAB_MIN_SLOTS;
        if (slab < SLAB_MIN_BYTES)
          slab = SLAB_MIN_BYTES;
        slab = (slab + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
        uintptr_t s = span_get(&slab);
        if (s == 0)
          goto done;
        class_bump[c] = s;
        class_bump_end[c] = s + slab;
      }
      slot = class_bump[c];
      class_bump[c] += cs;
    }
    out = place(slot, cs, size, align);
    resident_bytes += cs;
  } else {
    size_t bytes = (need + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
    uintptr_t s = span_get(&bytes); /* may hand out a longer span */
    if (s == 0)
      goto done;
    out = place(s, bytes, size, align);
    resident_bytes += bytes;
  }
done:
  if (out)
    owned_stats_add(1, 0, weight, (int64_t)size);
  region_leave();
  return out;
}

void agent__region_free(void *p) {
  if (agent__region_is_boot(p))
    return; /* bootstrap memory is a few bytes for dlsym; kept */
  agent__block_hdr *h = agent__hdr(p);
  uintptr_t slot = (uintptr_t)p - h->offset;
  size_t cap = h->capacity;
  if (cap == 0)
    return;        /* not a live block: a double free (agent__region_live) */
  h->capacity = 0; /* the free-list link never overlaps this field */
  /* A sampled block (with a bucket) leaves the statistics; read now, as
   * the free-list link overwrites the header's first fields. */
  int64_t frees = h->bucket != NULL, bytes = frees ? (int64_t)h->size : 0;
  int64_t weight =
      frees ? (int64_t)agent__sample_weight(h->size, agent__cfg.rate) : 0;
  if (in_region) {
    atomic_fetch_add_explicit(&deferred_frees, frees, memory_order_relaxed);
    atomic_fetch_add_explicit(&deferred_weight, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&deferred_bytes, bytes, memory_order_relaxed);
    defer_free(slot, cap);
    return;
  }
  region_enter();
  owned_stats_add(0, frees, weight, bytes);
  bool keep = put_back(slot, cap, true);
  region_leave();
  if (keep)
    return;
  /* Over the dirty cap: give the pages back (the first holds the link).
   * Outside the lock: madvise with its TLB shootdown takes tens of us, and
   * held under region_lock it made every other thread's sampled alloc and
   * free wait (workload (A) at 2 threads). The span is in no bin
   * meanwhile, so nothing else can touch it; a fork in between leaves it
   * out of the child's bins (address range only, no memory). */
  madvise((void *)(slot + PAGE_BYTES), cap - PAGE_BYTES, MADV_DONTNEED);
  region_enter();
  span_push(slot, cap, false);
  region_leave();
}

bool agent__region_live(void *p) {
  return agent__region_is_boot(p) || agent__hdr(p)->capacity != 0;
}

size_t agent__region_usable(void *p) {
  agent__block_hdr *h = agent__hdr(p);
  return h->capacity - h->offset;
}

uint64_t agent__region_resident(void) {
  region_enter();
  uint64_t r = resident_bytes;
  region_leave();
  return r;
}

void agent__region_lock_all(void) { region_enter(); }
void agent__region_unlock_all(void) { region_leave(); }
void agent__region_reset_locks(void) {
  pthread_mutex_init(&region_lock, NULL);
  in_region = 0; /* the forking thread held it */
}
