/*
 * local_main.c - fnprof-local: the platform on a laptop, for one instance.
 * Starts the function (directly, or under fnprof-sidecar with --sidecar) in
 * a process group of its own, waits for its port, sends /initialize once,
 * then the invocations (with the platform's common headers, --concurrency at
 * a time), and after each round /pre-freeze followed by a real freeze of the
 * group (SIGSTOP; SIGCONT before the next round), and /pre-stop before
 * destroying it. Prints one summary line per invocation. To be wired into the
 * fnprof CLI as `fnprof local`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fnprof/common.h"

#define LOCAL_MAX_INVOCATIONS 4096
#define LOCAL_BODY_MAX_BYTES (16u << 20)
#define LOCAL_HOOK_TIMEOUT_MS 30000 /* FC's example hook timeout */
#define LOCAL_INVOKE_TIMEOUT_MS 600000
#define LOCAL_EXIT_WAIT_MS 10000

typedef struct invocation {
  char method[16];
  char path[1024];
  char *body; /* malloc'd */
  int event;  /* POST /invoke (event) vs HTTP invocation */
} invocation;

typedef struct local_opts {
  int port, concurrency, rounds, repeat, show_body, initialize;
  int64_t start_timeout_ms, freeze_ms;
  const char *sidecar, *memory;
  const char *sidecar_args[32];
  int n_sidecar_args;
  invocation inv[LOCAL_MAX_INVOCATIONS];
  int n_inv;
  char **argv;
} local_opts;

typedef struct local_state {
  local_opts *o;
  pid_t pid;
  pthread_mutex_t lock;
  int next, total, failed, printed;
} local_state;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An FC-like request id (UUID v4 shape). */
static void new_request_id(char out[40]) {
  unsigned char r[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r))
    for (size_t i = 0; i < sizeof(r); i++)
      r[i] = (unsigned char)rand();
  if (fd >= 0)
    close(fd);
  r[6] = (r[6] & 0x0f) | 0x40;
  r[8] = (r[8] & 0x3f) | 0x80;
  snprintf(
      out, 40,
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
      r[12], r[13], r[14], r[15]);
}

static int add_inv(local_opts *o, const char *method, const char *path,
                   const char *body, int event) {
  invocation *v;
  if (o->n_inv == LOCAL_MAX_INVOCATIONS)
    return FNP_ETOOBIG;
  v = &o->inv[o->n_inv];
  snprintf(v->method, sizeof(v->method), "%s", method);
  snprintf(v->path, sizeof(v->path), "%s", path);
  v->body = strdup(body ? body : "");
  v->event = event;
  if (v->body == NULL)
    return -ENOMEM;
  o->n_inv++;
  return 0;
}

/* "METHOD PATH [BODY]" (--http, and `http ...` lines in --file). */
static int parse_http(local_opts *o, const char *spec) {
  char method[16], path[1024];
  int n = 0;
  if (sscanf(spec, "%15s %1023s %n", method, path, &n) < 2)
    return FNP_EPARSE;
  return add_inv(o, method, path, n > 0 ? spec + n : "", 0);
}

/* --file: one invocation per line, `invoke PAYLOAD` or `http METHOD PATH
 * [BODY]`; blank lines and # comments skipped. */
static int parse_file(local_opts *o, const char *path) {
  char line[8192];
  int rc = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -errno;
  while (rc == 0 && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#')
      continue;
    if (strncmp(line, "invoke ", 7) == 0)
      rc = add_inv(o, "POST", "/invoke", line + 7, 1);
    else if (strncmp(line, "http ", 5) == 0)
      rc = parse_http(o, line + 5);
    else
      rc = FNP_EPARSE;
  }
  fclose(f);
  return rc;
}

/* The platform's common headers (reference A.4). Credentials come from
 * FNPROF_ACCESS_KEY_ID/_SECRET/FNPROF_SECURITY_TOKEN and are never printed. */
static struct curl_slist *common_headers(const local_opts *o, const char *id,
                                         const char *control_path) {
  static const char *const ENV_HEADERS[][2] = {
      {"FNPROF_ACCESS_KEY_ID", "x-fc-access-key-id"},
      {"FNPROF_ACCESS_KEY_SECRET", "x-fc-access-key-secret"},
      {"FNPROF_SECURITY_TOKEN", "x-fc-security-token"},
      {"FNPROF_LOGPROJECT", "x-fc-service-logproject"},
      {"FNPROF_LOGSTORE", "x-fc-service-logstore"}};
  const char *fixed[] = {"x-fc-function-name: local-function",
                         "x-fc-service-name: local-service",
                         "x-fc-region: local",
                         "x-fc-account-id: 0",
                         "x-fc-qualifier: LATEST",
                         "x-fc-version-id: 0",
                         "x-fc-function-handler: index.handler",
                         "x-fc-instance-lifecycle-pre-freeze-handler: "
                         "index.preFreeze",
                         "x-fc-instance-lifecycle-pre-stop-handler: "
                         "index.preStop",
                         "Expect:"};
  struct curl_slist *h = NULL, *t;
  char line[4096];
  const char *v;
  size_t i;
#define PUSH(s)                                                                \
  do {                                                                         \
    if ((t = curl_slist_append(h, (s))) == NULL)                               \
      goto fail;                                                               \
    h = t;                                                                     \
  } while (0)
  snprintf(line, sizeof(line), "x-fc-request-id: %s", id);
  PUSH(line);
  snprintf(line, sizeof(line), "x-fc-function-memory: %s", o->memory);
  PUSH(line);
  if (control_path) {
    snprintf(line, sizeof(line), "x-fc-control-path: %s", control_path);
    PUSH(line);
  }
  for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    PUSH(fixed[i]);
  for (i = 0; i < sizeof(ENV_HEADERS) / sizeof(ENV_HEADERS[0]); i++) {
    v = getenv(ENV_HEADERS[i][0]);
    if (v && snprintf(line, sizeof(line), "%s: %s", ENV_HEADERS[i][1], v) <
                 (int)sizeof(line))
      PUSH(line);
  }
#undef PUSH
  return h;
fail:
  curl_slist_free_all(h);
  return NULL;
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
  fnp_buf *b = arg;
  return fnp_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* x-fc-status from the answer's headers. */
static size_t header_line(char *p, size_t size, size_t n, void *arg) {
  char *fc = arg;
  size_t len = size * n;
  if (len > 13 && strncasecmp(p, "x-fc-status:", 12) == 0)
    sscanf(p + 12, " %15s", fc);
  return len;
}

typedef struct result {
  long status;
  char fc_status[16];
  double ms;
  fnp_buf body;
  int curl_failed;
} result;

static void request(const local_opts *o, const char *method, const char *path,
                    const char *body, const char *id, const char *control,
                    long timeout_ms, result *r) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = common_headers(o, id, control);
  char url[1200];
  int64_t t0 = mono_ms();
  memset(r, 0, sizeof(*r));
  fnp_buf_init(&r->body, LOCAL_BODY_MAX_BYTES);
  r->curl_failed = 1;
  if (c == NULL || h == NULL)
    goto out;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", o->port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body && (*body || strcmp(method, "POST") == 0)) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r->fc_status);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    r->curl_failed = 0;
  }
out:
  r->ms = (double)(mono_ms() - t0);
  curl_slist_free_all(h);
  if (c)
    curl_easy_cleanup(c);
}

static int failed(const result *r) {
  return r->curl_failed || r->status >= 400 || strcmp(r->fc_status, "404") == 0;
}

static void print_result(local_state *s, const char *what, const char *id,
                         const result *r) {
  pthread_mutex_lock(&s->lock);
  printf("%-10s %s status=%ld x-fc-status=%s duration_ms=%.0f bytes=%zu%s\n",
         what, id, r->status, r->fc_status[0] ? r->fc_status : "-", r->ms,
         r->body.len, r->curl_failed ? " (no answer)" : "");
  if (s->o->show_body)
    printf("body %s %.*s\n", id, (int)r->body.len, (const char *)r->body.data);
  fflush(stdout);
  pthread_mutex_unlock(&s->lock);
}

static void *worker(void *arg) {
  local_state *s = arg;
  const invocation *v;
  char id[40];
  result r;
  int i;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    i = s->next < s->total ? s->next++ : -1;
    pthread_mutex_unlock(&s->lock);
    if (i < 0)
      return NULL;
    v = &s->o->inv[i % s->o->n_inv];
    new_request_id(id);
    request(s->o, v->method, v->path, v->body, id,
            v->event ? "/invoke" : "/http-invoke", LOCAL_INVOKE_TIMEOUT_MS, &r);
    print_result(s, v->event ? "invoke" : v->path, id, &r);
    if (failed(&r)) {
      pthread_mutex_lock(&s->lock);
      s->failed++;
      pthread_mutex_unlock(&s->lock);
    }
    fnp_buf_destroy(&r.body);
  }
}

static void run_round(local_state *s) {
  pthread_t t[64];
  int i, n = s->o->concurrency;
  s->next = 0;
  s->total = s->o->n_inv * s->o->repeat;
  for (i = 0; i < n; i++)
    if (pthread_create(&t[i], NULL, worker, s) != 0)
      break;
  n = i;
  if (n == 0)
    worker(s);
  for (i = 0; i < n; i++)
    pthread_join(t[i], NULL);
}

static int hook(local_state *s, const char *method, const char *path,
                const char *control) {
  char id[40];
  result r;
  int bad;
  new_request_id(id);
  request(s->o, method, path, "", id, control, LOCAL_HOOK_TIMEOUT_MS, &r);
  print_result(s, path, id, &r);
  bad = failed(&r) && r.status != 404; /* 404: the function has no hook */
  fnp_buf_destroy(&r.body);
  return bad ? -EIO : 0;
}

static int wait_port(const local_opts *o, pid_t pid) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  int64_t deadline = mono_ms() + o->start_timeout_ms;
  int fd, ok;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)o->port);
  while (mono_ms() < deadline) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
      close(fd);
    if (ok)
      return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return -ECHILD;
    usleep(10000);
  }
  return -ETIMEDOUT;
}

/* The instance in a process group of its own: freezing it freezes the
 * sidecar and the function together, as the platform's freezer does. */
static pid_t start_instance(const local_opts *o) {
  char port[16], *argv[128];
  int n = 0, i;
  pid_t pid;
  snprintf(port, sizeof(port), "%d", o->port);
  if (o->sidecar) {
    argv[n++] = (char *)o->sidecar;
    argv[n++] = "--port";
    argv[n++] = port;
    for (i = 0; i < o->n_sidecar_args && n < 100; i++)
      argv[n++] = (char *)o->sidecar_args[i];
    argv[n++] = "--";
  }
  for (i = 0; o->argv[i] && n < 126; i++)
    argv[n++] = o->argv[i];
  argv[n] = NULL;
  pid = fork();
  if (pid != 0)
    return pid;
  setpgid(0, 0);
  if (!o->sidecar)
    setenv("FC_SERVER_PORT", port, 1);
  execvp(argv[0], argv);
  fprintf(stderr, "fnprof-local: exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* After /pre-stop the platform destroys the instance: SIGTERM to the group
 * (the sidecar, already exiting, ignores it), SIGKILL if it lingers. */
static int destroy_instance(pid_t pid) {
  int64_t deadline = mono_ms() + LOCAL_EXIT_WAIT_MS;
  int status = 0;
  usleep(100000); /* the sidecar exits on its own right after /pre-stop */
  if (waitpid(pid, &status, WNOHANG) == pid)
    goto out;
  kill(-pid, SIGTERM);
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (mono_ms() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(10000);
  }
out:
  kill(-pid, SIGKILL); /* whatever the instance left behind */
  return status;
}

static const char USAGE[] =
    "usage: fnprof-local [options] -- BOOTSTRAP [ARGS...]\n"
    "  --sidecar PATH        run the function under fnprof-sidecar\n"
    "  --sidecar-arg ARG     pass ARG to the sidecar (repeatable)\n"
    "  --port N              instance port (default 9000)\n"
    "  --invoke PAYLOAD      an event invocation (POST /invoke), repeatable\n"
    "  --http 'METHOD PATH [BODY]'  an HTTP invocation, repeatable\n"
    "  --file FILE           invocations, one per line: `invoke PAYLOAD` or\n"
    "                        `http METHOD PATH [BODY]`\n"
    "  --repeat N            send the list N times per round (1)\n"
    "  --concurrency N       invocations in flight at once (1, max 64)\n"
    "  --rounds N            rounds; /pre-freeze + SIGSTOP after each (1)\n"
    "  --freeze-ms MS        how long each freeze lasts (100)\n"
    "  --memory MB           x-fc-function-memory (512)\n"
    "  --no-initialize       skip POST /initialize\n"
    "  --start-timeout MS    wait this long for the port (120000)\n"
    "  --show-body           print each answer's body\n";

static int parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi)
    return FNP_EUSAGE;
  *out = (int)v;
  return 0;
}

static int parse_opts(local_opts *o, int argc, char **argv) {
  static const struct option LONG[] = {{"sidecar", 1, 0, 's'},
                                       {"sidecar-arg", 1, 0, 'a'},
                                       {"port", 1, 0, 'p'},
                                       {"invoke", 1, 0, 'i'},
                                       {"http", 1, 0, 'h'},
                                       {"file", 1, 0, 'f'},
                                       {"repeat", 1, 0, 'r'},
                                       {"concurrency", 1, 0, 'c'},
                                       {"rounds", 1, 0, 'R'},
                                       {"freeze-ms", 1, 0, 'z'},
                                       {"memory", 1, 0, 'm'},
                                       {"no-initialize", 0, 0, 'n'},
                                       {"start-timeout", 1, 0, 't'},
                                       {"show-body", 0, 0, 'b'},
                                       {0, 0, 0, 0}};
  int opt, rc = 0, v;
  while (rc == 0 && (opt = getopt_long(argc, argv, "+", LONG, NULL)) != -1) {
    switch (opt) {
    case 's':
      o->sidecar = optarg;
      break;
    case 'a':
      if (o->n_sidecar_args == 32)
        return FNP_EUSAGE;
      o->sidecar_args[o->n_sidecar_args++] = optarg;
      break;
    case 'p':
      rc = parse_int(optarg, 1, 65535, &o->port);
      break;
    case 'i':
      rc = add_inv(o, "POST", "/invoke", optarg, 1);
      break;
    case 'h':
      rc = parse_http(o, optarg);
      break;
    case 'f':
      rc = parse_file(o, optarg);
      break;
    case 'r':
      rc = parse_int(optarg, 1, 100000, &o->repeat);
      break;
    case 'c':
      rc = parse_int(optarg, 1, 64, &o->concurrency);
      break;
    case 'R':
      rc = parse_int(optarg, 1, 10000, &o->rounds);
      break;
    case 'z':
      rc = parse_int(optarg, 0, 3600000, &v);
      o->freeze_ms = v;
      break;
    case 'm':
      o->memory = optarg;
      break;
    case 'n':
      o->initialize = 0;
      break;
    case 't':
      rc = parse_int(optarg, 1, 3600000, &v);
      o->start_timeout_ms = v;
      break;
    case 'b':
      o->show_body = 1;
      break;
    default:
      return FNP_EUSAGE;
    }
  }
  if (rc < 0 || optind >= argc)
    return rc < 0 ? rc : FNP_EUSAGE;
  o->argv = argv + optind;
  return 0;
}

static void freeze(local_state *s, int on) {
  kill(-s->pid, on ? SIGSTOP : SIGCONT);
  printf("%-10s pgid=%d\n", on ? "frozen" : "thawed", (int)s->pid);
  fflush(stdout);
}

/* Rounds of invocations, each ended by /pre-freeze and a real freeze. */
static int lifecycle(local_state *s) {
  int round, rc = 0;
  if (s->o->initialize && hook(s, "POST", "/initialize", "/initialize") < 0)
    rc = -EIO;
  for (round = 0; round < s->o->rounds; round++) {
    if (round > 0)
      freeze(s, 0);
    if (s->o->n_inv > 0)
      run_round(s);
    if (hook(s, "GET", "/pre-freeze", NULL) < 0)
      rc = -EIO;
    freeze(s, 1);
    usleep((useconds_t)s->o->freeze_ms * 1000);
  }
  freeze(s, 0);
  if (hook(s, "GET", "/pre-stop", NULL) < 0)
    rc = -EIO;
  return rc;
}

int main(int argc, char **argv) {
  static local_opts o = {.port = 9000,
                         .concurrency = 1,
                         .rounds = 1,
                         .repeat = 1,
                         .initialize = 1,
                         .freeze_ms = 100,
                         .start_timeout_ms = 120000,
                         .memory = "512"};
  local_state s = {.o = &o};
  int rc, status;
  if (parse_opts(&o, argc, argv) < 0) {
    fputs(USAGE, stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_ALL);
  pthread_mutex_init(&s.lock, NULL);
  s.pid = start_instance(&o);
  if (s.pid < 0)
    return 1;
  rc = wait_port(&o, s.pid);
  if (rc < 0)
    fprintf(stderr, "fnprof-local: the instance did not open port %d: %s\n",
            o.port, fnp_strerror(rc));
  else
    rc = lifecycle(&s);
  status = destroy_instance(s.pid);
  printf("instance   exit=%d%s invocations=%d failed=%d\n",
         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
         WIFSIGNALED(status) ? " (signal)" : "", s.total * o.rounds, s.failed);
  curl_global_cleanup();
  return rc < 0 ? 1 : s.failed ? 4 : 0;
}
