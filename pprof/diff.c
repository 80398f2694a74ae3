/*
 * pprof_diff: cur minus base, the way `go tool pprof -base base cur` computes
 * it (profile/merge.go via driver/fetch.go): every base value is negated and
 * the two profiles are merged, cur first, so stacks present in both cancel
 * and all-zero samples disappear. Matching itself is merge.c's job.
 */
#include "internal.h"

int pprof_diff(const pprof_profile *base, const pprof_profile *cur,
               pprof_profile **out, fnp_error *err) {
  if (base == NULL || cur == NULL || out == NULL)
    return fnp_fail(err, FNP_EUSAGE, "diff: base, cur and out are required");
  /* Order matters only for what is taken from the first input (mapping
   * addresses, drop/keep frames), and pprof puts the source first. */
  const pprof_profile *in[2] = {cur, base};
  const bool negate[2] = {false, true};
  fnp_error merr = {0};
  int rc = pprof__merge_signed(in, negate, 2, out, &merr);
  if (rc < 0) {
    /* merge numbers its inputs; say which profile is which. */
    return fnp_fail(err, rc, "diff (input 0 = current, input 1 = base): %s",
                    merr.msg);
  }
  return 0;
}
