/* hooks/: the pieces of the sidecar that need no process or socket: the
 * request-id prefix parser, JSON escaping, the bounded record buffer (drops
 * counted, whole lines, release by absolute offset, records written in
 * place), the HTTP head parser, the child's environment and the option
 * parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include <event2/buffer.h>

#include "internal.h"

static void test_reqid_prefix(void **state) {
  const char *id;
  size_t n;
  const char *ok = "2020-03-13T04:06:49.099Z f84a9f4f-1 [INFO] hello world";
  (void)state;
  assert_int_equal(sc__logcap_parse_reqid(ok, strlen(ok), &id, &n), 0);
  assert_int_equal(n, strlen("f84a9f4f-1"));
  assert_memory_equal(id, "f84a9f4f-1", n);
  assert_true(sc__logcap_parse_reqid("plain line here", 15, &id, &n) < 0);
  assert_true(sc__logcap_parse_reqid("a b c", 5, &id, &n) < 0);
  assert_true(sc__logcap_parse_reqid("t id [INFO", 10, &id, &n) < 0);
  assert_true(sc__logcap_parse_reqid("", 0, &id, &n) < 0);
  assert_true(sc__logcap_parse_reqid(" id [X] m", 9, &id, &n) < 0);
}

static void test_json_escapes_and_replaces_bad_utf8(void **state) {
  fnp_buf b;
  (void)state;
  fnp_buf_init(&b, 256);
  assert_int_equal(sc__json_str(&b, "a\"\\\n\x01\xc3\xa9\xff", 8), 0);
  assert_int_equal(b.len,
                   strlen("\"a\\\"\\\\\\n\\u0001\xc3\xa9\xef\xbf\xbd\""));
  assert_memory_equal(b.data, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\xef\xbf\xbd\"",
                      b.len);
  fnp_buf_destroy(&b);
}

static void test_records_bounded_and_counted(void **state) {
  sc_records r;
  uint8_t *out;
  size_t len;
  (void)state;
  assert_int_equal(sc__records_init(&r, 20), 0);
  assert_int_equal(sc__records_add(&r, "{\"a\":1}", 7), 0);  /* 8 bytes */
  assert_int_equal(sc__records_add(&r, "{\"b\":22}", 8), 0); /* 17 */
  assert_true(sc__records_add(&r, "{\"c\":3}", 7) < 0);      /* over cap */
  assert_int_equal(r.dropped, 1);
  sc__records_note_drops(&r, "inst"); /* headroom: never itself dropped */
  assert_int_equal(r.dropped, 0);
  assert_int_equal(sc__records_copy(&r, 0, 10, &out, &len), 0);
  assert_int_equal(len, 8); /* whole lines only */
  free(out);
  assert_int_equal(sc__records_copy(&r, 0, 3, &out, &len), 0);
  assert_int_equal(len, 8); /* at least one line even past max */
  free(out);
  sc__records_release(&r, 8);
  assert_int_equal(r.base, 8);
  assert_int_equal(sc__records_copy(&r, 8, 9, &out, &len), 0);
  assert_memory_equal(out, "{\"b\":22}\n", 9);
  free(out);
  assert_true(sc__records_copy(&r, 0, 9, &out, &len) < 0); /* released */
  sc__records_destroy(&r);
}

/* A record written in place is taken back whole when its writer fails or
 * it passes the cap; what was there before stays. */
static void test_records_in_place_taken_back(void **state) {
  sc_records r;
  size_t mark;
  uint8_t *out;
  size_t len;
  (void)state;
  assert_int_equal(sc__records_init(&r, 20), 0);
  fnp_buf *b = sc__records_open(&r, &mark);
  assert_int_equal(sc__records_close(&r, mark, fnp_buf_append(b, "{}", 2)), 0);
  b = sc__records_open(&r, &mark);
  int rc = fnp_buf_append(b, "{\"half", 7);
  assert_true(sc__records_close(&r, mark, rc ? rc : -ENOMEM) < 0);
  b = sc__records_open(&r, &mark); /* 3 + 18 + 1 > 20 */
  rc = fnp_buf_append(b, "{\"x\":\"0123456789\"}", 18);
  assert_true(sc__records_close(&r, mark, rc) < 0);
  assert_int_equal(r.dropped, 2);
  assert_int_equal(sc__records_copy(&r, 0, 100, &out, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(out, "{}\n", 3);
  free(out);
  sc__records_destroy(&r);
}

/* The parser reads lines in place: a folded field, a bare-LF line, and the
 * next pipelined request left untouched after the first. */
static void test_http_head_in_place(void **state) {
  static const char two[] = "POST /a?q=1 HTTP/1.1\r\n"
                            "Host: x\r\n"
                            "X-Long: one\r\n"
                            "  two\n"
                            "content-length: 3\r\n"
                            "Content-Length: 3\r\n"
                            "\r\n"
                            "abc"
                            "GET /b HTTP/1.1\r\n\r\n";
  struct evbuffer *in = evbuffer_new();
  sc_http_msg m;
  (void)state;
  assert_non_null(in);
  assert_int_equal(evbuffer_add(in, two, sizeof(two) - 1), 0);
  assert_int_equal(sc__http_msg_init(&m, 1, 0), 0);
  assert_int_equal(sc__http_parse(&m, in), 1);
  assert_string_equal(m.method, "POST");
  assert_string_equal(m.target, "/a?q=1");
  assert_string_equal(sc__hdr_find(&m.headers, "host"), "x");
  assert_string_equal(sc__hdr_find(&m.headers, "x-long"), "one  two");
  assert_int_equal(evbuffer_get_length(m.body), 3);
  assert_int_equal(evbuffer_get_length(in), 19); /* the GET, whole */
  sc__http_msg_clear(&m);
  assert_int_equal(sc__http_msg_init(&m, 1, 0), 0);
  assert_int_equal(sc__http_parse(&m, in), 1);
  assert_string_equal(m.target, "/b");
  assert_int_equal(evbuffer_get_length(in), 0);
  sc__http_msg_clear(&m);
  /* Two lengths that differ, and a NUL inside a line: refused. */
  assert_int_equal(sc__http_msg_init(&m, 1, 0), 0);
  assert_int_equal(evbuffer_add(in,
                                "GET / HTTP/1.1\r\nContent-Length: 1\r\n"
                                "Content-Length: 2\r\n\r\n",
                                56),
                   0);
  assert_int_equal(sc__http_parse(&m, in), -EPROTO);
  sc__http_msg_clear(&m);
  evbuffer_drain(in, evbuffer_get_length(in));
  assert_int_equal(sc__http_msg_init(&m, 1, 0), 0);
  assert_int_equal(evbuffer_add(in, "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26),
                   0);
  assert_int_equal(sc__http_parse(&m, in), -EPROTO);
  sc__http_msg_clear(&m);
  evbuffer_free(in);
}

static const char *find(char **env, const char *name) {
  size_t n = strlen(name);
  for (; *env; env++)
    if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
      return *env + n + 1;
  return NULL;
}

static void test_env_adds_agent_and_port(void **state) {
  char *in[] = {"PATH=/bin", "LD_PRELOAD=/lib/other.so", "PORT=1",
                "FC_SERVER_PORT=2", NULL};
  char **e;
  (void)state;
  assert_int_equal(sc__env_build(in, "/x/libfnprof.so", 4567, &e), 0);
  assert_string_equal(find(e, "LD_PRELOAD"), "/x/libfnprof.so:/lib/other.so");
  assert_string_equal(find(e, "PORT"), "4567");
  assert_string_equal(find(e, "FC_SERVER_PORT"), "4567");
  assert_string_equal(find(e, "PATH"), "/bin");
  assert_string_equal(find(e, "PYTHONUNBUFFERED"), "1");
  sc__env_free(e);
  assert_int_equal(sc__env_build(in + 3, NULL, 1, &e), 0);
  assert_null(find(e, "LD_PRELOAD"));
  sc__env_free(e);
}

static void test_env_agent_settings(void **state) {
  char *in[] = {"PATH=/bin", "FNPROF_CONTROL=/theirs.sock", "FNPROF_PAGE_FD=7",
                NULL};
  char *user_dir[] = {"FNPROF_DIR=/mine", NULL};
  char **e;
  (void)state;
  assert_int_equal(sc__env_build_agent(in, "/x/libfnprof.so", 1, "/p/a.sock",
                                       "/p/prof", 1, &e),
                   0);
  assert_string_equal(find(e, "FNPROF_CONTROL"), "/p/a.sock"); /* ours wins */
  assert_string_equal(find(e, "FNPROF_DIR"), "/p/prof");
  assert_string_equal(find(e, "FNPROF_PAGE_FD"), "3"); /* where child_exec
                                                          puts the page */
  sc__env_free(e);
  /* Without a page an inherited number does not pass on: the descriptor it
   * named is closed in the child. */
  assert_int_equal(sc__env_build_agent(user_dir, "/x/libfnprof.so", 1,
                                       "/p/a.sock", "/p/prof", 0, &e),
                   0);
  assert_string_equal(find(e, "FNPROF_DIR"), "/mine"); /* the user's wins */
  assert_null(find(e, "FNPROF_PAGE_FD"));
  sc__env_free(e);
  assert_int_equal(sc__env_build_agent(in, "/x/libfnprof.so", 1, "/p/a.sock",
                                       "/p/prof", 0, &e),
                   0);
  assert_null(find(e, "FNPROF_PAGE_FD"));
  sc__env_free(e);
}

/* The agent's part of the invocation page, written from the layout. */
static void agent_answers(fnprof_page *p, uint64_t seq, int64_t live) {
  fnprof_page_end *e = &p->ends[seq % FNPROF_PAGE_ENDS];
  atomic_store(&e->live_bytes, live);
  atomic_store(&e->seq, seq);
  atomic_store(&p->ends_done, (uint32_t)seq);
}

/* The sidecar's reading of the page: labels under the sequence count, an
 * answer there or not yet, one whose slot the agent reused is lost (not
 * another end's number taken for it), a wait that times out. */
static void test_page_answers(void **state) {
  sc_page pg;
  int64_t live = 0;
  (void)state;
  assert_int_equal(sc__page_open(&pg), 0);
  assert_true(pg.p->magic == FNPROF_PAGE_MAGIC &&
              pg.p->size == sizeof(fnprof_page));
  assert_int_equal(atomic_load(&pg.p->label_seq), 0);
  sc__page_label(&pg, "req-1");
  assert_int_equal(atomic_load(&pg.p->label_seq), 2);
  assert_string_equal((const char *)pg.p->label, "req-1");
  char big[300];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  sc__page_label(&pg, big); /* cut to 127 bytes, NUL kept */
  assert_int_equal(strlen((const char *)pg.p->label), 127);
  sc__page_label(&pg, "");
  assert_string_equal((const char *)pg.p->label, "");

  uint64_t s1 = sc__page_next_seq(&pg), s2 = sc__page_next_seq(&pg);
  assert_int_equal(sc__page_answer(&pg, s1, &live), 0);
  assert_int_equal(sc__page_wait(&pg, s1, 1), -ETIMEDOUT);
  agent_answers(pg.p, s1, 4096);
  assert_int_equal(sc__page_wait(&pg, s1, 1000), 0);
  assert_int_equal(sc__page_answer(&pg, s1, &live), 1);
  assert_int_equal(live, 4096);
  assert_int_equal(sc__page_answer(&pg, s2, &live), 0);
  /* The agent went FNPROF_PAGE_ENDS past s2 before the sidecar looked. */
  agent_answers(pg.p, s2 + FNPROF_PAGE_ENDS, 1);
  assert_int_equal(sc__page_answer(&pg, s2, &live), -1);
  sc__page_close(&pg);
  assert_null(pg.p);
}

/* JIT names for the function's runtime: node's perf-map flags after the
 * user's own NODE_OPTIONS, PYTHONPERFSUPPORT=1 unless the user set it, and
 * the agent told to remove the map; none of it without the agent or with
 * FNPROF_JIT_NAMES=0. */
static void test_env_jit_names(void **state) {
  char *in[] = {"NODE_OPTIONS=--max-old-space-size=64", "PYTHONPERFSUPPORT=0",
                NULL};
  char *off[] = {"NODE_OPTIONS=--x", "FNPROF_JIT_NAMES=0", NULL};
  char **e;
  (void)state;
  assert_int_equal(sc__env_build(in, "/x/libfnprof.so", 1, &e), 0);
  assert_string_equal(find(e, "NODE_OPTIONS"),
                      "--max-old-space-size=64 "
                      "--perf-basic-prof-only-functions "
                      "--interpreted-frames-native-stack");
  assert_string_equal(find(e, "PYTHONPERFSUPPORT"), "0"); /* theirs */
  assert_string_equal(find(e, "FNPROF_JIT_MAP_UNLINK"), "1");
  sc__env_free(e);
  assert_int_equal(sc__env_build(in + 1, "/x/libfnprof.so", 1, &e), 0);
  assert_non_null(strstr(find(e, "NODE_OPTIONS"), "--perf-basic-prof"));
  sc__env_free(e);
  assert_int_equal(sc__env_build(in + 2, "/x/libfnprof.so", 1, &e), 0);
  assert_string_equal(find(e, "PYTHONPERFSUPPORT"), "1");
  sc__env_free(e);
  assert_int_equal(sc__env_build(off, "/x/libfnprof.so", 1, &e), 0);
  assert_string_equal(find(e, "NODE_OPTIONS"), "--x");
  assert_null(find(e, "FNPROF_JIT_MAP_UNLINK"));
  sc__env_free(e);
  assert_int_equal(sc__env_build(in, NULL, 1, &e), 0);
  assert_string_equal(find(e, "NODE_OPTIONS"), "--max-old-space-size=64");
  assert_null(find(e, "FNPROF_JIT_MAP_UNLINK"));
  sc__env_free(e);
}

typedef struct kv_seen {
  char keys[8][32], values[8][64];
  int n;
} kv_seen;

static int collect_kv(void *arg, const char *k, const char *v) {
  kv_seen *s = arg;
  if (s->n == 8)
    return -1;
  snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", k);
  snprintf(s->values[s->n], sizeof(s->values[0]), "%s", v);
  s->n++;
  return 0;
}

static void test_json_flat_reads_our_records(void **state) {
  const char *line = "{\"kind\":\"log\",\"time_ns\":-12,\"m\":\"a\\\"b\\n"
                     "\\u00e9\\ud83d\\ude00\",\"partial\":true}";
  const char *bad[] = {
      "",           "{",   "{\"a\"}",        "{\"a\":}", "{\"a\":\"x}",
      "{\"a\":1,}", "[1]", "{\"a\":\"\\q\"}"};
  fnp_error err = {0};
  kv_seen s = {0};
  char out[16];
  (void)state;
  assert_int_equal(sc__json_flat(line, strlen(line), collect_kv, &s, &err), 0);
  assert_int_equal(s.n, 4);
  assert_string_equal(s.keys[1], "time_ns");
  assert_string_equal(s.values[1], "-12");
  assert_string_equal(s.values[2], "a\"b\n\xc3\xa9\xf0\x9f\x98\x80");
  assert_string_equal(s.values[3], "true");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&s, 0, sizeof(s));
    assert_int_equal(
        sc__json_flat(bad[i], strlen(bad[i]), collect_kv, &s, &err),
        FNP_EPARSE);
  }
  assert_int_equal(sc__json_find_str("{\"x\":1,\"summary\":\"heap \\\"s\\\"\"}",
                                     "summary", out, sizeof(out)),
                   0);
  assert_string_equal(out, "heap \"s\"");
  assert_true(sc__json_find_str("{}", "summary", out, sizeof(out)) < 0);
}

static void test_options(void **state) {
  char *argv[] = {"sc", "--port",      "9100",   "--export", "file:///tmp/x",
                  "--", "./bootstrap", "--port", "1",        NULL};
  char *envp[] = {"FNPROF_PORT=9200", "FNPROF_EXPORT=file:///a http://h/p",
                  "FNPROF_FREEZE_BUDGET_MS=250", NULL};
  char *bad[] = {"sc", "--port", "70000", "--", "x", NULL};
  sidecar_config c;
  fnp_error err = {0};
  (void)state;
  sidecar_config_init(&c);
  assert_int_equal(sidecar_config_from_env(&c, envp, &err), 0);
  assert_int_equal(c.port, 9200);
  assert_int_equal(c.n_exports, 2);
  assert_int_equal(c.freeze_budget_ms, 250);
  assert_int_equal(sidecar_config_from_args(&c, 9, argv, &err), 0);
  assert_int_equal(c.port, 9100); /* the command line wins */
  assert_int_equal(c.n_exports, 3);
  assert_string_equal(c.argv[0], "./bootstrap");
  assert_string_equal(c.argv[1], "--port"); /* the bootstrap's own */
  sidecar_config_destroy(&c);
  sidecar_config_init(&c);
  assert_int_equal(sidecar_config_from_args(&c, 5, bad, &err), FNP_EUSAGE);
  sidecar_config_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reqid_prefix),
      cmocka_unit_test(test_json_escapes_and_replaces_bad_utf8),
      cmocka_unit_test(test_records_bounded_and_counted),
      cmocka_unit_test(test_records_in_place_taken_back),
      cmocka_unit_test(test_http_head_in_place),
      cmocka_unit_test(test_env_adds_agent_and_port),
      cmocka_unit_test(test_env_agent_settings),
      cmocka_unit_test(test_page_answers),
      cmocka_unit_test(test_env_jit_names),
      cmocka_unit_test(test_json_flat_reads_our_records),
      cmocka_unit_test(test_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
