/*
 * Shipping requests with libcurl's multi interface: up to
 * EXPORT__SHIP_WINDOW POSTs in flight at once, each on an easy handle of
 * its own that is kept between requests, so the multi handle's connection
 * pool reuses the connections; timeouts per attempt and overall (the flush
 * deadline); retries with exponential backoff and full jitter on timeouts,
 * connection failures, 429 and 5xx, honouring Retry-After; no retry on other
 * 4xx. A job waiting out its backoff holds its slot but no connection. What
 * to send, in which order, and how to sign it is the sinks' business
 * (sink_flush.c). Nothing here logs; errors never include headers.
 */
#include "sink.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_SLICE_MS 1000

struct export__ship {
  export__ship_opts o;
  CURLM *multi;
  CURL *easy[EXPORT__SHIP_WINDOW];
  export__ship_job *job[EXPORT__SHIP_WINDOW]; /* NULL: the slot is free */
  struct curl_slist *connect_to;
  uint64_t rng;
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
  export__ship_job *j = ud;
  size_t len = size * n, room = EXPORT__ERROR_BODY_MAX_BYTES - j->body_len;
  size_t take = len < room ? len : room;
  memcpy(j->body + j->body_len, p, take);
  j->body_len += take;
  j->body[j->body_len] = '\0';
  return len; /* the rest is read and discarded, so the connection lives */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  export__ship_job *j = ud;
  size_t len = size * n;
  if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
    size_t v = len - 12 < sizeof j->retry_after - 1 ? len - 12
                                                    : sizeof j->retry_after - 1;
    memcpy(j->retry_after, p + 12, v);
    j->retry_after[v] = '\0';
  }
  return len;
}

int export__ship_new(const export__ship_opts *o, export__ship **out) {
  export__ship *sh = calloc(1, sizeof *sh);
  if (sh == NULL)
    return -ENOMEM;
  sh->o = *o;
  sh->multi = curl_multi_init();
  bool ok = sh->multi != NULL;
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
    ok = ok && (sh->easy[i] = curl_easy_init()) != NULL;
  if (!ok) {
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
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++) {
    if (sh->job[i] && sh->job[i]->state == EXPORT__JOB_RUNNING)
      curl_multi_remove_handle(sh->multi, sh->easy[i]);
    if (sh->job[i])
      curl_slist_free_all(sh->job[i]->hdrs);
    if (sh->easy[i])
      curl_easy_cleanup(sh->easy[i]);
  }
  if (sh->multi)
    curl_multi_cleanup(sh->multi);
  curl_slist_free_all(sh->connect_to);
  free(sh);
}

int export__ship_connect_to(export__ship *sh, const char *spec) {
  struct curl_slist *l = NULL;
  if (spec && (l = curl_slist_append(NULL, spec)) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
    curl_easy_setopt(sh->easy[i], CURLOPT_CONNECT_TO, l);
  curl_slist_free_all(sh->connect_to);
  sh->connect_to = l;
  return 0;
}

size_t export__ship_free_slots(const export__ship *sh) {
  size_t n = 0;
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
    n += sh->job[i] == NULL;
  return n;
}

static void setup_easy(export__ship *sh, CURL *e, export__ship_job *j,
                       long timeout_ms) {
  curl_easy_setopt(e, CURLOPT_URL, j->url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->data);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)sh->o.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  j->body_len = 0;
  j->body[0] = '\0';
  j->retry_after[0] = '\0';
}

/* Marks a job finished with rc; res already says why. */
static void finish(export__ship_job *j, int rc) {
  j->rc = rc;
  j->state = EXPORT__JOB_DONE;
}

/* Starts one attempt of the job in slot i: fresh headers (Date moves). */
static void begin_attempt(export__ship *sh, size_t i) {
  export__ship_job *j = sh->job[i];
  export__ship_result *res = &j->res;
  fnp_error herr = {0};
  memset(res, 0, sizeof *res);
  curl_slist_free_all(j->hdrs);
  j->hdrs = NULL;
  int rc = j->hcb(j->hctx, &j->hdrs, &herr);
  if (rc < 0) {
    memcpy(res->why, herr.msg, sizeof res->why);
    finish(j, rc);
    return;
  }
  int64_t left = j->deadline_ms - export_now_ms();
  long timeout = sh->o.request_timeout_ms;
  if (left < timeout)
    timeout = left > 1 ? (long)left : 1;
  setup_easy(sh, sh->easy[i], j, timeout);
  if (curl_multi_add_handle(sh->multi, sh->easy[i]) != CURLM_OK) {
    snprintf(res->why, sizeof res->why, "%s",
             curl_easy_strerror(CURLE_FAILED_INIT));
    finish(j, -ENOMEM);
    return;
  }
  j->state = EXPORT__JOB_RUNNING;
}

int export__ship_start(export__ship *sh, export__ship_job *j) {
  size_t i = 0;
  while (i < EXPORT__SHIP_WINDOW && sh->job[i] != NULL)
    i++;
  if (i == EXPORT__SHIP_WINDOW)
    return -EBUSY;
  j->attempts = 0;
  j->hdrs = NULL;
  sh->job[i] = j;
  memset(&j->res, 0, sizeof j->res);
  if (export_now_ms() >= j->deadline_ms) {
    j->res.retryable = true;
    snprintf(j->res.why, sizeof j->res.why, "flush deadline reached");
    finish(j, -ETIMEDOUT);
    return 0;
  }
  begin_attempt(sh, i);
  return 0;
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

/* One attempt's outcome: 0 on 2xx; else res says whether to retry. */
static int judge(export__ship_job *j, CURL *e, CURLcode c) {
  export__ship_result *res = &j->res;
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  res->status = (int)status;
  res->retry_after_ms =
      export__parse_retry_after(j->retry_after, (int64_t)time(NULL));
  if (c != CURLE_OK) {
    res->retryable = retryable_curl(c);
    snprintf(res->why, sizeof res->why, "%s", curl_easy_strerror(c));
    return c == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
  }
  if (status >= 200 && status < 300)
    return 0;
  res->retryable = status == 429 || status >= 500;
  snprintf(res->why, sizeof res->why, "HTTP %ld: %s", status, j->body);
  return status >= 500 || status == 429 ? -EAGAIN : -EPROTO;
}

/* An attempt in slot i ended: finish the job or schedule its retry. */
static void attempt_ended(export__ship *sh, size_t i, CURLcode c) {
  export__ship_job *j = sh->job[i];
  curl_multi_remove_handle(sh->multi, sh->easy[i]);
  curl_slist_free_all(j->hdrs);
  j->hdrs = NULL;
  int rc = judge(j, sh->easy[i], c);
  if (rc == 0 || !j->res.retryable) {
    finish(j, rc);
    return;
  }
  /* Retry-After is a floor: never sooner than the server asked, and never
   * in a tight loop when it says 0. Waiting past the deadline is useless:
   * the caller spools the payload instead. */
  int64_t wait = export__backoff_ms(&sh->o, j->attempts++, next_rand(sh));
  if (j->res.retry_after_ms > wait)
    wait = j->res.retry_after_ms;
  int64_t now = export_now_ms();
  if (now + wait >= j->deadline_ms) {
    finish(j, rc);
    return;
  }
  j->rc = rc;
  j->retry_at_ms = now + wait;
  j->state = EXPORT__JOB_BACKOFF;
}

/* Reads finished transfers; starts retries that are due. Returns how long
 * the next wait may last (ms) given the nearest retry and deadline. */
static long collect(export__ship *sh) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(sh->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++)
      if (sh->easy[i] == m->easy_handle && sh->job[i] &&
          sh->job[i]->state == EXPORT__JOB_RUNNING) {
        attempt_ended(sh, i, m->data.result);
        break;
      }
  }
  long wait = POLL_SLICE_MS;
  int64_t now = export_now_ms();
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++) {
    export__ship_job *j = sh->job[i];
    if (j == NULL || j->state != EXPORT__JOB_BACKOFF)
      continue;
    if (j->retry_at_ms <= now) {
      begin_attempt(sh, i);
      wait = 0; /* perform the new transfer at once */
    } else if (j->retry_at_ms - now < wait) {
      wait = (long)(j->retry_at_ms - now);
    }
  }
  return wait;
}

/* Takes one finished job out of its slot, if any. */
static export__ship_job *take_done(export__ship *sh) {
  for (size_t i = 0; i < EXPORT__SHIP_WINDOW; i++) {
    export__ship_job *j = sh->job[i];
    if (j && j->state == EXPORT__JOB_DONE) {
      sh->job[i] = NULL;
      return j;
    }
  }
  return NULL;
}

export__ship_job *export__ship_wait(export__ship *sh, bool block) {
  for (;;) {
    int running = 0;
    if (curl_multi_perform(sh->multi, &running) != CURLM_OK)
      running = 0;
    long wait = collect(sh);
    export__ship_job *j = take_done(sh);
    if (j != NULL || !block ||
        export__ship_free_slots(sh) == EXPORT__SHIP_WINDOW)
      return j;
    /* CURLOPT_TIMEOUT_MS bounds each transfer and the deadline each
     * backoff; this only bounds one wait. A failed poll (out of memory)
     * just means the next perform comes sooner. */
    if (wait > 0)
      curl_multi_poll(sh->multi, NULL, 0, (int)wait, NULL);
  }
}

int export__ship_post(export__ship *sh, const char *url, const void *body,
                      size_t len, export__headers_cb hcb, void *hctx,
                      int64_t deadline_ms, export__ship_result *res) {
  export__ship_job j = {.url = url,
                        .data = body,
                        .len = len,
                        .hcb = hcb,
                        .hctx = hctx,
                        .deadline_ms = deadline_ms};
  int rc = export__ship_start(sh, &j);
  export__ship_job *done = NULL;
  while (rc == 0 && done != &j)
    done = export__ship_wait(sh, true); /* j holds a slot until done */
  *res = j.res;
  return rc < 0 ? rc : j.rc;
}
