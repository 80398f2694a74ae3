/*
 * libFuzzer target for the pprof decoder: any bytes must either decode to a
 * profile that validates and re-encodes, or fail with an error message.
 * Never a crash, leak or unbounded allocation.
 */
#include <fnprof/pprof.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Keep decompressed inputs small so each run stays fast. */
  pprof_decode_opts opts = {.max_raw_bytes = 4u << 20};
  pprof_profile *p = NULL;
  fnp_error err = {0};
  if (pprof_decode(data, size, &opts, &p, &err) < 0) {
    if (p != NULL || err.msg[0] == '\0')
      abort(); /* failure must leave no profile and say why */
    return 0;
  }
  uint8_t *out;
  size_t len;
  if (pprof_encode(p, false, &out, &len, &err) < 0)
    abort(); /* a profile that decoded and validated must encode */
  pprof_profile *q = NULL;
  if (pprof_decode(out, len, &opts, &q, &err) < 0)
    abort();
  if (q->n_sample != p->n_sample || q->n_location != p->n_location)
    abort();
  /* The operations must cope with whatever decoded. */
  pprof_top_entry *top;
  size_t n;
  int64_t total;
  if (p->n_sample_type > 0 &&
      pprof_top(p, 0, PPROF_SORT_FLAT, &top, &n, &total) == 0)
    free(top);
  free(out);
  pprof_profile_free(q);
  pprof_profile_free(p);
  return 0;
}
