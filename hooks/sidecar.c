/*
 * sidecar.c - the event loop and the instance's life: listen first, start the
 * function, probe its inner port (requests are held until it answers, for at
 * most the start limit), notice its exit (a crash unless /pre-stop or SIGTERM
 * asked for it), and shut down with a last flush. Exit codes: 0 after an
 * orderly stop; the function's exit status (or 128+signal, or 1) when it died
 * on its own, so the platform replaces the instance.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "internal.h"

/* Lets the answers already queued reach their clients before exiting. */
#define EXIT_LINGER_MS 50
#define EXIT_FAILED_TO_START 3

static void ms_tv(int64_t ms, struct timeval *tv) {
  tv->tv_sec = (time_t)(ms / 1000);
  tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* A free loopback port for the function. It is released before the function
 * binds it; another process could take it in between, which the start limit
 * then reports. */
static int pick_inner_port(int *port) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;
  if (fd < 0)
    return -errno;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    rc = -errno;
  close(fd);
  *port = ntohs(a.sin_port);
  return rc;
}

void sc__record_instance(sidecar *sc, const char *event) {
  sc_instance_stats *st = &sc->stats;
  int64_t rss = 0, hwm = 0;
  uint64_t agent_failures, agent_skipped, prof_sent, prof_dropped;
  char line[1280];
  int n;
  if (!sc->child.exited)
    (void)sc__proc_mem(&sc->child, &rss, &hwm);
  pthread_mutex_lock(&sc->agent_ctl.lock);
  agent_failures = sc->agent_ctl.failures;
  agent_skipped = sc->agent_ctl.skipped;
  pthread_mutex_unlock(&sc->agent_ctl.lock);
  pthread_mutex_lock(&sc->exporter.lock);
  prof_sent = sc->exporter.profiles_sent;
  prof_dropped = sc->exporter.profiles_dropped;
  pthread_mutex_unlock(&sc->exporter.lock);
  n = snprintf(
      line, sizeof(line),
      "{\"kind\":\"instance\",\"event\":\"%s\",\"time_ns\":%lld,"
      "\"instance\":\"%s\",\"invocations\":%llu,\"errors\":%llu,"
      "\"initializations\":%llu,\"freezes\":%llu,\"crashes\":%llu,"
      "\"cold_start_ms\":%lld,\"bytes_in\":%llu,\"bytes_out\":%llu,"
      "\"log_lines\":%llu,\"log_unattributed\":%llu,\"rss_bytes\":%lld,"
      "\"agent\":%s,\"agent_failures\":%llu,\"agent_skipped\":%llu,"
      "\"profiles_sent\":%llu,\"profiles_dropped\":%llu}",
      event, (long long)sc__realtime_ns(), sc->instance_id,
      (unsigned long long)st->invocations, (unsigned long long)st->errors,
      (unsigned long long)st->initializations, (unsigned long long)st->freezes,
      (unsigned long long)st->crashes, (long long)st->cold_start_ms,
      (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
      (unsigned long long)st->log_lines,
      (unsigned long long)st->log_unattributed, (long long)rss,
      sc->agent_ctl.enabled ? "true" : "false",
      (unsigned long long)agent_failures, (unsigned long long)agent_skipped,
      (unsigned long long)prof_sent, (unsigned long long)prof_dropped);
  if (n > 0 && (size_t)n < sizeof(line))
    sc__records_add(&sc->records, line, (size_t)n);
  else
    sc__records_drop(&sc->records);
}

void sc__finish(sidecar *sc, int exit_code) {
  struct timeval tv;
  if (sc->finishing)
    return;
  sc->finishing = 1;
  sc->exit_code = exit_code;
  if (!sc->child.exited && sc->child.pid > 0)
    kill(sc->child.pid, SIGKILL);
  ms_tv(EXIT_LINGER_MS, &tv);
  event_base_loopexit(sc->base, &tv);
}

static void final_flushed(void *arg, int rc) {
  sidecar *sc = arg;
  (void)rc; /* what is left is counted in the last record's pending */
  sc__finish(sc, sc->exit_code);
}

static void final_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sc__exporter_forget_cb(&((sidecar *)arg)->exporter);
  final_flushed(arg, -ETIMEDOUT);
}

/* Last records out within the budget, then exit with sc->exit_code. */
static void final_flush(sidecar *sc, const char *event) {
  struct timeval tv;
  sc__logcap_drain(sc);
  /* Records still waiting for the agent's answers complete first. */
  sc__agent_chan_drain(&sc->agent_ctl);
  sc__record_instance(sc, event);
  sc__records_note_drops(&sc->records, sc->instance_id);
  sc__exporter_flush(&sc->exporter,
                     sc__mono_ns() + sc->cfg->freeze_budget_ms * 1000000,
                     final_flushed, sc);
  ms_tv(sc->cfg->freeze_budget_ms + EXIT_LINGER_MS, &tv);
  sc->exit_ev = evtimer_new(sc->base, final_timeout, sc);
  if (sc->exit_ev == NULL || evtimer_add(sc->exit_ev, &tv) < 0)
    sc__finish(sc, sc->exit_code);
}

static int crash_exit_code(int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 1; /* exiting at all, even with 0, takes the instance down */
}

/* Every request still open gets the platform's crash answer. */
static void answer_crashed(sidecar *sc) {
  sc_call *call, *next;
  for (call = TAILQ_FIRST(&sc->calls); call; call = next) {
    next = TAILQ_NEXT(call, link);
    if (call->kind == SC_HOOK)
      continue; /* hooks.c answers it when its forward fails */
    if (call->req)
      sc__reply_crash(call);
    if (call->up == NULL) /* else sc__proxy_upstream_done finishes it */
      sc__call_finish(call);
  }
}

void sc__function_exited(sidecar *sc) {
  int st = sc->child.status;
  sc__logcap_drain(sc);
  if (sc->state == SC_STOPPING && sc->hook)
    return sc__hook_stop_exited(sc);
  if (sc->state == SC_STOPPING)
    return final_flush(sc, "stop");
  if (sc->state == SC_DEAD)
    return; /* it never started; start_timed_out is flushing */
  sc->state = SC_DEAD;
  sc->stats.crashes++;
  sc->exit_code = crash_exit_code(st);
  fprintf(stderr, "fnprof-sidecar: the function exited (%s %d)\n",
          WIFSIGNALED(st) ? "signal" : "status",
          WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  answer_crashed(sc);
  sc__agent_take_final(&sc->agent_ctl, sc->child.pid);
  final_flush(sc, "crash");
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  struct rusage ru;
  int status;
  pid_t pid;
  (void)fd;
  (void)what;
  while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
    if (pid != sc->child.pid || sc->child.exited)
      continue;
    sc->child.exited = 1;
    sc->child.status = status;
    /* The crash answer's max memory: a dead process's /proc has none, but
     * its peak RSS at exit (VmHWM since the last reset; an earlier, higher
     * one if a thread exited then) comes with its status. */
    sc__calls_raise_peak(sc, (int64_t)ru.ru_maxrss * 1024);
    sc__child_forget_jit_map(&sc->child);
    sc__function_exited(sc);
  }
}

static void stop_grace_over(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  (void)fd;
  (void)what;
  if (!sc->child.exited)
    kill(sc->child.pid, SIGKILL);
}

/* SIGTERM/SIGINT: the same orderly stop as /pre-stop, without the hook. */
static void on_sigterm(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  struct timeval tv;
  (void)fd;
  (void)what;
  if (sc->state == SC_STOPPING || sc->finishing)
    return;
  if (sc->state == SC_DEAD)
    return sc__finish(sc, sc->exit_code);
  sc->state = SC_STOPPING;
  kill(sc->child.pid, SIGTERM);
  ms_tv(sc->cfg->stop_grace_ms, &tv);
  sc->stop_ev = evtimer_new(sc->base, stop_grace_over, sc);
  if (sc->stop_ev)
    evtimer_add(sc->stop_ev, &tv);
}

static void function_ready(sidecar *sc) {
  sc->state = SC_READY;
  sc->stats.cold_start_ms =
      (sc__mono_ns() - sc->child.started_mono_ns) / 1000000;
  if (sc->start_timeout_ev)
    evtimer_del(sc->start_timeout_ev);
  char inited[] = "FunctionCompute fnprof-sidecar runtime inited.\n";
  sc__log_platform_line(sc, "", inited, sizeof(inited) - 2);
  /* The agent's socket exists now (the agent binds it before the function
   * runs): the invocations that arrived before the function was up tell
   * it their start again, the channel having failed to open then. */
  sc__agent_chan_ready(&sc->agent_ctl);
  sc_call *call;
  TAILQ_FOREACH(call, &sc->held, hold_link)
  if (call->kind != SC_HOOK)
    sc__agent_invocation_start(&sc->agent_ctl, call->request_id, 0);
  sc__proxy_release_held(sc);
}

static void probe_arm(sidecar *sc) {
  struct timeval tv;
  ms_tv(SC_PROBE_INTERVAL_MS, &tv);
  evtimer_add(sc->probe_ev, &tv);
}

/* A blocking connect: on loopback it completes or is refused at once;
 * SO_SNDTIMEO bounds it should the function's backlog be full. */
static void probe_fire(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  struct sockaddr_in a = {.sin_family = AF_INET};
  struct timeval limit = {0, 100000};
  int s, ok;
  (void)fd;
  (void)what;
  if (sc->state != SC_STARTING)
    return;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)sc->inner_port);
  s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ok = s >= 0 &&
       setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)) == 0 &&
       connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
  if (s >= 0)
    close(s);
  if (ok)
    return function_ready(sc);
  probe_arm(sc);
}

static void start_timed_out(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  char msg[160];
  sc_call *call;
  (void)fd;
  (void)what;
  if (sc->state != SC_STARTING)
    return;
  snprintf(msg, sizeof(msg),
           "the function did not listen on port %d within %lld ms",
           sc->inner_port, (long long)sc->cfg->start_timeout_ms);
  fprintf(stderr, "fnprof-sidecar: %s\n", msg);
  sc->state = SC_DEAD;
  while ((call = TAILQ_FIRST(&sc->held)) != NULL) {
    sc__reply_error(call->req, 503, "FunctionNotStarted", msg);
    call->req = NULL;
    call->status = 503;
    call->error_type = "FunctionNotStarted";
    sc__call_finish(call);
  }
  sc->exit_code = EXIT_FAILED_TO_START;
  final_flush(sc, "not-started");
}

static void rss_fire(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  int64_t rss, hwm;
  (void)fd;
  (void)what;
  if (sc->n_calls == 0 || sc->child.exited ||
      sc__proc_mem(&sc->child, &rss, &hwm) < 0)
    return;
  sc->last_hwm = hwm;
  sc->last_hwm_ns = sc__mono_ns();
  sc__calls_raise_peak(sc, hwm);
  sc__rss_sample(sc);
}

/* Keeps sampling while invocations run (for the crash message, which cannot
 * read a dead process's peak); idle instances are not woken. */
void sc__rss_sample(sidecar *sc) {
  struct timeval tv;
  if (sc->rss_ev == NULL || evtimer_pending(sc->rss_ev, NULL))
    return;
  ms_tv(SC_RSS_SAMPLE_MS, &tv);
  evtimer_add(sc->rss_ev, &tv);
}

static struct event *signal_watch(sidecar *sc, int sig, event_callback_fn cb) {
  struct event *ev = evsignal_new(sc->base, sig, cb, sc);
  if (ev && evsignal_add(ev, NULL) < 0) {
    event_free(ev);
    ev = NULL;
  }
  return ev;
}

static int loop_init(sidecar *sc, fnp_error *err) {
  struct timeval tv;
  struct event_config *ec = event_config_new();
  /* The changelist folds changes of a fd's interest within one loop
   * iteration into one epoll_ctl (a write event added and removed around
   * a backed-up write, the agent channel watched during a collect).
   * Unsafe only with dup()ed fds in the loop, and the sidecar has none. */
  if (ec &&
      event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
    sc->base = event_base_new_with_config(ec);
  if (ec)
    event_config_free(ec);
  if (sc->base == NULL || event_base_priority_init(sc->base, SC_PRIO_COUNT) < 0)
    return fnp_fail(err, -ENOMEM, "event_base_new failed");
  sc->sigchld_ev = signal_watch(sc, SIGCHLD, on_sigchld);
  sc->sigterm_ev = signal_watch(sc, SIGTERM, on_sigterm);
  sc->sigint_ev = signal_watch(sc, SIGINT, on_sigterm);
  sc->probe_ev = evtimer_new(sc->base, probe_fire, sc);
  sc->start_timeout_ev = evtimer_new(sc->base, start_timed_out, sc);
  sc->rss_ev = evtimer_new(sc->base, rss_fire, sc);
  if (!sc->sigchld_ev || !sc->sigterm_ev || !sc->sigint_ev || !sc->probe_ev ||
      !sc->start_timeout_ev || !sc->rss_ev)
    return fnp_fail(err, -ENOMEM, "cannot set up events");
  ms_tv(sc->cfg->start_timeout_ms, &tv);
  if (evtimer_add(sc->start_timeout_ev, &tv) < 0)
    return fnp_fail(err, -ENOMEM, "cannot arm the start limit");
  return 0;
}

static int sidecar_init(sidecar *sc, const sidecar_config *cfg,
                        fnp_error *err) {
  int rc;
  memset(sc, 0, sizeof(*sc));
  sc->streams[0].fd = sc->streams[1].fd = -1;
  sc->child.out_fd = sc->child.err_fd = -1;
  sc->child.status_fd = sc->child.clear_refs_fd = -1;
  TAILQ_INIT(&sc->calls);
  TAILQ_INIT(&sc->held);
  sc->cfg_copy = *cfg;
  if (cfg->instance_id)
    snprintf(sc->instance_id, sizeof(sc->instance_id), "%s", cfg->instance_id);
  else
    snprintf(sc->instance_id, sizeof(sc->instance_id), "sidecar-%d",
             (int)getpid());
  sc->cfg_copy.instance_id = sc->instance_id;
  sc->cfg = &sc->cfg_copy;
  rc = sc__records_init(&sc->records, cfg->buffer_bytes);
  if (rc < 0)
    return fnp_fail(err, rc, "cannot allocate the record buffer");
  rc = loop_init(sc, err);
  if (rc == 0)
    rc =
        sc__exporter_start(&sc->exporter, sc->base, &sc->records, sc->cfg, err);
  if (rc == 0)
    rc = sc__agent_find(sc->cfg, &sc->agent, err);
  if (rc == 0)
    rc = sc__agent_init(&sc->agent_ctl, sc->base, sc->agent, &sc->records,
                        &sc->exporter, sc->cfg, err);
  return rc;
}

static int start_function(sidecar *sc, fnp_error *err) {
  int rc = pick_inner_port(&sc->inner_port);
  if (rc < 0)
    return fnp_fail(err, rc, "cannot pick an inner port: %s", fnp_strerror(rc));
  /* Listen before the function starts: the platform may call right away. */
  rc = sc__proxy_start(sc, err);
  if (rc == 0)
    rc = sc__child_spawn(&sc->child, sc->cfg, sc->agent,
                         sc->agent_ctl.enabled ? sc->agent_ctl.sock : NULL,
                         sc->agent_ctl.own_prof_dir ? sc->agent_ctl.prof_dir
                                                    : NULL,
                         sc->agent_ctl.page.fd, sc->inner_port, err);
  if (rc == 0)
    rc = sc__logcap_start(sc, err);
  if (rc < 0)
    return rc;
  if (sc->agent == NULL && !sc->cfg->no_agent)
    fprintf(stderr, "fnprof-sidecar: libfnprof.so not found next to the "
                    "sidecar; running without the agent (--agent PATH)\n");
  probe_arm(sc);
  return 0;
}

static void free_event(struct event **ev) {
  if (*ev)
    event_free(*ev);
  *ev = NULL;
}

static void sidecar_teardown(sidecar *sc) {
  struct event **evs[] = {
      &sc->probe_ev,   &sc->start_timeout_ev, &sc->rss_ev,    &sc->retry_ev,
      &sc->sigchld_ev, &sc->sigterm_ev,       &sc->sigint_ev, &sc->exit_ev,
      &sc->stop_ev,    &sc->hook_ev};
  size_t i;
  if (sc->child.pid > 0 && !sc->child.exited) {
    kill(sc->child.pid, SIGKILL);
    waitpid(sc->child.pid, NULL, 0);
    sc__child_forget_jit_map(&sc->child);
  }
  sc->hook = NULL;
  while (!TAILQ_EMPTY(&sc->calls)) /* answers 503, upstream freed below */
    sc__call_finish(TAILQ_FIRST(&sc->calls));
  if (sc->base) {
    sc__agent_destroy(&sc->agent_ctl); /* before the exporter it feeds */
    sc__exporter_stop(&sc->exporter);
  }
  sc__proxy_release(sc);
  sc__logcap_stop(sc);
  sc__proc_close(&sc->child);
  for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
    free_event(evs[i]);
  if (sc->base)
    event_base_free(sc->base);
  sc__records_destroy(&sc->records);
  free(sc->agent);
}

int sidecar_run(const sidecar_config *cfg, int *exit_code, fnp_error *err) {
  sidecar *sc;
  int rc;
  *exit_code = 1;
  if (cfg->argv == NULL || cfg->argv[0] == NULL)
    return fnp_fail(err, FNP_EUSAGE, "no bootstrap command");
  sc = calloc(1, sizeof(*sc));
  if (sc == NULL)
    return fnp_fail(err, -ENOMEM, "out of memory");
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is not our death */
  /* libevent's locking stays off: only the loop thread touches it (the
   * worker threads' news comes through wakeup.c). */
  if (curl_global_init(CURL_GLOBAL_ALL) != 0) {
    free(sc);
    return fnp_fail(err, -ENOMEM, "libevent/libcurl init failed");
  }
  rc = sidecar_init(sc, cfg, err);
  if (rc == 0)
    rc = start_function(sc, err);
  if (rc == 0 && event_base_dispatch(sc->base) < 0)
    rc = fnp_fail(err, -EIO, "event loop failed");
  *exit_code = sc->exit_code;
  sidecar_teardown(sc);
  free(sc);
  curl_global_cleanup();
  return rc;
}
