/*
 * libFuzzer target for the sidecar's HTTP/1.x parser (hooks/http_msg.c),
 * which reads what the platform and the function send. Byte 0 chooses a
 * request or a response (bit 0), an answer to HEAD (bit 1) and how the
 * rest is cut into reads (bits 2..7: the read size); the rest is the bytes
 * of one connection, parsed as one message after another while they are
 * whole. Any input must parse or fail with an error code; never crash,
 * leak, or hold more than the bounds (64 KiB of head, 16 MB of body).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#include <event2/buffer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int request = data[0] & 1, head = (data[0] >> 1) & 1;
  size_t step = (size_t)(data[0] >> 2) + 1;
  struct evbuffer *in = evbuffer_new();
  sc_http_msg m;
  if (in == NULL || sc__http_msg_init(&m, request, head) < 0)
    abort();
  int rc = 0;
  for (size_t pos = 1; pos < size && rc >= 0;) {
    size_t n = size - pos < step ? size - pos : step;
    if (evbuffer_add(in, data + pos, n) < 0)
      abort();
    pos += n;
    while ((rc = sc__http_parse(&m, in)) == 1) {
      if (evbuffer_get_length(m.body) > SC_BODY_MAX_BYTES ||
          m.head_bytes > SC_HEADERS_PARSER_MAX_BYTES)
        abort();
      if (request && (m.target == NULL || m.method[0] == '\0'))
        abort(); /* a whole request has a request line */
      sc__http_msg_clear(&m);
      if (sc__http_msg_init(&m, request, head) < 0)
        abort();
    }
    if (rc < 0 && rc != -EPROTO && rc != -EMSGSIZE && rc != -EFBIG &&
        rc != -ENOMEM)
      abort();
  }
  sc__http_msg_clear(&m);
  evbuffer_free(in);
  return 0;
}
