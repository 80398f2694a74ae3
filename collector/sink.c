/*
 * Sinks: turn batches into payloads (sls_encode.c / otlp_encode.c), queue
 * them, and on flush deliver the spool then the queue in order through
 * ship.c, signing SLS requests per attempt. What cannot be delivered by the
 * deadline goes to the spool; permanent rejections go to the spool's
 * "rejected" directory for inspection. The file:// sink lives in
 * sink_file.c. Credentials live only here, in memory, and are wiped on free.
 */
#include "sink.h"
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static const char *env2(const char *a, const char *b) {
  const char *v = getenv(a);
  return v && *v ? v : getenv(b);
}

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static void clear_credentials(export_sink *s) {
  free(s->key_id);
  wipe_free(s->key_secret);
  wipe_free(s->token);
  s->key_id = s->key_secret = s->token = NULL;
}

int export_sink_set_credentials(export_sink *s, const char *id,
                                const char *secret, const char *token) {
  char *i = dup_or_null(id), *k = dup_or_null(secret), *t = dup_or_null(token);
  if ((id && !i) || (secret && !k) || (token && !t)) {
    free(i);
    wipe_free(k);
    wipe_free(t);
    return -ENOMEM;
  }
  clear_credentials(s);
  s->key_id = i;
  s->key_secret = k;
  s->token = t;
  return 0;
}

int export_sink_set_destination(export_sink *s, const char *project,
                                const char *logstore) {
  if (s->url.scheme != EXPORT_SCHEME_SLS)
    return FNP_EUSAGE;
  if (s->url.project[0])
    return 0; /* the first destination stays: sends may be under way */
  if (!project || !logstore || !export__sls_name_ok(project) ||
      !export__sls_name_ok(logstore) ||
      strlen(project) >= sizeof s->url.project ||
      strlen(logstore) >= sizeof s->url.logstore)
    return FNP_EPARSE;
  snprintf(s->url.project, sizeof s->url.project, "%s", project);
  snprintf(s->url.logstore, sizeof s->url.logstore, "%s", logstore);
  return 0;
}

static int copy_tags(export_sink *s, const export_sink_opts *o) {
  if (o->n_tags == 0)
    return 0;
  s->tags = calloc(o->n_tags, sizeof *s->tags);
  if (s->tags == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < o->n_tags; i++, s->n_tags++) {
    s->tags[i].key = dup_or_null(o->tags[i].key ? o->tags[i].key : "");
    s->tags[i].value = dup_or_null(o->tags[i].value ? o->tags[i].value : "");
    if (!s->tags[i].key || !s->tags[i].value) {
      s->n_tags++;
      return -ENOMEM;
    }
  }
  return 0;
}

/* A random 64-bit prefix makes batch ids unique across instances and
 * restarts without coordination; the sequence keeps them ordered. */
static int make_prefix(export_sink *s, const char *given) {
  if (given) {
    s->id_prefix = strdup(given);
    return s->id_prefix ? 0 : -ENOMEM;
  }
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r)
    r = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
  s->id_prefix = malloc(17);
  if (s->id_prefix == NULL)
    return -ENOMEM;
  snprintf(s->id_prefix, 17, "%016llX", (unsigned long long)r);
  return 0;
}

static int init_opts(export_sink *s, const export_sink_opts *o) {
  s->compress = o->compress;
  s->topic = dup_or_null(o->topic);
  s->source = dup_or_null(o->source);
  int rc = copy_tags(s, o);
  rc = rc ? rc : make_prefix(s, o->batch_id_prefix);
  const char *id = o->access_key_id, *key = o->access_key_secret,
             *tok = o->security_token;
  if (id == NULL && key == NULL) {
    id = env2("FNPROF_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID");
    key = env2("FNPROF_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    tok = env2("FNPROF_SECURITY_TOKEN", "ALIBABA_CLOUD_SECURITY_TOKEN");
  }
  rc = rc ? rc : export_sink_set_credentials(s, id, key, tok);
  if ((o->topic && !s->topic) || (o->source && !s->source))
    rc = -ENOMEM;
  export__ship_opts so = {
      .connect_timeout_ms =
          o->connect_timeout_ms ? o->connect_timeout_ms : 2000,
      .request_timeout_ms =
          o->request_timeout_ms ? o->request_timeout_ms : 10000,
      .backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : 100,
      .backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 5000};
  return rc ? rc : export__ship_new(&so, &s->ship);
}

static int open_spools(export_sink *s, const export_sink_opts *o,
                       fnp_error *err) {
  if (o->spool_dir == NULL)
    return 0;
  int rc = export__spool_open(o->spool_dir, o->spool_max_bytes,
                              o->spool_max_age_ms, &s->spool, err);
  if (rc < 0)
    return rc;
  char path[4096];
  snprintf(path, sizeof path, "%s/rejected", o->spool_dir);
  return export__spool_open(path, o->spool_max_bytes, o->spool_max_age_ms,
                            &s->rejected, err);
}

int export_sink_new(const char *url, const export_sink_opts *opts,
                    export_sink **out, fnp_error *err) {
  static const export_sink_opts defaults = {0};
  const export_sink_opts *o = opts ? opts : &defaults;
  *out = NULL;
  export_sink *s = calloc(1, sizeof *s);
  if (s == NULL)
    return fnp_fail(err, -ENOMEM, "sink: out of memory");
  int rc = export_url_parse(url, &s->url, err);
  if (rc < 0)
    goto fail;
  if ((rc = init_opts(s, o)) < 0) {
    fnp_fail(err, rc, "sink: %s", fnp_strerror(rc));
    goto fail;
  }
  if (s->url.scheme == EXPORT_SCHEME_FILE)
    rc = export__file_open(s, err);
  else
    rc = open_spools(s, o, err);
  if (rc < 0)
    goto fail;
  *out = s;
  return 0;
fail:
  export_sink_free(s);
  return rc;
}

void export_sink_free(export_sink *s) {
  if (s == NULL)
    return;
  for (export__payload *p = s->head, *n; p != NULL; p = n) {
    n = p->next;
    export__payload_free(p);
  }
  for (size_t i = 0; i < s->n_tags; i++) {
    free((char *)s->tags[i].key);
    free((char *)s->tags[i].value);
  }
  free(s->tags);
  free(s->topic);
  free(s->source);
  free(s->id_prefix);
  clear_credentials(s);
  export__ship_free(s->ship);
  export__spool_close(s->spool);
  export__spool_close(s->rejected);
  export__file_close(s);
  export__send_free(s);
  free(s);
}
