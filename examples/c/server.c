/*
 * An FC custom-runtime function in C (libevent evhttp). Same endpoints as
 * examples/python/server.py: /steady, /spike (build_report_cache keeps
 * ~10 MiB), /echo, /crash and the lifecycle hooks; POST /invoke picks the
 * action from its payload. Listens on FC_SERVER_PORT (9000) on
 * FC_SERVER_HOST (0.0.0.0, as the platform requires). Logs in FC's
 * `time requestId [LEVEL] message` format, line-buffered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define REPORT_CACHE_BYTES (10u << 20)
#define REPORT_CACHE_MAX 64
/* /steady does what a small API handler does: a few scratch buffers for the
 * answer (freed before it returns) and a bounded cache of recent sessions
 * whose entries are replaced, so the live heap stays flat. */
#define STEADY_SCRATCH_BUFFERS 8
#define STEADY_SCRATCH_MAX_BYTES (64u << 10)
#define SESSION_CACHE_ENTRIES 64
#define SESSION_ENTRY_BYTES 2048

/* What /spike keeps alive. Not static: a cache nobody reads is one the
 * compiler may drop, memset and all. */
char *report_cache[REPORT_CACHE_MAX];
int report_cache_len;

static void log_line(const char *rid, const char *level, const char *msg) {
  struct timeval tv;
  struct tm tm;
  char stamp[32];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  printf("%s.%03ldZ %s [%s] %s\n", stamp, (long)tv.tv_usec / 1000, rid, level,
         msg);
}

/* The spike: ~10 MiB, every page touched, kept until the process exits.
 * Not static, and the program is linked with -rdynamic: the agent's spike
 * report names frames from the dynamic symbol table. */
size_t build_report_cache(void);
__attribute__((noinline)) size_t build_report_cache(void) {
  char *block;
  if (report_cache_len == REPORT_CACHE_MAX)
    return 0;
  block = malloc(REPORT_CACHE_BYTES);
  if (block == NULL)
    return 0;
  memset(block, 1, REPORT_CACHE_BYTES);
  report_cache[report_cache_len++] = block;
  return REPORT_CACHE_BYTES;
}

static char *session_cache[SESSION_CACHE_ENTRIES];
static unsigned session_next;

/* The steady request's work; returns a checksum so none of it is dead. */
__attribute__((noinline)) static unsigned steady_work(const char *action) {
  unsigned sum = 0, seed = session_next * 2654435761u;
  char *entry;
  for (int i = 0; i < STEADY_SCRATCH_BUFFERS; i++) {
    size_t n = 1024 + (seed >> (i * 3)) % STEADY_SCRATCH_MAX_BYTES;
    char *scratch = malloc(n);
    if (scratch == NULL)
      continue;
    memset(scratch, (int)(i + n), n);
    sum += (unsigned char)scratch[n / 2] + (unsigned)strlen(action);
    free(scratch);
  }
  entry = malloc(SESSION_ENTRY_BYTES);
  if (entry) {
    snprintf(entry, SESSION_ENTRY_BYTES, "session %u for %s", session_next,
             action);
    free(session_cache[session_next % SESSION_CACHE_ENTRIES]);
    session_cache[session_next % SESSION_CACHE_ENTRIES] = entry;
  }
  session_next++;
  return sum;
}

static void answer(struct evhttp_request *req, const char *body) {
  struct evbuffer *out = evbuffer_new();
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type", "application/json");
  evhttp_add_header(h, "x-fc-status", "200");
  if (out)
    evbuffer_add(out, body, strlen(body));
  evhttp_send_reply(req, 200, "OK", out);
  if (out)
    evbuffer_free(out);
}

/* The action: the path, or for POST /invoke the payload's first word. */
static void action_of(struct evhttp_request *req, char *out, size_t size) {
  const char *uri = evhttp_request_get_uri(req);
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = strcspn(uri, "?");
  if (strncmp(uri, "/invoke", n) == 0 && n == 7) {
    n = evbuffer_get_length(in) < size - 2 ? evbuffer_get_length(in) : size - 2;
    out[0] = '/';
    evbuffer_copyout(in, out + 1, n);
    out[n + 1] = '\0';
    out[1 + strcspn(out + 1, " \r\n")] = '\0';
    if (out[1] == '\0')
      snprintf(out, size, "/steady");
    return;
  }
  snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), uri);
}

static void on_request(struct evhttp_request *req, void *arg) {
  const char *rid = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "x-fc-request-id");
  char action[256], msg[300];
  (void)arg;
  rid = rid ? rid : "-";
  action_of(req, action, sizeof(action));
  if (strcmp(action, "/spike") == 0) {
    snprintf(msg, sizeof(msg), "report cache built: %zu bytes",
             build_report_cache());
    log_line(rid, "INFO", msg);
    snprintf(msg, sizeof(msg), "{\"cached\": %d}", report_cache_len);
    return answer(req, msg);
  }
  if (strcmp(action, "/crash") == 0) {
    log_line(rid, "ERROR", "about to crash");
    fflush(stdout);
    _exit(3);
  }
  if (strcmp(action, "/pre-freeze") == 0 || strcmp(action, "/pre-stop") == 0 ||
      strcmp(action, "/initialize") == 0) {
    snprintf(msg, sizeof(msg), "hook %s", action);
    log_line(rid, "INFO", msg);
    return answer(req, "{}");
  }
  log_line(rid, "INFO", "steady request");
  printf("plain line for %s\n", action);
  snprintf(msg, sizeof(msg), "{\"ok\": true, \"path\": \"%s\", \"sum\": %u}",
           action, steady_work(action));
  answer(req, msg);
}

int main(void) {
  const char *port = getenv("FC_SERVER_PORT"), *host = getenv("FC_SERVER_HOST");
  struct event_base *base;
  struct evhttp *http;
  setvbuf(stdout, NULL, _IOLBF, 0); /* one write per line, as logs expect */
  base = event_base_new();
  http = base ? evhttp_new(base) : NULL;
  if (http == NULL)
    return 1;
  evhttp_set_timeout(http, 24 * 3600); /* FC keeps connections open */
  evhttp_set_gencb(http, on_request, NULL);
  if (evhttp_bind_socket(http, host ? host : "0.0.0.0",
                         (ev_uint16_t)atoi(port ? port : "9000")) < 0) {
    fprintf(stderr, "cannot listen on port %s\n", port ? port : "9000");
    return 1;
  }
  printf("c example listening on port %s\n", port ? port : "9000");
  event_base_dispatch(base);
  evhttp_free(http);
  event_base_free(base);
  return 0;
}
