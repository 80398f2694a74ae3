/*
 * headers.c - a message's header fields: libevent's list type (struct
 * evkeyvalq), with each field one allocation holding the entry, its name
 * and its value. evhttp_add_header made three (and evhttp_clear_headers
 * three frees), for every field of two messages per request; its lookups
 * compared byte by byte through a lower-casing table. Entries made here
 * are freed here: never by evhttp_clear_headers or evhttp_remove_header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static struct evkeyval *field_new(const char *name, size_t nlen,
                                  const char *value, size_t vlen,
                                  const char *more, size_t mlen) {
  struct evkeyval *kv = malloc(sizeof(*kv) + nlen + vlen + mlen + 2);
  if (kv == NULL)
    return NULL;
  kv->key = (char *)(kv + 1);
  kv->value = kv->key + nlen + 1;
  memcpy(kv->key, name, nlen);
  kv->key[nlen] = '\0';
  memcpy(kv->value, value, vlen);
  memcpy(kv->value + vlen, more, mlen);
  kv->value[vlen + mlen] = '\0';
  return kv;
}

/* A field's name is as long as the gap to its value, both in its block:
 * lookups compare lengths before letters (a platform request carries a
 * dozen x-fc-* fields, looked up several times each). */
static size_t name_len(const struct evkeyval *kv) {
  return (size_t)(kv->value - kv->key) - 1;
}

int sc__hdr_add(struct evkeyvalq *h, const char *name, size_t nlen,
                const char *value, size_t vlen) {
  struct evkeyval *kv = field_new(name, nlen, value, vlen, "", 0);
  if (kv == NULL)
    return -ENOMEM;
  TAILQ_INSERT_TAIL(h, kv, next);
  return 0;
}

int sc__hdr_add_str(struct evkeyvalq *h, const char *name, const char *value) {
  return sc__hdr_add(h, name, strlen(name), value, strlen(value));
}

int sc__hdr_extend_last(struct evkeyvalq *h, const char *more, size_t n) {
  struct evkeyval *last = TAILQ_LAST(h, evkeyvalq), *kv;
  if (last == NULL)
    return -EINVAL;
  kv = field_new(last->key, name_len(last), last->value, strlen(last->value),
                 more, n);
  if (kv == NULL)
    return -ENOMEM;
  TAILQ_INSERT_AFTER(h, last, kv, next);
  sc__hdr_remove(h, last);
  return 0;
}

const char *sc__hdr_find(const struct evkeyvalq *h, const char *name) {
  const struct evkeyval *kv;
  size_t n = strlen(name);
  TAILQ_FOREACH(kv, h, next) {
    if (name_len(kv) == n && strncasecmp(kv->key, name, n) == 0)
      return kv->value;
  }
  return NULL;
}

void sc__hdr_remove(struct evkeyvalq *h, struct evkeyval *kv) {
  TAILQ_REMOVE(h, kv, next);
  free(kv);
}

void sc__hdrs_clear(struct evkeyvalq *h) {
  struct evkeyval *kv;
  while ((kv = TAILQ_FIRST(h)) != NULL)
    sc__hdr_remove(h, kv);
}
