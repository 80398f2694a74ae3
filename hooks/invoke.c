/*
 * invoke.c - one request's life on the sidecar's side: its id and kind, the
 * platform's Start/End log lines, the execution summary (duration, billed
 * duration, memory limit, max memory used) and the invocation's metrics
 * record, and telling the agent (agent_ctl.c) when it starts and ends.
 * Proxying is proxy.c's; crashes are sidecar.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/keyvalq_struct.h>

#include "internal.h"

/* FC bills in 1 ms steps. */
#define BILLING_STEP_NS 1000000

/* Request ids appear in log lines: anything that could forge a line (or a
 * field) becomes '_'. */
static void copy_id(char *dst, const char *src) {
  size_t i;
  for (i = 0; src[i] && i < SC_REQID_MAX - 1; i++)
    dst[i] = (src[i] > ' ' && src[i] < 0x7f && src[i] != '"') ? src[i] : '_';
  dst[i] = '\0';
}

sc_call *sc__call_new(sidecar *sc, sc_req *req, enum sc_kind kind) {
  static unsigned long long seq;
  static pid_t pid; /* ours, for generated ids; the sidecar never forks on */
  struct evkeyvalq *h = sc__req_in_headers(req);
  const char *id = sc__hdr_find(h, "x-fc-request-id");
  const char *mem = sc__hdr_find(h, "x-fc-function-memory");
  sc_call *call = calloc(1, sizeof(*call));
  char gen[64];
  if (call == NULL)
    return NULL;
  call->sc = sc;
  call->req = req;
  call->kind = kind;
  call->upstream_err = 0;
  if (id == NULL || *id == '\0') {
    if (pid == 0)
      pid = getpid();
    /* "fnprof-PID-SEQ", by hand (printf here was a visible share of a
     * request's user time when no id comes with it). */
    char *e = gen + 7;
    memcpy(gen, "fnprof-", 7);
    e += fnp_i64_text(pid, e);
    *e++ = '-';
    fnp_i64_text((int64_t)++seq, e);
    id = gen;
  }
  copy_id(call->request_id, id);
  call->memory_mb = mem ? atoi(mem) : 0;
  call->start_ns = sc__realtime_ns();
  call->start_mono_ns = sc__mono_ns();
  TAILQ_INSERT_TAIL(&sc->calls, call, link);
  sc->n_calls++;
  return call;
}

/* The one request the function is working on, if there is exactly one
 * (held requests have not reached it yet). */
const char *sc__call_single_id(sidecar *sc) {
  const char *id = NULL;
  sc_call *call;
  TAILQ_FOREACH(call, &sc->calls, link) {
    if (call->held)
      continue;
    if (id)
      return NULL;
    id = call->request_id;
  }
  return id;
}

static const char *call_kind_name(enum sc_kind kind) {
  return kind == SC_INITIALIZE ? "initialize"
         : kind == SC_HTTP     ? "http"
                               : "invoke";
}

static const char *kind_word(enum sc_kind kind) {
  return kind == SC_INITIALIZE ? "Initialize" : "Invoke";
}

/* A platform line made by appends, not printf: three per invocation were
 * the largest user-space cost of a proxied request (perf, concurrency 8).
 * Cut at the buffer's end, with room kept for the newline. */
typedef struct pline {
  char s[512];
  size_t n;
} pline;

static void put(pline *l, const char *s) {
  size_t k = strlen(s), room = sizeof(l->s) - 2 - l->n;
  memcpy(l->s + l->n, s, k < room ? k : room);
  l->n += k < room ? k : room;
}

static void put_i64(pline *l, int64_t v) {
  char d[24];
  fnp_i64_text(v, d);
  put(l, d);
}

/* v / den with two decimals, rounded half up (v >= 0). */
static void put_fixed2(pline *l, int64_t v, int64_t den) {
  int64_t h = (v * 100 + den / 2) / den;
  char d[4] = {'.', (char)('0' + h % 100 / 10), (char)('0' + h % 10), '\0'};
  put_i64(l, h / 100);
  put(l, d);
}

/* "FC <Kind> <what> RequestId: <id>" */
static void put_head(pline *l, const sc_call *call, const char *what) {
  put(l, "FC ");
  put(l, kind_word(call->kind));
  put(l, what);
  put(l, call->request_id);
}

void sc__call_start(sc_call *call) {
  sidecar *sc = call->sc;
  if (call->kind == SC_HOOK)
    return;
  sc__hook_thawed(sc, call->start_ns, call_kind_name(call->kind));
  if (call->kind == SC_INITIALIZE)
    sc->stats.initializations++;
  else
    sc->stats.invocations++;
  pline l = {.n = 0};
  put_head(&l, call, " Start RequestId: ");
  sc__log_platform_line(sc, call->request_id, l.s, l.n);
  if (sc->child.exited)
    return;
  /* Not awaited: the agent labels samples once it has read the line. */
  sc__agent_invocation_start(&sc->agent_ctl, call->request_id,
                             sc->n_calls == 1);
  /* Alone on the instance: the peak from here on is this invocation's,
   * reset once the request is on its way (sc__proxy_dispatch). The RSS
   * now is not read (a system call per invocation): right after the
   * reset the peak equals it, and with calls overlapping the peak since
   * the first one's reset is at least it, so the VmHWM read at the end
   * covers it either way. A function that dies before any read gets its
   * peak from wait4 (sidecar.c). */
  if (sc->n_calls == 1)
    sc->hwm_reset_due = 1;
  sc__rss_sample(sc);
}

void sc__calls_raise_peak(sidecar *sc, int64_t peak_bytes) {
  sc_call *call;
  TAILQ_FOREACH(call, &sc->calls, link) {
    if (peak_bytes > call->max_rss)
      call->max_rss = peak_bytes;
  }
}

/* The newest invocation other than call still in flight, NULL when none.
 * (Hooks do not count: the platform freezes an instance only when its
 * invocations are done.) Calls are in arrival order: looked for from the
 * newest end, usually the first one looked at. */
static const char *newest_other(const sc_call *call) {
  const sc_call *c;
  TAILQ_FOREACH_REVERSE(c, &call->sc->calls, sc_call_list, link) {
    if (c != call && c->kind != SC_HOOK)
      return c->request_id;
  }
  return NULL;
}

/* other: newest_other(call), found once by sc__call_finish. */
static int metrics_record(sc_call *call, int64_t dur_ns, const char *other) {
  sidecar *sc = call->sc;
  fnp_buf b;
  int rc;
  const char *inst = sc->cfg->instance_id;
  fnp_buf_init(&b, 2048);
  /* Appends, not printf (one record per request); the ids escaped (a
   * request id may hold a backslash). */
  rc = fnp_buf_append_str(&b, "{\"kind\":\"invocation\",\"time_ns\":");
  rc |= fnp_buf_append_i64(&b, call->start_ns);
  rc |= fnp_buf_append_str(&b, ",\"instance\":");
  rc |= sc__json_str(&b, inst, strnlen(inst, 128));
  rc |= fnp_buf_append_str(&b, ",\"request_id\":");
  rc |= sc__json_str(&b, call->request_id, strlen(call->request_id));
  rc |= fnp_buf_append_str(&b, ",\"type\":\"");
  rc |= fnp_buf_append_str(&b, call_kind_name(call->kind));
  rc |= fnp_buf_append_str(&b, "\",\"duration_ns\":");
  rc |= fnp_buf_append_i64(&b, dur_ns);
  rc |= fnp_buf_append_str(&b, ",\"status\":");
  rc |= fnp_buf_append_i64(&b, call->status);
  rc |= fnp_buf_append_str(&b, ",\"error_type\":\"");
  rc |= fnp_buf_append_str(&b, call->error_type ? call->error_type : "");
  rc |= fnp_buf_append_str(&b, "\",\"bytes_in\":");
  rc |= fnp_buf_append_i64(&b, (int64_t)call->bytes_in);
  rc |= fnp_buf_append_str(&b, ",\"bytes_out\":");
  rc |= fnp_buf_append_i64(&b, (int64_t)call->bytes_out);
  rc |= fnp_buf_append_str(&b, ",\"max_rss_bytes\":");
  rc |= fnp_buf_append_i64(&b, call->max_rss);
  rc |= fnp_buf_append_str(&b, ",\"memory_mb\":");
  rc |= fnp_buf_append_i64(&b, call->memory_mb);
  if (rc == 0)
    rc = fnp_buf_append(&b, "", 1);
  /* Without its '}': the agent thread adds the heap before/after (or just
   * closes it when there is no agent). */
  if (rc == 0)
    sc__agent_invocation_end(&sc->agent_ctl, call->request_id,
                             (char *)fnp_buf_steal(&b, NULL), other);
  else
    sc__records_drop(&sc->records);
  fnp_buf_destroy(&b);
  return rc;
}

static void summary(sc_call *call, const char *other) {
  sidecar *sc = call->sc;
  int64_t dur = call->end_mono_ns - call->start_mono_ns;
  int64_t billed = (dur + BILLING_STEP_NS - 1) / BILLING_STEP_NS;
  pline l = {.n = 0};
  put_head(&l, call, " End RequestId: ");
  sc__log_platform_line(sc, call->request_id, l.s, l.n);
  l.n = 0;
  put_head(&l, call, " Summary RequestId: ");
  put(&l, " Duration: ");
  put_fixed2(&l, dur, 1000000);
  put(&l, " ms, Billed Duration: ");
  put_i64(&l, billed);
  put(&l, " ms, Memory Size: ");
  put_i64(&l, call->memory_mb);
  put(&l, " MB, Max Memory Used: ");
  put_fixed2(&l, call->max_rss > 0 ? call->max_rss : 0, 1024 * 1024);
  put(&l, " MB");
  sc__log_platform_line(sc, call->request_id, l.s, l.n);
  (void)metrics_record(call, dur, other);
}

/* Peak RSS since the start (or since an overlapping call's start). With
 * other invocations still running the peak is theirs too and is read at
 * most every SC_HWM_SHARED_NS (each read is a system call; at thousands of
 * overlapping invocations a second one per end); alone, always. */
#define SC_HWM_SHARED_NS ((int64_t)1000000)
static void take_peak(sc_call *call, const char *other) {
  sidecar *sc = call->sc;
  int64_t rss, hwm, now = sc__mono_ns();
  int fresh = now - sc->last_hwm_ns < SC_HWM_SHARED_NS;
  if (!sc->child.exited && !(fresh && other) &&
      sc__proc_mem(&sc->child, &rss, &hwm) == 0) {
    sc->last_hwm = hwm;
    sc->last_hwm_ns = now;
  }
  if (sc->last_hwm > call->max_rss)
    call->max_rss = sc->last_hwm;
}

void sc__call_finish(sc_call *call) {
  sidecar *sc = call->sc;
  if (call->req) /* never answered: the sidecar is going away */
    sc__reply_error(call->req, 503, "ServiceUnavailable",
                    "the instance is shutting down");
  call->req = NULL;
  if (call->end_mono_ns == 0) /* forward_response may have set it */
    call->end_mono_ns = sc__mono_ns();
  if (call->answered) /* the function's lines first, then End */
    sc__logcap_answered(sc);
  else
    sc__logcap_drain(sc);
  const char *other = newest_other(call);
  take_peak(call, other);
  if (call->kind != SC_HOOK) {
    if (call->error_type || call->status >= 500)
      sc->stats.errors++;
    sc->stats.bytes_in += call->bytes_in;
    sc->stats.bytes_out += call->bytes_out;
    summary(call, other);
    /* Start, End and Summary in one write, or, while other invocations
     * run, with theirs (at most 20 ms later, logcap.c): one write per
     * invocation was one system call of about fifteen. Idle, nothing
     * waits: the platform may freeze the instance right now. */
    if (other == NULL)
      sc__logcap_flush(sc);
  }
  if (call->held)
    TAILQ_REMOVE(&sc->held, call, hold_link);
  TAILQ_REMOVE(&sc->calls, call, link);
  sc->n_calls--;
  if (call->timer)
    event_free(call->timer);
  free(call);
}
