/* Sampling math: the exponential countdown (Go's fastexprand) and the
 * un-sampling formula (Go's scaleHeapSample). */
#include "internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>

#define DRAWS 1000000

/* The mean of 10^6 exponential draws has a standard error of mean/1000:
 * a 1 % tolerance is 10 standard errors (the 26-bit quantization and the
 * ~18x cap move the mean by well under 0.1 %). */
static void test_interval_mean(void **state) {
  (void)state;
  uint64_t rng = 42;
  const int64_t mean = 524288;
  double sum = 0;
  int64_t over_mean = 0, max = 0;
  for (int i = 0; i < DRAWS; i++) {
    int64_t x = agent__next_interval(&rng, mean);
    assert_true(x >= 1);
    sum += (double)x;
    over_mean += x > mean;
    if (x > max)
      max = x;
  }
  double m = sum / DRAWS;
  assert_true(fabs(m - mean) / mean < 0.01);
  /* P(X > mean) = 1/e for an exponential; binomial SE ~0.0005. */
  assert_true(fabs((double)over_mean / DRAWS - exp(-1.0)) < 0.005);
  assert_true(max < 20 * mean); /* 26 random bits: at most ~18x */
}

/* The agent's own exp and log2 (no libm in the agent) against libm's,
 * over the ranges the sampling math uses: exp of -size/rate for any size,
 * log2 of the 26-bit draws. */
static void test_exp_log2_match_libm(void **state) {
  (void)state;
  for (double x = -800; x <= 0; x += 0.37) {
    double want = exp(x), got = agent__exp(x);
    if (want < 1e-300)
      assert_true(got < 1e-300);
    else
      assert_true(fabs(got - want) <= 1e-14 * want);
  }
  for (double x = 0; x < 700; x += 1.13)
    assert_true(fabs(agent__exp(x) - exp(x)) <= 1e-14 * exp(x));
  assert_true(agent__exp(0) == 1.0);
  for (uint64_t q = 1; q <= (1u << 26); q = q * 3 + 1)
    assert_true(fabs(agent__log2((double)q) - log2((double)q)) < 1e-13);
  for (int k = 0; k < 62; k++)
    assert_true(agent__log2((double)((uint64_t)1 << k)) == (double)k);
}

static void test_rate_one_and_off(void **state) {
  (void)state;
  uint64_t rng = 7;
  assert_int_equal(agent__next_interval(&rng, 1), 0);
  assert_int_equal(agent__next_interval(&rng, 0), 0);
}

/* Run the agent's countdown rule over a stream of equal blocks: a block of
 * S bytes must be sampled with probability 1 - exp(-S/R). */
static void test_sampling_probability(void **state) {
  (void)state;
  const int64_t rate = 65536;
  const int64_t sizes[] = {64, 4096, 65536, 262144};
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    uint64_t rng = 1234 + k;
    int64_t countdown = agent__next_interval(&rng, rate);
    int64_t sampled = 0, n = 400000;
    for (int64_t i = 0; i < n; i++) {
      countdown -= sizes[k];
      if (countdown <= 0) {
        sampled++;
        countdown = agent__next_interval(&rng, rate);
      }
    }
    double p = 1 - exp(-(double)sizes[k] / rate);
    double se = sqrt(p * (1 - p) / n);
    double got = (double)sampled / n;
    assert_true(fabs(got - p) < 5 * se + 1e-4);
  }
}

static void test_scale(void **state) {
  (void)state;
  int64_t c, b;
  /* pprof-format.md 4: 64 KiB blocks at 512 KiB -> scale ~8.51. */
  agent__scale(1, 65536, 524288, &c, &b);
  assert_int_equal(c, 8);
  assert_true(b > 65536 * 8.5 && b < 65536 * 8.52);
  agent__scale(3, 300, 1, &c, &b); /* rate 1: exact */
  assert_int_equal(c, 3);
  assert_int_equal(b, 300);
  agent__scale(0, 0, 524288, &c, &b);
  assert_int_equal(c, 0);
  assert_int_equal(b, 0);
  /* The weight against libm's size / -expm1(-size/rate) (accurate for
   * small x, where 1 - exp(-x) cancels), on both sides of the series'
   * range (x < 1/8) and at rates 512 KiB and 16 KiB. */
  for (int r = 0; r < 2; r++) {
    int64_t rate = r ? 16384 : 524288;
    for (uint64_t n = 1; n < (64u << 20); n = n * 5 / 4 + 1) {
      double want = (double)n / -expm1(-(double)n / (double)rate);
      assert_true(fabs(agent__sample_weight(n, rate) - want) <= 1e-13 * want);
    }
  }
  /* A block far larger than the rate stands for itself. */
  assert_true(fabs(agent__sample_weight(64 << 20, 524288) - (64 << 20)) < 1);
}

static void test_size_key(void **state) {
  (void)state;
  assert_int_equal(agent__size_key(0), 0);
  assert_int_equal(agent__size_key(1), 16);
  assert_int_equal(agent__size_key(256), 256);
  assert_int_equal(agent__size_key(257), 320);
  assert_int_equal(agent__size_key(1000), 1024);
  assert_int_equal(agent__size_key(1025), 1280);
  for (uint64_t n = 1; n < (1 << 22); n = n * 3 / 2 + 1) {
    uint64_t k = agent__size_key(n);
    assert_true(k >= n);
    assert_true(k - n <= n / 4 + 15); /* classes at most 25 % apart */
    assert_int_equal(agent__size_key(k), k);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interval_mean),
      cmocka_unit_test(test_exp_log2_match_libm),
      cmocka_unit_test(test_rate_one_and_off),
      cmocka_unit_test(test_sampling_probability),
      cmocka_unit_test(test_scale),
      cmocka_unit_test(test_size_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
