/*
 * The control socket and the invocation (request id) table.
 *
 * Socket: unix stream, mode 0600, at FNPROF_CONTROL or, by default,
 * /tmp/fnprof-<pid>.sock (a forked child given an explicit path uses
 * "<path>.<pid>": the parent keeps its own). Served by the background
 * thread: up to 8 connections open at once, each read when it has data (a
 * client may keep one open and write requests whenever it likes), answers
 * written with a 2 s timeout.
 *
 * Protocol: the client writes one request per line (at most 256 bytes,
 * "\n"-terminated); the agent answers each with a header line and a payload:
 *     ok <n>\n<n bytes>        or        err <n>\n<n bytes of message>
 * Requests:
 *     end-cycle                 payload: the new cycle number (decimal)
 *     profile inuse|alloc|final payload: gzip'd pprof heap profile
 *     metrics                   payload: JSON object (fnprof_metrics_json)
 *     invocation-start <id>     payload: empty
 *     invocation-start-quiet <id>
 *                               the same, not answered at all (nothing to
 *                               read: a client that keeps one connection
 *                               and never needs the answer saves a write
 *                               here and a read and a wake-up on its side)
 *     invocation-end <id>       payload: "<cycle> <live_bytes>": the cycle
 *                               number the end advanced to and the live
 *                               heap recorded then: exact (allocator in-use
 *                               + owned blocks) when glibc tells it
 *                               cheaply, else the sampled estimate (agents
 *                               before the estimate answered -1 there)
 *     spikes                    payload: JSON array of pending reports
 *     shutdown                  payload: empty; the socket closes after it
 *     invocation-end-page <seq> <id>
 *                               the same as invocation-end, answered in
 *                               the invocation page's ring instead
 *                               (fnprof/fnprof.h), not on the socket:
 *                               served only when the page is mapped
 *     features                  payload: the optional requests this agent
 *                               serves, space-separated
 *                               ("invocation-start-quiet", and
 *                               "invocation-end-page" with a page); an
 *                               older agent answers err, so a client asks
 *                               before it relies on one
 * Several requests may share a connection, and may be written at once
 * (pipelined): each is answered in order. The connection ends at EOF, or
 * at a line longer than the limit.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_LINE_MAX 256
/* Bytes read from a connection at once: a batch of lines (the sidecar
 * sends its ends of overlapping invocations together). */
#define CTL_CONN_BUF 4096
#define CTL_IO_TIMEOUT_S 2
#define REQ_TABLE_MAX 1024
#define REQ_ID_MAX 128
/* Connections the kernel queues while the thread serves one: every
 * invocation's sidecar job connects ahead of time (hooks/agent_ctl.c), so
 * a burst of them must not find the backlog full. */
#define CTL_BACKLOG SOMAXCONN
/* Cycle records searched for the invocation end's own: it is the newest
 * unless API callers on other threads ended cycles since. */
#define CTL_END_SEARCH 8
/* Requests answered with nothing at all (see the protocol above). */
#define CTL_QUIET_START "invocation-start-quiet "
#define CTL_PAGE_END "invocation-end-page "
#define CTL_FEATURES "invocation-start-quiet"
#define CTL_FEATURES_PAGE CTL_FEATURES " invocation-end-page"

/* Serializes requests (API and socket) against each other. */
pthread_mutex_t agent__ctl_lock = PTHREAD_MUTEX_INITIALIZER;

/* Owned by the background thread (opened and closed by thread start/stop
 * and fork, all with bg_lock held in cycle.c). */
static int ctl_fd = -1;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* Request ids: index 1..REQ_TABLE_MAX, append-only, arena memory; names
 * are published before the count (release). 0 = no invocation. req_slots
 * (open addressing, 2x the table) finds an id without comparing it to
 * every name: once the table is full, each new invocation looked at all
 * 1023 names before it settled for "other". */
#define REQ_SLOTS (2 * REQ_TABLE_MAX)
static char (*req_names)[REQ_ID_MAX];
static uint16_t *req_slots; /* 0 empty, else index */
static _Atomic uint32_t req_n;
static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;

const char *agent__req_name(uint32_t idx) {
  if (idx == 0 || idx > atomic_load(&req_n))
    return "";
  return idx == REQ_TABLE_MAX ? "other" : req_names[idx - 1];
}

static uint32_t req_hash(const char *id) { /* FNV-1a over the kept prefix */
  uint32_t h = 2166136261u;
  for (size_t i = 0; id[i] && i < REQ_ID_MAX - 1; i++)
    h = (h ^ (unsigned char)id[i]) * 16777619u;
  return h;
}

/* With req_lock held. */
static uint32_t req_intern_locked(const char *id) {
  if (!req_names) {
    req_names = agent__arena_alloc(sizeof(*req_names) * REQ_TABLE_MAX);
    req_slots = agent__arena_alloc(sizeof(*req_slots) * REQ_SLOTS);
  }
  uint32_t n = atomic_load(&req_n), found = 0;
  uint32_t s = req_hash(id) % REQ_SLOTS;
  while (req_names && req_slots && req_slots[s] && !found) {
    if (strncmp(req_names[req_slots[s] - 1], id, REQ_ID_MAX - 1) == 0)
      found = req_slots[s];
    s = (s + 1) % REQ_SLOTS;
  }
  if (!found && req_names && req_slots) {
    if (n < REQ_TABLE_MAX - 1) {
      snprintf(req_names[n], REQ_ID_MAX, "%s", id);
      found = n + 1;
      req_slots[s] = (uint16_t)found; /* s: the empty slot the probe ended at */
      atomic_store_explicit(&req_n, found, memory_order_release);
    } else {
      /* Bounded: every later id shares the last slot, "other". */
      atomic_store_explicit(&req_n, REQ_TABLE_MAX, memory_order_release);
      found = REQ_TABLE_MAX;
    }
  }
  return found;
}

uint32_t agent__req_intern(const char *id) {
  pthread_mutex_lock(&req_lock);
  uint32_t found = req_intern_locked(id);
  pthread_mutex_unlock(&req_lock);
  return found;
}

bool agent__req_intern_try(const char *id, uint32_t *idx) {
  if (pthread_mutex_trylock(&req_lock) != 0)
    return false;
  *idx = req_intern_locked(id);
  pthread_mutex_unlock(&req_lock);
  return true;
}

/* The last agent__control_open failure (0 = none), for metrics. */
static int ctl_error;
int agent__control_error(void) { return ctl_error; }

int agent__control_open(void) {
  if (ctl_fd >= 0)
    return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  static pid_t first_pid; /* the process that owns the configured path */
  if (first_pid == 0)
    first_pid = agent__pid();
  int n;
  if (agent__cfg.control_path[0] && agent__pid() == first_pid)
    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
                 agent__cfg.control_path);
  else if (agent__cfg.control_path[0])
    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d",
                 agent__cfg.control_path, (int)agent__pid());
  else
    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/fnprof-%d.sock",
                 (int)agent__pid());
  if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
    return ctl_error = -ENAMETOOLONG;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ctl_error = -errno;
  unlink(sa.sun_path); /* a stale socket from a dead process */
  /* 0600 before anyone can connect (listen comes after), and without
   * following a symlink someone may have put in its place since bind. */
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      fchmodat(AT_FDCWD, sa.sun_path, 0600, AT_SYMLINK_NOFOLLOW) != 0 ||
      listen(fd, CTL_BACKLOG) != 0) {
    int e = errno;
    close(fd);
    return ctl_error = -e;
  }
  ctl_error = 0;
  memcpy(ctl_path, sa.sun_path, sizeof(ctl_path));
  ctl_fd = fd;
  return 0;
}

/*
 * Sockets at the default path outlive a process that was killed (no
 * destructor ran), and /tmp fills with them. The background thread of each
 * new agent sweeps them once, off the program's path: a /tmp/fnprof-<pid>.sock
 * of our user that refuses connections has no agent behind it and goes.
 * Refusal, not a dead pid, decides: a process in another pid namespace
 * sharing /tmp may be alive under a pid that looks dead from here.
 */
#define SWEEP_MAX_ENTRIES 4096

static bool stale_socket(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
    return false;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  if (n >= sizeof(sa.sun_path))
    return false;
  memcpy(sa.sun_path, path, n + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  bool refused = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
                 errno == ECONNREFUSED;
  close(fd);
  return refused;
}

void agent__control_sweep(void) {
  if (agent__cfg.control_path[0])
    return; /* a path someone chose is theirs to manage */
  DIR *d = opendir("/tmp");
  if (d == NULL)
    return;
  struct dirent *e;
  char mine[32], path[300];
  snprintf(mine, sizeof(mine), "fnprof-%d.sock", (int)agent__pid());
  for (int n = 0; n < SWEEP_MAX_ENTRIES && (e = readdir(d)) != NULL; n++) {
    const char *p = e->d_name;
    if (strncmp(p, "fnprof-", 7) != 0 || strcmp(p, mine) == 0)
      continue;
    size_t digits = strspn(p + 7, "0123456789");
    if (digits == 0 || strcmp(p + 7 + digits, ".sock") != 0)
      continue;
    snprintf(path, sizeof(path), "/tmp/%s", p);
    if (stale_socket(path))
      unlink(path);
  }
  closedir(d);
}

static void conns_close_all(void); /* below, with the connections */

void agent__control_close(bool unlink_path) {
  conns_close_all();
  if (ctl_fd < 0)
    return;
  close(ctl_fd);
  ctl_fd = -1;
  if (unlink_path && ctl_path[0])
    unlink(ctl_path);
  ctl_path[0] = '\0';
}

const char *agent__control_path(void) { return ctl_path; }

static char *dup_text(const char *s, size_t *len) {
  size_t n = strlen(s);
  char *o = malloc(n + 1);
  if (o)
    memcpy(o, s, n + 1);
  *len = o ? n : 0;
  return o;
}

/* The cycle the last invocation end advanced to and the exact live heap
 * it recorded (-1 unknown). The end and this read are not under one lock:
 * the record is found by its reason, so a cycle another API caller ended
 * in between is skipped (the pacer cannot: its thread is serving us). */
static uint64_t invocation_end_rec(int64_t *live) {
  agent__cycle_rec h[CTL_END_SEARCH];
  size_t n = agent__cycle_history(h, CTL_END_SEARCH);
  while (n > 0 && strcmp(h[n - 1].reason, "invocation") != 0)
    n--;
  /* Exact when glibc could tell at a bearable cost (cycle.c), else the
   * sampled estimate: a client asking for the estimate instead would cost
   * a metrics round trip per invocation. */
  int64_t est =
      n > 0 && h[n - 1].est_live_bytes > 0 ? h[n - 1].est_live_bytes : 0;
  *live = n == 0                           ? -1
          : h[n - 1].exact_live_bytes >= 0 ? h[n - 1].exact_live_bytes
                                           : est;
  return n > 0 ? h[n - 1].cycle : atomic_load(&agent__cycle);
}

int agent__control_request(const char *line, char **out, size_t *len) {
  char num[48]; /* two 64-bit decimals */
  uint64_t c;
  int rc;
  *out = NULL;
  *len = 0;
  if (strcmp(line, "end-cycle") == 0) {
    rc = fnprof_end_cycle(&c);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)c);
    *out = dup_text(num, len);
  } else if (strncmp(line, "profile ", 8) == 0) {
    const char *k = line + 8;
    fnprof_kind kind = strcmp(k, "inuse") == 0   ? FNPROF_PROFILE_INUSE
                       : strcmp(k, "alloc") == 0 ? FNPROF_PROFILE_ALLOC
                       : strcmp(k, "final") == 0 ? FNPROF_PROFILE_FINAL
                                                 : (fnprof_kind)-1;
    if ((int)kind < 0) {
      *out = dup_text("profile kind must be inuse, alloc or final", len);
      return FNP_EUSAGE;
    }
    rc = fnprof_profile(kind, (uint8_t **)out, len);
  } else if (strcmp(line, "metrics") == 0) {
    rc = fnprof_metrics_json(out, len);
  } else if (strncmp(line, "invocation-start ", 17) == 0) {
    rc = fnprof_invocation_start(line + 17);
    *out = dup_text("", len);
  } else if (strncmp(line, "invocation-end ", 15) == 0) {
    rc = fnprof_invocation_end(line + 15);
    if (rc == 0) { /* else the payload is the error's message */
      int64_t live;
      c = invocation_end_rec(&live);
      snprintf(num, sizeof(num), "%llu %lld", (unsigned long long)c,
               (long long)live);
      *out = dup_text(num, len);
    }
  } else if (strcmp(line, "features") == 0) {
    rc = 0;
    *out = dup_text(agent__page_on() ? CTL_FEATURES_PAGE : CTL_FEATURES, len);
  } else if (strcmp(line, "spikes") == 0) {
    rc = fnprof_spikes_json(out, len);
  } else if (strcmp(line, "shutdown") == 0) {
    rc = fnprof_shutdown();
    *out = dup_text("", len);
  } else {
    *out = dup_text("unknown request", len);
    return FNP_EUSAGE;
  }
  if (rc != 0 && *out == NULL)
    *out = dup_text(fnp_strerror(rc), len);
  return rc;
}

/* Sends every iovec whole, advancing past partial writes; a client that
 * is gone gives -1, not SIGPIPE. */
static int send_all(int fd, struct iovec *iov, int n_iov) {
  while (n_iov > 0) {
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    size_t k = (size_t)w;
    for (; n_iov > 0 && k >= iov->iov_len; iov++, n_iov--)
      k -= iov->iov_len;
    if (n_iov > 0) {
      iov->iov_base = (char *)iov->iov_base + k;
      iov->iov_len -= k;
    }
  }
  return 0;
}

/* Open connections, served by the background thread between its other
 * work: a client may keep one open and write requests whenever it likes
 * (the sidecar writes each invocation's start and end that way, without
 * waiting), and a slow or idle client holds nobody else up. buf keeps the
 * bytes read past the last whole request; a whole request line, "\n"
 * included, fits, so a full buf without a "\n" is a line over the limit. */
#define CTL_CONNS 8
typedef struct ctl_conn {
  int fd; /* -1: slot free */
  size_t len;
  char buf[CTL_CONN_BUF]; /* several lines per read (the sidecar batches) */
} ctl_conn;
static ctl_conn conns[CTL_CONNS];
static bool conns_ready; /* fds set to -1 */

static void conns_init(void) {
  if (conns_ready)
    return;
  for (int i = 0; i < CTL_CONNS; i++)
    conns[i].fd = -1;
  conns_ready = true;
}

static void conn_close(ctl_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  c->len = 0;
}

/* The connection whose request is being answered: a "shutdown" closes the
 * socket from inside its answer, and this one must stay open until the
 * answer is sent (conn_serve closes it then). */
static ctl_conn *serving;

static void conns_close_all(void) {
  conns_init();
  for (int i = 0; i < CTL_CONNS; i++)
    if (&conns[i] != serving)
      conn_close(&conns[i]);
}

static void conn_accept(void) {
  int fd = accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  ctl_conn *c = NULL;
  for (int i = 0; i < CTL_CONNS && !c; i++)
    if (conns[i].fd < 0)
      c = &conns[i];
  if (!c) {
    close(fd); /* all slots busy: the client sees EOF and may retry */
    return;
  }
  /* Answers are written blocking, bounded by this timeout (a unix socket
   * accepted does not inherit the listening socket's); requests are read
   * without blocking, whatever is there when poll says so. */
  struct timeval tv = {.tv_sec = CTL_IO_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  c->fd = fd;
  c->len = 0;
}

/* invocation-end-page lines read together (one recv) end one cycle: they
 * are the sidecar's batch of ends of overlapping invocations, whose heaps
 * after are each other's anyway, and a cycle each took glibc's arena lock
 * (mallinfo2) once per request against the function's own allocations.
 * An end alone arrives alone and gets its own cycle. */
#define PAGE_END_BATCH 64
static uint64_t page_seqs[PAGE_END_BATCH];
static int page_n;
static char page_last_id[REQ_ID_MAX];

static void page_ends_flush(void) {
  if (page_n == 0)
    return;
  (void)fnprof_invocation_end(page_last_id);
  int64_t live;
  uint64_t c = invocation_end_rec(&live);
  for (int i = 0; i < page_n; i++)
    agent__page_end_done(page_seqs[i], c, live);
  page_n = 0;
}

/* invocation-end-page: "<seq> <id>"; a line without a sequence number
 * ends nothing (it cannot be answered). */
static void page_end(const char *arg) {
  char *id;
  unsigned long long seq = strtoull(arg, &id, 10);
  if (id == arg || *id != ' ' || seq == 0)
    return;
  if (page_n == PAGE_END_BATCH)
    page_ends_flush();
  page_seqs[page_n++] = seq;
  snprintf(page_last_id, sizeof(page_last_id), "%s", id + 1);
}

/* Answers one request line; false when the connection should end. */
static bool conn_answer(ctl_conn *c, const char *line) {
  char *out;
  size_t len;
  if (strncmp(line, CTL_QUIET_START, sizeof(CTL_QUIET_START) - 1) == 0) {
    /* It cannot fail for a non-NULL id, and nobody waits for an answer. */
    (void)fnprof_invocation_start(line + sizeof(CTL_QUIET_START) - 1);
    return true;
  }
  if (strncmp(line, CTL_PAGE_END, sizeof(CTL_PAGE_END) - 1) == 0 &&
      agent__page_on()) {
    page_end(line + sizeof(CTL_PAGE_END) - 1);
    return true;
  }
  page_ends_flush(); /* requests are served in order */
  serving = c;
  int rc = agent__control_request(line, &out, &len);
  serving = NULL;
  char hdr[48];
  int h = snprintf(hdr, sizeof(hdr), "%s %zu\n", rc == 0 ? "ok" : "err",
                   out ? len : 0);
  /* Header and payload in one call: one syscall, one wakeup for the
   * client. */
  struct iovec iov[2] = {{.iov_base = hdr, .iov_len = (size_t)h},
                         {.iov_base = out, .iov_len = out ? len : 0}};
  bool ok = send_all(c->fd, iov, out && len ? 2 : 1) == 0;
  free(out);
  return ok && strcmp(line, "shutdown") != 0;
}

/* Reads what the client sent and answers every whole line in it, in
 * order. Ends the connection at EOF, on an error, or at a line over the
 * limit. */
static void conn_serve(ctl_conn *c) {
  ssize_t r =
      recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  bool eof = r <= 0, ok = true;
  if (r > 0)
    c->len += (size_t)r;
  /* Every whole line is answered, also those that came before an EOF (a
   * client may write its requests and then shut its side down). */
  char line[CTL_LINE_MAX];
  size_t pos = 0;
  char *nl;
  while (ok && (nl = memchr(c->buf + pos, '\n', c->len - pos))) {
    size_t n = (size_t)(nl - (c->buf + pos));
    if (n >= CTL_LINE_MAX) { /* over the limit: unanswered, the end */
      ok = false;
      break;
    }
    memcpy(line, c->buf + pos, n);
    pos += n + 1;
    if (n > 0 && line[n - 1] == '\r')
      n--;
    line[n] = '\0';
    ok = conn_answer(c, line);
  }
  page_ends_flush();
  memmove(c->buf, c->buf + pos, c->len - pos);
  c->len -= pos;
  if (eof || !ok || c->len >= CTL_LINE_MAX) /* a line over the limit */
    conn_close(c);
}

int agent__control_pollfds(struct pollfd *pf, int cap) {
  conns_init();
  int n = 0;
  if (ctl_fd >= 0 && n < cap)
    pf[n++] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
  for (int i = 0; i < CTL_CONNS && n < cap; i++)
    if (conns[i].fd >= 0)
      pf[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
  return n;
}

void agent__control_serve(const struct pollfd *pf, int n) {
  for (int k = 0; k < n; k++) {
    if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    if (pf[k].fd == ctl_fd) {
      conn_accept();
      continue;
    }
    for (int i = 0; i < CTL_CONNS; i++)
      if (conns[i].fd == pf[k].fd)
        conn_serve(&conns[i]);
  }
}
