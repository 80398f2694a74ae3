/*
 * The agent's own memory for its tables (buckets, snapshots): mmap'd chunks
 * carved by a bump pointer, append-only until exit, never the intercepted
 * malloc. Capped (AGENT_ARENA_CAP_BYTES): past it callers drop and count.
 */
#include "internal.h"

#include <sys/mman.h>

#define ARENA_CHUNK_BYTES ((size_t)1 << 20)
#define ARENA_ALIGN 16

/* Guards cur/left/used. Taken on bucket creation only (rare), never on the
 * fast path. */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena_cur;
static size_t arena_left;
static size_t arena_used; /* bytes mapped so far */

void *agent__arena_alloc(size_t size) {
  size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  void *out = NULL;
  pthread_mutex_lock(&arena_lock);
  if (size > arena_left) {
    size_t chunk = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
    chunk = (chunk + 4095) & ~(size_t)4095;
    if (arena_used + chunk > AGENT_ARENA_CAP_BYTES)
      goto done;
    void *m = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      goto done;
    arena_cur = m;
    arena_left = chunk;
    arena_used += chunk;
  }
  out = arena_cur;
  arena_cur += size;
  arena_left -= size;
done:
  pthread_mutex_unlock(&arena_lock);
  return out;
}

size_t agent__arena_used(void) {
  pthread_mutex_lock(&arena_lock);
  size_t u = arena_used;
  pthread_mutex_unlock(&arena_lock);
  return u;
}

void agent__arena_lock_all(void) { pthread_mutex_lock(&arena_lock); }
void agent__arena_unlock_all(void) { pthread_mutex_unlock(&arena_lock); }
void agent__arena_reset_locks(void) { pthread_mutex_init(&arena_lock, NULL); }
