/*
 * agent_chan.c - the invocation channel: one connection to the agent's
 * control socket, kept open by the loop, on which each invocation's
 * `invocation-start <id>` and `invocation-end <id>` are written as they
 * happen, without waiting. The agent serves several connections and
 * answers each in order, so the answers, read in batches (below), are
 * matched to the requests in a queue. An end's answer is "<cycle>
 * <live_bytes>", the heap after the invocation; it completes the
 * invocation's record (heap before = the previous end's). When the agent
 * cannot tell (-1: not glibc underneath) the record waits for a `metrics`
 * asked right then.
 *
 * Nothing on a request's path waits for the agent: before, each invocation
 * opened two connections and was held until the agent had answered both
 * (+200 us of p50 at concurrency 1). The agent hears of an invocation a
 * few microseconds after the function may have started on it; a sample
 * taken in between carries the previous label, and the spike report names
 * requests from the invocation ends as well (agent/spike.c).
 *
 * Every kernel entry counts (on a paravirtualized VM about half the
 * sidecar's CPU is spent entering the kernel), so the hot path makes as
 * few as it can: a start is `invocation-start-quiet` once the agent said
 * it serves it (`features`, asked when the channel opens), which the agent
 * does not answer; and the channel is not watched by the loop: answers are
 * read in batches, by a timer CHAN_LATE_READ_MS after an end, by a start
 * that finds CHAN_READ_BATCH of them due, before a collect (which then
 * watches the channel until its answers are in) and before a last flush.
 * Watching it cost a wake-up and a read per answer. Nothing needs an
 * invocation's record sooner: records leave at the hooks' flushes. Lines
 * wait in chan_out until the loop has done the rest of its turn
 * (chan_flush_ev runs after the callbacks already queued), so the ends of
 * several invocations, and a start after them, reach the agent in one
 * send and wake its thread once; a start goes at once, with whatever
 * waits before it, since the agent labels samples from when it reads it.
 *
 * With an agent that maps the invocation page (agent_page.c, fnprof.h;
 * `features` says so), most of that leaves the socket:
 *   - a start is only the label written into the page: no line, and the
 *     agent's thread is not woken (samples read the label themselves);
 *   - an end is `invocation-end-page <seq> <id>`, answered in the page's
 *     ring, read from memory (page_reap); a start that must wait for it
 *     sleeps on a futex the agent wakes only for the end awaited;
 *   - only an end alone on the instance is sent at once and waited for;
 *     ends of overlapping invocations wait for the late timer or a batch
 *     of CHAN_BATCH_MAX, and a batch is one line (the newest id) with one
 *     answer for all its records: the agent ends one cycle for the lines
 *     of a batch anyway, their heap after being each other's;
 *   - an invocation alone from start to end during which the agent took
 *     no sample (the page's sample_events did not move) is not ended at
 *     all, unless the agent asks for every cycle (cycles_wanted): its
 *     record keeps the heap as it was.
 *
 * Collects (agent_ctl.c) use their own connections; one asked for while
 * the channel still awaits answers waits for them (bounded), so a freeze
 * sees the cycle of the invocation that just ended.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* An answer's payload at most: metrics JSON (the others are short). */
#define CHAN_ANSWER_MAX_BYTES (4u << 20)
/* How long a collect waits for the channel's answers. */
#define CHAN_COLLECT_WAIT_MS 100
/* After the channel could not be opened (no agent socket: a static binary,
 * an agent that failed to start), the next try waits this long. */
#define CHAN_RETRY_MS 1000
/* An end's answer not picked up by a start by then is read by a timer: an
 * idle instance's last record is complete soon, and under load this is a
 * wake-up per CHAN_LATE_READ_MS, not per invocation. */
#define CHAN_LATE_READ_MS 10
/* How long an invocation alone waits for the previous one's end to be
 * answered (chan_wait_answers). */
#define CHAN_START_WAIT_MS 50
/* A start reads the answers when this many are due (their bytes wait in
 * the socket meanwhile, ~20 each): one read for a batch, not for each. */
#define CHAN_READ_BATCH 32
/* What `features` answers when the agent serves quiet starts, and when it
 * answers ends in the invocation page. */
#define CHAN_QUIET_FEATURE "invocation-start-quiet"
#define CHAN_PAGE_FEATURE "invocation-end-page"
/* Ends of overlapping invocations put off for the late timer, at most:
 * then their batch goes at the end of the loop's turn. */
#define CHAN_BATCH_MAX 64
/* Lines waiting for the end of the loop's turn, at most (~30 bytes each:
 * reached only by thousands of invocations ending in one turn). */
#define CHAN_OUT_MAX_BYTES 65536

static void chan_read(evutil_socket_t fd, short what, void *arg);
static void batch_close(sc_agent *a);

static void pend_free(sc_agent_pend *p) {
  free(p->record);
  for (size_t i = 0; i < p->n_more; i++)
    free(p->more[i]);
  free(p->more);
  free(p);
}

/* The loop reads the channel as answers arrive (watch) or not (unwatch:
 * the hot path, see above). */
static void chan_watch(sc_agent *a, int on) {
  if (a->chan_ev == NULL || a->chan_watched == on)
    return;
  if (on ? event_add(a->chan_ev, NULL) == 0 : event_del(a->chan_ev) == 0)
    a->chan_watched = on;
}

/* The collect that waited for the channel runs now. */
static void run_waiting_collect(sc_agent *a) {
  if (!a->collect_waiting)
    return;
  a->collect_waiting = 0;
  chan_watch(a, 0);
  if (a->chan_wait_ev)
    evtimer_del(a->chan_wait_ev);
  sc__agent_collect_now(a, a->wait_kind, a->wait_deadline_ns, a->wait_cb,
                        a->wait_arg);
}

/* failures or skipped, which the loop's metrics read under the lock. */
static void count(sc_agent *a, uint64_t *counter) {
  pthread_mutex_lock(&a->lock);
  (*counter)++;
  pthread_mutex_unlock(&a->lock);
}

/* Completes p's records (a batch has several) with the heap after them
 * (-1: unknown, then they go out without heap numbers); the next record
 * starts from it. */
static void pend_finish(sc_agent *a, sc_agent_pend *p, int64_t after) {
  sc__agent_finish_record(a, p->record, a->heap_last, after);
  if (after >= 0)
    a->heap_last = after;
  for (size_t i = 0; i < p->n_more; i++)
    sc__agent_finish_record(a, p->more[i], a->heap_last, after);
  p->record = NULL;
  p->n_more = 0;
}

/* A request whose answer will not come. */
static void pend_drop(sc_agent *a, sc_agent_pend *p) {
  pend_finish(a, p, -1);
  pend_free(p);
}

static void pends_drop(sc_agent *a, struct sc_agent_pends *list, size_t *n) {
  sc_agent_pend *p;
  while ((p = STAILQ_FIRST(list)) != NULL) {
    STAILQ_REMOVE_HEAD(list, link);
    pend_drop(a, p);
  }
  *n = 0;
}

void sc__agent_chan_close(sc_agent *a) {
  if (a->chan_ev)
    event_free(a->chan_ev);
  a->chan_ev = NULL;
  a->chan_watched = 0;
  a->chan_quiet = 0;           /* asked again on the next channel */
  fnp_buf_reset(&a->chan_out); /* lines for a connection that is gone */
  if (a->chan_late_ev)
    evtimer_del(a->chan_late_ev);
  if (a->chan_fd >= 0)
    close(a->chan_fd);
  a->chan_fd = -1;
  fnp_buf_reset(&a->chan_in);
  pends_drop(a, &a->pending, &a->n_pending);
  a->page_on = 0; /* asked again too */
  a->page_alone_seq = 0;
  pends_drop(a, &a->page_pend, &a->n_page_pend);
  if (a->batch)
    pend_drop(a, a->batch);
  a->batch = NULL;
  run_waiting_collect(a);
}

/* The channel failed (the agent is gone, or said something else than the
 * protocol): records still waiting go out without heap numbers. */
static void chan_fail(sc_agent *a, int rc) {
  /* No socket at all is "no agent", and the function closing it at exit
   * is no failure either. */
  if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -ECONNRESET)
    count(a, &a->failures);
  sc__agent_chan_close(a);
}

static int chan_open(sc_agent *a) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->sock);
  /* A unix connect completes or fails at once (EAGAIN: backlog full). */
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  /* Not added: see the top of the file. */
  a->chan_ev = event_new(a->base, fd, EV_READ | EV_PERSIST, chan_read, a);
  if (a->chan_ev == NULL) {
    close(fd);
    return -ENOMEM;
  }
  a->chan_fd = fd;
  return 0;
}

static int chan_ask(sc_agent *a, const char *line, int kind, char *record);

/* A fresh channel first asks whether the agent serves quiet starts, then
 * learns the heap (the next record's before) unless that is what the
 * caller asks anyway. */
static int chan_greet(sc_agent *a, int kind) {
  int rc = chan_ask(a, "features\n", SC_PEND_FEATURES, NULL);
  if (rc == 0 && kind != SC_PEND_METRICS)
    rc = chan_ask(a, "metrics\n", SC_PEND_METRICS, NULL);
  return rc;
}

/* Sends the lines waiting in chan_out. Short lines on a unix socket with
 * room go whole; no room means the agent stopped reading (> 200 KiB of
 * requests unanswered): the channel fails. */
static int chan_flush(sc_agent *a) {
  batch_close(a);
  size_t n = a->chan_out.len;
  ssize_t w;
  if (n == 0 || a->chan_fd < 0)
    return 0;
  w = send(a->chan_fd, a->chan_out.data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  fnp_buf_reset(&a->chan_out);
  if (w == (ssize_t)n)
    return 0;
  chan_fail(a, -EIO);
  return -EIO;
}

static void chan_flush_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)chan_flush(arg);
}

/* Sends chan_out once the loop has run the callbacks queued before this
 * one (the same priority, so the same turn); at once when it cannot. */
static void chan_flush_soon(sc_agent *a) {
  if (a->chan_flush_ev == NULL)
    a->chan_flush_ev = event_new(a->base, -1, 0, chan_flush_cb, a);
  if (a->chan_flush_ev)
    event_active(a->chan_flush_ev, EV_WRITE, 0);
  else
    (void)chan_flush(a);
}

/* Adds a line to chan_out (sent by chan_flush), after the open batch's. */
static int chan_queue(sc_agent *a, const char *line) {
  size_t n = strlen(line);
  batch_close(a);
  if (a->chan_out.len + n > CHAN_OUT_MAX_BYTES && chan_flush(a) < 0)
    return -EIO;
  return fnp_buf_append(&a->chan_out, line, n) < 0 ? -ENOMEM : 0;
}

/* Writes a line the agent does not answer (nothing to queue for). */
static void chan_say(sc_agent *a, const char *line) {
  if (chan_queue(a, line) == 0)
    (void)chan_flush(a);
}

static sc_agent_pend *pend_new(sc_agent *a, char *record);

/* Writes one request line and queues p, what its answer completes (taken,
 * also on failure: then its records go out without heap numbers; NULL:
 * out of memory). */
static int chan_ask_pend(sc_agent *a, const char *line, int kind,
                         sc_agent_pend *p) {
  int rc = 0;
  if (p == NULL) {
    rc = -ENOMEM;
  } else if (a->n_pending >= SC_AGENT_PENDING_MAX) {
    count(a, &a->skipped);
    rc = -EAGAIN;
  } else if (a->chan_fd < 0 && sc__mono_ns() < a->chan_retry_ns) {
    rc = -ECONNREFUSED; /* failed a moment ago: not on every invocation */
  } else if (a->chan_fd < 0) {
    rc = chan_open(a);
    if (rc == 0 && kind != SC_PEND_FEATURES)
      rc = chan_greet(a, kind);
    if (rc < 0) {
      chan_fail(a, rc);
      a->chan_retry_ns = sc__mono_ns() + (int64_t)CHAN_RETRY_MS * 1000000;
    }
  }
  if (rc == 0)
    rc = chan_queue(a, line);
  if (rc < 0) {
    if (p)
      pend_drop(a, p);
    return rc;
  }
  p->kind = kind;
  STAILQ_INSERT_TAIL(&a->pending, p, link);
  a->n_pending++;
  chan_flush_soon(a);
  return 0;
}

/* The same for one record (or none). */
static int chan_ask(sc_agent *a, const char *line, int kind, char *record) {
  return chan_ask_pend(a, line, kind, pend_new(a, record));
}

/* An end answered (on the socket or in the page) for p's records: live is
 * the heap after it. An allocator that cannot tell (-1, not glibc) leaves
 * them to the agent's estimate: p goes on as the one metrics request for
 * all of them (1: taken). Else p is done with and the caller frees it. */
static int end_answered(sc_agent *a, sc_agent_pend *p, int ok, int64_t live) {
  if (ok && live < 0) {
    (void)chan_ask_pend(a, "metrics\n", SC_PEND_METRICS, p);
    return 1;
  }
  pend_finish(a, p, ok ? live : -1);
  return 0;
}

/* One answer, for the oldest request. ok: "ok" (else "err"). */
static void chan_answer(sc_agent *a, int ok, const char *payload) {
  sc_agent_pend *p = STAILQ_FIRST(&a->pending);
  long long cycle, live = -1;
  if (p == NULL)
    return;
  STAILQ_REMOVE_HEAD(&a->pending, link);
  a->n_pending--;
  if (p->kind == SC_PEND_FEATURES) {
    /* err: an older agent, which answers every start. */
    a->chan_quiet = ok && strstr(payload, CHAN_QUIET_FEATURE) != NULL;
    a->page_on = ok && a->page.p && strstr(payload, CHAN_PAGE_FEATURE) != NULL;
    ok = 1;
  } else if (p->kind == SC_PEND_END) {
    if (ok && sscanf(payload, "%lld %lld", &cycle, &live) != 2)
      live = -1;
    if (end_answered(a, p, ok, live))
      return; /* asked on as metrics (ok: nothing to count) */
  } else if (p->kind == SC_PEND_METRICS) {
    pend_finish(a, p, ok ? sc__agent_metrics_heap(payload) : -1);
  }
  if (!ok)
    count(a, &a->failures);
  pend_free(p);
}

/* The answers in the page so far, in order, complete their records. */
static void page_reap(sc_agent *a) {
  sc_agent_pend *p;
  int64_t live = -1;
  while ((p = STAILQ_FIRST(&a->page_pend)) != NULL) {
    int got = sc__page_answer(&a->page, p->seq, &live);
    if (got == 0)
      break;
    STAILQ_REMOVE_HEAD(&a->page_pend, link);
    a->n_page_pend--;
    if (got < 0)
      count(a, &a->failures); /* its slot was reused before we looked */
    if (!end_answered(a, p, got > 0, live))
      pend_free(p);
  }
}

/* Parses whole answers ("ok N\n" or "err N\n", then N bytes) off the
 * buffer; -1 when the bytes are not the protocol. */
static int chan_parse(sc_agent *a) {
  fnp_buf *in = &a->chan_in;
  size_t used = 0;
  int rc = 0;
  for (;;) {
    char *p = (char *)in->data + used, *nl, *end;
    size_t left = in->len - used;
    nl = memchr(p, '\n', left);
    if (nl == NULL) {
      rc = left > 32 ? -1 : 0;
      break;
    }
    int ok = strncmp(p, "ok ", 3) == 0;
    if (!ok && strncmp(p, "err ", 4) != 0) {
      rc = -1;
      break;
    }
    errno = 0;
    unsigned long long size = strtoull(p + (ok ? 3 : 4), &end, 10);
    if (errno || end != nl || size > CHAN_ANSWER_MAX_BYTES) {
      rc = -1;
      break;
    }
    size_t head = (size_t)(nl + 1 - p);
    if (left < head + size)
      break; /* the rest of the payload is still coming */
    char saved = p[head + size];
    p[head + size] = '\0'; /* fnp_buf keeps a byte past len (see below) */
    chan_answer(a, ok, p + head);
    if (a->chan_fd < 0)
      return 0; /* it failed the channel (a follow-up could not be sent) */
    p[head + size] = saved;
    used += head + size;
  }
  if (used > 0) {
    memmove(in->data, in->data + used, in->len - used);
    in->len -= used;
  }
  return rc;
}

/* One read of what is there (without waiting) and the whole answers in it;
 * 1 when the buffer came back full (there may be more), else 0. */
static int chan_read_once(sc_agent *a) {
  char buf[4096];
  ssize_t r = recv(a->chan_fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  /* The byte after the data stays ours, for chan_parse's NUL. */
  if (r <= 0 || fnp_buf_append(&a->chan_in, buf, (size_t)r) < 0 ||
      fnp_buf_append(&a->chan_in, "", 1) < 0) {
    chan_fail(a, r < 0 ? -errno : r == 0 ? -ECONNRESET : FNP_ETOOBIG);
    return 0;
  }
  a->chan_in.len--;
  if (chan_parse(a) < 0) {
    chan_fail(a, FNP_EPARSE);
    return 0;
  }
  return (size_t)r == sizeof(buf);
}

/* Reads every answer already there; a collect waiting for them runs. */
static void chan_take_answers(sc_agent *a) {
  while (chan_read_once(a) && a->chan_fd >= 0)
    ;
  if (a->n_pending == 0)
    run_waiting_collect(a);
}

static void chan_read(evutil_socket_t fd, short what, void *arg) {
  sc_agent *a = arg;
  (void)fd;
  (void)what;
  if (a->chan_fd >= 0)
    chan_take_answers(a);
}

/* The answers due that are there already. */
static void chan_take_due(sc_agent *a) {
  if (a->chan_fd >= 0 && a->n_pending > 0)
    chan_take_answers(a);
}

void sc__agent_chan_drain(sc_agent *a) {
  (void)chan_flush(a);
  page_reap(a);
  chan_take_due(a);
  if (a->chan_fd >= 0 && a->n_pending > 0)
    chan_watch(a, 1); /* the rest as it arrives, while the flush runs */
}

static void chan_late_read(evutil_socket_t fd, short what, void *arg) {
  sc_agent *a = arg;
  struct timeval tv = {0, CHAN_LATE_READ_MS * 1000};
  (void)fd;
  (void)what;
  (void)chan_flush(a); /* ends put off (sc__agent_invocation_end) */
  page_reap(a);
  chan_take_due(a);
  if (a->chan_fd >= 0 && a->n_pending + a->n_page_pend > 0) /* slow agent */
    evtimer_add(a->chan_late_ev, &tv);
}

/*
 * Alone on the instance, an invocation must not reach the function before
 * the agent has closed the previous one's cycle: the agent's thread does
 * that when it reads the end, and if the function's thread ran the next
 * request first, that request's allocations landed in the previous
 * invocation's heap_after (and this one's heap_before), as a 10 MiB spike
 * did under a loaded CI. So a start waits for the answers still due (in
 * the page: the last end that was alone), at most CHAN_START_WAIT_MS;
 * usually they are in already and this is one read, or no system call at
 * all. After a wait ran out the agent is taken to be slow and starts do
 * not wait again until its answers have caught up.
 */
static void chan_wait_answers(sc_agent *a) {
  int64_t deadline = sc__mono_ns() + CHAN_START_WAIT_MS * 1000000LL;
  (void)chan_flush(a);
  if (a->page_alone_seq != 0 && a->chan_fd >= 0) {
    /* Ends answered in the page: usually there already, else a futex. */
    if (sc__page_wait(&a->page, a->page_alone_seq, CHAN_START_WAIT_MS) < 0)
      a->chan_slow = 1;
    page_reap(a);
  }
  a->page_alone_seq = 0;
  chan_take_due(a);
  while (a->chan_fd >= 0 && a->n_pending > 0) {
    int64_t left_ms = (deadline - sc__mono_ns() + 999999) / 1000000;
    struct pollfd pf = {.fd = a->chan_fd, .events = POLLIN};
    if (left_ms <= 0 || poll(&pf, 1, (int)left_ms) <= 0) {
      a->chan_slow = 1;
      return;
    }
    chan_take_due(a);
  }
}

/* After an end: its answer is read by chan_late_ev (armed once for all
 * the ends until it fires; a timer costs no system call), unless a start
 * or a collect reads it first. */
static void chan_late_arm(sc_agent *a) {
  struct timeval tv = {0, CHAN_LATE_READ_MS * 1000};
  if (a->chan_late_ev == NULL)
    a->chan_late_ev = evtimer_new(a->base, chan_late_read, a);
  if (a->chan_late_ev == NULL || evtimer_add(a->chan_late_ev, &tv) < 0)
    chan_watch(a, 1); /* no timer: read answers as they arrive */
}

void sc__agent_chan_init(sc_agent *a) {
  a->chan_fd = -1;
  a->heap_last = -1;
  a->page.fd = -1;
  STAILQ_INIT(&a->pending);
  STAILQ_INIT(&a->page_pend);
  fnp_buf_init(&a->chan_out, CHAN_OUT_MAX_BYTES);
  fnp_buf_init(&a->chan_in, CHAN_ANSWER_MAX_BYTES + 64);
}

void sc__agent_chan_destroy(sc_agent *a) {
  a->collect_waiting = 0;  /* nobody to call back any more */
  sc__agent_chan_drain(a); /* answers already there complete their records */
  sc__agent_chan_close(a);
  if (a->chan_wait_ev)
    event_free(a->chan_wait_ev);
  a->chan_wait_ev = NULL;
  if (a->chan_late_ev)
    event_free(a->chan_late_ev);
  a->chan_late_ev = NULL;
  if (a->chan_flush_ev)
    event_free(a->chan_flush_ev);
  a->chan_flush_ev = NULL;
  fnp_buf_destroy(&a->chan_in);
  fnp_buf_destroy(&a->chan_out);
  sc__page_close(&a->page);
}

void sc__agent_chan_ready(sc_agent *a) { a->chan_retry_ns = 0; }

int sc__agent_page_labels(const sc_agent *a) {
  return !a->enabled || (a->chan_fd >= 0 && a->page_on);
}

/* Hot path: the page's label (or one send to an agent without a page), and
 * now and then a read of earlier ends' answers. */
void sc__agent_invocation_start(sc_agent *a, const char *request_id,
                                int alone) {
  char line[SC_REQID_MAX + 40];
  if (!a->enabled)
    return;
  if (a->chan_slow && a->n_pending + a->n_page_pend == 0)
    a->chan_slow = 0; /* caught up */
  /* Through the page only an end that was alone is waited for: after
   * overlapping invocations the heap is theirs together anyway. */
  if (alone && (a->n_pending > 0 || a->page_alone_seq != 0) && !a->chan_slow)
    chan_wait_answers(a);
  else if (a->n_pending >= CHAN_READ_BATCH)
    chan_take_due(a);
  else
    page_reap(a);
  /* The page's label is what samples carry (an agent that maps it); the
   * socket's start is for an agent that does not. */
  sc__page_label(&a->page, request_id);
  a->page_mark = alone ? sc__page_events(&a->page) + 1 : 0;
  if (a->chan_fd >= 0 && a->page_on)
    return;
  if (a->chan_fd >= 0 && a->chan_quiet) {
    snprintf(line, sizeof(line), "invocation-start-quiet %s\n", request_id);
    chan_say(a, line);
    return;
  }
  snprintf(line, sizeof(line), "invocation-start %s\n", request_id);
  if (chan_ask(a, line, SC_PEND_START, NULL) == 0)
    (void)chan_flush(a); /* now: the function is about to get the request */
}

/* invocation-end-page for p's records (taken, also on failure: then they
 * go out without heap numbers): queued for the page's answer, not the
 * socket's. */
static int page_end(sc_agent *a, const char *request_id, sc_agent_pend *p) {
  char line[SC_REQID_MAX + 48];
  int rc = a->n_page_pend >= SC_AGENT_PENDING_MAX ? -EAGAIN : 0;
  if (p == NULL)
    return -ENOMEM; /* pend_new sent its record out */
  batch_close(a);   /* the open batch's line (and number) first */
  if (rc < 0)
    count(a, &a->skipped);
  if (rc == 0) {
    p->seq = sc__page_next_seq(&a->page);
    /* Written by hand, as the sidecar's other per-request lines: printf
     * was a visible part of a request's user time. */
    static const char word[] = "invocation-end-page ";
    size_t id_len = strnlen(request_id, SC_REQID_MAX - 1);
    char *e = line + sizeof(word) - 1;
    memcpy(line, word, sizeof(word) - 1);
    e += fnp_i64_text((int64_t)p->seq, e);
    *e++ = ' ';
    memcpy(e, request_id, id_len);
    memcpy(e + id_len, "\n", 2);
    rc = chan_queue(a, line);
  }
  if (rc < 0) {
    pend_drop(a, p);
    return rc;
  }
  /* Sent by the caller, now or later. */
  p->kind = SC_PEND_END;
  STAILQ_INSERT_TAIL(&a->page_pend, p, link);
  a->n_page_pend++;
  return 0;
}

/* An end's request for the page's answer (NULL without memory: then its
 * record goes out without heap numbers). */
static sc_agent_pend *pend_new(sc_agent *a, char *record) {
  sc_agent_pend *p = calloc(1, sizeof(*p));
  if (p)
    p->record = record;
  else
    sc__agent_finish_record(a, record, -1, -1);
  return p;
}

/* The open batch becomes its line (see the top of the file). */
static void batch_close(sc_agent *a) {
  sc_agent_pend *p = a->batch;
  a->batch = NULL; /* page_end queues through chan_queue, which calls us */
  if (p)
    (void)page_end(a, a->batch_id, p);
}

/* An end of overlapping invocations joins the open batch; its count. */
static size_t batch_add(sc_agent *a, const char *request_id, char *record) {
  sc_agent_pend *p = a->batch;
  if (p == NULL && (p = calloc(1, sizeof(*p))) == NULL) {
    sc__agent_finish_record(a, record, -1, -1);
    return 0;
  }
  a->batch = p;
  if (p->record == NULL) {
    p->record = record;
  } else {
    if (p->n_more == p->cap_more) {
      size_t cap = p->cap_more ? 2 * p->cap_more : 8;
      char **more = realloc(p->more, cap * sizeof(*more));
      if (more == NULL) {
        sc__agent_finish_record(a, record, -1, -1);
        return p->n_more + 1;
      }
      p->more = more;
      p->cap_more = cap;
    }
    p->more[p->n_more++] = record;
  }
  size_t n = strnlen(request_id, sizeof(a->batch_id) - 1);
  memcpy(a->batch_id, request_id, n);
  a->batch_id[n] = '\0';
  return p->n_more + 1;
}

void sc__agent_invocation_end(sc_agent *a, const char *request_id, char *record,
                              const char *running) {
  char line[SC_REQID_MAX + 32];
  int alone = running == NULL;
  if (!a->enabled) {
    if (record)
      sc__agent_finish_record(a, record, -1, -1);
    return;
  }
  /* From now on samples belong to the newest invocation still running. */
  sc__page_label(&a->page, alone ? "" : running);
  snprintf(line, sizeof(line), "invocation-end %s\n", request_id);
  int paged = a->chan_fd >= 0 && a->page_on;
  uint64_t mark = a->page_mark;
  a->page_mark = 0;
  if (paged && alone && mark == sc__page_events(&a->page) + 1 &&
      !sc__page_cycles_wanted(&a->page) && a->n_page_pend + a->n_pending == 0 &&
      a->batch == NULL && a->heap_last >= 0) {
    /* Alone from start to end and not one sample event: the heap moved
     * by less than the sampling resolution, the cycle would fold nothing,
     * and ending it would wake the agent's thread for no news. */
    if (record)
      sc__agent_finish_record(a, record, a->heap_last, a->heap_last);
    return;
  }
  /* Alone, the caller may send its next request the moment it has the
   * answer: the agent hears of this end first. Else the heap after it is
   * the other invocations' too, and the end need not close its cycle at
   * once: through the page it joins the batch that goes with the late
   * timer (or when full), and the agent's thread wakes once for many.
   * Through the page, "alone" means from start to end (mark): an
   * invocation that began beside others shares its heap numbers anyway,
   * and waiting for its end held the next start once per lull at
   * concurrency 8 (2k futex waits in 3 s). */
  if (paged)
    alone = alone && mark != 0;
  if (paged && !alone) {
    if (batch_add(a, request_id, record) >= CHAN_BATCH_MAX ||
        a->chan_late_ev == NULL)
      chan_flush_soon(a);
  } else if (paged ? page_end(a, request_id, pend_new(a, record)) < 0
                   : chan_ask(a, line, SC_PEND_END, record) < 0) {
    return;
  }
  if (alone && paged)
    a->page_alone_seq = a->page.seq;
  if (alone && chan_flush(a) < 0)
    return;
  if (!a->chan_watched &&
      (a->chan_late_ev == NULL || !evtimer_pending(a->chan_late_ev, NULL)))
    chan_late_arm(a);
}

static void wait_over(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  run_waiting_collect(arg); /* the agent is slow: collect anyway */
}

void sc__agent_collect(sc_agent *a, enum sc_agent_job_kind kind,
                       int64_t deadline_mono_ns, sc_agent_cb cb, void *arg) {
  int64_t wait_ns = (int64_t)CHAN_COLLECT_WAIT_MS * 1000000;
  if (a->collect_waiting) /* a newer collect replaces the waiting one */
    a->collect_waiting = 0;
  if (a->enabled && chan_flush(a) == 0 && a->n_page_pend > 0) {
    /* The page has no descriptor to watch: wait here, bounded (an idle
     * instance's agent has answered long since). */
    (void)sc__page_wait(&a->page, a->page.seq, CHAN_START_WAIT_MS);
    page_reap(a);
  }
  if (a->enabled && a->chan_fd >= 0)
    chan_take_due(a); /* what is there already */
  if (!a->enabled || a->n_pending == 0)
    return sc__agent_collect_now(a, kind, deadline_mono_ns, cb, arg);
  if (a->chan_wait_ev == NULL)
    a->chan_wait_ev = evtimer_new(a->base, wait_over, a);
  if (a->chan_wait_ev == NULL)
    return sc__agent_collect_now(a, kind, deadline_mono_ns, cb, arg);
  if (deadline_mono_ns - sc__mono_ns() < 2 * wait_ns)
    wait_ns = (deadline_mono_ns - sc__mono_ns()) / 2;
  struct timeval tv = {.tv_sec = wait_ns > 0 ? wait_ns / 1000000000 : 0,
                       .tv_usec =
                           wait_ns > 0 ? wait_ns % 1000000000 / 1000 : 0};
  a->collect_waiting = 1;
  a->wait_kind = kind;
  a->wait_deadline_ns = deadline_mono_ns;
  a->wait_cb = cb;
  a->wait_arg = arg;
  chan_watch(a, 1); /* the rest as it arrives */
  evtimer_add(a->chan_wait_ev, &tv);
}
