/*
 * A bump allocator for protobuf-c unpacking: protobuf-c allocates every
 * sub-message, string and array separately, which made malloc the largest
 * cost of ingest; an arena makes those bumps and frees them at once. Its
 * budget also bounds how far a hostile message can amplify memory.
 */
#include "internal.h"

#include <stdlib.h>

#define ARENA_CHUNK_BYTES (256 * 1024)
#define ARENA_ALIGN 16 /* enough for any protobuf-c field type */

struct export__arena_chunk {
  struct export__arena_chunk *next;
  size_t used, size;
  _Alignas(ARENA_ALIGN) unsigned char data[];
};

static void *arena_alloc(void *ud, size_t n) {
  export__arena *a = ud;
  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (n > a->budget - a->total) {
    a->over_budget = true;
    return NULL;
  }
  struct export__arena_chunk *c = a->head;
  if (c == NULL || c->size - c->used < n) {
    size_t size = n > ARENA_CHUNK_BYTES ? n : ARENA_CHUNK_BYTES;
    c = malloc(sizeof *c + size);
    if (c == NULL)
      return NULL;
    c->used = 0;
    c->size = size;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  a->total += n;
  return p;
}

/* protobuf-c frees what it allocated when an unpack fails half way; the
 * arena releases everything together instead. */
static void arena_free(void *ud, void *p) {
  (void)ud;
  (void)p;
}

void export__arena_init(export__arena *a, size_t budget) {
  a->head = NULL;
  a->total = 0;
  a->budget = budget;
  a->over_budget = false;
  a->pb.alloc = arena_alloc;
  a->pb.free = arena_free;
  a->pb.allocator_data = a;
}

void *export__arena_alloc(export__arena *a, size_t n) {
  return arena_alloc(a, n);
}

void export__arena_destroy(export__arena *a) {
  for (struct export__arena_chunk *c = a->head, *n; c != NULL; c = n) {
    n = c->next;
    free(c);
  }
  a->head = NULL;
}
