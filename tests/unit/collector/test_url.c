/* Sink URLs, and credentials never surfacing in errors, flush results or
 * spool files. Also the backoff and Retry-After arithmetic. */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void parse_ok(void **state) {
  (void)state;
  export_url u;
  assert_int_equal(
      export_url_parse("sls://127.0.0.1:4380/proj/store", &u, NULL), 0);
  assert_int_equal(u.scheme, EXPORT_SCHEME_SLS);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 4380);
  assert_string_equal(u.project, "proj");
  assert_string_equal(u.logstore, "store");
  assert_false(u.tls);
  assert_int_equal(export_url_parse("sls+https://cn-hangzhou.log.aliyuncs.com"
                                    "/my-proj/fn_logs",
                                    &u, NULL),
                   0);
  assert_true(u.tls);
  assert_int_equal(u.port, 443);
  assert_string_equal(u.host, "cn-hangzhou.log.aliyuncs.com");
  assert_int_equal(export_url_parse("otlp+http://[::1]:4318/base/", &u, NULL),
                   0);
  assert_string_equal(u.host, "[::1]");
  assert_int_equal(u.port, 4318);
  assert_string_equal(u.path, "/base");
  assert_int_equal(export_url_parse("otlp+http://collector", &u, NULL), 0);
  assert_int_equal(u.port, 4318);
  assert_string_equal(u.path, "");
  assert_int_equal(export_url_parse("file:///var/tmp/fnprof", &u, NULL), 0);
  assert_int_equal(u.scheme, EXPORT_SCHEME_FILE);
  assert_string_equal(u.path, "/var/tmp/fnprof");
}

static void parse_bad(void **state) {
  (void)state;
  static const char *const bad[] = {
      "http://x/y/z",       "sls://host/onlyproject", "sls://host/a/b/c",
      "sls://host:0/a/b",   "sls://host:99999/a/b",   "sls://host:12x/a/b",
      "sls:///a/b",         "sls://h/pr oj/b",        "file://relative/dir",
      "otlp+http://[::1/x", "sls://h/a/b?x=1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    export_url u;
    fnp_error err = {0};
    assert_int_equal(export_url_parse(bad[i], &u, &err), FNP_EPARSE);
    assert_true(err.msg[0] != '\0');
  }
}

/* A URL with user info is refused without echoing it. */
static void no_secret_in_url_errors(void **state) {
  (void)state;
  export_url u;
  fnp_error err = {0};
  assert_int_equal(export_url_parse("sls://id:TopSecret@h/a/b", &u, &err),
                   FNP_EPARSE);
  assert_null(strstr(err.msg, "TopSecret"));
}

/* A failing flush reports why without the secret or the token, and the
 * spool holds only the payload. */
/* A sink for url (port 1 on loopback: nothing listens there) with one
 * record pushed, not yet flushed. */
static export_sink *sink_with_one_record(const char *url,
                                         const export_sink_opts *o) {
  export_sink *s;
  fnp_error err = {0};
  assert_int_equal(export_sink_new(url, o, &s, &err), 0);
  export_batch *b;
  assert_int_equal(export_batch_new(NULL, 0, &b), 0);
  export_field f[] = {{"message", "hello"}};
  export_record r = {.time_ns = 1, .fields = f, .n_fields = 1};
  assert_int_equal(export_batch_add(b, &r), 0);
  assert_int_equal(export_sink_push(s, b, &err), 0);
  return s;
}

static void no_secret_in_flush(void **state) {
  (void)state;
  char dir[] = "/tmp/fnp_sink_XXXXXX";
  assert_non_null(mkdtemp(dir));
  export_sink_opts o = {.access_key_id = "AKID",
                        .access_key_secret = "TopSecretKey",
                        .security_token = "TopSecretToken",
                        .spool_dir = dir,
                        .connect_timeout_ms = 200,
                        .backoff_initial_ms = 10,
                        .backoff_max_ms = 20};
  export_sink *s = sink_with_one_record("sls://127.0.0.1:1/p/l", &o);
  export_flush_result res;
  assert_true(export_sink_flush(s, export_now_ms() + 300, &res) < 0);
  assert_int_equal(res.spooled_records, 1);
  assert_true(res.why[0] != '\0');
  assert_null(strstr(res.why, "TopSecret"));
  export_sink_free(s);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "zstd -dqc %s/*.seg 2>/dev/null | grep -c "
           "TopSecret; cat %s/*.seg | grep -c TopSecret",
           dir, dir);
  FILE *p = popen(cmd, "r");
  char out[64] = "";
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  pclose(p);
  assert_null(strstr(out, "1")); /* both greps count 0 */
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* sls://HOST:PORT without PROJECT/LOGSTORE: nothing is sent (port 1 would
 * refuse at once, so a send would show as a connection error) until the
 * platform's headers name a destination; the first one stays. */
static void destination_from_the_platform(void **state) {
  (void)state;
  export_url u;
  assert_int_equal(export_url_parse("sls://127.0.0.1:1", &u, NULL), 0);
  assert_string_equal(u.project, "");
  export_sink_opts o = {.access_key_id = "AKID",
                        .access_key_secret = "k",
                        .connect_timeout_ms = 200,
                        .backoff_initial_ms = 10,
                        .backoff_max_ms = 20};
  export_sink *s = sink_with_one_record("sls://127.0.0.1:1", &o);
  export_flush_result res;
  assert_true(export_sink_flush(s, export_now_ms() + 300, &res) < 0);
  assert_int_equal(res.pending_records, 1);
  assert_int_equal(res.last_status, 0);
  assert_non_null(strstr(res.why, "x-fc-service-logproject"));
  assert_int_equal(export_sink_set_destination(s, "bad name", "ls"),
                   FNP_EPARSE);
  assert_int_equal(export_sink_set_destination(s, "proj", "store"), 0);
  assert_int_equal(export_sink_set_destination(s, "other", "store2"), 0);
  /* Now it tries (and port 1 refuses): the destination is set. */
  assert_true(export_sink_flush(s, export_now_ms() + 300, &res) < 0);
  assert_null(strstr(res.why, "x-fc-service-logproject"));
  export_sink_free(s);
  export_sink *f2;
  fnp_error err = {0};
  assert_int_equal(export_sink_new("file:///tmp", &o, &f2, &err), 0);
  assert_int_equal(export_sink_set_destination(f2, "p", "l"), FNP_EUSAGE);
  export_sink_free(f2);
}

static void backoff_and_retry_after(void **state) {
  (void)state;
  export__ship_opts o = {.backoff_initial_ms = 100, .backoff_max_ms = 1000};
  assert_int_equal(export__backoff_ms(&o, 0, 0.999999), 99);
  assert_int_equal(export__backoff_ms(&o, 3, 0.5), 400);       /* 800 / 2 */
  assert_int_equal(export__backoff_ms(&o, 30, 0.999999), 999); /* capped */
  assert_int_equal(export__backoff_ms(&o, 5, 0.0), 0);         /* full jitter */
  assert_int_equal(export__parse_retry_after("7", 0), 7000);
  assert_int_equal(export__parse_retry_after(" 0\r\n", 0), 0);
  assert_int_equal(
      export__parse_retry_after("Mon, 09 Nov 2015 06:11:26 GMT", 1447049476),
      10000);
  assert_int_equal(
      export__parse_retry_after("Mon, 09 Nov 2015 06:11:16 GMT", 1447049999),
      0); /* past */
  assert_int_equal(export__parse_retry_after("soon", 0), -1);
  assert_int_equal(export__parse_retry_after("", 0), -1);
  assert_int_equal(export__parse_retry_after("999999999", 0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_ok),
      cmocka_unit_test(parse_bad),
      cmocka_unit_test(no_secret_in_url_errors),
      cmocka_unit_test(no_secret_in_flush),
      cmocka_unit_test(destination_from_the_platform),
      cmocka_unit_test(backoff_and_retry_after),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
