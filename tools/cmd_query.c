/*
 * tools/cmd_query.c - what the query verbs (cmd_logs.c) share: finding the
 * collector (--url, FNPROF_COLLECTOR_URL, else loopback), one GET with
 * libcurl (bearer key from FNPROF_ACCESS_KEY_ID/_SECRET, answer capped),
 * time arguments, and a small JSON reader for the human-readable output.
 * What the answers mean is the collector's business (collector/README.md);
 * --json passes its documents through untouched.
 */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The collector's own default listen address (collector/server/main.c). */
#define QUERY_DEFAULT_URL "http://127.0.0.1:4380"
/* A query answer is at most 10000 records; profiles are capped at 32 MiB by
 * the exporter. Anything larger is not an answer we asked for. */
#define QUERY_MAX_ANSWER_BYTES (256u << 20)
#define QUERY_TIMEOUT_S 30L
#define QUERY_CONNECT_TIMEOUT_S 5L
#define QUERY_MAX_URL_BYTES (64u << 10)
#define JSON_MAX_DEPTH 64 /* our documents nest 4 deep */

/* ---- HTTP --------------------------------------------------------------- */

const char *query_base_url(const char *opt) {
  if (opt && *opt)
    return opt;
  const char *env = getenv("FNPROF_COLLECTOR_URL");
  return env && *env ? env : QUERY_DEFAULT_URL;
}

int query_url_init(query_url *q, const char *base, const char *path) {
  *q = (query_url){0};
  fnp_buf_init(&q->buf, QUERY_MAX_URL_BYTES);
  size_t n = strlen(base);
  while (n > 0 && base[n - 1] == '/')
    n--; /* "http://host:port/" + "/api/logs" */
  if (fnp_buf_append(&q->buf, base, n) < 0 ||
      fnp_buf_printf(&q->buf, "%s", path) < 0)
    q->bad = true;
  return q->bad ? FNP_ETOOBIG : 0;
}

void query_param(query_url *q, const char *key, const char *value) {
  if (value == NULL)
    return;
  char *esc = curl_easy_escape(NULL, value, 0);
  if (esc == NULL ||
      fnp_buf_printf(&q->buf, "%s%s=%s", q->n_params ? "&" : "?", key, esc) < 0)
    q->bad = true; /* query_get refuses it */
  q->n_params++;
  curl_free(esc);
}

void query_param_num(query_url *q, const char *key, int64_t value) {
  char v[32];
  snprintf(v, sizeof v, "%lld", (long long)value);
  query_param(q, key, v);
}

void query_url_destroy(query_url *q) { fnp_buf_destroy(&q->buf); }

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
  fnp_buf *b = arg;
  return fnp_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* An error answer's message: the collector's {"errorMessage": ...}. */
static void answer_error(const fnp_buf *body, char *out, size_t cap) {
  json_value *v = NULL;
  snprintf(out, cap, "no error message");
  if (json_parse((const char *)body->data, body->len, &v) == 0) {
    const char *m = json_str_of(json_get(v, "errorMessage"));
    const char *c = json_str_of(json_get(v, "errorCode"));
    if (m)
      snprintf(out, cap, "%s%s%s", c ? c : "", c ? ": " : "", m);
  }
  json_free(v);
}

int query_get(const char *verb, query_url *url, fnp_buf *body) {
  if (url->bad || fnp_buf_append(&url->buf, "", 1) < 0)
    return cli_fail(verb, CLI_EXIT_USAGE, "query too long");
  CURL *h = curl_easy_init();
  if (h == NULL)
    return cli_fail(verb, CLI_EXIT_ERROR, "cannot start libcurl");
  char err[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdrs = NULL;
  fnp_buf auth;
  fnp_buf_init(&auth, 4096);
  const char *id = getenv("FNPROF_ACCESS_KEY_ID");
  const char *secret = getenv("FNPROF_ACCESS_KEY_SECRET");
  if (id && *id && secret && *secret &&
      fnp_buf_printf(&auth, "Authorization: Bearer %s:%s", id, secret) == 0 &&
      fnp_buf_append(&auth, "", 1) == 0)
    hdrs = curl_slist_append(NULL, (const char *)auth.data);
  curl_easy_setopt(h, CURLOPT_URL, (const char *)url->buf.data);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, QUERY_TIMEOUT_S);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, QUERY_CONNECT_TIMEOUT_S);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  if (auth.data)
    explicit_bzero(auth.data, auth.len); /* the secret */
  fnp_buf_destroy(&auth);
  curl_easy_cleanup(h);
  int rc = CLI_EXIT_OK;
  if (cc == CURLE_WRITE_ERROR)
    rc = cli_fail(verb, CLI_EXIT_ERROR, "answer larger than %u MiB",
                  QUERY_MAX_ANSWER_BYTES >> 20);
  else if (cc != CURLE_OK)
    rc = cli_fail(verb, CLI_EXIT_ERROR, "cannot query the collector: %s",
                  err[0] ? err : curl_easy_strerror(cc));
  else if (status != 200) {
    char msg[512];
    answer_error(body, msg, sizeof msg);
    rc = cli_fail(verb, CLI_EXIT_ERROR, "collector answered %ld: %s", status,
                  msg);
  }
  return rc;
}

void query_buf_init(fnp_buf *b) { fnp_buf_init(b, QUERY_MAX_ANSWER_BYTES); }

/* ---- time arguments ----------------------------------------------------- */

int query_parse_time(const char *verb, const char *opt, const char *s,
                     int64_t *ns) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t now_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
  if (strcmp(s, "now") == 0) {
    *ns = now_ns;
    return CLI_EXIT_OK;
  }
  if (end != s && errno == 0 && v >= 0) {
    static const struct {
      char unit;
      int64_t ns;
    } units[] = {{'s', 1000000000LL},
                 {'m', 60 * 1000000000LL},
                 {'h', 3600 * 1000000000LL},
                 {'d', 86400 * 1000000000LL}};
    if (*end == '\0') { /* Unix nanoseconds, as the API speaks */
      *ns = v;
      return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
      if (end[0] == units[i].unit && end[1] == '\0' &&
          v < INT64_MAX / units[i].ns) {
        *ns = now_ns - v * units[i].ns; /* that long ago */
        return CLI_EXIT_OK;
      }
  }
  struct tm tm = {0};
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest && (strcmp(rest, "Z") == 0 || *rest == '\0')) {
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return CLI_EXIT_OK;
  }
  return cli_fail(verb, CLI_EXIT_USAGE,
                  "%s wants Unix nanoseconds, a duration ago (30s, 15m, 2h, "
                  "1d), 'now' or YYYY-MM-DDTHH:MM:SSZ, not '%s'",
                  opt, s);
}

void query_format_time(const char *ns_text, char *out, size_t cap) {
  long long ns = ns_text ? strtoll(ns_text, NULL, 10) : 0;
  time_t s = (time_t)(ns / 1000000000LL);
  struct tm tm;
  if (ns <= 0 || gmtime_r(&s, &tm) == NULL) {
    snprintf(out, cap, "-");
    return;
  }
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%06lldZ", day, (ns % 1000000000LL) / 1000);
}

/* ---- a small JSON reader ------------------------------------------------ */

struct json_value {
  json_type type;
  char *text;        /* strings (decoded) and numbers (as written) */
  char *key;         /* set for object members */
  json_value *child; /* first element or member */
  json_value *next;  /* next sibling */
};

typedef struct jparser {
  const char *p, *end;
} jparser;

static void skip_ws(jparser *j) {
  while (j->p < j->end &&
         (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
    j->p++;
}

static int put_utf8(fnp_buf *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80)
    u[0] = (char)cp, n = 1;
  else if (cp < 0x800)
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  else
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)),
    n = 4;
  return fnp_buf_append(b, u, n);
}

static int hex4(const char *p, unsigned *out) {
  char h[5] = {0};
  memcpy(h, p, 4);
  char *end;
  *out = (unsigned)strtoul(h, &end, 16);
  return end == h + 4 ? 0 : FNP_EPARSE;
}

/* A string literal at j->p (the opening quote), decoded into a new string. */
static int parse_string(jparser *j, char **out) {
  fnp_buf b;
  fnp_buf_init(&b, QUERY_MAX_ANSWER_BYTES);
  int rc = 0;
  j->p++;
  while (rc == 0 && j->p < j->end && *j->p != '"') {
    if (*j->p != '\\') {
      const char *q = j->p;
      while (q < j->end && *q != '"' && *q != '\\')
        q++;
      rc = fnp_buf_append(&b, j->p, (size_t)(q - j->p));
      j->p = q;
      continue;
    }
    if (j->end - j->p < 2) {
      rc = FNP_EPARSE;
      break;
    }
    char c = j->p[1], lit = 0;
    j->p += 2;
    switch (c) {
    case 'n':
      lit = '\n';
      break;
    case 't':
      lit = '\t';
      break;
    case 'r':
      lit = '\r';
      break;
    case 'b':
      lit = '\b';
      break;
    case 'f':
      lit = '\f';
      break;
    case '"':
    case '\\':
    case '/':
      lit = c;
      break;
    case 'u': {
      unsigned cp, lo;
      if (j->end - j->p < 4 || hex4(j->p, &cp) < 0) {
        rc = FNP_EPARSE;
        break;
      }
      j->p += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 &&
          j->p[0] == '\\' && j->p[1] == 'u' && hex4(j->p + 2, &lo) == 0 &&
          lo >= 0xdc00 && lo < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        j->p += 6;
      }
      rc = put_utf8(&b, cp);
      break;
    }
    default:
      rc = FNP_EPARSE;
    }
    if (lit)
      rc = fnp_buf_append(&b, &lit, 1);
  }
  if (rc == 0 && j->p >= j->end)
    rc = FNP_EPARSE;
  j->p++;
  rc = rc ? rc : fnp_buf_append(&b, "", 1);
  if (rc < 0) {
    fnp_buf_destroy(&b);
    return rc;
  }
  *out = (char *)fnp_buf_steal(&b, NULL);
  return 0;
}

static int parse_value(jparser *j, int depth, json_value **out);

/* Elements of an array or members of an object, after the opening bracket. */
static int parse_items(jparser *j, int depth, json_value *v, char close) {
  json_value **tail = &v->child;
  skip_ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    return 0;
  }
  for (;;) {
    char *key = NULL;
    int rc;
    skip_ws(j);
    if (close == '}') {
      if (j->p >= j->end || *j->p != '"' || parse_string(j, &key) < 0)
        return FNP_EPARSE;
      skip_ws(j);
      if (j->p >= j->end || *j->p++ != ':') {
        free(key);
        return FNP_EPARSE;
      }
    }
    if ((rc = parse_value(j, depth + 1, tail)) < 0) {
      free(key);
      return rc;
    }
    (*tail)->key = key;
    tail = &(*tail)->next;
    skip_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return 0;
    }
    return FNP_EPARSE;
  }
}

static int parse_value(jparser *j, int depth, json_value **out) {
  skip_ws(j);
  if (j->p >= j->end || depth > JSON_MAX_DEPTH)
    return FNP_EPARSE;
  json_value *v = calloc(1, sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  *out = v;
  char c = *j->p;
  if (c == '{' || c == '[') {
    v->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
    j->p++;
    return parse_items(j, depth, v, c == '{' ? '}' : ']');
  }
  if (c == '"') {
    v->type = JSON_STRING;
    return parse_string(j, &v->text);
  }
  static const struct {
    const char *word;
    json_type type;
  } words[] = {{"null", JSON_NULL}, {"true", JSON_TRUE}, {"false", JSON_FALSE}};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i].word);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i].word, n) == 0) {
      v->type = words[i].type;
      j->p += n;
      return 0;
    }
  }
  const char *s = j->p;
  while (j->p < j->end && strchr("+-0123456789.eE", *j->p))
    j->p++;
  if (j->p == s)
    return FNP_EPARSE;
  v->type = JSON_NUMBER;
  v->text = strndup(s, (size_t)(j->p - s));
  return v->text ? 0 : -ENOMEM;
}

int json_parse(const char *text, size_t len, json_value **out) {
  jparser j = {text, text + len};
  *out = NULL;
  int rc = parse_value(&j, 0, out);
  skip_ws(&j);
  if (rc == 0 && j.p != j.end)
    rc = FNP_EPARSE;
  if (rc < 0) {
    json_free(*out);
    *out = NULL;
  }
  return rc;
}

void json_free(json_value *v) {
  while (v) {
    json_value *next = v->next;
    json_free(v->child);
    free(v->text);
    free(v->key);
    free(v);
    v = next;
  }
}

const json_value *json_get(const json_value *obj, const char *key) {
  if (obj == NULL || obj->type != JSON_OBJECT)
    return NULL;
  for (const json_value *m = obj->child; m; m = m->next)
    if (strcmp(m->key, key) == 0)
      return m;
  return NULL;
}

const json_value *json_first(const json_value *v) {
  return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->child
                                                                : NULL;
}

const json_value *json_next(const json_value *v) { return v ? v->next : NULL; }

const char *json_key_of(const json_value *member) {
  return member ? member->key : NULL;
}

const char *json_str_of(const json_value *v) {
  return v && (v->type == JSON_STRING || v->type == JSON_NUMBER) ? v->text
                                                                 : NULL;
}

json_type json_type_of(const json_value *v) { return v ? v->type : JSON_NULL; }
