/*
 * The web page's files: GET / is DIR/index.html, GET /ui/NAME is DIR/NAME,
 * where DIR is --web (default: the build's bundle, FNPROF_WEB_DIR, else
 * "web" next to the binary). Only flat names of known types are served
 * ([A-Za-z0-9_-] plus dots, no leading dot, no '/'), opened without
 * following links; anything else is 404. The page's data comes from the
 * JSON API (api.c, api_ui.c); bundling is collector/web/'s job.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The bundle is a few hundred kB; this bounds one answer's memory. */
#define STATIC_MAX_FILE_BYTES (8u << 20)
#define STATIC_NAME_MAX 64

static const struct {
  const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

/* The page only talks to its own origin; inline styles are d3's. */
static const char CSP[] = "default-src 'self'; img-src 'self' data:; "
                          "style-src 'self' 'unsafe-inline'; "
                          "frame-ancestors 'none'; base-uri 'none'";

static const char *content_type(const char *name) {
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (strcmp(dot, TYPES[i].ext) == 0)
      return TYPES[i].type;
  return NULL;
}

static bool safe_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len >= STATIC_NAME_MAX || n[0] == '.')
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return content_type(n) != NULL;
}

static const char *web_dir(const srv *s, char *buf, size_t cap) {
  if (s->web_dir)
    return s->web_dir;
#ifdef FNPROF_WEB_DIR
  struct stat st;
  if (stat(FNPROF_WEB_DIR, &st) == 0 && S_ISDIR(st.st_mode))
    return FNPROF_WEB_DIR;
#endif
  ssize_t n = readlink("/proc/self/exe", buf, cap - 5);
  if (n <= 0 || (size_t)n >= cap - 5)
    return "web";
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  snprintf(slash ? slash + 1 : buf, cap - (size_t)(slash ? slash + 1 - buf : 0),
           "web");
  return buf;
}

/* Reads DIR/name into a new buffer; 0, -errno, or FNP_ETOOBIG. */
static int read_asset(const char *dir, const char *name, uint8_t **out,
                      size_t *len, struct stat *st) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int rc = fd < 0 ? -errno : 0;
  close(dfd);
  if (rc == 0 && fstat(fd, st) != 0)
    rc = -errno;
  if (rc == 0 && !S_ISREG(st->st_mode))
    rc = -ENOENT;
  if (rc == 0 && (uint64_t)st->st_size > STATIC_MAX_FILE_BYTES)
    rc = FNP_ETOOBIG;
  uint8_t *d = rc == 0 ? malloc((size_t)st->st_size + 1) : NULL;
  if (rc == 0 && d == NULL)
    rc = -ENOMEM;
  size_t got = 0;
  while (rc == 0 && got < (size_t)st->st_size) {
    ssize_t r = read(fd, d + got, (size_t)st->st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      rc = r < 0 ? -errno : -EIO;
    else
      got += (size_t)r;
  }
  if (fd >= 0)
    close(fd);
  if (rc < 0) {
    free(d);
    return rc;
  }
  *out = d;
  *len = got;
  return 0;
}

static void add_headers(struct evhttp_request *req, const char *etag,
                        const char *name) {
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  /* Names are not content-hashed, so revalidate every time (cheap: 304). */
  evhttp_add_header(h, "Cache-Control", "no-cache");
  evhttp_add_header(h, "ETag", etag);
  evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(h, "Referrer-Policy", "no-referrer");
  if (strcmp(content_type(name), TYPES[0].type) == 0)
    evhttp_add_header(h, "Content-Security-Policy", CSP);
}

static void serve(srv *s, struct evhttp_request *req, const char *name) {
  char buf[PATH_MAX];
  const char *dir = web_dir(s, buf, sizeof buf);
  uint8_t *data = NULL;
  size_t len = 0;
  struct stat st;
  int rc = read_asset(dir, name, &data, &len, &st);
  if (rc == -ENOENT || rc == -ELOOP || rc == -ENOTDIR) {
    srv_reply_error(s, req, 404, "NotFound",
                    strcmp(name, "index.html") == 0
                        ? "no web page here: build collector/web or pass --web"
                        : "no such file");
    return;
  }
  if (rc < 0) {
    srv_reply_error(s, req, 500, "InternalServerError", "%s", fnp_strerror(rc));
    return;
  }
  char etag[64];
  snprintf(etag, sizeof etag, "\"%llx-%llx-%lx\"", (unsigned long long)len,
           (unsigned long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
  add_headers(req, etag, name);
  const char *inm = srv_header(req, "If-None-Match");
  if (inm && strcmp(inm, etag) == 0)
    srv_reply(s, req, 304, NULL, NULL, 0);
  else
    srv_reply(s, req, 200, content_type(name), data, len);
  free(data);
}

bool srv_static(srv *s, struct evhttp_request *req, const char *path) {
  if (strcmp(path, "/") == 0 || strcmp(path, "/ui/") == 0 ||
      strcmp(path, "/ui") == 0) {
    serve(s, req, "index.html");
    return true;
  }
  if (strncmp(path, "/ui/", 4) != 0)
    return false;
  if (!safe_name(path + 4))
    srv_reply_error(s, req, 404, "NotFound", "no such file");
  else
    serve(s, req, path + 4);
  return true;
}
