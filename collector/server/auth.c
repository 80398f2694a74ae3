/*
 * Authentication for fnprof-collector: SLS signature v1 exactly as SLS
 * checks it (required headers, Date skew, Content-MD5 against the body,
 * HMAC-SHA1 over the canonical string) and, for OTLP clients that cannot
 * sign, "Authorization: Bearer ID:SECRET". Secrets are compared in constant
 * time and never appear in answers.
 */
#include "server.h"

#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h> /* TAILQ_FOREACH over evhttp headers */
#include <time.h>

#define MAX_SIGNED_HEADERS 64

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* %-decodes n bytes of s into out (NUL-terminated); false if it won't fit. */
static bool pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (j + 1 >= cap)
      return false;
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
        (lo = hexval(s[i + 2])) >= 0) {
      out[j++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = '\0';
  return true;
}

const char *srv_query(struct evhttp_request *req, const char *key, char *out,
                      size_t cap) {
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *q = u ? evhttp_uri_get_query(u) : NULL;
  size_t klen = strlen(key);
  while (q && *q) {
    size_t n = strcspn(q, "&");
    if (n > klen && strncmp(q, key, klen) == 0 && q[klen] == '=')
      return pct_decode(q + klen + 1, n - klen - 1, out, cap) ? out : NULL;
    q += n + (q[n] == '&');
  }
  return NULL;
}

int srv_resource(struct evhttp_request *req, const char *path, char *out,
                 size_t cap) {
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *q = u ? evhttp_uri_get_query(u) : NULL;
  int n = snprintf(out, cap, "%s", path);
  if (n < 0 || (size_t)n >= cap)
    return FNP_ETOOBIG;
  if (q == NULL || *q == '\0')
    return 0;
  size_t len = (size_t)n;
  out[len++] = '?';
  /* Values decoded, as the SDKs sign them; export_sls_sign sorts. */
  if (!pct_decode(q, strlen(q), out + len, cap - len))
    return FNP_ETOOBIG;
  return 0;
}

static const srv_key *find_key(srv *s, const char *id, size_t n) {
  for (int i = 0; i < s->n_keys; i++)
    if (strlen(s->keys[i].id) == n && memcmp(s->keys[i].id, id, n) == 0)
      return &s->keys[i];
  return NULL;
}

/* The checks SLS makes before the signature, in its error vocabulary. */
static int check_headers(srv *s, struct evhttp_request *req,
                         const uint8_t *body, size_t len) {
  const char *date = srv_header(req, "Date");
  const char *api = srv_header(req, "x-log-apiversion");
  const char *method = srv_header(req, "x-log-signaturemethod");
  const char *md5 = srv_header(req, "Content-MD5");
  int64_t t;
  if (date == NULL)
    return srv_reply_error(s, req, 400, "MissingDate", "Date is required");
  if (export_parse_http_date(date, &t) < 0)
    return srv_reply_error(s, req, 400, "InvalidDateFormat",
                           "Date must be RFC 1123 GMT");
  int64_t now = (int64_t)time(NULL);
  if (t > now + s->lim.max_skew_s || t < now - s->lim.max_skew_s)
    return srv_reply_error(s, req, 400, "RequestTimeExpired",
                           "Date is more than %lld s from server time",
                           (long long)s->lim.max_skew_s);
  if (api == NULL)
    return srv_reply_error(s, req, 400, "MissingAPIVersion",
                           "x-log-apiversion is required");
  if (strcmp(api, "0.6.0") != 0)
    return srv_reply_error(s, req, 400, "InvalidAPIVersion",
                           "x-log-apiversion must be 0.6.0");
  if (method == NULL || strcasecmp(method, "hmac-sha1") != 0)
    return srv_reply_error(s, req, 400,
                           method ? "InvalidSignatureMethod"
                                  : "MissingSignatureMethod",
                           "x-log-signaturemethod must be hmac-sha1 (v1)");
  char want[33];
  export_md5_hex(body, len, want);
  if (len > 0 && (md5 == NULL || strcasecmp(md5, want) != 0))
    return srv_reply_error(s, req, 400, "PostBodyInvalid",
                           md5 ? "Content-MD5 does not match the body"
                               : "Content-MD5 is required with a body");
  return 0;
}

/* Recomputes the v1 signature over what was received and compares. */
static int check_signature(srv *s, struct evhttp_request *req,
                           const char *resource, const srv_key *k,
                           const char *sig, size_t sig_len) {
  export_header h[MAX_SIGNED_HEADERS];
  size_t n = 0;
  struct evkeyval *kv;
  TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
    if (strncasecmp(kv->key, "x-log-", 6) != 0 &&
        strncasecmp(kv->key, "x-acs-", 6) != 0)
      continue;
    if (n == MAX_SIGNED_HEADERS)
      return srv_reply_error(s, req, 400, "ParameterInvalid",
                             "too many x-log-/x-acs- headers");
    h[n++] = (export_header){kv->key, kv->value};
  }
  export_sls_sign_input in = {"POST",
                              srv_header(req, "Content-MD5"),
                              srv_header(req, "Content-Type"),
                              srv_header(req, "Date"),
                              h,
                              n,
                              resource};
  in.verb = evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "POST";
  char want[EXPORT_SLS_SIG_LEN + 1];
  if (export_sls_sign(&in, k->secret, want, NULL) < 0)
    return srv_reply_error(s, req, 400, "ParameterInvalid",
                           "request cannot be signed (headers too large)");
  if (sig_len != EXPORT_SLS_SIG_LEN ||
      CRYPTO_memcmp(want, sig, EXPORT_SLS_SIG_LEN) != 0)
    return srv_reply_error(s, req, 401, "SignatureNotMatch",
                           "signature does not match the request");
  return 0;
}

int srv_auth_sls(srv *s, struct evhttp_request *req, const char *resource,
                 const uint8_t *body, size_t len) {
  if (check_headers(s, req, body, len) < 0)
    return -1;
  if (s->n_keys == 0)
    return 0; /* no --access-key: an open, loopback-only development store */
  const char *auth = srv_header(req, "Authorization");
  if (auth == NULL || strncmp(auth, "LOG ", 4) != 0)
    return srv_reply_error(s, req, 401, "MissAccessKeyId",
                           "Authorization: LOG <AccessKeyId>:<Signature> "
                           "is required");
  const char *id = auth + 4, *colon = strrchr(id, ':');
  const srv_key *k = colon ? find_key(s, id, (size_t)(colon - id)) : NULL;
  if (k == NULL)
    return srv_reply_error(s, req, 401, "Unauthorized", "unknown AccessKeyId");
  return check_signature(s, req, resource, k, colon + 1, strlen(colon + 1));
}

int srv_auth_otlp(srv *s, struct evhttp_request *req, const char *resource,
                  const uint8_t *body, size_t len) {
  if (s->n_keys == 0)
    return 0;
  const char *auth = srv_header(req, "Authorization");
  if (auth && strncmp(auth, "LOG ", 4) == 0)
    return srv_auth_sls(s, req, resource, body, len);
  if (auth && strncmp(auth, "Bearer ", 7) == 0) {
    const char *id = auth + 7, *colon = strchr(id, ':');
    const srv_key *k = colon ? find_key(s, id, (size_t)(colon - id)) : NULL;
    size_t sl = colon ? strlen(colon + 1) : 0;
    if (k && sl == strlen(k->secret) &&
        CRYPTO_memcmp(k->secret, colon + 1, sl) == 0)
      return 0;
  }
  srv_reply_error(s, req, 401, "Unauthorized",
                  "OTLP needs an SLS v1 signature or Bearer ID:SECRET");
  return -1;
}
