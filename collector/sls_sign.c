/*
 * SLS signature v1: the string to sign (verb, Content-MD5, Content-Type,
 * Date, canonical x-log-/x-acs- headers, canonical resource), HMAC-SHA1 with
 * the AccessKey secret, base64. Also the MD5 and HTTP-date helpers both sides
 * of PutLogs need. The secret is only ever handed to HMAC.
 */
#include "internal.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A SignString past this is not a PutLogs request; refuse, don't grow. */
#define SIGN_STRING_MAX_BYTES (64 * 1024)
#define SIGN_MAX_HEADERS 64
#define SIGN_MAX_QUERY_PARAMS 64

typedef struct span {
  const char *p;
  size_t n;
} span;

static bool signed_header(const char *name) {
  return (strncasecmp(name, "x-log-", 6) == 0 ||
          strncasecmp(name, "x-acs-", 6) == 0) &&
         /* Python adds x-log-date after signing; it only matters for v4. */
         strcasecmp(name, "x-log-date") != 0;
}

static int cmp_header(const void *a, const void *b) {
  const export_header *x = a, *y = b;
  return strcasecmp(x->name, y->name);
}

static int cmp_span_key(const void *a, const void *b) {
  const span *x = a, *y = b;
  size_t kx = strcspn(x->p, "=&"), ky = strcspn(y->p, "=&");
  if (kx > x->n)
    kx = x->n;
  if (ky > y->n)
    ky = y->n;
  int c = memcmp(x->p, y->p, kx < ky ? kx : ky);
  return c ? c : (kx > ky) - (kx < ky);
}

static int put_trimmed(fnp_buf *b, const char *v) {
  size_t n = strlen(v);
  while (n > 0 && isspace((unsigned char)*v))
    v++, n--;
  while (n > 0 && isspace((unsigned char)v[n - 1]))
    n--;
  return fnp_buf_append(b, v, n);
}

static int put_headers(fnp_buf *b, const export_sls_sign_input *in) {
  export_header h[SIGN_MAX_HEADERS];
  size_t n = 0;
  for (size_t i = 0; i < in->n_headers; i++) {
    if (!signed_header(in->headers[i].name))
      continue;
    if (n == SIGN_MAX_HEADERS)
      return FNP_ETOOBIG;
    h[n++] = in->headers[i];
  }
  qsort(h, n, sizeof h[0], cmp_header);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    for (const char *c = h[i].name; *c && rc == 0; c++) {
      char l = (char)tolower((unsigned char)*c);
      rc = fnp_buf_append(b, &l, 1);
    }
    rc = rc ? rc : fnp_buf_append(b, ":", 1);
    rc = rc ? rc : put_trimmed(b, h[i].value ? h[i].value : "");
    rc = rc ? rc : fnp_buf_append(b, "\n", 1);
  }
  return rc;
}

/* Path, then "?" and the query's k=v pairs sorted by key when there are any.
 * A bare trailing "?" (the Node SDK sends one) adds nothing. */
static int put_resource(fnp_buf *b, const char *res) {
  const char *q = strchr(res, '?');
  size_t plen = q ? (size_t)(q - res) : strlen(res);
  int rc = fnp_buf_append(b, res, plen);
  if (rc < 0 || q == NULL || q[1] == '\0')
    return rc;
  span p[SIGN_MAX_QUERY_PARAMS];
  size_t n = 0;
  for (const char *s = q + 1; *s;) {
    size_t len = strcspn(s, "&");
    if (len > 0) {
      if (n == SIGN_MAX_QUERY_PARAMS)
        return FNP_ETOOBIG;
      p[n++] = (span){s, len};
    }
    s += len + (s[len] == '&');
  }
  qsort(p, n, sizeof p[0], cmp_span_key);
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = fnp_buf_append(b, i == 0 ? "?" : "&", 1);
    rc = rc ? rc : fnp_buf_append(b, p[i].p, p[i].n);
    /* "k" alone is rendered "k=", as the SDKs keep empty values. */
    if (rc == 0 && memchr(p[i].p, '=', p[i].n) == NULL)
      rc = fnp_buf_append(b, "=", 1);
  }
  return rc;
}

static int sign_string(const export_sls_sign_input *in, fnp_buf *b) {
  int rc = fnp_buf_printf(
      b, "%s\n%s\n%s\n%s\n", in->verb, in->content_md5 ? in->content_md5 : "",
      in->content_type ? in->content_type : "", in->date ? in->date : "");
  rc = rc ? rc : put_headers(b, in);
  return rc ? rc : put_resource(b, in->resource);
}

int export_sls_sign(const export_sls_sign_input *in, const char *secret,
                    char sig[EXPORT_SLS_SIG_LEN + 1], fnp_error *err) {
  fnp_buf b;
  fnp_buf_init(&b, SIGN_STRING_MAX_BYTES);
  int rc = sign_string(in, &b);
  if (rc < 0) {
    fnp_buf_destroy(&b);
    return fnp_fail(err, rc, "signature: request headers too large to sign");
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  size_t klen = strlen(secret);
  const unsigned char *p = b.data ? b.data : (const unsigned char *)"";
  unsigned char *ok =
      HMAC(EVP_sha1(), secret, (int)klen, p, b.len, mac, &mac_len);
  fnp_buf_destroy(&b);
  if (ok == NULL || mac_len != 20)
    return fnp_fail(err, FNP_ECOMPRESS, "signature: HMAC-SHA1 failed");
  EVP_EncodeBlock((unsigned char *)sig, mac, (int)mac_len);
  sig[EXPORT_SLS_SIG_LEN] = '\0';
  return 0;
}

void export_md5_hex(const void *data, size_t len, char out[33]) {
  static const char hex[] = "0123456789ABCDEF";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL) || n != 16) {
    out[0] = '\0'; /* never matches a real Content-MD5 */
    return;
  }
  for (unsigned i = 0; i < 16; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[32] = '\0';
}

void export_http_date(int64_t unix_s, char out[32]) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  /* The C locale's names are what RFC 1123 wants; strftime would follow
   * LC_TIME, so the names are spelled out here. */
  static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                   "Thu", "Fri", "Sat"};
  static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
           tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
}

int export_parse_http_date(const char *s, int64_t *unix_s) {
  static const char *const mo = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char wd[4], mon[4], tz[4];
  int d, y, h, mi, sec, used = 0;
  if (s == NULL || strlen(s) > 40 ||
      sscanf(s, "%3s, %d %3s %d %d:%d:%d %3s%n", wd, &d, mon, &y, &h, &mi, &sec,
             tz, &used) != 8 ||
      s[used] != '\0' || strcmp(tz, "GMT") != 0)
    return FNP_EPARSE;
  const char *m = strstr(mo, mon);
  if (m == NULL || (m - mo) % 3 != 0 || d < 1 || d > 31 || y < 1970 ||
      y > 9999 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0)
    return FNP_EPARSE;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = (int)(m - mo) / 3,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = sec};
  *unix_s = (int64_t)timegm(&tm);
  return 0;
}
