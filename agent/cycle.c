/*
 * Cycles: when they end and what each end records, and the background
 * thread that ends them. A cycle ends when the (estimated) bytes allocated
 * since the last one reach FNPROF_CYCLE_PERCENT of the (estimated) live
 * heap, never before AGENT_MIN_CYCLE_BYTES (the pacer, as GOGC); every
 * FNPROF_CYCLE_MS; and on request (API, control socket, invocation end).
 * The slow path only notices that pacing is due and wakes the thread
 * (eventfd); the thread advances the cycle, reads mallinfo2 and
 * /proc/self/statm, runs the spike detector and serves the control socket.
 * Its signals are blocked, and it never holds a lock the hot path takes.
 */
#include "internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Background thread state; bg_lock guards start/stop, the fds are written
 * only with it held and read by the thread. */
static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t bg_thread;
static _Atomic int bg_state; /* 0 none, 1 running, 2 stopped for good */
static _Atomic int bg_stop;
static int wake_fd = -1;
static _Atomic int pace_pending;
static _Atomic uint64_t alloc_at_cycle_start;
static _Atomic int64_t last_cycle_ns; /* CLOCK_MONOTONIC of the last end */

/* Paced cycles are at least this far apart. A small heap churned fast
 * would otherwise end hundreds of cycles a second, and each end walks
 * every bucket and calls mallinfo2, which holds glibc's arena locks while
 * it walks the bins: contention the application feels. 50 ms still gives
 * 20 cycles a second, far more than a spike needs. */
#define PACE_MIN_INTERVAL_NS ((int64_t)50 * 1000000)

/* Cycle history ring, under agent__cycle_lock. */
static agent__cycle_rec hist[AGENT_CYCLE_HISTORY];
static uint64_t hist_n;
static int glibc_underneath = -1; /* mallinfo2 means something */

/* /proc/self/statm, kept open: reread with one pread per cycle end instead
 * of open, fstat, read and close (most of an invocation-end cycle's cost
 * before). Under agent__cycle_lock; reopened after fork, since the file
 * names the pid that opened it. */
static int statm_fd = -1;
/* Invocation ends read it at most this often (-1 in between): at thousands
 * of invocations a second the read was a system call per request in the
 * function's process, and the sidecar reads the function's peak itself. */
#define RSS_INVOCATION_MIN_NS ((int64_t)10 * 1000000)
static int64_t rss_read_ns; /* CLOCK_MONOTONIC of the last read */

/* now: CLOCK_MONOTONIC, read once by the cycle end for all its uses. */
static int64_t read_rss(int64_t now) {
  rss_read_ns = now;
  if (statm_fd < 0)
    statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  char buf[128];
  ssize_t n = statm_fd >= 0 ? pread(statm_fd, buf, sizeof buf - 1, 0) : -1;
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char *end;
  (void)strtol(buf, &end, 10); /* size */
  long res = strtol(end, &end, 10);
  return res > 0 ? (int64_t)res * sysconf(_SC_PAGESIZE) : -1;
}

/*
 * mallinfo2 walks every free chunk in every arena, each arena locked while
 * it does: 1.5 us on a small heap, 2.5 ms with 50k free chunks and 100 ms
 * with 500k (measured), all of it a stall for the program's allocations in
 * that arena, and a cycle ends at every invocation. So it runs freely only
 * while it is cheap (agent__mallinfo_wait_ns, heap_rules.c), and cycles
 * in between record -1: readers fall back on the sampled estimate.
 */
static int64_t mallinfo_next_ns; /* under agent__cycle_lock */

static int64_t exact_live(int64_t now) {
  if (glibc_underneath < 0) {
    Dl_info di;
    glibc_underneath = dladdr((void *)agent__real.malloc, &di) &&
                       di.dli_fname && strstr(di.dli_fname, "libc.so");
  }
  int64_t owned = atomic_load(&agent__st.region_live_bytes);
  if (!glibc_underneath)
    return -1; /* jemalloc/tcmalloc below us: glibc's arenas are empty */
  if (now < mallinfo_next_ns)
    return -1;
  struct mallinfo2 mi = mallinfo2();
  int64_t wait = agent__mallinfo_wait_ns(agent__now_ns(CLOCK_MONOTONIC) - now,
                                         mi.ordblks + mi.smblks);
  mallinfo_next_ns = wait > 0 ? now + wait : 0;
  return (int64_t)(mi.uordblks + mi.hblkhd) + owned;
}

static uint64_t end_cycle(const char *reason, bool exact, const char *request) {
  agent__cycle_rec rec;
  pthread_mutex_lock(&agent__cycle_lock);
  uint64_t c = agent__cycle_advance_locked();
  uint64_t a = atomic_load(&agent__st.est_alloc_bytes);
  rec.cycle = c;
  rec.time_ns = agent__now_ns(CLOCK_REALTIME);
  rec.alloc_bytes = a - atomic_exchange(&alloc_at_cycle_start, a);
  rec.est_live_bytes = atomic_load(&agent__st.est_live_bytes);
  int64_t now = exact ? agent__now_ns(CLOCK_MONOTONIC) : 0;
  rec.exact_live_bytes = exact ? exact_live(now) : -1;
  bool rss_due = request == NULL || now - rss_read_ns >= RSS_INVOCATION_MIN_NS;
  rec.rss_bytes = exact && rss_due ? read_rss(now) : -1;
  rec.reason = reason;
  snprintf(rec.request, sizeof(rec.request), "%s", request ? request : "");
  /* Freed sampled spans may stay resident (region.c): 16 MiB, plus the
   * larger of 1 % of the heap and the bytes of live sampled blocks. The
   * latter is what an allocator keeps anyway: had those blocks not been
   * sampled, glibc would hold their freed chunks for reuse just the same. */
  int64_t heap =
      rec.exact_live_bytes >= 0 ? rec.exact_live_bytes : rec.est_live_bytes;
  int64_t owned = atomic_load(&agent__st.region_live_bytes);
  int64_t extra = heap / 100 > owned ? heap / 100 : owned;
  agent__region_set_dirty_cap(((size_t)16 << 20) +
                              (extra > 0 ? (size_t)extra : 0));
  hist[hist_n % AGENT_CYCLE_HISTORY] = rec;
  hist_n++;
  pthread_mutex_unlock(&agent__cycle_lock);
  atomic_store(&last_cycle_ns, agent__now_ns(CLOCK_MONOTONIC));
  atomic_store(&pace_pending, 0);
  agent__spike_on_cycle(&rec);
  return c;
}

uint64_t agent__end_cycle(const char *reason) {
  agent__guard_enter();
  uint64_t c = end_cycle(reason, true, NULL);
  agent__guard_exit();
  return c;
}

uint64_t agent__end_invocation_cycle(const char *request_id) {
  agent__guard_enter();
  uint64_t c = end_cycle("invocation", true, request_id);
  agent__guard_exit();
  return c;
}

size_t agent__cycle_history(agent__cycle_rec *out, size_t n) {
  pthread_mutex_lock(&agent__cycle_lock);
  uint64_t have = hist_n < AGENT_CYCLE_HISTORY ? hist_n : AGENT_CYCLE_HISTORY;
  if (n > have)
    n = (size_t)have;
  for (size_t i = 0; i < n; i++)
    out[i] = hist[(hist_n - n + i) % AGENT_CYCLE_HISTORY];
  pthread_mutex_unlock(&agent__cycle_lock);
  return n;
}

/* Have the bytes allocated since the cycle began reached the pacer's goal? */
static bool pace_goal_reached(void) {
  uint64_t a =
      atomic_load_explicit(&agent__st.est_alloc_bytes, memory_order_relaxed) -
      atomic_load_explicit(&alloc_at_cycle_start, memory_order_relaxed);
  int64_t live =
      atomic_load_explicit(&agent__st.est_live_bytes, memory_order_relaxed);
  int64_t goal = live > 0 ? live / 100 * agent__cfg.cycle_percent : 0;
  if (goal < AGENT_MIN_CYCLE_BYTES)
    goal = AGENT_MIN_CYCLE_BYTES;
  return (int64_t)a >= goal;
}

/* Called from the sampling slow path: no clock read, no system call unless
 * the goal was just reached, and then one eventfd write. The background
 * thread keeps the cycles PACE_MIN_INTERVAL_NS apart (a clock read per
 * sample while a cycle was too recent was ~6 % of a sample's cost). */
void agent__pace_check(void) {
  if (agent__cfg.cycle_percent <= 0 ||
      atomic_load_explicit(&pace_pending, memory_order_relaxed) ||
      !pace_goal_reached() || atomic_exchange(&pace_pending, 1))
    return;
  if (atomic_load(&bg_state) == 1 && wake_fd >= 0) {
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof(one)) == sizeof(one))
      return;
  }
  /* No thread to hand it to: end the cycle here, without the exact
   * numbers (mallinfo2 and /proc belong to the background thread), unless
   * the last one is too recent. */
  if (agent__now_ns(CLOCK_MONOTONIC) - atomic_load(&last_cycle_ns) <
      PACE_MIN_INTERVAL_NS) {
    atomic_store(&pace_pending, 0);
    return;
  }
  end_cycle("pace", false, NULL);
}

/* Milliseconds until `at` (CLOCK_MONOTONIC ns), for poll; 0 when past. */
static int ms_until(int64_t at) {
  int64_t left = at - agent__now_ns(CLOCK_MONOTONIC);
  return left <= 0 ? 0 : (int)(left / 1000000 + 1);
}

static void *bg_main(void *arg) {
  (void)arg;
  agent__guard_enter(); /* everything this thread allocates is ours */
  agent__control_sweep();
  int64_t period_ns = agent__cfg.cycle_ms * 1000000;
  int64_t next = agent__now_ns(CLOCK_MONOTONIC) + period_ns;
  int64_t pace_due = 0; /* when a pending paced cycle may end; 0: none */
  while (!atomic_load(&bg_stop)) {
    struct pollfd pf[16] = {{.fd = wake_fd, .events = POLLIN}};
    int nfds = 1 + agent__control_pollfds(pf + 1, 15);
    int timeout = -1;
    if (period_ns > 0)
      timeout = ms_until(next);
    if (pace_due && (timeout < 0 || ms_until(pace_due) < timeout))
      timeout = ms_until(pace_due);
    int n = poll(pf, (nfds_t)nfds, timeout);
    if (atomic_load(&bg_stop))
      break;
    if (n > 0 && (pf[0].revents & POLLIN)) {
      uint64_t v;
      if (read(wake_fd, &v, sizeof(v)) < 0)
        v = 0;
      if (atomic_load(&pace_pending) && !pace_due)
        pace_due = atomic_load(&last_cycle_ns) + PACE_MIN_INTERVAL_NS;
    }
    if (pace_due && agent__now_ns(CLOCK_MONOTONIC) >= pace_due) {
      pace_due = 0;
      /* Another cycle (an invocation's end) may have come in between. */
      if (atomic_load(&pace_pending) && pace_goal_reached())
        end_cycle("pace", true, NULL);
      atomic_store(&pace_pending, 0);
    }
    if (period_ns > 0 && agent__now_ns(CLOCK_MONOTONIC) >= next) {
      end_cycle("time", true, NULL);
      next = agent__now_ns(CLOCK_MONOTONIC) + period_ns;
    }
    if (n > 0)
      agent__control_serve(pf + 1, nfds - 1);
  }
  agent__guard_exit();
  return NULL;
}

/* Starts the thread (and the control socket) once per process; called with
 * the guard held, from the constructor or from the slow path after fork. */
void agent__thread_ensure(void) {
  if (AGENT_LIKELY(atomic_load_explicit(&bg_state, memory_order_acquire)))
    return;
  if (pthread_mutex_trylock(&bg_lock) != 0)
    return;
  if (atomic_load(&bg_state) == 0) {
    atomic_store(&bg_state, 1); /* one attempt; failure leaves us threadless */
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (agent__cfg.control)
      (void)agent__control_open(); /* failure: counted in metrics */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (wake_fd < 0 || pthread_create(&bg_thread, NULL, bg_main, NULL) != 0) {
      atomic_store(&bg_state, 2);
      if (wake_fd >= 0)
        close(wake_fd);
      wake_fd = -1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_mutex_unlock(&bg_lock);
}

void agent__thread_stop(void) {
  pthread_mutex_lock(&bg_lock);
  if (atomic_load(&bg_state) == 1 && pthread_equal(pthread_self(), bg_thread)) {
    atomic_store(&bg_stop, 1); /* "shutdown" over the socket: just leave */
  } else if (atomic_load(&bg_state) == 1 && wake_fd >= 0) {
    atomic_store(&bg_stop, 1);
    uint64_t one = 1;
    if (write(wake_fd, &one, sizeof(one)) == sizeof(one)) {
      /* Exit paths must not hang: give the thread a second, then leave it. */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_timedjoin_np(bg_thread, NULL, &ts);
    }
  }
  atomic_store(&bg_state, 2);
  pthread_mutex_unlock(&bg_lock);
}

void agent__thread_after_fork_child(void) {
  pthread_mutex_init(&bg_lock, NULL);
  if (statm_fd >= 0)
    close(statm_fd); /* the parent's statm */
  statm_fd = -1;
  if (wake_fd >= 0)
    close(wake_fd);
  wake_fd = -1;
  agent__control_close(false); /* the parent's path: not ours to unlink */
  atomic_store(&bg_stop, 0);
  atomic_store(&pace_pending, 0);
  if (atomic_load(&bg_state) == 1)
    atomic_store(&bg_state, 0); /* restarted lazily by the next sample */
}
