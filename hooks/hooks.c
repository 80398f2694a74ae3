/*
 * hooks.c - the platform's lifecycle hooks, answered by the sidecar itself.
 *
 * GET /pre-freeze: forward to the function (404 means it has no hook), then
 * collect from the agent (metrics, spike reports, the inuse profile; at most
 * half the budget), then flush the export buffer through the export thread,
 * answering 200 when every sink acknowledged or when the budget (counted
 * from the function's answer) runs out, whichever comes first. The
 * instance may be SIGSTOPped the moment the answer leaves; whatever was not
 * acknowledged stays buffered and a retry timer (which cannot fire while
 * frozen) sends it after the thaw from the same offset: once.
 *
 * Thaw: the platform says nothing when it thaws an instance, so the first
 * request after /pre-freeze was answered (an invocation, an HTTP request,
 * /initialize, or /pre-stop, which a frozen instance cannot receive either)
 * records it: one {"kind":"instance","event":"thaw"} per freeze, with the
 * time the request arrived and how long the instance was frozen since the
 * answer. A repeated /pre-freeze is the same freeze asked again: not a
 * thaw, and the thaw after it counts from the later answer.
 *
 * GET /pre-stop: forward, collect the final and alloc profiles and metrics
 * from the agent (within the budget, while the function still lives),
 * SIGTERM the function, SIGKILL after the grace period, read its last
 * output, final instance record, flush within the budget, answer 200, exit
 * 0. Invocations arriving meanwhile get 503.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "internal.h"

/* Retry cadence for data left over after a failed flush. */
#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS 30000

static void ms_to_tv(int64_t ms, struct timeval *tv) {
  tv->tv_sec = (time_t)(ms / 1000);
  tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void answer_hook(sidecar *sc, int flushed) {
  sc_call *call = sc->hook;
  struct evbuffer *body = evbuffer_new();
  if (call == NULL)
    return;
  sc->hook = NULL;
  if (sc->hook_ev)
    evtimer_del(sc->hook_ev);
  if (call->req && body &&
      evbuffer_add_printf(
          body,
          "{\"flushed\":%s,\"pending_bytes\":%llu,"
          "\"function_hook_status\":%d}\n",
          flushed ? "true" : "false",
          (unsigned long long)sc__exporter_pending(&sc->exporter),
          sc->hook_fn_status) >= 0) {
    sc__hdr_add_str(sc__req_out_headers(call->req), "Content-Type",
                    "application/json");
    sc__req_reply(call->req, 200, "OK", body);
    call->req = NULL;
  }
  call->status = 200;
  if (body)
    evbuffer_free(body);
  sc__call_finish(call);
}

static void retry_done(void *arg, int rc) {
  sidecar *sc = arg;
  if (rc == 0) {
    sc->retry_ms = 0;
    return;
  }
  sc__flush_retry_arm(sc);
}

static void retry_fire(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  (void)fd;
  (void)what;
  if (sc->hook || sc->state == SC_DEAD || sc->state == SC_STOPPING)
    return; /* the hook's or the final flush covers it */
  sc__exporter_flush(&sc->exporter,
                     sc__mono_ns() + sc->cfg->freeze_budget_ms * 1000000,
                     retry_done, sc);
}

void sc__flush_retry_arm(sidecar *sc) {
  struct timeval tv;
  if (sc->retry_ev == NULL)
    sc->retry_ev = evtimer_new(sc->base, retry_fire, sc);
  if (sc->retry_ev == NULL)
    return;
  sc->retry_ms = sc->retry_ms ? sc->retry_ms * 2 : RETRY_FIRST_MS;
  if (sc->retry_ms > RETRY_MAX_MS)
    sc->retry_ms = RETRY_MAX_MS;
  ms_to_tv(sc->retry_ms, &tv);
  evtimer_add(sc->retry_ev, &tv);
}

static void freeze_flushed(void *arg, int rc) {
  sidecar *sc = arg;
  if (sc->hook) /* the answer leaves now: frozen from here on */
    sc->frozen_at_ns = sc__realtime_ns();
  answer_hook(sc, rc == 0);
  if (rc < 0)
    sc__flush_retry_arm(sc);
}

static void hook_timer(evutil_socket_t fd, short what, void *arg);

void sc__hook_thawed(sidecar *sc, int64_t now_ns, const char *by) {
  int64_t frozen = now_ns - sc->frozen_at_ns;
  char line[512];
  int n;
  if (sc->frozen_at_ns == 0)
    return;
  sc->frozen_at_ns = 0;
  n = snprintf(line, sizeof(line),
               "{\"kind\":\"instance\",\"event\":\"thaw\",\"time_ns\":%lld,"
               "\"instance\":\"%s\",\"frozen_ns\":%lld,\"freezes\":%llu,"
               "\"thawed_by\":\"%s\"}",
               (long long)now_ns, sc->instance_id,
               (long long)(frozen > 0 ? frozen : 0),
               (unsigned long long)sc->stats.freezes, by);
  if (n > 0 && (size_t)n < sizeof(line))
    sc__records_add(&sc->records, line, (size_t)n);
  else
    sc__records_drop(&sc->records);
}

static int64_t budget_ns(sidecar *sc) {
  return sc->cfg->freeze_budget_ms * 1000000;
}

/* Flushes what is buffered; answers by the deadline at the latest. */
static void flush_then_answer(sidecar *sc, sc_flush_cb cb, int64_t deadline) {
  int64_t left_ms = (deadline - sc__mono_ns()) / 1000000;
  struct timeval tv;
  sc__logcap_drain(sc);
  sc__logcap_flush(sc); /* held platform lines out before the freeze */
  sc__record_instance(sc, sc->state == SC_STOPPING ? "pre-stop" : "pre-freeze");
  sc__records_note_drops(&sc->records, sc->cfg->instance_id);
  sc__exporter_flush(&sc->exporter, deadline, cb, sc);
  ms_to_tv(left_ms > 0 ? left_ms : 0, &tv);
  evtimer_add(sc->hook_ev, &tv);
}

static void freeze_collected(void *arg) {
  sidecar *sc = arg;
  if (sc->hook == NULL)
    return; /* the budget ran out first and answered; the retry sends it */
  flush_then_answer(sc, freeze_flushed, sc->hook_deadline_ns);
}

static void freeze_fn_done(sc_call *call, int status) {
  sidecar *sc = call->sc;
  struct timeval tv;
  sc->hook_fn_status = status;
  sc->hook_deadline_ns = sc__mono_ns() + budget_ns(sc);
  ms_to_tv(sc->cfg->freeze_budget_ms, &tv);
  evtimer_add(sc->hook_ev, &tv);
  sc__agent_collect(&sc->agent_ctl, SC_AGENT_FREEZE,
                    sc__mono_ns() + budget_ns(sc) / 2, freeze_collected, sc);
}

static int hook_begin(sidecar *sc, sc_req *req, int forward,
                      void (*fn_done)(sc_call *, int)) {
  sc_call *call;
  if (sc->hook_ev == NULL)
    sc->hook_ev = evtimer_new(sc->base, hook_timer, sc);
  if (sc->hook || sc->hook_ev == NULL) {
    sc__reply_error(req, 503, "ConcurrentHook",
                    "a lifecycle hook is already running");
    return -1;
  }
  call = sc__call_new(sc, req, SC_HOOK);
  if (call == NULL) {
    sc__reply_error(req, 503, "ResourceExhausted", "out of memory");
    return -1;
  }
  call->hook_done = fn_done;
  sc->hook = call;
  sc->hook_fn_status = 0;
  if (forward && sc__proxy_forward(call, sc__req_uri(req)) == 0)
    return 0;
  fn_done(call, 0); /* no function to ask */
  return 0;
}

/* After the function died the sidecar is on its way out (final flush
 * running, exit code set): hooks get an error rather than a second flush. */
static int refuse_when_dead(sidecar *sc, sc_req *req) {
  if (sc->state != SC_DEAD && !sc->finishing)
    return 0;
  sc__reply_error(req, 503, "FunctionExited",
                  "the function has exited; the instance is going away");
  return -1;
}

void sc__hook_pre_freeze(sidecar *sc, sc_req *req) {
  if (refuse_when_dead(sc, req) < 0)
    return;
  sc->stats.freezes++;
  if (sc->retry_ev)
    evtimer_del(sc->retry_ev);
  sc->retry_ms = 0;
  (void)hook_begin(sc, req, sc->state == SC_READY, freeze_fn_done);
}

static void stop_flushed(void *arg, int rc) {
  sidecar *sc = arg;
  answer_hook(sc, rc == 0);
  sc__finish(sc, 0);
}

/* Budget over (flush) or grace over (the function ignores SIGTERM). */
static void hook_timer(evutil_socket_t fd, short what, void *arg) {
  sidecar *sc = arg;
  (void)fd;
  (void)what;
  if (sc->state == SC_STOPPING && !sc->child.exited) {
    kill(sc->child.pid, SIGKILL); /* sc__hook_stop_exited follows */
    return;
  }
  /* The flush (or the collect) goes on in its thread; its callback must
   * not answer a later hook. */
  sc__exporter_forget_cb(&sc->exporter);
  sc__agent_forget_cb(&sc->agent_ctl);
  if (sc->state == SC_STOPPING)
    return stop_flushed(sc, -ETIMEDOUT);
  freeze_flushed(sc, -ETIMEDOUT);
}

void sc__hook_stop_exited(sidecar *sc) {
  if (sc->hook)
    flush_then_answer(sc, stop_flushed, sc__mono_ns() + budget_ns(sc));
}

/* The agent's last words are in (or its budget is over): stop it. */
static void stop_collected(void *arg) {
  sidecar *sc = arg;
  struct timeval tv;
  if (sc->hook == NULL || sc->child.exited)
    return; /* it exited meanwhile: sc__hook_stop_exited took over */
  kill(sc->child.pid, SIGTERM);
  ms_to_tv(sc->cfg->stop_grace_ms, &tv);
  evtimer_add(sc->hook_ev, &tv);
}

static void stop_fn_done(sc_call *call, int status) {
  sidecar *sc = call->sc;
  sc->hook_fn_status = status;
  if (sc->child.exited)
    return sc__hook_stop_exited(sc);
  sc__agent_collect(&sc->agent_ctl, SC_AGENT_STOP,
                    sc__mono_ns() + budget_ns(sc), stop_collected, sc);
}

void sc__hook_pre_stop(sidecar *sc, sc_req *req) {
  int ready = sc->state == SC_READY;
  if (refuse_when_dead(sc, req) < 0)
    return;
  if (sc->hook)
    return sc__reply_error(req, 503, "ConcurrentHook",
                           "a lifecycle hook is already running");
  sc__hook_thawed(sc, sc__realtime_ns(), "pre-stop");
  sc->state = SC_STOPPING; /* new invocations: 503 from here on */
  (void)hook_begin(sc, req, ready, stop_fn_done);
}
