/* OTLP encode -> decode round trips for logs and metrics, the batch id, and
 * the decoder's refusals (nesting bomb, item cap, garbage). */
#include <fnprof/export.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static export_batch *batch(void) {
  export_batch *b;
  assert_int_equal(export_batch_new(NULL, 0, &b), 0);
  export_field f[] = {{"message", "boot ok"}, {"level", "WARN"}};
  export_record log = {.time_ns = 42,
                       .instance = "i1",
                       .request_id = "r1",
                       .fields = f,
                       .n_fields = 2};
  export_record m = {.time_ns = 43,
                     .kind = EXPORT_KIND_METRIC,
                     .metric_name = "rss",
                     .metric_unit = "By",
                     .metric_value = 123.5,
                     .metric_counter = true};
  assert_int_equal(export_batch_add(b, &log), 0);
  assert_int_equal(export_batch_add(b, &m), 0);
  return b;
}

static const char *field(const export_otlp_item *it, const char *k) {
  for (size_t i = 0; i < it->n_fields; i++)
    if (strcmp(it->fields[i].key, k) == 0)
      return it->fields[i].value;
  return NULL;
}

static void round_trip(void **state) {
  (void)state;
  export_batch *b = batch();
  export_field res[] = {{"service.name", "fn"}};
  export_otlp_meta m = {.resource = res, .n_resource = 1, .batch_id = "B-1"};
  fnp_buf out;
  fnp_buf_init(&out, 1u << 20);
  assert_int_equal(export_otlp_encode_logs(b, &m, &out, NULL), 0);
  export_otlp_data *d;
  assert_int_equal(export_otlp_decode(out.data, out.len, false, 10, &d, NULL),
                   0);
  assert_int_equal(d->n_items, 1); /* the metric is not a log */
  assert_string_equal(d->batch_id, "B-1");
  assert_int_equal(d->items[0].time_ns, 42);
  assert_string_equal(field(&d->items[0], "message"), "boot ok");
  assert_string_equal(field(&d->items[0], "level"), "WARN");
  assert_string_equal(field(&d->items[0], "service.name"), "fn");
  assert_string_equal(field(&d->items[0], "request_id"), "r1");
  export_otlp_data_free(d);
  fnp_buf_reset(&out);
  assert_int_equal(export_otlp_encode_metrics(b, &m, &out, NULL), 0);
  assert_int_equal(export_otlp_decode(out.data, out.len, true, 10, &d, NULL),
                   0);
  assert_int_equal(d->n_items, 1);
  assert_string_equal(d->items[0].name, "rss");
  assert_string_equal(d->items[0].unit, "By");
  assert_true(d->items[0].value == 123.5);
  export_otlp_data_free(d);
  /* The item cap. */
  fnp_error err = {0};
  assert_int_equal(export_otlp_decode(out.data, out.len, true, 0, &d, &err),
                   FNP_ETOOBIG);
  fnp_buf_destroy(&out);
  export_batch_free(b);
}

/* Wraps b's content as field (wire type 2) of a new message. */
static void wrap(fnp_buf *b, unsigned field) {
  uint8_t hdr[11];
  size_t h = 0, len = b->len;
  hdr[h++] = (uint8_t)(field << 3 | 2);
  do {
    hdr[h++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
    len >>= 7;
  } while (len);
  fnp_buf n;
  fnp_buf_init(&n, 1u << 20);
  assert_int_equal(fnp_buf_append(&n, hdr, h), 0);
  assert_int_equal(fnp_buf_append(&n, b->data, b->len), 0);
  fnp_buf_destroy(b);
  *b = n;
}

/* AnyValue nested 100 deep in a log attribute: refused before protobuf-c's
 * recursive unpack sees it; 10 deep is fine. */
static void nesting_bomb(void **state) {
  (void)state;
  for (int depth = 10; depth <= 100; depth += 90) {
    fnp_buf b;
    fnp_buf_init(&b, 1u << 20);
    for (int i = 0; i < depth; i++) {
      wrap(&b, 1); /* ArrayValue.values */
      wrap(&b, 5); /* AnyValue.array_value */
    }
    wrap(&b, 2); /* KeyValue.value */
    wrap(&b, 6); /* LogRecord.attributes */
    wrap(&b, 2); /* ScopeLogs.log_records */
    wrap(&b, 2); /* ResourceLogs.scope_logs */
    wrap(&b, 1); /* ExportLogsServiceRequest.resource_logs */
    fnp_error err = {0};
    export_otlp_data *d = NULL;
    int rc = export_otlp_decode(b.data, b.len, false, 10, &d, &err);
    if (depth == 10) {
      assert_int_equal(rc, 0);
      assert_int_equal(d->n_items, 1);
      export_otlp_data_free(d);
    } else {
      assert_int_equal(rc, FNP_ETOOBIG);
      assert_non_null(strstr(err.msg, "nested deeper"));
    }
    fnp_buf_destroy(&b);
  }
  export_otlp_data *d;
  fnp_error err = {0};
  const uint8_t junk[] = {0x0a, 0x05, 0x01};
  assert_int_equal(export_otlp_decode(junk, sizeof junk, false, 10, &d, &err),
                   FNP_EPARSE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(nesting_bomb),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
