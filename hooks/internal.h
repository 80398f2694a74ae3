/*
 * hooks/internal.h - what the sidecar's files share. One job per file:
 *   config.c   options from FNPROF_* and the command line
 *   sidecar.c  the event loop: start, readiness, signals, shutdown
 *   child.c    spawning and stopping the function's bootstrap
 *   logcap.c   the function's stdout/stderr, line by line
 *   server.c   the HTTP/1.1 server for the platform
 *   upstream.c the HTTP/1.1 client to the function (keep-alive pool)
 *   http_msg.c the HTTP/1.x message parser (and head writer) both use
 *   headers.c  header field lists, each field one allocation
 *   proxy.c    the request path between server.c and upstream.c
 *   invoke.c   one invocation: platform log lines, summary, metrics
 *   hooks.c    GET /pre-freeze and GET /pre-stop
 *   reply.c    the platform's error shapes
 *   records.c  the bounded export buffer
 *   export.c   the export thread, the sink interface, queued profiles
 *   sink_lib.c sls://, otlp+http(s)://, file:// through the collector's
 *              export library (collector/include/fnprof/export.h)
 *   sink_http.c  http:// NDJSON sink (a plain webhook; tests' fake store)
 *   agent_ctl.c  the conversation with the agent's control socket
 *   agent_chan.c the invocation channel: starts and ends, their answers
 *   agent_page.c the invocation page shared with the agent (fnprof.h)
 *   metrics.c  /proc readings and per-instance counters
 *   json.c     JSON string escaping and reading back our own flat records
 *   wakeup.c   a worker thread's news for the loop (an eventfd)
 * Threads: everything runs on the event loop thread except the export
 * thread (export.c), which touches only sc_records and the profile queue
 * (under their locks) and the sinks, and the agent thread (agent_ctl.c),
 * which touches only its job queue (under its lock), sc_records and the
 * exporter's profile queue. Only the loop thread touches libevent (its
 * locking is off): the workers' news comes through wakeup.c. Lock order:
 * agent lock, then exporter lock, then records lock (no path takes two of
 * them today).
 */
#ifndef FNPROF_HOOKS_INTERNAL_H
#define FNPROF_HOOKS_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "fnprof/common.h"
#include "fnprof/fnprof.h"
#include "fnprof/sidecar.h"

/* The platform's limits (reference A.5): beyond them FC itself answers
 * 400 InvalidArgument, so the sidecar answers the same way. */
#define SC_HEADERS_MAX_BYTES 4096
#define SC_URI_MAX_BYTES 4096
#define SC_BODY_MAX_BYTES (16u << 20)
/* A hard bound for libevent's header parser; past it libevent answers 413
 * itself before our callback runs (hostile input, not a platform case). */
#define SC_HEADERS_PARSER_MAX_BYTES (64u << 10)
/* Response limits: FC answers 502 BadResponse past these. */
#define SC_RESP_HEADERS_MAX_BYTES 4096
/* Request ids longer than this are cut (FC's are 36-char UUIDs). */
#define SC_REQID_MAX 128
/* A log line longer than this is exported in pieces marked partial. */
#define SC_LINE_MAX_BYTES (16u << 10)
/* Upstream keep-alive connections kept to the function. */
#define SC_UPSTREAM_MAX 256
/* FC keeps connections up for a whole invocation (max 24 h). */
#define SC_UPSTREAM_TIMEOUT_S (24 * 3600)
/* How often to try the function's port while it starts. */
#define SC_PROBE_INTERVAL_MS 10
/* After the upstream connection drops, how long to wait for the function's
 * exit before calling it a bad response instead of a crash: the kernel
 * closes a dying process's sockets just before it becomes a zombie. */
#define SC_CRASH_WAIT_MS 200
/* While invocations run, sample the function's RSS this often. */
#define SC_RSS_SAMPLE_MS 10

/* clock.c-free helpers (json.c) */
int64_t sc__realtime_ns(void);
int64_t sc__mono_ns(void);
int sc__json_str(fnp_buf *b, const char *s, size_t n) FNP_MUST_CHECK;
/* Reads one flat JSON object as we write them (string, number, true/false
 * values; no nesting): cb gets each key and value, unescaped and
 * NUL-terminated, valid only during the call. FNP_EPARSE at the offset that
 * is not such an object. */
typedef int (*sc_json_field_cb)(void *arg, const char *key, const char *value);
int sc__json_flat(const char *s, size_t n, sc_json_field_cb cb, void *arg,
                  fnp_error *err) FNP_MUST_CHECK;
/* Finds "key": in json and reads the string after it into out (unescaped,
 * cut at cap); 0 if found. For the agent's own reports. */
int sc__json_find_str(const char *json, const char *key, char *out, size_t cap);

/* wakeup.c: a worker thread's news for the loop (an eventfd): cb runs on
 * the loop thread after one or more sc__wakeup_signal calls from any. */
typedef struct sc_wakeup {
  int fd;
  struct event *ev;
  event_callback_fn cb;
  void *arg;
} sc_wakeup;
int sc__wakeup_init(sc_wakeup *w, struct event_base *base, event_callback_fn cb,
                    void *arg) FNP_MUST_CHECK;
void sc__wakeup_signal(sc_wakeup *w);
/* Also safe on a zeroed one never initialized. */
void sc__wakeup_destroy(sc_wakeup *w);

/* records.c: JSON lines waiting for export. Offsets are absolute (bytes ever
 * appended) so each sink can remember how far it was acknowledged. */
typedef struct sc_records {
  pthread_mutex_t lock;
  fnp_buf buf;      /* lines, each ending in '\n' */
  uint64_t base;    /* absolute offset of buf.data[0] */
  size_t cap;       /* bytes of records kept; beyond: dropped */
  uint64_t dropped; /* records dropped and not yet reported */
  uint64_t dropped_total;
} sc_records;

int sc__records_init(sc_records *r, size_t cap) FNP_MUST_CHECK;
void sc__records_destroy(sc_records *r);
/* Appends one JSON object (no newline) or counts it as dropped. */
int sc__records_add(sc_records *r, const void *obj, size_t len);
/* A record written straight into the buffer: open locks it and gives the
 * buffer and a mark; the caller appends one JSON object (no newline);
 * close(rc: 0, or the caller's failure) ends it, or takes it back and
 * counts a drop (rc < 0, or past the cap), and unlocks. */
fnp_buf *sc__records_open(sc_records *r, size_t *mark);
int sc__records_close(sc_records *r, size_t mark, int rc);
/* Counts a record that could not be kept. */
void sc__records_drop(sc_records *r);
/* Adds a {"kind":"dropped"} record if anything was dropped. */
void sc__records_note_drops(sc_records *r, const char *instance_id);
uint64_t sc__records_end(sc_records *r);
/* Copies whole lines from `from`, at most max bytes (at least one line). */
int sc__records_copy(sc_records *r, uint64_t from, size_t max, uint8_t **out,
                     size_t *len) FNP_MUST_CHECK;
/* Forgets everything before absolute offset upto. */
void sc__records_release(sc_records *r, uint64_t upto);

/*
 * export.c: the sink interface, with the collector's export library
 * (sink_lib.c) and the NDJSON webhook (sink_http.c) behind it. send() must
 * deliver data completely or fail, by the monotonic deadline; `start` (absolute
 * offset) is stable across retries of the same data, so a sink can use it as an
 * idempotency key (exactly once across a freeze).
 */
typedef struct sc_creds sc_creds;

typedef struct sc_sink_ops {
  const char *scheme; /* matched against the URL's "SCHEME://" prefix */
  int (*open)(const char *url, const sidecar_config *cfg, void **ctx,
              fnp_error *err);
  int (*send)(void *ctx, const uint8_t *data, size_t len, uint64_t start,
              int64_t deadline_mono_ns, fnp_error *err);
  void (*close)(void *ctx);
  /* Optional. Delivers what the sink still holds of its own (queue,
   * spool) by the deadline; called when the buffer has nothing new. */
  int (*flush)(void *ctx, int64_t deadline_mono_ns, fnp_error *err);
  /* Optional. Takes a profile (pprof bytes, borrowed for the call);
   * FNP_EUSAGE when this kind of sink cannot carry profiles. */
  int (*profile)(void *ctx, const char *kind, int64_t time_ns,
                 const uint8_t *data, size_t len, fnp_error *err);
  /* Optional. The platform's credentials changed (export thread). */
  void (*creds)(void *ctx, const sc_creds *c);
  /* Optional. Takes data (whole lines at offset start) for delivery by the
   * next flush and may start sending it by the deadline without waiting.
   * Sinks with push get all new data before one flush, so they can encode
   * the next batch while the previous ones are on the wire. */
  int (*push)(void *ctx, const uint8_t *data, size_t len, uint64_t start,
              int64_t deadline_mono_ns, fnp_error *err);
} sc_sink_ops;

extern const sc_sink_ops sc__sink_http;
extern const sc_sink_ops sc__sink_lib_sls;
extern const sc_sink_ops sc__sink_lib_sls_tls;
extern const sc_sink_ops sc__sink_lib_otlp;
extern const sc_sink_ops sc__sink_lib_otlp_tls;
extern const sc_sink_ops sc__sink_lib_file;

typedef struct sc_sink {
  const sc_sink_ops *ops;
  void *ctx;
  const char *url;
  uint64_t acked;  /* absolute offset acknowledged; guarded by exporter lock */
  uint64_t pushed; /* handed to ops->push; export thread only */
  uint64_t failures;
} sc_sink;

/* The platform's per-request credentials and log destination (reference
 * A.4). Secrets: used for signing by the export library's sls sink, never
 * printed, logged or exported. Project/logstore are taken but the sls://
 * URL's win (an export sink's destination is fixed when it opens). */
struct sc_creds {
  char key_id[128];
  char secret[256];
  char token[4096];
  char project[128];
  char logstore[128];
};

/* A profile waiting for the export thread (export.c). */
typedef struct sc_profile {
  struct sc_profile *next;
  char kind[32];
  int64_t time_ns;
  uint8_t *data; /* malloc'd pprof bytes */
  size_t len;
} sc_profile;

/* Profiles held for export at most; past it new ones are dropped and
 * counted (a frozen instance with a dead store must not grow forever). */
#define SC_PROFILES_MAX_BYTES (64u << 20)

typedef void (*sc_flush_cb)(void *arg, int rc);

typedef struct sc_exporter {
  sc_records *records;
  sc_sink sinks[SIDECAR_MAX_EXPORTS];
  size_t n_sinks;
  pthread_t thread;
  int thread_started;
  pthread_mutex_t lock; /* guards the fields below and sinks[].acked */
  pthread_cond_t cond;
  int64_t deadline_ns; /* monotonic deadline of the requested flush */
  uint64_t gen_req, gen_done;
  int last_rc;
  int stop;
  sc_wakeup done;       /* signalled by the thread */
  sc_creds creds;       /* newest from the platform; under lock */
  uint64_t creds_gen;   /* bumped on every change; under lock */
  sc_profile *profiles; /* queued, oldest first; under lock */
  size_t profiles_bytes;
  uint64_t profiles_dropped, profiles_sent; /* under lock */
  sc_flush_cb cb;                           /* loop thread only */
  void *cb_arg;
} sc_exporter;

int sc__exporter_start(sc_exporter *x, struct event_base *base, sc_records *r,
                       const sidecar_config *cfg,
                       fnp_error *err) FNP_MUST_CHECK;
/* Asks for a flush that ends by the deadline; cb runs on the loop thread
 * (rc 0: everything up to the request was acknowledged by every sink). A
 * new request while one runs replaces its callback and deadline. */
void sc__exporter_flush(sc_exporter *x, int64_t deadline_mono_ns,
                        sc_flush_cb cb, void *arg);
/* Drops the pending flush's callback (the caller stopped waiting). */
void sc__exporter_forget_cb(sc_exporter *x);
/* Takes the platform's credentials from a request's headers (if any). */
void sc__exporter_set_creds(sc_exporter *x, const struct evkeyvalq *headers);
/* Queues a profile for every sink that carries profiles; takes data
 * (malloc'd) in every case. Any thread. FNP_ETOOBIG: dropped, counted. */
int sc__exporter_add_profile(sc_exporter *x, const char *kind, int64_t time_ns,
                             uint8_t *data, size_t len);
/* Bytes some sink has not acknowledged. */
uint64_t sc__exporter_pending(sc_exporter *x);
void sc__exporter_stop(sc_exporter *x);

/* child.c */
typedef struct sc_child {
  pid_t pid;
  int out_fd, err_fd; /* read ends, non-blocking */
  int exited;
  int status; /* waitpid status */
  int64_t started_mono_ns;
  /* /proc/PID/status and clear_refs, opened on first use and kept (the
   * hot path writes one at an invocation's start and reads the other at
   * its end: one syscall each instead of open, read or write, close); -1
   * when not open. Loop thread only. */
  int status_fd, clear_refs_fd;
  int jit_map_ours; /* started with the agent and JIT names: its perf map */
} sc_child;

/* page_fd: the invocation page for the agent (-1 none), handed down as
 * SC_PAGE_CHILD_FD. */
int sc__child_spawn(sc_child *c, const sidecar_config *cfg, const char *agent,
                    const char *control, const char *prof_dir, int page_fd,
                    int inner_port, fnp_error *err) FNP_MUST_CHECK;
/* Removes the exited bootstrap's perf map when it is ours (jit_map_ours). */
void sc__child_forget_jit_map(const sc_child *c);
/* Builds the child's environment: env + overrides (NAME=VALUE). The array
 * and its strings are malloc'd; free with sc__env_free. */
int sc__env_build(char *const *env, const char *agent, int inner_port,
                  char ***out) FNP_MUST_CHECK;
/* Same, plus the agent's settings: control socket path (always set, the
 * sidecar must know it) and profile directory (only when the user has not
 * set FNPROF_DIR); either may be NULL; page: FNPROF_PAGE_FD names
 * SC_PAGE_CHILD_FD (an inherited FNPROF_PAGE_FD never passes on). */
int sc__env_build_agent(char *const *env, const char *agent, int inner_port,
                        const char *control, const char *prof_dir, int page,
                        char ***out) FNP_MUST_CHECK;
void sc__env_free(char **env);
/* Resolves the agent: explicit path, or libfnprof.so next to the sidecar's
 * binary (build tree ../agent/, install ../lib/). *out is malloc'd or NULL. */
int sc__agent_find(const sidecar_config *cfg, char **out, fnp_error *err);

/* metrics.c: the function's memory from /proc (c->pid). */
int sc__proc_mem(sc_child *c, int64_t *rss_bytes, int64_t *hwm_bytes);
int sc__proc_reset_hwm(sc_child *c);
/* Closes the /proc files kept open by the two above. */
void sc__proc_close(sc_child *c);

typedef struct sc_instance_stats {
  uint64_t invocations, errors, initializations, freezes, crashes;
  uint64_t bytes_in, bytes_out;
  int64_t cold_start_ms; /* spawn to port answering */
  uint64_t log_lines, log_unattributed;
} sc_instance_stats;

/* Forward declarations for the loop-side structures. */
typedef struct sidecar sidecar;

enum sc_kind { SC_INVOKE, SC_HTTP, SC_INITIALIZE, SC_HOOK };

/* headers.c: header fields in libevent's list type, each one allocation.
 * Lists built with these are freed with sc__hdrs_clear (never with
 * evhttp_clear_headers); names are matched without regard to case. */
int sc__hdr_add(struct evkeyvalq *h, const char *name, size_t nlen,
                const char *value, size_t vlen) FNP_MUST_CHECK;
/* (Unchecked where a field we add is best effort: a Content-Type.) */
int sc__hdr_add_str(struct evkeyvalq *h, const char *name, const char *value);
/* Appends more to the last field's value (a folded line); -EINVAL: none. */
int sc__hdr_extend_last(struct evkeyvalq *h, const char *more,
                        size_t n) FNP_MUST_CHECK;
const char *sc__hdr_find(const struct evkeyvalq *h, const char *name);
void sc__hdr_remove(struct evkeyvalq *h, struct evkeyval *kv);
void sc__hdrs_clear(struct evkeyvalq *h);

/* http_msg.c: one HTTP/1.x message, parsed as its bytes arrive. */
typedef struct sc_http_msg {
  int request;      /* a request (else a response) */
  int head_request; /* a response to HEAD: no body */
  int state;        /* the parser's */
  int64_t left;
  size_t head_bytes;
  int minor;           /* HTTP/1.minor */
  int close_after;     /* the connection ends after this message */
  int expect_continue; /* a request with Expect: 100-continue */
  char method[16];     /* request line */
  char *target;
  int code; /* status line */
  char reason[128];
  struct evkeyvalq headers;
  struct evbuffer *body;
} sc_http_msg;

int sc__http_msg_init(sc_http_msg *m, int request, int head_request);
void sc__http_msg_clear(sc_http_msg *m);
/* Moves src's headers, body and target to dst (src keeps none). */
void sc__http_msg_move(sc_http_msg *dst, sc_http_msg *src);
/* Parses what in holds: 1 the message is whole, 0 more is needed, or
 * -EPROTO (not HTTP), -EMSGSIZE (head over 64 KiB), -EFBIG (body over
 * 16 MB), -ENOMEM. */
int sc__http_parse(sc_http_msg *m, struct evbuffer *in);
/* One recv from fd appended to in: as recv (-1 with errno ENOMEM when it
 * could not be kept). */
#define SC_HTTP_READ_BYTES 65536
ssize_t sc__http_recv(int fd, struct evbuffer *in);
/* Appends a head to out in one piece: the start line (n_line parts, CRLF
 * added), h's fields, tail (whole CRLF-ended lines, or empty) and the
 * empty line. 0 or -ENOMEM. */
struct iovec;
int sc__http_write_head(struct evbuffer *out, const struct iovec *line,
                        int n_line, const struct evkeyvalq *h, const char *tail,
                        size_t tail_len) FNP_MUST_CHECK;
/* Past the head (reading the body)? Framed by the connection's close? */
int sc__http_msg_in_body(const sc_http_msg *m);
int sc__http_msg_eof_framed(const sc_http_msg *m);

/* server.c: a platform request, answered with sc__req_reply. */
typedef struct sc_req sc_req;
typedef struct sc_conn sc_conn;
TAILQ_HEAD(sc_conns, sc_conn);

/* A keep-alive connection to the function (upstream.c). */
typedef struct sc_upstream {
  sidecar *sc;
  int fd;                  /* -1: not open */
  struct event *rev, *wev; /* read: always, while open; write: when backed up */
  struct evbuffer *in, *out;
  struct sc_call *call; /* the request in flight, NULL: idle */
  int connecting;
  sc_http_msg resp;
} sc_upstream;

typedef struct sc_call {
  TAILQ_ENTRY(sc_call) link;      /* sidecar.calls */
  TAILQ_ENTRY(sc_call) hold_link; /* sidecar.held, while held */
  int held;
  int upstream_err; /* why the upstream request failed (-errno), 0: none */
  sidecar *sc;
  sc_req *req;     /* server side; NULL once answered */
  sc_upstream *up; /* the upstream request in flight, NULL: none */
  enum sc_kind kind;
  char request_id[SC_REQID_MAX];
  int64_t start_ns, start_mono_ns, end_mono_ns;
  size_t bytes_in, bytes_out;
  int status;             /* HTTP status answered */
  const char *error_type; /* static, NULL when fine */
  int64_t max_rss;
  int memory_mb;
  int answered;        /* the function's response came (upstream_done) */
  struct event *timer; /* crash wait */
  /* Hooks: what to do when the function's own hook answered. */
  void (*hook_done)(struct sc_call *call, int status);
} sc_call;

TAILQ_HEAD(sc_call_list, sc_call);

enum sc_state { SC_STARTING, SC_READY, SC_DEAD, SC_STOPPING };

/* Event priorities (lower runs first when both are ready): the function's
 * pipes before everything else (logcap.c). */
enum { SC_PRIO_LOGS, SC_PRIO_DEFAULT, SC_PRIO_COUNT };

typedef struct sc_logstream {
  sidecar *sc;
  int fd;
  const char *name;
  struct event *ev;
  fnp_buf line;
  int eof;
} sc_logstream;

/*
 * The agent's control socket (line protocol: agent/control.c), spoken two
 * ways. agent_chan.c: each invocation's start and end, written by the loop
 * on one connection kept open, without waiting; the answers come back in
 * order and are read when the loop is there anyway (an end's answer, the
 * heap after, completes the invocation's record; a start is not answered
 * when the agent serves the quiet one). agent_ctl.c: the hooks' collects
 * (freeze, stop: spikes, profiles, metrics), from a thread of its own so
 * the loop never waits on them, one connection per collect, each bounded
 * by its deadline. The agent serves several connections at once. Without
 * a socket everything fails at connect, at once: no agent data.
 */
enum sc_agent_job_kind {
  SC_AGENT_FREEZE, /* end-cycle, metrics, spikes, [profile inuse] */
  SC_AGENT_STOP,   /* profile final, profile alloc, metrics, spikes */
};

typedef struct sc_agent_job {
  STAILQ_ENTRY(sc_agent_job) link;
  enum sc_agent_job_kind kind;
  int64_t deadline_ns;
  uint64_t gen; /* the generation that completes */
} sc_agent_job;

STAILQ_HEAD(sc_agent_jobs, sc_agent_job);

typedef void (*sc_agent_cb)(void *arg);

/* An invocation-channel request waiting for its answer (agent_chan.c). */
typedef struct sc_agent_pend {
  STAILQ_ENTRY(sc_agent_pend) link;
  enum { SC_PEND_START, SC_PEND_END, SC_PEND_METRICS, SC_PEND_FEATURES } kind;
  char *record; /* END, METRICS after an END: the record to complete */
  uint64_t seq; /* an END answered in the invocation page: its number */
  char **more;  /* a batch's END: the records after the first */
  size_t n_more, cap_more;
} sc_agent_pend;

STAILQ_HEAD(sc_agent_pends, sc_agent_pend);

/* agent_page.c: the invocation page (fnprof/fnprof.h), sidecar side. */
typedef struct sc_page {
  fnprof_page *p; /* NULL: none (memfd failed: the socket does it all) */
  int fd;         /* handed to the function as SC_PAGE_CHILD_FD */
  uint64_t seq;   /* the last end numbered */
} sc_page;
/* The descriptor number the function finds the page at. */
#define SC_PAGE_CHILD_FD 3
#define SC_PAGE_CHILD_FD_TEXT "3"

int sc__page_open(sc_page *pg);
void sc__page_close(sc_page *pg);
/* Names the running invocation ("" none) for the samples from now on. */
void sc__page_label(sc_page *pg, const char *id);
uint64_t sc__page_next_seq(sc_page *pg);
/* The agent's count of sample events (fnprof.h), 0 without a page. */
uint64_t sc__page_events(const sc_page *pg);
/* Does the agent want every invocation to end a cycle (fnprof.h)? */
int sc__page_cycles_wanted(const sc_page *pg);
/* End seq's answer: 1 (live set), 0 not yet, -1 lost (its slot reused). */
int sc__page_answer(const sc_page *pg, uint64_t seq, int64_t *live);
/* Waits until the agent has answered seq: 0, or -ETIMEDOUT. */
int sc__page_wait(sc_page *pg, uint64_t seq, int timeout_ms);

/* Invocation-channel requests waiting for answers at most; past it the
 * invocation record goes out without heap numbers (counted as skipped). */
#define SC_AGENT_PENDING_MAX 1024

typedef struct sc_agent {
  int enabled;         /* an agent is preloaded and a socket path set */
  char dir[96];        /* private 0700 directory, "" when none */
  char sock[108];      /* control socket path for FNPROF_CONTROL */
  char prof_dir[300];  /* where the agent writes profiles */
  int own_prof_dir;    /* 1: ours (in dir), set as FNPROF_DIR; 0: user's */
  int inited;          /* lock and cond exist */
  sc_records *records; /* borrowed from the sidecar */
  sc_exporter *exporter;
  const char *instance;
  int freeze_profile;
  pthread_t thread;
  int thread_started;
  pthread_mutex_t lock; /* guards everything below, to the loop's part */
  pthread_cond_t cond;
  struct sc_agent_jobs jobs;
  int stop;
  uint64_t gen_req, gen_done;
  sc_agent_cb cb; /* loop thread runs it when gen_done reaches gen_req */
  void *cb_arg;
  sc_wakeup done;             /* signalled by the thread */
  uint64_t failures, skipped; /* conversations failed; requests skipped */
  /* Loop thread only: the invocation channel (agent_chan.c). */
  struct event_base *base;
  int chan_fd;                     /* -1: not open */
  int64_t chan_retry_ns;           /* no new try to open it before this */
  int chan_quiet;                  /* the agent serves invocation-start-quiet */
  sc_page page;                    /* labels, and end answers once page_on */
  int page_on;                     /* the agent serves invocation-end-page */
  struct sc_agent_pends page_pend; /* ends awaiting the page's answer */
  size_t n_page_pend;
  /* Ends of overlapping invocations not yet sent: one line, one answer
   * for all of them (agent_chan.c, batch_close); the newest one's id. */
  sc_agent_pend *batch;
  char batch_id[SC_REQID_MAX];
  uint64_t page_alone_seq; /* the last end alone, until a start waited */
  uint64_t page_mark;      /* sample events at a start alone, + 1; 0: none */
  struct event *chan_ev;   /* its answers, added only while watched */
  int chan_watched;        /* chan_ev is added (a collect waits) */
  int chan_slow; /* a start's wait for answers ran out; none until caught up */
  struct event *chan_late_ev;    /* reads answers nobody else picked up */
  fnp_buf chan_out;              /* lines not yet sent (end of the turn) */
  struct event *chan_flush_ev;   /* sends them */
  fnp_buf chan_in;               /* answer bytes not yet parsed */
  struct sc_agent_pends pending; /* requests in order, awaiting answers */
  size_t n_pending;
  int64_t heap_last; /* bytes after the last invocation, -1 unknown */
  /* A collect asked for while the channel still awaited answers: it waits
   * for them (at most until chan_wait_ev), so it sees every invocation. */
  int collect_waiting;
  enum sc_agent_job_kind wait_kind;
  int64_t wait_deadline_ns;
  sc_agent_cb wait_cb;
  void *wait_arg;
  struct event *chan_wait_ev;
} sc_agent;

/* Makes the private directory and starts the thread (no-op when agent is
 * NULL: then everything below runs nothing and collects complete at once). */
int sc__agent_init(sc_agent *a, struct event_base *base, const char *agent,
                   sc_records *r, sc_exporter *x, const sidecar_config *cfg,
                   fnp_error *err) FNP_MUST_CHECK;
/* agent_chan.c: */
/* alone: no other invocation in flight (it then waits, bounded, until the
 * agent has answered the previous ends: agent_chan.c). */
void sc__agent_invocation_start(sc_agent *a, const char *request_id, int alone);
/* Takes record (malloc'd, without its final '}'): completed with the heap
 * numbers when the agent answers, then queued. record may be NULL.
 * running: the newest invocation still in flight (samples are its from now
 * on), NULL when none. The line goes at once when none is (the instance is
 * idle now), else with the other lines of the loop's turn. */
void sc__agent_invocation_end(sc_agent *a, const char *request_id, char *record,
                              const char *running);
/* Runs a FREEZE or STOP collect by the deadline, after the channel's
 * answers; cb runs on the loop thread after it (at once when there is no
 * agent). A new collect replaces the pending callback. */
void sc__agent_collect(sc_agent *a, enum sc_agent_job_kind kind,
                       int64_t deadline_mono_ns, sc_agent_cb cb, void *arg);
void sc__agent_forget_cb(sc_agent *a);
/* The function died: queues the final profile its agent wrote at exit, if
 * it wrote one (into our profile directory). */
void sc__agent_take_final(sc_agent *a, pid_t pid);
/* agent_ctl.c, for agent_chan.c: completes an invocation record with the
 * heap numbers (none when after < 0) and adds it (takes record); the heap
 * in a metrics answer; the collect queued at once. */
void sc__agent_finish_record(sc_agent *a, char *record, int64_t before,
                             int64_t after);
int64_t sc__agent_metrics_heap(const char *json);
void sc__agent_collect_now(sc_agent *a, enum sc_agent_job_kind kind,
                           int64_t deadline_mono_ns, sc_agent_cb cb, void *arg);
/* agent_chan.c: set up (from sc__agent_init) and torn down (from
 * sc__agent_destroy); closing the channel sends the records still waiting
 * out without heap numbers. */
void sc__agent_chan_init(sc_agent *a);
void sc__agent_chan_close(sc_agent *a);
void sc__agent_chan_destroy(sc_agent *a);
/* The function is up: open the channel at the next request even if an
 * attempt failed a moment ago. */
void sc__agent_chan_ready(sc_agent *a);
/* Does the agent take labels from the page and answer ends there (or is
 * there no agent)? Else the socket carries them (an older agent). */
int sc__agent_page_labels(const sc_agent *a);
/* Reads the answers already there (the records they complete go to the
 * buffer) and from then on the rest as they arrive; at EOF the channel
 * closes. Before a last flush. */
void sc__agent_chan_drain(sc_agent *a);
/* Stops the thread, removes the private directory. */
void sc__agent_destroy(sc_agent *a);

struct sidecar {
  const sidecar_config *cfg; /* points at cfg_copy */
  sidecar_config cfg_copy;   /* with the instance id filled in */
  char instance_id[128];
  struct event_base *base;
  struct evconnlistener *listener; /* server.c */
  struct sc_conns conns;
  struct event *stall_ev; /* server.c: sweeps for requests stalled halfway */
  int inner_port;
  enum sc_state state;
  sc_child child;
  sc_logstream streams[2];
  int logs_urgent;      /* the pipes outrank the connections (logcap.c) */
  int logs_streak;      /* pipe reads since the last response */
  fnp_buf out_held;     /* platform lines not yet on stdout (logcap.c) */
  struct event *out_ev; /* writes them if no invocation end does */
  sc_records records;
  sc_exporter exporter;
  sc_agent agent_ctl;
  sc_instance_stats stats;
  struct sc_call_list calls; /* in flight (server side not yet ended) */
  struct sc_call_list held;  /* also in calls: waiting for the port */
  size_t n_calls;
  sc_upstream upstream[SC_UPSTREAM_MAX];
  struct event *probe_ev, *start_timeout_ev, *rss_ev, *retry_ev;
  struct event *sigchld_ev, *sigterm_ev, *sigint_ev, *exit_ev, *stop_ev;
  sc_call *hook;            /* the lifecycle hook running, at most one */
  struct event *hook_ev;    /* its budget or grace timer */
  int hook_fn_status;       /* the function's answer to it, 0: none */
  int64_t hook_deadline_ns; /* monotonic: /pre-freeze answers by then */
  int64_t frozen_at_ns;     /* realtime /pre-freeze was answered; 0: running */
  int64_t last_hwm;
  int64_t last_hwm_ns; /* when it was read (monotonic) */
  int hwm_reset_due;   /* an invocation alone: reset once it is sent on */
  int64_t retry_ms;
  int exit_code;
  int finishing;
  char *agent;
};

/* server.c: the platform's side. */
int sc__server_start(sidecar *sc, fnp_error *err) FNP_MUST_CHECK;
/* Closes the listener and every connection (answers still due are
 * dropped). */
void sc__server_release(sidecar *sc);
const char *sc__req_uri(const sc_req *r);
const char *sc__req_path(const sc_req *r); /* the target without its query */
enum evhttp_cmd_type sc__req_method(const sc_req *r);
const char *sc__req_method_name(const sc_req *r); /* as the client wrote it */
struct evkeyvalq *sc__req_in_headers(sc_req *r);
struct evbuffer *sc__req_in_body(sc_req *r);
struct evkeyvalq *sc__req_out_headers(sc_req *r);
/* Answers r (body drained; may be NULL) and frees it; to nobody when its
 * client left. */
void sc__req_reply(sc_req *r, int code, const char *reason,
                   struct evbuffer *body);

/* proxy.c */
int sc__proxy_start(sidecar *sc, fnp_error *err) FNP_MUST_CHECK;
/* server.c's callback: a whole request. */
void sc__proxy_on_request(sidecar *sc, sc_req *req);
void sc__proxy_dispatch(sc_call *call);
void sc__proxy_release(sidecar *sc);
/* Dispatches every held request (the function is up, the agent is ready
 * or took too long). */
void sc__proxy_release_held(sidecar *sc);
/* Forwards call->req to the function; used by hooks.c too. */
int sc__proxy_forward(sc_call *call, const char *uri) FNP_MUST_CHECK;
/* upstream.c: sends method uri headers body (moved out) to the function on
 * a free keep-alive connection; sc__proxy_upstream_done hears the answer
 * (maybe before this returns). -EBUSY: every connection is busy. */
int sc__upstream_send(sc_call *call, const char *method, const char *uri,
                      struct evkeyvalq *headers,
                      struct evbuffer *body) FNP_MUST_CHECK;
void sc__upstream_init(sidecar *sc);
/* Closes every connection; requests in flight are not called back. */
void sc__upstream_release(sidecar *sc);
/* proxy.c: the function's answer to call (resp NULL: none, err < 0). */
void sc__proxy_upstream_done(sc_call *call, sc_http_msg *resp, int err);

/* invoke.c */
sc_call *sc__call_new(sidecar *sc, sc_req *req, enum sc_kind kind);
void sc__call_start(sc_call *call);
/* Answers (if still open), writes End and summary, frees the call. */
void sc__call_finish(sc_call *call);
const char *sc__call_single_id(sidecar *sc);
/* Every call in flight has seen at least this peak RSS. */
void sc__calls_raise_peak(sidecar *sc, int64_t peak_bytes);

/* logcap.c */
int sc__logcap_start(sidecar *sc, fnp_error *err) FNP_MUST_CHECK;
/* Reads whatever the function has written so far (call before ending an
 * invocation, so its lines are attributed to it). */
void sc__logcap_drain(sidecar *sc);
/* The same, for an invocation whose response the function just gave: the
 * loop read what came before it already, unless the pipes were too busy
 * to outrank the connections (logcap.c). Hot path. */
void sc__logcap_answered(sidecar *sc);
/* Adds a line of the sidecar's own (platform log lines) to the export
 * buffer and to stdout: held back there until sc__logcap_flush, the
 * function's next output, or SC_OUT_HOLD_MS, so that an invocation's
 * Start, End and Summary lines cost one write. line: n bytes, with room
 * for one more (the newline goes there). */
void sc__log_platform_line(sidecar *sc, const char *request_id, char *line,
                           size_t n);
/* Writes the held platform lines (an invocation ended; exit). */
void sc__logcap_flush(sidecar *sc);
/* Finds the request id in "time requestId [LEVEL] message"; 0 if found. */
int sc__logcap_parse_reqid(const char *line, size_t n, const char **id,
                           size_t *idlen);
void sc__logcap_stop(sidecar *sc);

/* reply.c: platform-shaped answers. */
void sc__reply_error(sc_req *req, int http_status, const char *code,
                     const char *message);
void sc__reply_crash(sc_call *call);

/* hooks.c */
void sc__hook_pre_freeze(sidecar *sc, sc_req *req);
void sc__hook_pre_stop(sidecar *sc, sc_req *req);
void sc__flush_retry_arm(sidecar *sc);
/* A request (by: its kind) arrived at realtime now_ns: if /pre-freeze was
 * answered since the last one, the instance has been thawed; records it,
 * once per freeze. */
void sc__hook_thawed(sidecar *sc, int64_t now_ns, const char *by);
/* The function exited while /pre-stop was stopping it. */
void sc__hook_stop_exited(sidecar *sc);

/* sidecar.c */
void sc__function_exited(sidecar *sc);
void sc__finish(sidecar *sc, int exit_code);
void sc__rss_sample(sidecar *sc);
void sc__record_instance(sidecar *sc, const char *event);

#endif
