/*
 * The malloc-family shims, and nothing else: each one is the fast path (one
 * thread-local countdown subtract and a branch, or for frees one range
 * compare) and forwards to the next allocator in the lookup order (glibc,
 * or jemalloc/tcmalloc preloaded after us). Everything else happens in the
 * noinline slow paths of sample.c.
 *
 * Before agent__init has run, agent__real points at the boot_* functions
 * below: they initialize, and while the initializing thread itself is
 * inside dlsym they serve its calloc from the region's bootstrap pool, which
 * free() recognizes because the pool lies inside the owned region.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Request sizes are masked to 62 bits before the subtract: nothing that big
 * can be allocated, the real allocator fails it, and the countdown can never
 * overflow. */
#define SIZE_MASK (((size_t)1 << 62) - 1)

static inline int64_t size_bytes(size_t n) { return (int64_t)(n & SIZE_MASK); }

/* ---- bootstrap: before the real allocator is known ----------------------- */

static void *boot_malloc(size_t n) {
  if (agent__init() == AGENT_INITIALIZING)
    return agent__region_boot_alloc(n);
  return agent__real.malloc(n);
}

static void boot_free(void *p) {
  /* Before init nothing was allocated through us; owned pointers never get
   * here. A non-NULL pointer means init has run: forward it. */
  if (p && agent__init() != AGENT_INITIALIZING && agent__real.free != boot_free)
    agent__real.free(p);
}

static void *boot_calloc(size_t m, size_t n) {
  size_t t;
  if (__builtin_mul_overflow(m, n, &t))
    return NULL;
  if (agent__init() == AGENT_INITIALIZING)
    return agent__region_boot_alloc(t);
  return agent__real.calloc(m, n);
}

static void *boot_realloc(void *p, size_t n) {
  if (agent__init() == AGENT_INITIALIZING) {
    void *q = agent__region_boot_alloc(n);
    if (q && p) {
      size_t old = agent__region_usable(p);
      memcpy(q, p, old < n ? old : n);
    }
    return q;
  }
  return agent__real.realloc(p, n);
}

static int boot_posix_memalign(void **out, size_t a, size_t n) {
  if (agent__init() == AGENT_INITIALIZING)
    return ENOMEM;
  return agent__real.posix_memalign(out, a, n);
}

#define BOOT_ALIGNED(name)                                                     \
  static void *boot_##name(size_t a, size_t n) {                               \
    if (agent__init() == AGENT_INITIALIZING)                                   \
      return NULL;                                                             \
    return agent__real.name(a, n);                                             \
  }
BOOT_ALIGNED(aligned_alloc)
BOOT_ALIGNED(memalign)
#undef BOOT_ALIGNED

#define BOOT_PAGED(name)                                                       \
  static void *boot_##name(size_t n) {                                         \
    if (agent__init() == AGENT_INITIALIZING)                                   \
      return NULL;                                                             \
    return agent__real.name(n);                                                \
  }
BOOT_PAGED(valloc)
BOOT_PAGED(pvalloc)
#undef BOOT_PAGED

static size_t boot_malloc_usable_size(void *p) {
  if (p == NULL || agent__init() == AGENT_INITIALIZING)
    return 0;
  return agent__real.malloc_usable_size(p);
}

agent__real_fns agent__real = {
#define AGENT_BOOT_INIT(name, ret, params, args) .name = boot_##name,
    AGENT_ALLOC_FUNCS(AGENT_BOOT_INIT)
#undef AGENT_BOOT_INIT
};

/* Fallbacks for functions the next allocator may lack. */
static size_t page_bytes(void) { return (size_t)sysconf(_SC_PAGESIZE); }
static void *fallback_pvalloc(size_t n) {
  size_t pg = page_bytes();
  if (n > SIZE_MAX - pg)
    return NULL;
  return agent__real.memalign(pg, (n + pg - 1) & ~(pg - 1));
}
static void *fallback_valloc(size_t n) {
  return agent__real.memalign(page_bytes(), n);
}

/* glibc's own __libc_free (see the shim below), resolved with the rest;
 * NULL where the C library has none. */
static void (*libc_free_next)(void *);

void agent__resolve_real(void) {
  __atomic_store_n(&libc_free_next,
                   (void (*)(void *))dlsym(RTLD_NEXT, "__libc_free"),
                   __ATOMIC_RELEASE);
  agent__real_fns r;
#define AGENT_RESOLVE(name, ret, params, args)                                 \
  r.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
  AGENT_ALLOC_FUNCS(AGENT_RESOLVE)
#undef AGENT_RESOLVE
  if (!r.valloc)
    r.valloc = fallback_valloc;
  if (!r.pvalloc)
    r.pvalloc = fallback_pvalloc;
    /* Publish field by field; a missing core function leaves the boot one,
     * and init then disables sampling (init.c checks agent__real_ok). */
#define AGENT_PUBLISH(name, ret, params, args)                                 \
  if (r.name)                                                                  \
    __atomic_store_n(&agent__real.name, r.name, __ATOMIC_RELEASE);
  AGENT_ALLOC_FUNCS(AGENT_PUBLISH)
#undef AGENT_PUBLISH
}

bool agent__real_ok(void) {
  return agent__real.malloc != boot_malloc && agent__real.free != boot_free &&
         agent__real.calloc != boot_calloc &&
         agent__real.realloc != boot_realloc &&
         agent__real.memalign != boot_memalign &&
         agent__real.posix_memalign != boot_posix_memalign &&
         agent__real.aligned_alloc != boot_aligned_alloc &&
         agent__real.malloc_usable_size != boot_malloc_usable_size;
}

/* ---- the shims ------------------------------------------------------------
 */

/* Hot path: true when the thread's countdown is still positive after
 * charging n bytes. */
static inline bool charge(size_t n) {
  agent__tls *t = &agent__tl;
  return AGENT_LIKELY((t->countdown -= size_bytes(n)) > 0);
}

FNPROF_EXPORT void *malloc(size_t n) {
  if (charge(n))
    return agent__real.malloc(n);
  return agent__malloc_slow(n);
}

FNPROF_EXPORT void free(void *p) {
  if (AGENT_UNLIKELY(agent__owned(p))) {
    agent__free_owned(p);
    return;
  }
  agent__real.free(p);
}

FNPROF_EXPORT void *calloc(size_t m, size_t n) {
  size_t t;
  if (__builtin_mul_overflow(m, n, &t))
    return agent__real.calloc(m, n); /* fails with ENOMEM as it should */
  if (charge(t))
    return agent__real.calloc(m, n);
  return agent__calloc_slow(m, n);
}

FNPROF_EXPORT void *realloc(void *p, size_t n) {
  if (AGENT_UNLIKELY(agent__owned(p)))
    return agent__realloc_slow(p, n, false);
  if (charge(n))
    return agent__real.realloc(p, n);
  return agent__realloc_slow(p, n, true);
}

FNPROF_EXPORT void *reallocarray(void *p, size_t m, size_t n) {
  size_t t;
  if (__builtin_mul_overflow(m, n, &t)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, t);
}

FNPROF_EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0)
    return EINVAL;
  if (charge(n))
    return agent__real.posix_memalign(out, a, n);
  return agent__posix_memalign_slow(out, a, n);
}

FNPROF_EXPORT void *aligned_alloc(size_t a, size_t n) {
  if (charge(n))
    return agent__real.aligned_alloc(a, n);
  return agent__aligned_slow(AGENT_ALIGNED_ALLOC, a, n);
}

FNPROF_EXPORT void *memalign(size_t a, size_t n) {
  if (charge(n))
    return agent__real.memalign(a, n);
  return agent__aligned_slow(AGENT_MEMALIGN, a, n);
}

FNPROF_EXPORT void *valloc(size_t n) {
  if (charge(n))
    return agent__real.valloc(n);
  return agent__aligned_slow(AGENT_VALLOC, 0, n);
}

FNPROF_EXPORT void *pvalloc(size_t n) {
  if (charge(n))
    return agent__real.pvalloc(n);
  return agent__aligned_slow(AGENT_PVALLOC, 0, n);
}

FNPROF_EXPORT size_t malloc_usable_size(void *p) {
  if (AGENT_UNLIKELY(agent__owned(p)))
    return agent__usable_owned(p);
  return agent__real.malloc_usable_size(p);
}

/* C23 sized frees and jemalloc's sdallocx: an owned block must never reach
 * the allocator underneath, whatever door it leaves by. */
FNPROF_EXPORT void free_sized(void *p, size_t n) {
  (void)n;
  free(p);
}

FNPROF_EXPORT void free_aligned_sized(void *p, size_t a, size_t n) {
  (void)a;
  (void)n;
  free(p);
}

FNPROF_EXPORT void sdallocx(void *p, size_t n, int flags) {
  if (AGENT_UNLIKELY(agent__owned(p))) {
    agent__free_owned(p);
    return;
  }
  static void (*next)(void *, size_t, int);
  if (!next)
    next = (void (*)(void *, size_t, int))dlsym(RTLD_NEXT, "sdallocx");
  if (next)
    next(p, n, flags);
  else
    agent__real.free(p);
}

/* glibc's internal name for free, which some programs and libraries call
 * directly on memory they got from malloc: a sampled block must not reach
 * glibc that way. Everything else goes on to glibc's own __libc_free (not
 * to the allocator underneath us, which may be jemalloc: __libc_free is
 * for glibc's blocks, from __libc_malloc). */
FNPROF_EXPORT void __libc_free(void *p) {
  if (AGENT_UNLIKELY(agent__owned(p))) {
    agent__free_owned(p);
    return;
  }
  void (*next)(void *) = __atomic_load_n(&libc_free_next, __ATOMIC_ACQUIRE);
  if (!next && agent__init() != AGENT_INITIALIZING)
    next = __atomic_load_n(&libc_free_next, __ATOMIC_ACQUIRE);
  if (next)
    next(p);
  else
    agent__real.free(p);
}

/* Not an allocation function, but stacks point into libraries: before one
 * may be unloaded, remember where it was mapped and its build id, so that
 * profiles taken later can still name the module (maps.c). */
FNPROF_EXPORT int dlclose(void *handle) {
  static int (*next)(void *);
  if (!next)
    next = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
  if (atomic_load(&agent__state) == AGENT_READY) {
    agent__guard_enter();
    agent__maps_note_dlclose(handle);
    agent__guard_exit();
  }
  return next ? next(handle) : -1;
}
