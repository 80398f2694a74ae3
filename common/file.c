/* Whole-file read with a size cap, and atomic whole-file write. */
#include <fnprof/common.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK_BYTES (64 * 1024)

int fnp_read_file(const char *path, size_t max, uint8_t **data, size_t *len,
                  fnp_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fnp_fail(err, -errno, "%s: %s", path, strerror(errno));
  fnp_buf b;
  fnp_buf_init(&b, max);
  int rc = 0;
  for (;;) {
    size_t want = READ_CHUNK_BYTES;
    if (b.cap - b.len < want)
      want = b.cap - b.len;
    if (want == 0) {
      /* Full: one more byte tells whether the file is larger than max. */
      char probe;
      ssize_t n = read(fd, &probe, 1);
      if (n > 0)
        rc = fnp_fail(err, FNP_ETOOBIG, "%s: larger than %zu bytes", path, max);
      break;
    }
    rc = fnp_buf_reserve(&b, want);
    if (rc < 0) {
      fnp_fail(err, rc, "%s: %s", path, fnp_strerror(rc));
      break;
    }
    ssize_t n = read(fd, b.data + b.len, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = fnp_fail(err, -errno, "%s: read: %s", path, strerror(errno));
      break;
    }
    if (n == 0)
      break;
    b.len += (size_t)n;
  }
  close(fd);
  if (rc < 0) {
    fnp_buf_destroy(&b);
    return rc;
  }
  *data = fnp_buf_steal(&b, len);
  if (*data == NULL) {
    *data = malloc(1); /* an empty file still yields a freeable pointer */
    if (*data == NULL)
      return fnp_fail(err, -ENOMEM, "%s: out of memory", path);
  }
  return 0;
}

int fnp_write_file(const char *path, const void *data, size_t len,
                   fnp_error *err) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (tmp == NULL)
    return fnp_fail(err, -ENOMEM, "out of memory");
  snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int rc = 0;
  if (fd < 0) {
    rc = fnp_fail(err, -errno, "%s: %s", tmp, strerror(errno));
    goto out;
  }
  const uint8_t *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = fnp_fail(err, -errno, "%s: write: %s", tmp, strerror(errno));
      break;
    }
    p += n;
    left -= (size_t)n;
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = fnp_fail(err, -errno, "%s: fsync: %s", tmp, strerror(errno));
  if (close(fd) != 0 && rc == 0)
    rc = fnp_fail(err, -errno, "%s: close: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, path) != 0)
    rc = fnp_fail(err, -errno, "%s: rename: %s", path, strerror(errno));
  if (rc != 0)
    unlink(tmp);
out:
  free(tmp);
  return rc;
}
