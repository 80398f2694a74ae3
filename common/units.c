/* Human units for byte counts, as go tool pprof prints them, and back. */
#include <fnprof/common.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

void fnp_format_bytes(int64_t bytes, char *out, size_t outlen) {
  /* pprof scales by 1024 but labels with kB/MB/GB/TB; keep that so our
   * tables read like `go tool pprof -top`. */
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = (double)bytes;
  double mag = fabs(v);
  size_t u = 0;
  while (mag >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    mag /= 1024.0;
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(out, outlen, "%lldB", (long long)bytes);
  else
    snprintf(out, outlen, "%.2f%s", v, units[u]);
}

int fnp_parse_bytes(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno != 0 || !isfinite(v))
    return FNP_EUSAGE;
  while (*end == ' ')
    end++;
  double mult = 1;
  if (*end != '\0') {
    switch (tolower((unsigned char)*end)) {
    case 'b':
      mult = 1;
      break;
    case 'k':
      mult = 1024.0;
      break;
    case 'm':
      mult = 1024.0 * 1024;
      break;
    case 'g':
      mult = 1024.0 * 1024 * 1024;
      break;
    case 't':
      mult = 1024.0 * 1024 * 1024 * 1024;
      break;
    default:
      return FNP_EUSAGE;
    }
    const char *suffix = end + 1;
    if (mult != 1 && strcasecmp(suffix, "") != 0 &&
        strcasecmp(suffix, "b") != 0 && strcasecmp(suffix, "ib") != 0)
      return FNP_EUSAGE;
    if (mult == 1 && *suffix != '\0')
      return FNP_EUSAGE;
  }
  double r = v * mult;
  if (r > 9.2e18 || r < -9.2e18)
    return FNP_ETOOBIG;
  /* Rounded half away from zero, without libm (the agent links this). */
  *out = (int64_t)(r < 0 ? r - 0.5 : r + 0.5);
  return 0;
}
