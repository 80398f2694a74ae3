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

int sc__proc_mem(pid_t pid, int64_t *rss_bytes, int64_t *hwm_bytes) {
  char path[64], text[4096];
  ssize_t n;
  int fd, rc;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  n = read(fd, text, sizeof(text) - 1);
  rc = n < 0 ? -errno : 0;
  close(fd);
  if (rc < 0)
    return rc;
  text[n] = '\0';
  rc = status_field(text, "\nVmRSS:", rss_bytes);
  if (rc == 0)
    rc = status_field(text, "\nVmHWM:", hwm_bytes);
  return rc;
}

int sc__proc_reset_hwm(pid_t pid) {
  char path[64];
  int fd, rc = 0;
  snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (write(fd, "5", 1) != 1)
    rc = -errno;
  close(fd);
  return rc;
}
