/* SLS v1 signature: the reference's known-answer vectors (from the Node SDK's
 * unit tests, re-verified with Python hmac), canonicalization rules, and the
 * Content-MD5 / Date helpers. */
#include <fnprof/export.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *const SECRET = "4fdO2fTDDnZPU/L7CHNdemB2Nsk=";

static void kat_get(void **state) {
  (void)state;
  export_header h[] = {{"x-log-apiversion", "0.6.0"},
                       {"x-log-signaturemethod", "hmac-sha1"}};
  export_sls_sign_input in = {
      .verb = "GET",
      .date = "Mon, 09 Nov 2015 06:11:16 GMT",
      .headers = h,
      .n_headers = 2,
      .resource = "/logstores?logstoreName=&offset=0&size=1000"};
  char sig[EXPORT_SLS_SIG_LEN + 1];
  assert_int_equal(export_sls_sign(&in, SECRET, sig, NULL), 0);
  assert_string_equal(sig, "jEYOTCJs2e88o+y5F4/S5IsnBJQ=");
}

/* The POST vector, with headers given unsorted, in mixed case, padded, and
 * mixed with headers that must not be signed: same answer. */
static void kat_post(void **state) {
  (void)state;
  export_header h[] = {{"X-Log-SignatureMethod", " hmac-sha1 "},
                       {"Content-Length", "50"},
                       {"x-log-compresstype", "lz4"},
                       {"x-log-date", "ignored: Python adds it after signing"},
                       {"x-log-bodyrawsize", "50"},
                       {"User-Agent", "whatever"},
                       {"x-log-apiversion", "0.6.0"}};
  export_sls_sign_input in = {.verb = "POST",
                              .content_md5 = "1DD45FA4A70A9300CC9FE7305AF2C494",
                              .content_type = "application/x-protobuf",
                              .date = "Mon, 09 Nov 2015 06:03:03 GMT",
                              .headers = h,
                              .n_headers = sizeof h / sizeof h[0],
                              .resource = "/logstores/test-logstore"};
  char sig[EXPORT_SLS_SIG_LEN + 1];
  assert_int_equal(export_sls_sign(&in, SECRET, sig, NULL), 0);
  assert_string_equal(sig, "XWLGYHGg2F2hcfxWxMLiNkGki6g=");
  /* The Node SDK's trailing empty "?" is not part of the signed resource. */
  in.resource = "/logstores/test-logstore?";
  assert_int_equal(export_sls_sign(&in, SECRET, sig, NULL), 0);
  assert_string_equal(sig, "XWLGYHGg2F2hcfxWxMLiNkGki6g=");
  /* A different secret or body MD5 changes it. */
  assert_int_equal(export_sls_sign(&in, "other", sig, NULL), 0);
  assert_string_not_equal(sig, "XWLGYHGg2F2hcfxWxMLiNkGki6g=");
}

/* Query order does not matter: parameters are sorted by key. */
static void query_sorted(void **state) {
  (void)state;
  export_sls_sign_input in = {.verb = "GET",
                              .date = "Mon, 09 Nov 2015 06:11:16 GMT",
                              .resource = "/x?size=1000&logstoreName&offset=0"};
  export_header h[] = {{"x-log-apiversion", "0.6.0"},
                       {"x-log-signaturemethod", "hmac-sha1"}};
  in.headers = h;
  in.n_headers = 2;
  char a[EXPORT_SLS_SIG_LEN + 1], b[EXPORT_SLS_SIG_LEN + 1];
  assert_int_equal(export_sls_sign(&in, SECRET, a, NULL), 0);
  in.resource = "/x?logstoreName=&offset=0&size=1000";
  assert_int_equal(export_sls_sign(&in, SECRET, b, NULL), 0);
  assert_string_equal(a, b);
}

static void md5_and_date(void **state) {
  (void)state;
  char md5[33];
  export_md5_hex("", 0, md5);
  assert_string_equal(md5, "D41D8CD98F00B204E9800998ECF8427E");
  char d[32];
  export_http_date(1447049476, d);
  assert_string_equal(d, "Mon, 09 Nov 2015 06:11:16 GMT");
  int64_t t = 0;
  assert_int_equal(export_parse_http_date(d, &t), 0);
  assert_int_equal(t, 1447049476);
  assert_int_equal(export_parse_http_date("Mon, 09 Nov 2015 06:11:16", &t),
                   FNP_EPARSE);
  assert_int_equal(export_parse_http_date("yesterday", &t), FNP_EPARSE);
  assert_int_equal(export_parse_http_date(NULL, &t), FNP_EPARSE);
}

/* A header list too long to be a real request is refused, not grown. */
static void too_many_headers(void **state) {
  (void)state;
  export_header h[100];
  for (int i = 0; i < 100; i++)
    h[i] = (export_header){"x-log-a", "b"};
  export_sls_sign_input in = {
      .verb = "POST", .headers = h, .n_headers = 100, .resource = "/"};
  char sig[EXPORT_SLS_SIG_LEN + 1];
  fnp_error err = {0};
  assert_int_equal(export_sls_sign(&in, SECRET, &sig[0], &err), FNP_ETOOBIG);
  assert_null(strstr(err.msg, SECRET)); /* never echo the secret */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kat_get),          cmocka_unit_test(kat_post),
      cmocka_unit_test(query_sorted),     cmocka_unit_test(md5_and_date),
      cmocka_unit_test(too_many_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
