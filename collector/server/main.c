/*
 * fnprof-collector: the embedded log store. Parses the command line, opens
 * the SQLite store, starts the HTTP front and runs the libevent loop until
 * SIGINT/SIGTERM. The first line on stdout names the bound address, so
 * scripts can use --listen 127.0.0.1:0.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_LISTEN "127.0.0.1:4380"
#define RETAIN_INTERVAL_S 60

static const char USAGE[] =
    "usage: fnprof-collector --db FILE [--listen HOST:PORT]\n"
    "         [--access-key ID:SECRET]... [--allow-remote]\n"
    "         [--max-body BYTES] [--max-raw BYTES] [--max-header BYTES]\n"
    "         [--max-connections N] [--timeout SECONDS]\n"
    "         [--retain-age SECONDS] [--retain-bytes BYTES] [--sync normal]\n"
    "         [--web DIR]\n"
    "Accepts SLS PutLogs (POST /logstores/LS/shards/lb; project from the\n"
    "Host name, or POST /projects/PROJECT/logstores/LS/... on localhost),\n"
    "OTLP/HTTP (/v1/logs, /v1/metrics) and profiles (POST /api/profiles);\n"
    "answers GET /api/logs, /api/metrics, /api/profiles; serves the web page\n"
    "at GET / (files from --web DIR).\n";

typedef struct cli {
  const char *listen, *db;
  bool allow_remote;
  store_opts so;
} cli;

static int add_key(srv *s, const char *arg) {
  const char *colon = strchr(arg, ':');
  if (colon == NULL || colon == arg || colon[1] == '\0' ||
      s->n_keys == SRV_MAX_KEYS)
    return -1;
  srv_key *k = &s->keys[s->n_keys];
  k->id = strndup(arg, (size_t)(colon - arg));
  k->secret = strdup(colon + 1);
  if (k->id == NULL || k->secret == NULL)
    return -1;
  s->n_keys++;
  return 0;
}

static int size_arg(const char *v, size_t *out) {
  int64_t n;
  if (v == NULL || fnp_parse_bytes(v, &n) < 0 || n <= 0)
    return -1;
  *out = (size_t)n;
  return 0;
}

static int int_arg(const char *v, int *out) {
  char *end;
  long n = v ? strtol(v, &end, 10) : -1;
  if (v == NULL || *end || n <= 0 || n > 1000000)
    return -1;
  *out = (int)n;
  return 0;
}

/* An option that takes a value. */
static int parse_value(srv *s, cli *c, const char *opt, const char *v) {
  int n;
  size_t b;
  if (strcmp(opt, "--listen") == 0)
    c->listen = v;
  else if (strcmp(opt, "--db") == 0)
    c->db = v;
  else if (strcmp(opt, "--web") == 0)
    s->web_dir = v;
  else if (strcmp(opt, "--access-key") == 0)
    return add_key(s, v);
  else if (strcmp(opt, "--max-body") == 0)
    return size_arg(v, &s->lim.max_body_bytes);
  else if (strcmp(opt, "--max-raw") == 0)
    return size_arg(v, &s->lim.max_raw_bytes);
  else if (strcmp(opt, "--max-header") == 0)
    return size_arg(v, &s->lim.max_header_bytes);
  else if (strcmp(opt, "--max-connections") == 0)
    return int_arg(v, &s->lim.max_connections);
  else if (strcmp(opt, "--timeout") == 0)
    return int_arg(v, &s->lim.timeout_s);
  else if (strcmp(opt, "--sync") == 0 && strcmp(v, "normal") == 0)
    c->so.sync_normal = true;
  else if (strcmp(opt, "--retain-age") == 0 && int_arg(v, &n) == 0)
    c->so.max_age_ms = (int64_t)n * 1000;
  else if (strcmp(opt, "--retain-bytes") == 0 && size_arg(v, &b) == 0)
    c->so.max_bytes = b;
  else
    return -1;
  return 0;
}

static int parse_one(srv *s, cli *c, const char *opt, const char *v,
                     int *used) {
  if (strcmp(opt, "--allow-remote") == 0) {
    c->allow_remote = true;
    *used = 0;
    return 0;
  }
  *used = 1;
  return v == NULL ? -1 : parse_value(s, c, opt, v);
}

/* Returns 1 when --help was asked for (usage printed to stdout). */
static int parse_args(srv *s, cli *c, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    int used;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(USAGE, stdout);
      return 1;
    }
    if (parse_one(s, c, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used) <
        0) {
      /* Never echo the value: it may be a secret. */
      fprintf(stderr, "fnprof-collector: bad or incomplete option %s\n%s",
              argv[i], USAGE);
      return -1;
    }
    i += used;
  }
  if (c->db == NULL) {
    fprintf(stderr, "fnprof-collector: --db is required\n%s", USAGE);
    return -1;
  }
  return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port. */
static int split_listen(const char *l, char *host, size_t cap, int *port) {
  const char *colon = strrchr(l, ':');
  if (colon == NULL)
    return -1;
  const char *h = l;
  size_t n = (size_t)(colon - l);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
    h++, n -= 2;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (n == 0 || n >= cap || *end || colon[1] == '\0' || p < 0 || p > 65535)
    return -1;
  memcpy(host, h, n);
  host[n] = '\0';
  *port = (int)p;
  return 0;
}

static bool is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp(host, "localhost") == 0)
    return true;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  event_base_loopbreak(arg);
}

static void on_retain(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  srv *s = arg;
  uint64_t deleted = 0;
  fnp_error err = {0};
  if (store_retain(s->db, srv_now_ns(), &deleted, &err) < 0)
    fprintf(stderr, "fnprof-collector: retention: %s\n", err.msg);
}

static void defaults(srv *s) {
  s->lim = (srv_limits){.max_body_bytes = 16u << 20,
                        .max_raw_bytes = 64u << 20, /* OTLP's default */
                        .max_header_bytes = 16u << 10,
                        .max_connections = 256,
                        .timeout_s = 10,
                        .max_logs = 1u << 20,
                        .max_skew_s = 15 * 60};
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r)
    r = (uint64_t)srv_now_ns();
  snprintf(s->request_prefix, sizeof s->request_prefix, "%016llX",
           (unsigned long long)r);
}

static int run(srv *s, cli *c) {
  char host[256];
  int port, bound;
  fnp_error err = {0};
  if (split_listen(c->listen, host, sizeof host, &port) < 0) {
    fprintf(stderr, "fnprof-collector: --listen wants HOST:PORT\n");
    return 2;
  }
  if (!is_loopback(host) && !c->allow_remote) {
    fprintf(stderr,
            "fnprof-collector: %s is not a loopback address; "
            "pass --allow-remote to listen there\n",
            host);
    return 2;
  }
  if (store_open(c->db, &c->so, &s->db, &err) < 0 ||
      srv_http_start(s, host, port, &bound, &err) < 0) {
    fprintf(stderr, "fnprof-collector: %s\n", err.msg);
    return 1;
  }
  struct event *sigs[2] = {evsignal_new(s->base, SIGINT, on_signal, s->base),
                           evsignal_new(s->base, SIGTERM, on_signal, s->base)};
  struct event *timer = event_new(s->base, -1, EV_PERSIST, on_retain, s);
  struct timeval every = {RETAIN_INTERVAL_S, 0};
  for (int i = 0; i < 2; i++)
    if (sigs[i])
      evsignal_add(sigs[i], NULL);
  if (timer)
    event_add(timer, &every);
  printf("listening on %s%s%s:%d\n", strchr(host, ':') ? "[" : "", host,
         strchr(host, ':') ? "]" : "", bound);
  fflush(stdout);
  if (s->n_keys == 0)
    fprintf(stderr, "fnprof-collector: no --access-key: accepting "
                    "unsigned requests\n");
  int rc = event_base_dispatch(s->base) < 0 ? 1 : 0;
  for (int i = 0; i < 2; i++)
    if (sigs[i])
      event_free(sigs[i]);
  if (timer)
    event_free(timer);
  return rc;
}

int main(int argc, char **argv) {
  static srv s; /* static: large, and lives as long as the process */
  cli c = {.listen = DEFAULT_LISTEN};
  defaults(&s);
  signal(SIGPIPE, SIG_IGN); /* a client that hangs up is not fatal */
  /* Each request's body, decoded records and SQLite's row buffers are
   * hundreds of KiB: kept for the next request instead of trimmed and
   * faulted back in (export_keep_heap's comment has the numbers). */
  (void)export_keep_heap();
  int parsed = parse_args(&s, &c, argc, argv);
  if (parsed != 0)
    return parsed < 0 ? 2 : 0;
  s.base = event_base_new();
  if (s.base == NULL) {
    fprintf(stderr, "fnprof-collector: event_base_new failed\n");
    return 1;
  }
  int rc = run(&s, &c);
  if (s.http)
    evhttp_free(s.http);
  store_close(s.db);
  event_base_free(s.base);
  fnp_buf_destroy(&s.plain);
  for (int i = 0; i < s.n_keys; i++) {
    free(s.keys[i].id);
    explicit_bzero(s.keys[i].secret, strlen(s.keys[i].secret));
    free(s.keys[i].secret);
  }
  return rc;
}
