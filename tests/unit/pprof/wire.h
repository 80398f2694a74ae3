/*
 * A minimal protobuf writer for tests: lets a test spell out profile.proto
 * bytes by hand, independently of the encoder under test.
 */
#ifndef FNPROF_TESTS_WIRE_H
#define FNPROF_TESTS_WIRE_H

#include <stdint.h>
#include <string.h>

typedef struct wire {
  uint8_t b[4096];
  size_t n;
} wire;

static inline void wire_varint(wire *w, uint64_t v) {
  while (v >= 0x80) {
    w->b[w->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  w->b[w->n++] = (uint8_t)v;
}

static inline void wire_key(wire *w, unsigned field, unsigned type) {
  wire_varint(w, ((uint64_t)field << 3) | type);
}

static inline void wire_uint(wire *w, unsigned field, uint64_t v) {
  wire_key(w, field, 0);
  wire_varint(w, v);
}

static inline void wire_bytes(wire *w, unsigned field, const void *d,
                              size_t len) {
  wire_key(w, field, 2);
  wire_varint(w, len);
  memcpy(w->b + w->n, d, len);
  w->n += len;
}

static inline void wire_str(wire *w, unsigned field, const char *s) {
  wire_bytes(w, field, s, strlen(s));
}

static inline void wire_msg(wire *w, unsigned field, const wire *m) {
  wire_bytes(w, field, m->b, m->n);
}

#endif
