/*
 * agent_ctl.c - the hooks' collects from the preloaded agent, over its
 * control socket (line protocol: agent/control.c). The sidecar picks the
 * socket path (FNPROF_CONTROL, in a private 0700 directory) and, unless the
 * user chose one, the agent's FNPROF_DIR (same directory: spike profiles
 * land there).
 *
 *   /pre-freeze        end-cycle, spikes, profile inuse (setting), metrics
 *   /pre-stop          spikes, profile final, profile alloc, metrics
 *
 * Collects run on a thread of its own, one connection each, bounded by the
 * collect's deadline with poll(). Results become records (kind
 * agent_metrics, spike, profile) in the export buffer and profiles in the
 * exporter's queue. Each invocation's start and end go over the
 * invocation channel instead (agent_chan.c). What is not here: the export
 * itself (export.c) and when collects happen (hooks.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

/* Payload caps per answer: metrics and spike reports are small JSON; a
 * profile is capped as the collector caps uploads. */
#define AGENT_TEXT_MAX_BYTES (4u << 20)
#define AGENT_PROFILE_MAX_BYTES (32u << 20)
#define AGENT_LINE_MAX 256 /* the agent's request line limit */

/* One connection: a read buffer, since answers are "ok N\n" + N bytes. */
typedef struct conv {
  int fd;
  int64_t deadline_ns;
  char rbuf[4096];
  size_t rpos, rlen;
} conv;

static int wait_fd(conv *c, short events) {
  struct pollfd pf = {.fd = c->fd, .events = events};
  for (;;) {
    int64_t left_ms = (c->deadline_ns - sc__mono_ns()) / 1000000;
    int n;
    if (left_ms <= 0)
      return -ETIMEDOUT;
    n = poll(&pf, 1, (int)(left_ms > 60000 ? 60000 : left_ms));
    if (n > 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return -errno;
  }
}

static int conv_open(conv *c, const char *path, int64_t deadline_ns) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int rc;
  c->rpos = c->rlen = 0;
  c->deadline_ns = deadline_ns;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->fd < 0)
    return -errno;
  /* A unix connect completes or fails at once; EAGAIN: backlog full. */
  while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    rc = -errno;
    if (rc != -EAGAIN || sc__mono_ns() >= deadline_ns) {
      close(c->fd);
      c->fd = -1;
      return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }
    usleep(1000);
  }
  return 0;
}

static void conv_close(conv *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

static int conv_write(conv *c, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      int rc = wait_fd(c, POLLOUT);
      if (rc < 0)
        return rc;
      continue;
    }
    if (w <= 0)
      return w < 0 ? -errno : -EPIPE;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Copies n bytes of the answer into out. */
static int conv_read(conv *c, void *out, size_t n) {
  char *o = out;
  while (n > 0) {
    if (c->rpos == c->rlen) {
      ssize_t r = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        int rc = wait_fd(c, POLLIN);
        if (rc < 0)
          return rc;
        continue;
      }
      if (r <= 0)
        return r < 0 ? -errno : -ECONNRESET;
      c->rpos = 0;
      c->rlen = (size_t)r;
    }
    size_t k = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
    memcpy(o, c->rbuf + c->rpos, k);
    c->rpos += k;
    o += k;
    n -= k;
  }
  return 0;
}

/* Reads one answer: "ok N" + N bytes into *out (malloc'd, with a NUL after
 * the payload). "err N": the payload is dropped, FNP_EUSAGE. */
static int conv_answer(conv *c, size_t max, char **out, size_t *len) {
  char hdr[48], *end;
  size_t n = 0, size;
  int ok, rc = 0;
  *out = NULL;
  *len = 0;
  while (rc == 0 && n + 1 < sizeof(hdr)) {
    rc = conv_read(c, &hdr[n], 1);
    if (rc == 0 && hdr[n++] == '\n')
      break;
  }
  if (rc < 0)
    return rc;
  hdr[n] = '\0';
  ok = strncmp(hdr, "ok ", 3) == 0;
  if (!ok && strncmp(hdr, "err ", 4) != 0)
    return FNP_EPARSE;
  errno = 0;
  size = strtoull(hdr + (ok ? 3 : 4), &end, 10);
  if (errno || *end != '\n' || size > max)
    return FNP_ETOOBIG;
  *out = malloc(size + 1);
  if (*out == NULL)
    return -ENOMEM;
  rc = conv_read(c, *out, size);
  if (rc < 0 || !ok) {
    free(*out);
    *out = NULL;
    return rc < 0 ? rc : FNP_EUSAGE;
  }
  (*out)[size] = '\0';
  *len = size;
  return 0;
}

/* Sends one request and reads its answer (conv_answer). */
static int conv_ask(conv *c, const char *req, size_t max, char **out,
                    size_t *len) {
  char line[AGENT_LINE_MAX];
  int rc;
  *out = NULL;
  *len = 0;
  snprintf(line, sizeof(line), "%s\n", req);
  rc = conv_write(c, line, strlen(line));
  return rc < 0 ? rc : conv_answer(c, max, out, len);
}

/* ---- reading the agent's answers -------------------------------------- */

static int64_t json_int_after(const char *p, const char *key) {
  const char *q = p ? strstr(p, key) : NULL;
  return q ? strtoll(q + strlen(key), NULL, 10) : -1;
}

/* The heap the agent last measured: the newest cycle's exact live bytes
 * (from the allocator), else its sampled estimate. */
int64_t sc__agent_metrics_heap(const char *json) {
  const char *last = NULL, *p = strstr(json, "\"cycles\":[");
  int64_t v;
  while (p && (p = strstr(p + 1, "{\"cycle\":")) != NULL)
    last = p;
  v = json_int_after(last, "\"exact_live_bytes\":");
  if (v < 0)
    v = json_int_after(last ? last : json, "\"est_live_bytes\":");
  return v;
}

static void add_record(sc_agent *a, fnp_buf *b, int rc) {
  if (rc == 0)
    sc__records_add(a->records, b->data, b->len);
  else
    sc__records_drop(a->records);
  fnp_buf_reset(b);
}

static int rec_head(sc_agent *a, fnp_buf *b, const char *kind) {
  int rc =
      fnp_buf_printf(b, "{\"kind\":\"%s\",\"time_ns\":%lld,\"instance\":", kind,
                     (long long)sc__realtime_ns());
  return rc ? rc : sc__json_str(b, a->instance, strlen(a->instance));
}

static void metrics_record(sc_agent *a, const char *event, const char *json,
                           size_t len) {
  fnp_buf b;
  int rc;
  fnp_buf_init(&b, len * 2 + 1024);
  rc = rec_head(a, &b, "agent_metrics");
  if (rc == 0)
    rc = fnp_buf_printf(&b,
                        ",\"event\":\"%s\",\"live_bytes\":%lld,\"cycle\":%lld,"
                        "\"spikes\":%lld,\"metrics\":",
                        event, (long long)sc__agent_metrics_heap(json),
                        (long long)json_int_after(json, "\"cycle\":"),
                        (long long)json_int_after(json, "\"spikes\":"));
  if (rc == 0)
    rc = sc__json_str(&b, json, len);
  if (rc == 0)
    rc = fnp_buf_append(&b, "}", 1);
  add_record(a, &b, rc);
  fnp_buf_destroy(&b);
}

/* Queues a profile with its record (the record first: export.c relies on
 * it). Takes data. */
static void profile_out(sc_agent *a, const char *kind, uint8_t *data,
                        size_t len, const char *source) {
  int64_t now = sc__realtime_ns();
  fnp_buf b;
  int rc;
  fnp_buf_init(&b, 2048);
  rc = rec_head(a, &b, "profile");
  if (rc == 0)
    rc = fnp_buf_printf(&b,
                        ",\"profile_kind\":\"%s\",\"bytes\":%zu,"
                        "\"profile_time_ns\":%lld,\"source\":",
                        kind, len, (long long)now);
  if (rc == 0)
    rc = sc__json_str(&b, source, strlen(source));
  if (rc == 0)
    rc = fnp_buf_append(&b, "}", 1);
  add_record(a, &b, rc);
  fnp_buf_destroy(&b);
  (void)sc__exporter_add_profile(a->exporter, kind, now, data, len);
  /* a dropped profile is counted in the exporter and in the next instance
   * record; nothing else to do here */
}

/* A spike report names its profiles' files: only ours are read (and
 * removed, they were written for us). */
static void spike_profile(sc_agent *a, const char *report, const char *key,
                          const char *kind) {
  char path[600];
  uint8_t *data = NULL;
  size_t len = 0, n = strlen(a->prof_dir);
  if (n == 0 || sc__json_find_str(report, key, path, sizeof(path)) < 0 ||
      strncmp(path, a->prof_dir, n) != 0 || path[n] != '/' ||
      strstr(path, "/..") != NULL)
    return;
  if (fnp_read_file(path, AGENT_PROFILE_MAX_BYTES, &data, &len, NULL) == 0)
    profile_out(a, kind, data, len, path);
  unlink(path);
}

static void spike_record(sc_agent *a, const char *obj, size_t len) {
  char summary[1024] = "", *copy = strndup(obj, len);
  fnp_buf b;
  int rc;
  if (copy == NULL)
    return sc__records_drop(a->records);
  (void)sc__json_find_str(copy, "summary", summary, sizeof(summary));
  fnp_buf_init(&b, len * 2 + 2048);
  rc = rec_head(a, &b, "spike");
  if (rc == 0)
    rc = fnp_buf_append(&b, ",\"event\":\"spike\",\"summary\":", 27);
  if (rc == 0)
    rc = sc__json_str(&b, summary, strlen(summary));
  if (rc == 0)
    rc = fnp_buf_append(&b, ",\"report\":", 10);
  if (rc == 0)
    rc = sc__json_str(&b, copy, len);
  if (rc == 0)
    rc = fnp_buf_append(&b, "}", 1);
  add_record(a, &b, rc);
  fnp_buf_destroy(&b);
  spike_profile(a, copy, "before_profile", "spike-before");
  spike_profile(a, copy, "after_profile", "spike-after");
  spike_profile(a, copy, "diff_profile", "spike-diff");
  free(copy);
}

/* Splits the agent's JSON array of reports into its objects. */
static void spikes_out(sc_agent *a, const char *json, size_t len) {
  size_t i, start = 0;
  int depth = 0, in_str = 0;
  for (i = 0; i < len; i++) {
    char ch = json[i];
    if (in_str) {
      if (ch == '\\')
        i++;
      else if (ch == '"')
        in_str = 0;
    } else if (ch == '"') {
      in_str = 1;
    } else if (ch == '{' && depth++ == 0) {
      start = i;
    } else if (ch == '}' && --depth == 0) {
      spike_record(a, json + start, i - start + 1);
    }
  }
}

/* The function died: a final profile its agent wrote on the way out (at
 * exit(), from its destructor, into our profile directory) still goes out.
 * A death by a signal or _exit leaves none; the last freeze's inuse
 * profile is then the latest there is. */
void sc__agent_take_final(sc_agent *a, pid_t pid) {
  char prefix[32], path[600];
  DIR *d = a->enabled && a->prof_dir[0] ? opendir(a->prof_dir) : NULL;
  struct dirent *e;
  if (d == NULL)
    return;
  int n = snprintf(prefix, sizeof(prefix), "fnprof-%d-", (int)pid);
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, prefix, (size_t)n) != 0 || len < 12 ||
        strcmp(e->d_name + len - 12, "-final.pb.gz") != 0)
      continue;
    uint8_t *data = NULL;
    size_t size = 0;
    snprintf(path, sizeof(path), "%s/%s", a->prof_dir, e->d_name);
    if (fnp_read_file(path, AGENT_PROFILE_MAX_BYTES, &data, &size, NULL) == 0)
      profile_out(a, "final", data, size, path);
    unlink(path);
  }
  closedir(d);
}

/* ---- jobs -------------------------------------------------------------- */

static int ask_simple(conv *c, const char *cmd, const char *arg) {
  char line[AGENT_LINE_MAX], *out;
  size_t len;
  int rc;
  snprintf(line, sizeof(line), "%s%s%s", cmd, arg ? " " : "", arg ? arg : "");
  rc = conv_ask(c, line, AGENT_TEXT_MAX_BYTES, &out, &len);
  free(out);
  return rc;
}

void sc__agent_finish_record(sc_agent *a, char *record, int64_t before,
                             int64_t after) {
  size_t mark;
  if (record == NULL)
    return;
  /* Straight into the records, by appends: one per invocation. */
  fnp_buf *b = sc__records_open(a->records, &mark);
  int rc = fnp_buf_append_str(b, record);
  if (after >= 0) {
    rc |= fnp_buf_append_str(b, ",\"heap_before_bytes\":");
    rc |= fnp_buf_append_i64(b, before);
    rc |= fnp_buf_append_str(b, ",\"heap_after_bytes\":");
    rc |= fnp_buf_append_i64(b, after);
  }
  rc |= fnp_buf_append(b, "}", 1);
  (void)sc__records_close(a->records, mark, rc);
  free(record);
}

static int run_collect(sc_agent *a, conv *c, enum sc_agent_job_kind kind) {
  static const char *const FREEZE_PROFILES[] = {"inuse"};
  static const char *const STOP_PROFILES[] = {"final", "alloc"};
  const char *const *profiles =
      kind == SC_AGENT_STOP ? STOP_PROFILES : FREEZE_PROFILES;
  size_t n_prof = kind == SC_AGENT_STOP ? 2 : a->freeze_profile ? 1 : 0;
  char *out, line[64];
  size_t len, i;
  int rc = 0;
  if (kind == SC_AGENT_FREEZE)
    rc = ask_simple(c, "end-cycle", NULL);
  if (rc == 0 &&
      (rc = conv_ask(c, "spikes", AGENT_TEXT_MAX_BYTES, &out, &len)) == 0) {
    spikes_out(a, out, len);
    free(out);
  }
  for (i = 0; rc == 0 && i < n_prof; i++) {
    snprintf(line, sizeof(line), "profile %s", profiles[i]);
    rc = conv_ask(c, line, AGENT_PROFILE_MAX_BYTES, &out, &len);
    if (rc == 0)
      profile_out(a, profiles[i], (uint8_t *)out, len, "agent");
  }
  if (rc == 0 &&
      (rc = conv_ask(c, "metrics", AGENT_TEXT_MAX_BYTES, &out, &len)) == 0) {
    metrics_record(a, kind == SC_AGENT_STOP ? "pre-stop" : "pre-freeze", out,
                   len);
    free(out);
  }
  return rc;
}

static void run_job(sc_agent *a, sc_agent_job *j) {
  conv c = {.fd = -1};
  int rc = j->deadline_ns <= sc__mono_ns()
               ? -ETIMEDOUT
               : conv_open(&c, a->sock, j->deadline_ns);
  if (rc == 0)
    rc = run_collect(a, &c, j->kind);
  conv_close(&c);
  pthread_mutex_lock(&a->lock);
  if (rc < 0 && rc != -ENOENT && rc != -ECONNREFUSED)
    a->failures++; /* no socket at all is "no agent", not a failure */
  pthread_mutex_unlock(&a->lock);
}

static void *agent_thread(void *arg) {
  sc_agent *a = arg;
  sc_agent_job *j;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the loop's */
  pthread_mutex_lock(&a->lock);
  for (;;) {
    while (!a->stop && STAILQ_EMPTY(&a->jobs))
      pthread_cond_wait(&a->cond, &a->lock);
    if (a->stop)
      break;
    j = STAILQ_FIRST(&a->jobs);
    STAILQ_REMOVE_HEAD(&a->jobs, link);
    pthread_mutex_unlock(&a->lock);
    run_job(a, j);
    pthread_mutex_lock(&a->lock);
    a->gen_done = j->gen;
    sc__wakeup_signal(&a->done);
    free(j);
  }
  pthread_mutex_unlock(&a->lock);
  return NULL;
}

/* Loop thread: a collect finished; the newest request's callback runs. */
static void collect_done(evutil_socket_t fd, short what, void *arg) {
  sc_agent *a = arg;
  sc_agent_cb cb = NULL;
  void *cb_arg = NULL;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&a->lock);
  if (a->gen_done == a->gen_req && a->cb) {
    cb = a->cb;
    cb_arg = a->cb_arg;
    a->cb = NULL;
  }
  pthread_mutex_unlock(&a->lock);
  if (cb)
    cb(cb_arg);
}

/* ---- the loop's side ---------------------------------------------------- */

static const char *env_value(const char *name) {
  size_t n = strlen(name);
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static int make_dirs(sc_agent *a, fnp_error *err) {
  const char *tmp = env_value("TMPDIR"), *user_dir = env_value("FNPROF_DIR");
  /* The socket path must fit sun_path with room for "/agent.sock". */
  if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 60)
    tmp = "/tmp";
  snprintf(a->dir, sizeof(a->dir), "%s/fnprof-sidecar-XXXXXX", tmp);
  if (mkdtemp(a->dir) == NULL) { /* mode 0700 */
    a->dir[0] = '\0';
    return fnp_fail(err, -errno, "agent: mkdtemp in %s: %s", tmp,
                    strerror(errno));
  }
  snprintf(a->sock, sizeof(a->sock), "%s/agent.sock", a->dir);
  if (user_dir && *user_dir) {
    /* The user's directory: spike profiles are read from it, not removed
     * unless named by a report. realpath so the prefix check holds. */
    char *r = realpath(user_dir, NULL);
    snprintf(a->prof_dir, sizeof(a->prof_dir), "%s", r ? r : "");
    free(r);
    return 0; /* leave FNPROF_DIR alone */
  }
  snprintf(a->prof_dir, sizeof(a->prof_dir), "%s/prof", a->dir);
  if (mkdir(a->prof_dir, 0700) != 0)
    return fnp_fail(err, -errno, "agent: mkdir %s: %s", a->prof_dir,
                    strerror(errno));
  a->own_prof_dir = 1;
  return 0;
}

int sc__agent_init(sc_agent *a, struct event_base *base, const char *agent,
                   sc_records *r, sc_exporter *x, const sidecar_config *cfg,
                   fnp_error *err) {
  int rc;
  memset(a, 0, sizeof(*a));
  STAILQ_INIT(&a->jobs);
  a->records = r;
  a->exporter = x;
  a->instance = cfg->instance_id;
  a->freeze_profile = cfg->freeze_profile;
  a->base = base;
  sc__agent_chan_init(a);
  if (pthread_mutex_init(&a->lock, NULL) != 0 ||
      pthread_cond_init(&a->cond, NULL) != 0)
    return fnp_fail(err, -ENOMEM, "agent: lock init failed");
  a->inited = 1;
  if (agent == NULL)
    return 0;
  rc = make_dirs(a, err);
  if (rc < 0)
    return rc;
  rc = sc__wakeup_init(&a->done, base, collect_done, a);
  if (rc < 0)
    return fnp_fail(err, rc, "agent: cannot make its wake-up");
  rc = pthread_create(&a->thread, NULL, agent_thread, a);
  if (rc != 0)
    return fnp_fail(err, -rc, "agent: pthread_create: %s", strerror(rc));
  a->thread_started = 1;
  a->enabled = 1;
  /* Without it (no memfd) the control socket does all (agent_chan.c). */
  (void)sc__page_open(&a->page);
  return 0;
}

/* Queues a collect for the thread (the channel's answers are in: see
 * sc__agent_collect in agent_chan.c). */
void sc__agent_collect_now(sc_agent *a, enum sc_agent_job_kind kind,
                           int64_t deadline_mono_ns, sc_agent_cb cb,
                           void *arg) {
  sc_agent_job *j = a->enabled ? calloc(1, sizeof(*j)) : NULL;
  if (j == NULL)
    return cb(arg); /* no agent (or no memory): nothing to wait for */
  j->kind = kind;
  j->deadline_ns = deadline_mono_ns;
  pthread_mutex_lock(&a->lock);
  j->gen = ++a->gen_req;
  a->cb = cb;
  a->cb_arg = arg;
  STAILQ_INSERT_TAIL(&a->jobs, j, link);
  pthread_cond_signal(&a->cond);
  pthread_mutex_unlock(&a->lock);
}

void sc__agent_forget_cb(sc_agent *a) {
  a->collect_waiting = 0; /* loop thread, as the channel */
  pthread_mutex_lock(&a->lock);
  a->cb = NULL;
  pthread_mutex_unlock(&a->lock);
}

/* Removes the files in dir (one level: the socket, prof/ and its files). */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[700];
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (e->d_type == DT_DIR)
      remove_tree(path);
    else
      unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

void sc__agent_destroy(sc_agent *a) {
  sc_agent_job *j;
  if (!a->inited)
    return;
  if (a->thread_started) {
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    a->thread_started = 0;
  }
  sc__agent_chan_destroy(a);
  while ((j = STAILQ_FIRST(&a->jobs)) != NULL) {
    STAILQ_REMOVE_HEAD(&a->jobs, link);
    free(j);
  }
  sc__wakeup_destroy(&a->done);
  if (a->dir[0])
    remove_tree(a->dir);
  a->dir[0] = '\0';
  a->enabled = 0;
  a->inited = 0;
  pthread_cond_destroy(&a->cond);
  pthread_mutex_destroy(&a->lock);
}
