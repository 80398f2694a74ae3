/*
 * trivial.c - the benchmark's function: as little work as an HTTP function
 * can do, so what the benchmark sees is the proxy in front of it. GET or
 * POST anything answers 200 "ok"; /lines?n=N first prints N log lines (in
 * FC's `time requestId [LEVEL] message` shape) to stdout, for the
 * /pre-freeze measurement. Listens on FC_SERVER_HOST:FC_SERVER_PORT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

/* More lines than this in one request is a typo, not a benchmark. */
#define LINES_MAX 1000000

static void print_lines(struct evhttp_request *req, const char *uri) {
  const char *rid = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "x-fc-request-id");
  const char *q = strstr(uri, "n=");
  long n = q ? strtol(q + 2, NULL, 10) : 0;
  if (n > LINES_MAX)
    n = LINES_MAX;
  for (long i = 0; i < n; i++)
    printf("2026-01-01T00:00:00.000Z %s [INFO] benchmark log line %ld of "
           "%ld, some payload to make it look like a real one\n",
           rid ? rid : "-", i + 1, n);
  fflush(stdout);
}

static void on_request(struct evhttp_request *req, void *arg) {
  struct evbuffer *out = arg;
  const char *uri = evhttp_request_get_uri(req);
  if (strncmp(uri, "/lines", 6) == 0)
    print_lines(req, uri);
  evbuffer_add(out, "ok", 2);
  evhttp_send_reply(req, 200, "OK", out); /* drains out */
}

int main(void) {
  const char *port = getenv("FC_SERVER_PORT"), *host = getenv("FC_SERVER_HOST");
  struct event_base *base = event_base_new();
  struct evhttp *http = base ? evhttp_new(base) : NULL;
  struct evbuffer *out = evbuffer_new();
  if (http == NULL || out == NULL)
    return 1;
  evhttp_set_timeout(http, 3600);
  evhttp_set_gencb(http, on_request, out);
  if (evhttp_bind_socket(http, host ? host : "127.0.0.1",
                         (ev_uint16_t)atoi(port ? port : "9000")) < 0) {
    fprintf(stderr, "trivial: cannot listen on port %s\n",
            port ? port : "9000");
    return 1;
  }
  event_base_dispatch(base);
  evbuffer_free(out);
  evhttp_free(http);
  event_base_free(base);
  return 0;
}
