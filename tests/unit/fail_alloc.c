/* The --wrap targets behind fail_alloc.h. Single-threaded tests only. */
#include "fail_alloc.h"

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long countdown = -1; /* < 0: never fail */
static bool failed;

void fail_alloc_arm(long n) {
  failed = false;
  countdown = n;
}

bool fail_alloc_disarm(void) {
  countdown = -1;
  return failed;
}

static bool fail_now(void) {
  if (countdown < 0 || countdown-- > 0)
    return false;
  failed = true;
  return true;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t m) {
  return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n) {
  return fail_now() ? NULL : __real_realloc(p, n);
}
