/*
 * Workload (A) of issue 3: malloc/free/realloc with a window of live blocks
 * per thread; sizes mostly 16-256 B, some 1-64 KiB, rare 1 MiB. Prints
 * ns per operation. Also the micro loops the agent's costs are read from:
 *   alloc_bench a THREADS OPS     workload (A)
 *   alloc_bench pair OPS SIZE     malloc(SIZE)+free loop, ns per pair
 * Built without the agent; run.sh preloads it (or a peer) around it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 4096

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long ops_per_thread;

static void *work(void *arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL | 1;
  void **win = calloc(WINDOW, sizeof(void *));
  for (long i = 0; i < ops_per_thread; i++) {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    unsigned k = (unsigned)(r % WINDOW);
    unsigned pick = (unsigned)((r >> 32) % 10000);
    size_t n = pick < 9000   ? 16 + (r >> 16) % 241     /* 90 % */
               : pick < 9990 ? 1024 + (r >> 16) % 64513 /* ~10 % */
                             : (size_t)1 << 20;         /* 0.1 % */
    if ((r >> 48) % 4 == 0) {
      win[k] = realloc(win[k], n);
    } else {
      free(win[k]);
      win[k] = malloc(n);
    }
    if (win[k])
      *(volatile char *)win[k] = 1;
  }
  for (int k = 0; k < WINDOW; k++)
    free(win[k]);
  free(win);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "a") == 0) {
    int threads = atoi(argv[2]);
    ops_per_thread = atol(argv[3]);
    pthread_t th[64];
    double t0 = now_ns();
    for (int i = 0; i < threads && i < 64; i++)
      pthread_create(&th[i], NULL, work, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < threads && i < 64; i++)
      pthread_join(th[i], NULL);
    printf("%.2f\n", (now_ns() - t0) / (double)ops_per_thread);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "pair") == 0) {
    long ops = atol(argv[2]);
    size_t n = (size_t)atol(argv[3]);
    double t0 = now_ns();
    for (long i = 0; i < ops; i++) {
      void *p = malloc(n);
      __asm__ volatile("" : : "r"(p) : "memory");
      free(p);
    }
    printf("%.2f\n", (now_ns() - t0) / (double)ops);
    return 0;
  }
  fprintf(stderr, "usage: %s a THREADS OPS | pair OPS SIZE\n", argv[0]);
  return 2;
}
