/*
 * The program the symbolizer tests profile. It runs code whose source
 * locations it knows (the compiler's __LINE__, not our symbolizer), records
 * the return address of each recording call, and prints, on stdout:
 *   frame PC N (NAME FILE LINE){N}   expected frames at PC - 1, innermost first
 *   map START END OFFSET PATH        each executable mapping of the process
 *   vdso ADDR NAME                   a function in the vdso (when found)
 *   end
 * Then it waits for stdin to close, so a test can symbolize it by pid.
 * Usage: helper LIBRARY.so
 */
#include "helper.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN 4

static volatile int sink; /* code after each call: no tail calls */

/* Callers of the innermost frame, pushed before recording (inline chains). */
static struct {
  const char *name;
  int line;
} chain[MAX_CHAIN];
static int n_chain;

static void chain_push(const char *name, int line) {
  if (n_chain < MAX_CHAIN)
    chain[n_chain++] = (typeof(chain[0])){name, line};
}

/* __builtin_return_address(0) is the instruction after the call in the
 * recording function; the profile stores it minus one. */
__attribute__((noinline)) static void record(const char *file, const char *name,
                                             int line) {
  uintptr_t pc = (uintptr_t)__builtin_return_address(0);
  printf("frame %" PRIxPTR " %d %s %s %d", pc, 1 + n_chain, name, file, line);
  for (int i = 0; i < n_chain; i++)
    printf(" %s %s %d", chain[i].name, __FILE__, chain[i].line);
  printf("\n");
  n_chain = 0;
}

__attribute__((noinline)) void leaf_a(void) {
  record(__FILE__, "leaf_a", __LINE__);
  sink++;
}

/* Two locations in one function: one pprof function for both. */
__attribute__((noinline)) void twice(void) {
  record(__FILE__, "twice", __LINE__);
  sink++;
  record(__FILE__, "twice", __LINE__);
  sink++;
}

/* outer_c -> inl_mid -> inl_leaf, both inlined: one address, three frames. */
static inline __attribute__((always_inline)) void inl_leaf(int mid_line,
                                                           int outer_line) {
  chain_push("inl_mid", mid_line);
  chain_push("outer_c", outer_line);
  record(__FILE__, "inl_leaf", __LINE__);
  sink++;
}

static inline __attribute__((always_inline)) void inl_mid(int outer_line) {
  inl_leaf(__LINE__, outer_line);
  sink++;
}

__attribute__((noinline)) void outer_c(void) {
  inl_mid(__LINE__);
  sink++;
}

static void print_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long start, end, offset;
    char perms[8];
    int pos = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &start, &end, perms, &offset,
               &pos) != 4 ||
        strchr(perms, 'x') == NULL)
      continue;
    char *path = line + pos + strspn(line + pos, " ");
    path[strcspn(path, "\n")] = '\0';
    printf("map %lx %lx %lx %s\n", start, end, offset, path[0] ? path : "-");
  }
  if (f != NULL)
    fclose(f);
}

/* glibc lists the vdso as a loaded object, so dlsym finds its functions. */
static void print_vdso(void) {
  static const char *const names[] = {"__vdso_clock_gettime",
                                      "__kernel_clock_gettime"};
  void *h = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
  for (size_t i = 0; h != NULL && i < sizeof names / sizeof names[0]; i++) {
    void *fn = dlsym(h, names[i]);
    if (fn != NULL) {
      printf("vdso %" PRIxPTR " %s\n", (uintptr_t)fn, names[i]);
      return;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s LIBRARY.so\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  helper_lib_entry_fn entry =
      lib != NULL ? (helper_lib_entry_fn)dlsym(lib, "lib_entry") : NULL;
  if (entry == NULL) {
    fprintf(stderr, "helper: %s\n", dlerror());
    return 1;
  }
  leaf_a();
  twice();
  outer_c();
  entry(record);
  print_maps();
  print_vdso();
  printf("end\n");
  fflush(stdout);
  while (getchar() != EOF) /* until the test is done with us */
    ;
  return 0;
}
