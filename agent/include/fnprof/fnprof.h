/*
 * fnprof/fnprof.h - the C API of libfnprof.so, the preloaded heap sampler.
 *
 * A runtime that knows it runs under the agent (LD_PRELOAD=libfnprof.so) can
 * call these directly (or find them with dlsym(RTLD_DEFAULT, "fnprof_...")
 * when it does not link against the library). They do what the control
 * socket's requests do (agent/control.c documents the line protocol).
 *
 * Configuration is read once from the environment at start-up:
 *   FNPROF_RATE=N          mean bytes between samples (default 524288;
 *                          1 = every allocation, exact; 0 = sampling off)
 *   FNPROF_DEPTH=N         frames per stack (default 64, at most 128)
 *   FNPROF_CYCLE_PERCENT=N a cycle ends when the bytes allocated since the
 *                          last one reach N % of the live heap (default 100,
 *                          never before 4 MiB)
 *   FNPROF_CYCLE_MS=N      also end a cycle every N ms (default 0 = never)
 *   FNPROF_DIR=D           write profiles to D at exit, on spikes, on request
 *   FNPROF_CONTROL=PATH    control socket path (default
 *                          $TMPDIR-or-/tmp/fnprof-<pid>.sock; "off" = none)
 *   FNPROF_FOLLOW_EXEC=0|1 whether programs this one execs are profiled too
 *                          (default 1: LD_PRELOAD is left as it is)
 *   FNPROF_SPIKE_MIN, FNPROF_SPIKE_DIFF, FNPROF_SPIKE_ABS,
 *   FNPROF_SPIKE_HISTORY, FNPROF_SPIKE_COOLDOWN_MS: the spike rule
 *                          (agent/spike.c documents the defaults)
 *   FNPROF_JIT_MAP_UNLINK=1 remove /tmp/perf-<pid>.map (the JIT runtime's
 *                          names, agent/perfmap.c) at exit
 *   FNPROF_PAGE_FD=N       an inherited descriptor of the invocation page
 *                          (below; fnprof-sidecar sets it)
 * Running any program under the agent needs nothing else:
 *   LD_PRELOAD=/path/libfnprof.so FNPROF_DIR=./prof ./prog args
 *
 * Errors: 0 on success or a negative code (-errno, or FNP_* of
 * fnprof/common.h). Buffers the agent returns are allocated with malloc and
 * freed by the caller with fnprof_free() (or free()). Every function is
 * thread-safe; none may be called from a signal handler.
 */
#ifndef FNPROF_FNPROF_H
#define FNPROF_FNPROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FNPROF_EXPORT __attribute__((visibility("default")))

typedef enum fnprof_kind {
  /* The heap profile as published (`active`): settled data, lagging the
   * live heap by up to two cycles. Default sample type inuse_space. */
  FNPROF_PROFILE_INUSE = 0,
  /* Same data, default sample type alloc_space (Go's "allocs"). */
  FNPROF_PROFILE_ALLOC = 1,
  /* Every future slot settled into active first: the heap as it is now.
   * What the agent writes at exit and what /pre-stop asks for. */
  FNPROF_PROFILE_FINAL = 2,
} fnprof_kind;

/* Ends the current cycle (as the pacer would); the new cycle number goes to
 * *cycle when non-NULL. */
FNPROF_EXPORT int fnprof_end_cycle(uint64_t *cycle);

/* The heap profile as gzip'd pprof protobuf in *data (caller frees),
 * *len bytes. Unsymbolized: mappings carry build ids, and readers (fnprof
 * top/diff, go tool pprof) symbolize from the binaries. */
FNPROF_EXPORT int fnprof_profile(fnprof_kind kind, uint8_t **data, size_t *len);

/* Writes the profile to FNPROF_DIR (FNP_EUSAGE when unset); the file's path
 * goes to path (if non-NULL, path_len bytes, NUL-terminated). */
FNPROF_EXPORT int fnprof_write_profile(fnprof_kind kind, char *path,
                                       size_t path_len);

/* Heap metrics as one JSON object (caller frees *json): sampling settings,
 * counters, the cycle history with exact and estimated live heap and RSS. */
FNPROF_EXPORT int fnprof_metrics_json(char **json, size_t *len);

/* Marks the start/end of an invocation. Samples taken in between carry the
 * request id as a `request` label (at most 1024 distinct ids are kept; later
 * ones share the label "other"). The end also ends a cycle. */
FNPROF_EXPORT int fnprof_invocation_start(const char *request_id);
FNPROF_EXPORT int fnprof_invocation_end(const char *request_id);

/* Pending spike reports as a JSON array (caller frees); they are handed out
 * once. An empty array when there are none. */
FNPROF_EXPORT int fnprof_spikes_json(char **json, size_t *len);

/* Stops sampling and the background thread, writes the final profile when
 * FNPROF_DIR is set, and closes the control socket. Allocation keeps working
 * (blocks are still freed correctly). */
FNPROF_EXPORT int fnprof_shutdown(void);

/* Frees a buffer returned by the functions above. */
FNPROF_EXPORT void fnprof_free(void *p);

#ifndef __cplusplus
#include <stdatomic.h>
/*
 * The invocation page: shared memory through which fnprof-sidecar tells the
 * agent which invocation runs, and the agent answers invocation ends, with
 * no system call and no wake-up of the agent's thread at a start. The
 * sidecar creates it (a memfd of sizeof(fnprof_page) bytes, magic set) and
 * hands it down as FNPROF_PAGE_FD; the descriptor stays open in the
 * function, so programs it execs map the same page.
 *
 * label: the running invocation's request id ("" = none), written by the
 * sidecar under the sequence count label_seq (odd while it writes; 0 = never
 * written: the agent then goes by fnprof_invocation_start). The agent reads
 * it when it takes a sample, so every sample carries the request that was
 * running, with no delay.
 *
 * ends: the control request `invocation-end-page <seq> <id>` ends the
 * invocation as `invocation-end` does, and instead of a socket answer the
 * agent fills ends[seq % FNPROF_PAGE_ENDS] (seq last, release), then sets
 * ends_done to seq's low 32 bits and, when that reaches wait_seq (nonzero:
 * the end the sidecar sleeps for), wakes futex waiters on ends_done.
 *
 * sample_events: samples taken and sampled blocks freed, counted by the
 * agent. An invocation during which it did not move changed the heap by
 * less than the sampling resolution, and the sidecar need not end it,
 * unless cycles_wanted: the agent needs every invocation's cycle (the spike
 * rule filling its history, or a spike's "after" due). Sequence
 * numbers start at 1.
 */
#define FNPROF_PAGE_ENV "FNPROF_PAGE_FD"
#define FNPROF_PAGE_MAGIC 0x3165676170706e66ULL /* "fnppage1" */
#define FNPROF_PAGE_LABEL_WORDS 16              /* 128 bytes, NUL included */
#define FNPROF_PAGE_ENDS 256

typedef struct fnprof_page_end {
  _Atomic uint64_t seq; /* the end this slot answers (0: none yet) */
  _Atomic uint64_t cycle;
  _Atomic int64_t live_bytes; /* exact live heap after it, -1 unknown */
} fnprof_page_end;

typedef struct fnprof_page {
  uint64_t magic;
  uint64_t size; /* sizeof(fnprof_page) as the sidecar built it */
  /* The sidecar's (one cache line each side: no false sharing). */
  _Alignas(64) _Atomic uint32_t label_seq;
  _Atomic uint64_t label[FNPROF_PAGE_LABEL_WORDS];
  _Atomic uint32_t wait_seq; /* low bits of the end awaited, 0 none */
  /* The agent's. */
  _Alignas(64) _Atomic uint64_t sample_events;
  _Atomic uint32_t cycles_wanted;
  _Alignas(64) _Atomic uint32_t ends_done;
  fnprof_page_end ends[FNPROF_PAGE_ENDS];
} fnprof_page;
#endif

#ifdef __cplusplus
}
#endif
#endif
