/* Sink URL parsing: sls://, sls+https://, otlp+http://, otlp+https://,
 * file://. Only syntax is checked here; reachability is the flush's job. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_part(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap)
    return FNP_ETOOBIG;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

/* SLS project and logstore names: lower-case letters, digits, '-' and '_'
 * (SLS's own rule is stricter; this is what can appear in a path and Host
 * without escaping). */
bool export__sls_name_ok(const char *s) {
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
          *s == '_' || (*s >= 'A' && *s <= 'Z')))
      return false;
  return true;
}

/* host[:port] up to the first '/', IPv6 literals in brackets. */
static int parse_authority(const char *s, size_t n, export_url *u,
                           fnp_error *err) {
  const char *colon = NULL;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL)
      return fnp_fail(err, FNP_EPARSE, "url: unterminated IPv6 literal");
    if ((size_t)(close - s + 1) < n && close[1] == ':')
      colon = close + 1;
  } else {
    colon = memchr(s, ':', n);
  }
  size_t hlen = colon ? (size_t)(colon - s) : n;
  if (hlen == 0 || copy_part(u->host, sizeof u->host, s, hlen) < 0)
    return fnp_fail(err, FNP_EPARSE, "url: missing or overlong host");
  if (colon == NULL)
    return 0;
  char *end;
  char port[8];
  if (copy_part(port, sizeof port, colon + 1, n - hlen - 1) < 0)
    return fnp_fail(err, FNP_EPARSE, "url: bad port");
  long p = strtol(port, &end, 10);
  if (*end != '\0' || port[0] == '\0' || p < 1 || p > 65535)
    return fnp_fail(err, FNP_EPARSE, "url: bad port '%s'", port);
  u->port = (int)p;
  return 0;
}

static int parse_sls_path(const char *path, export_url *u, fnp_error *err) {
  if (*path == '\0')
    return 0; /* no project/logstore: the platform's headers will say */
  const char *slash = strchr(path, '/');
  if (slash == NULL || strchr(slash + 1, '/') != NULL ||
      copy_part(u->project, sizeof u->project, path, (size_t)(slash - path)) <
          0 ||
      copy_part(u->logstore, sizeof u->logstore, slash + 1, strlen(slash + 1)) <
          0 ||
      !export__sls_name_ok(u->project) || !export__sls_name_ok(u->logstore))
    return fnp_fail(err, FNP_EPARSE,
                    "url: sls:// needs HOST[:PORT][/PROJECT/LOGSTORE]");
  return 0;
}

int export_url_parse(const char *url, export_url *u, fnp_error *err) {
  static const struct {
    const char *prefix;
    export_scheme scheme;
    bool tls;
    int port;
  } schemes[] = {{"sls://", EXPORT_SCHEME_SLS, false, 80},
                 {"sls+https://", EXPORT_SCHEME_SLS, true, 443},
                 {"otlp+http://", EXPORT_SCHEME_OTLP, false, 4318},
                 {"otlp+https://", EXPORT_SCHEME_OTLP, true, 4318},
                 {"file://", EXPORT_SCHEME_FILE, false, 0}};
  memset(u, 0, sizeof *u);
  size_t i = 0, ns = sizeof schemes / sizeof schemes[0];
  while (i < ns &&
         strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) != 0)
    i++;
  if (i == ns)
    return fnp_fail(err, FNP_EPARSE,
                    "url: unknown scheme (want sls://, sls+https://, "
                    "otlp+http://, otlp+https:// or file://)");
  u->scheme = schemes[i].scheme;
  u->tls = schemes[i].tls;
  u->port = schemes[i].port;
  const char *rest = url + strlen(schemes[i].prefix);
  if (u->scheme == EXPORT_SCHEME_FILE) {
    if (rest[0] != '/' ||
        copy_part(u->path, sizeof u->path, rest, strlen(rest)) < 0)
      return fnp_fail(err, FNP_EPARSE, "url: file:// needs an absolute DIR");
    return 0;
  }
  if (strpbrk(rest, "?#@ ") != NULL)
    return fnp_fail(err, FNP_EPARSE,
                    "url: query, fragment, user info and spaces are not "
                    "supported (credentials go in the environment)");
  size_t alen = strcspn(rest, "/");
  int rc = parse_authority(rest, alen, u, err);
  if (rc < 0)
    return rc;
  const char *path = rest + alen;
  if (u->scheme == EXPORT_SCHEME_SLS)
    return parse_sls_path(path[0] ? path + 1 : path, u, err);
  /* OTLP: an optional base path without its trailing slash. */
  size_t plen = strlen(path);
  while (plen > 0 && path[plen - 1] == '/')
    plen--;
  if (copy_part(u->path, sizeof u->path, path, plen) < 0)
    return fnp_fail(err, FNP_EPARSE, "url: path too long");
  return 0;
}
