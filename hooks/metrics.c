/*
 * metrics.c - what /proc says about the function's memory. FC reports "max
 * memory used" per invocation; Linux keeps a peak RSS (VmHWM) per process
 * that can be reset (clear_refs 5, Linux >= 4.0), so the sidecar resets it
 * when an invocation starts on an idle instance and reads it at the end. With
 * concurrent invocations the peak is the instance's over their overlap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Value of "Name:   123 kB" in /proc/PID/status, in bytes. */
static int status_field(const char *text, const char *name, int64_t *out) {
  const char *p = strstr(text, name);
  long long kb;
  if (p == NULL || sscanf(p + strlen(name), " %lld kB", &kb) != 1)
    return FNP_EPARSE;
  *out = kb * 1024;
  return 0;
}

/* Opens /proc/PID/NAME once; the fd stays valid for this process only (a
 * reused pid does not inherit it: reads then fail with ESRCH). */
static int proc_fd(const sc_child *c, int *fd, const char *name, int flags) {
  char path[64];
  if (*fd >= 0)
    return 0;
  snprintf(path, sizeof(path), "/proc/%d/%s", (int)c->pid, name);
  *fd = open(path, flags | O_CLOEXEC);
  return *fd < 0 ? -errno : 0;
}

int sc__proc_mem(sc_child *c, int64_t *rss_bytes, int64_t *hwm_bytes) {
  char text[4096];
  ssize_t n;
  int rc = proc_fd(c, &c->status_fd, "status", O_RDONLY);
  if (rc < 0)
    return rc;
  /* A seq_file regenerates its text when read from offset 0. */
  n = pread(c->status_fd, text, sizeof(text) - 1, 0);
  if (n < 0)
    return -errno;
  text[n] = '\0';
  rc = status_field(text, "\nVmRSS:", rss_bytes);
  if (rc == 0)
    rc = status_field(text, "\nVmHWM:", hwm_bytes);
  return rc;
}

int sc__proc_reset_hwm(sc_child *c) {
  int rc = proc_fd(c, &c->clear_refs_fd, "clear_refs", O_WRONLY);
  if (rc < 0)
    return rc;
  return write(c->clear_refs_fd, "5", 1) == 1 ? 0 : -errno;
}

void sc__proc_close(sc_child *c) {
  if (c->status_fd >= 0)
    close(c->status_fd);
  if (c->clear_refs_fd >= 0)
    close(c->clear_refs_fd);
  c->status_fd = c->clear_refs_fd = -1;
}
