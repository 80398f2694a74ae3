/*
 * Shipping one request with libcurl's multi interface: one easy handle per
 * sink, reused so its connection stays alive between batches; timeouts per
 * attempt and overall (the flush deadline); retries with exponential backoff
 * and full jitter on timeouts, connection failures, 429 and 5xx, honouring
 * Retry-After; no retry on other 4xx. What to send and how to sign it is
 * sink.c's business. Nothing here logs; errors never include headers.
 */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX_BYTES 160 /* enough for an SLS errorCode/Message */
#define POLL_SLICE_MS 1000

struct export__ship {
  export__ship_opts o;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *connect_to;
  uint64_t rng;
  /* Per attempt, filled by the callbacks. */
  char body[ERROR_BODY_MAX_BYTES + 1];
  size_t body_len;
  char retry_after[64];
};

int64_t export_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static double next_rand(export__ship *sh) {
  sh->rng ^= sh->rng >> 12;
  sh->rng ^= sh->rng << 25;
  sh->rng ^= sh->rng >> 27;
  return (double)((sh->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

int64_t export__backoff_ms(const export__ship_opts *o, unsigned attempt,
                           double rnd) {
  int64_t cap = o->backoff_initial_ms;
  for (unsigned i = 0; i < attempt && cap < o->backoff_max_ms; i++)
    cap *= 2;
  if (cap > o->backoff_max_ms)
    cap = o->backoff_max_ms;
  /* Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
   * uniform over [0, cap] spreads retries of many instances best. */
  return (int64_t)(rnd * (double)cap);
}

int64_t export__parse_retry_after(const char *v, int64_t now_s) {
  while (v && isspace((unsigned char)*v))
    v++;
  if (v == NULL || *v == '\0')
    return -1;
  if (isdigit((unsigned char)*v)) {
    char *end;
    long long s = strtoll(v, &end, 10);
    if (s < 0 || s > 86400) /* a day: anything longer is not a hint */
      return -1;
    return s * 1000;
  }
  int64_t t;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%s", v);
  tmp[strcspn(tmp, "\r\n")] = '\0';
  if (export_parse_http_date(tmp, &t) < 0)
    return -1;
  return t > now_s ? (t - now_s) * 1000 : 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  export__ship *sh = ud;
  size_t len = size * n, room = ERROR_BODY_MAX_BYTES - sh->body_len;
  size_t take = len < room ? len : room;
  memcpy(sh->body + sh->body_len, p, take);
  sh->body_len += take;
  sh->body[sh->body_len] = '\0';
  return len; /* the rest is read and discarded, so the connection lives */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  export__ship *sh = ud;
  size_t len = size * n;
  if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
    size_t v = len - 12 < sizeof sh->retry_after - 1
                   ? len - 12
                   : sizeof sh->retry_after - 1;
    memcpy(sh->retry_after, p + 12, v);
    sh->retry_after[v] = '\0';
  }
  return len;
}

int export__ship_new(const export__ship_opts *o, export__ship **out) {
  export__ship *sh = calloc(1, sizeof *sh);
  if (sh == NULL)
    return -ENOMEM;
  sh->o = *o;
  sh->multi = curl_multi_init();
  sh->easy = curl_easy_init();
  if (sh->multi == NULL || sh->easy == NULL) {
    export__ship_free(sh);
    return -ENOMEM;
  }
  sh->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
            (uint64_t)(uintptr_t)sh;
  if (sh->rng == 0)
    sh->rng = 1;
  *out = sh;
  return 0;
}

void export__ship_free(export__ship *sh) {
  if (sh == NULL)
    return;
  if (sh->easy)
    curl_easy_cleanup(sh->easy);
  if (sh->multi)
    curl_multi_cleanup(sh->multi);
  curl_slist_free_all(sh->connect_to);
  free(sh);
}

int export__ship_connect_to(export__ship *sh, const char *spec) {
  struct curl_slist *l = NULL;
  if (spec && (l = curl_slist_append(NULL, spec)) == NULL)
    return -ENOMEM;
  curl_easy_setopt(sh->easy, CURLOPT_CONNECT_TO, l);
  curl_slist_free_all(sh->connect_to);
  sh->connect_to = l;
  return 0;
}

static void setup_easy(export__ship *sh, const char *url, const void *body,
                       size_t len, struct curl_slist *hdrs, long timeout_ms) {
  CURL *e = sh->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)sh->o.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, sh);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, sh);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  sh->body_len = 0;
  sh->body[0] = '\0';
  sh->retry_after[0] = '\0';
}

/* Drives the multi handle until the transfer ends; returns its CURLcode. */
static CURLcode run_transfer(export__ship *sh) {
  if (curl_multi_add_handle(sh->multi, sh->easy) != CURLM_OK)
    return CURLE_FAILED_INIT;
  CURLcode result = CURLE_FAILED_INIT;
  int running = 1;
  while (running) {
    if (curl_multi_perform(sh->multi, &running) != CURLM_OK)
      break;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(sh->multi, &left)) != NULL)
      if (m->msg == CURLMSG_DONE && m->easy_handle == sh->easy)
        result = m->data.result;
    /* CURLOPT_TIMEOUT_MS bounds the transfer; this only bounds one wait. */
    if (running &&
        curl_multi_poll(sh->multi, NULL, 0, POLL_SLICE_MS, NULL) != CURLM_OK)
      break;
  }
  curl_multi_remove_handle(sh->multi, sh->easy);
  return result;
}

static bool retryable_curl(CURLcode c) {
  switch (c) {
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return true;
  default:
    return false;
  }
}

/* One attempt. 0 on 2xx; else res says whether it is worth retrying. */
static int attempt(export__ship *sh, const char *url, const void *body,
                   size_t len, export__headers_cb hcb, void *hctx,
                   int64_t deadline_ms, export__ship_result *res) {
  struct curl_slist *hdrs = NULL;
  fnp_error herr = {0};
  int rc = hcb(hctx, &hdrs, &herr);
  if (rc < 0) {
    curl_slist_free_all(hdrs);
    res->retryable = false;
    memcpy(res->why, herr.msg, sizeof res->why);
    return rc;
  }
  int64_t left = deadline_ms - export_now_ms();
  long timeout = sh->o.request_timeout_ms;
  if (left < timeout)
    timeout = left > 1 ? (long)left : 1;
  setup_easy(sh, url, body, len, hdrs, timeout);
  CURLcode c = run_transfer(sh);
  curl_slist_free_all(hdrs);
  long status = 0;
  curl_easy_getinfo(sh->easy, CURLINFO_RESPONSE_CODE, &status);
  res->status = (int)status;
  res->retry_after_ms =
      export__parse_retry_after(sh->retry_after, (int64_t)time(NULL));
  if (c != CURLE_OK) {
    res->retryable = retryable_curl(c);
    snprintf(res->why, sizeof res->why, "%s", curl_easy_strerror(c));
    return c == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
  }
  if (status >= 200 && status < 300)
    return 0;
  res->retryable = status == 429 || status >= 500;
  snprintf(res->why, sizeof res->why, "HTTP %ld: %s", status, sh->body);
  return status >= 500 || status == 429 ? -EAGAIN : -EPROTO;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int export__ship_post(export__ship *sh, const char *url, const void *body,
                      size_t len, export__headers_cb hcb, void *hctx,
                      int64_t deadline_ms, export__ship_result *res) {
  memset(res, 0, sizeof *res);
  if (export_now_ms() >= deadline_ms) {
    res->retryable = true;
    snprintf(res->why, sizeof res->why, "flush deadline reached");
    return -ETIMEDOUT;
  }
  for (unsigned n = 0;; n++) {
    memset(res, 0, sizeof *res);
    int rc = attempt(sh, url, body, len, hcb, hctx, deadline_ms, res);
    if (rc == 0 || !res->retryable)
      return rc;
    /* Retry-After is a floor: never sooner than the server asked, and
     * never in a tight loop when it says 0. */
    int64_t wait = export__backoff_ms(&sh->o, n, next_rand(sh));
    if (res->retry_after_ms > wait)
      wait = res->retry_after_ms;
    if (export_now_ms() + wait >= deadline_ms)
      return rc; /* the caller spools it; waiting would miss the deadline */
    sleep_ms(wait);
    /* A sleep that overran the deadline reports the last attempt's answer,
     * which says more than "deadline reached". */
    if (export_now_ms() >= deadline_ms)
      return rc;
  }
}
