/* A library the dlclose test loads, allocates through, and unloads. */
#include <stdlib.h>

__attribute__((visibility("default"), noinline)) void *dl_alloc(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
