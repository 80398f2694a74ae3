/*
 * sink_http.c - the http:// sink: a plain webhook for the sidecar's own JSON
 * lines (the store protocols are sink_lib.c's). POSTs each batch as JSON
 * lines (application/x-ndjson) and takes any
 * 2xx as the store's acknowledgement. X-Fnprof-Instance + X-Fnprof-Offset
 * identify the batch so a store can drop a retry whose first ack was lost.
 * The transfer is aborted at the flush deadline (CURLOPT_TIMEOUT_MS), which is
 * what keeps /pre-freeze within its budget when the store hangs. Export thread
 * only; the easy handle is reused for keep-alive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"

typedef struct http_sink {
  CURL *curl;
  char *url;
  char instance_hdr[192];
} http_sink;

static int http_open(const char *url, const sidecar_config *cfg, void **ctx,
                     fnp_error *err) {
  const char *instance_id = cfg->instance_id;
  http_sink *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return fnp_fail(err, -ENOMEM, "http sink: out of memory");
  h->url = strdup(url);
  h->curl = curl_easy_init();
  if (h->url == NULL || h->curl == NULL) {
    free(h->url);
    if (h->curl)
      curl_easy_cleanup(h->curl);
    free(h);
    return fnp_fail(err, -ENOMEM, "http sink: init failed");
  }
  snprintf(h->instance_hdr, sizeof(h->instance_hdr), "X-Fnprof-Instance: %s",
           instance_id);
  *ctx = h;
  return 0;
}

/* Discards the store's answer body; only the status matters. */
static size_t discard(char *p, size_t size, size_t n, void *arg) {
  (void)p;
  (void)arg;
  return size * n;
}

static int http_send(void *ctx, const uint8_t *data, size_t len, uint64_t start,
                     int64_t deadline_mono_ns, fnp_error *err) {
  http_sink *h = ctx;
  struct curl_slist *hdrs = NULL, *t;
  const char *lines[3];
  char off[64];
  long code = 0, left_ms = (long)((deadline_mono_ns - sc__mono_ns()) / 1000000);
  CURLcode cc;
  size_t i;
  if (left_ms <= 0)
    return fnp_fail(err, -ETIMEDOUT, "http sink: no time left");
  snprintf(off, sizeof(off), "X-Fnprof-Offset: %llu",
           (unsigned long long)start);
  lines[0] = "Content-Type: application/x-ndjson";
  lines[1] = h->instance_hdr;
  lines[2] = off;
  for (i = 0; i < 3; i++) {
    t = curl_slist_append(hdrs, lines[i]);
    if (t == NULL) {
      curl_slist_free_all(hdrs);
      return fnp_fail(err, -ENOMEM, "http sink: out of memory");
    }
    hdrs = t;
  }
  curl_easy_setopt(h->curl, CURLOPT_URL, h->url);
  curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (const char *)data);
  curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, left_ms);
  curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, left_ms);
  curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, discard);
  cc = curl_easy_perform(h->curl);
  if (cc == CURLE_OK)
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hdrs);
  if (cc != CURLE_OK)
    return fnp_fail(err, -EIO, "http sink: %s", curl_easy_strerror(cc));
  if (code < 200 || code > 299)
    return fnp_fail(err, -EIO, "http sink: store answered %ld", code);
  return 0;
}

static void http_close(void *ctx) {
  http_sink *h = ctx;
  curl_easy_cleanup(h->curl);
  free(h->url);
  free(h);
}

/* No flush of its own, no profiles (NDJSON only), no credentials. */
const sc_sink_ops sc__sink_http = {"http", http_open, http_send, http_close,
                                   NULL,   NULL,      NULL,      NULL};
