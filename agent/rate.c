/*
 * Sampling math: the per-thread xorshift RNG, the exponential countdown
 * (Go's fastexprand) and Go's un-sampling formula (scaleHeapSample). Pure
 * functions; the slow path and the profile writer call them.
 */
#include "internal.h"

#include <string.h>
#include <time.h>

/*
 * exp and log2 of our own, so the agent does not bring libm into programs
 * that do not link it (its pages were ~0.5 MiB of the agent's RSS, a good
 * part of the +4 MiB budget). Both reduce the argument to a power of two
 * and a small remainder and sum a short series; accurate to ~1e-15
 * relative, far below what sampling statistics can see.
 */
static double pow2i(int k) { /* 2^k for -1022 <= k <= 1023 */
  uint64_t bits = (uint64_t)(k + 1023) << 52;
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

double agent__exp(double x) {
  if (x < -708.0)
    return 0.0; /* below the normal range: 0 is what every caller wants */
  if (x > 709.0)
    x = 709.0;
  const double ln2 = 0.6931471805599453;
  /* x = k ln2 + r, |r| <= ln2/2; e^r by Taylor to r^13/13! (< 3e-17).
   * ln2 split in a high part exact in 32 bits and the rest (Cody and
   * Waite), so k ln2 is exact enough for k up to ~1000. */
  const double ln2_hi = 6.93147180369123816490e-01;
  const double ln2_lo = 1.90821492927058770002e-10;
  int k = (int)(x * (1 / ln2) + (x < 0 ? -0.5 : 0.5));
  double r = (x - (double)k * ln2_hi) - (double)k * ln2_lo;
  /* Horner with 1/i as constants: no division on the sampling path (the
   * weight is computed for every sampled allocation and free). */
  static const double inv[14] = {0,       1,       1. / 2,  1. / 3, 1. / 4,
                                 1. / 5,  1. / 6,  1. / 7,  1. / 8, 1. / 9,
                                 1. / 10, 1. / 11, 1. / 12, 1. / 13};
  double t = 1.0;
  for (int i = 13; i >= 1; i--)
    t = 1.0 + t * r * inv[i];
  return t * pow2i(k);
}

double agent__log2(double x) { /* x >= 1 (the callers' range) */
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
  double m;
  memcpy(&m, &bits, sizeof m);  /* x = m 2^e, 1 <= m < 2 */
  if (m > 1.4142135623730951) { /* keep m in [sqrt(1/2), sqrt(2)) */
    m /= 2;
    e++;
  }
  /* ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, s^2 <= 0.0295:
   * the series to s^19 leaves s^21/21 < 2e-17 relative. */
  static const double inv_odd[10] = {1,       1. / 3,  1. / 5,  1. / 7,
                                     1. / 9,  1. / 11, 1. / 13, 1. / 15,
                                     1. / 17, 1. / 19};
  double s = (m - 1) / (m + 1), s2 = s * s, sum = 0;
  for (int i = 9; i >= 0; i--)
    sum = inv_odd[i] + s2 * sum;
  return (double)e + 2 * s * sum * (1 / 0.6931471805599453);
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift
 * generators, scrambled", 2016): 64-bit state, passes BigCrush in the high
 * bits, which is all we take. */
uint64_t agent__rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* A seed from the clock and the address of a stack slot (differs per thread
 * and per run); never 0, which would stick. */
uint64_t agent__rng_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
               (uint64_t)(uintptr_t)&ts * 0x9E3779B97F4A7C15ULL;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x ? x : 0x853c49e6748fea9bULL;
}

/* Go's fastexprand (runtime/malloc.go): an exponential variate with the
 * given mean, by inversion: -ln(U) * mean = -log2(U) * ln 2 * mean, U drawn
 * as q / 2^26 with q uniform in [1, 2^26]. The step is capped near 20x the
 * mean by the 26 bits. Exactly what makes each byte allocated a sampling
 * point with probability 1/mean (a Poisson process over bytes). */
#define RATE_RANDOM_BITS 26
#define RATE_MAX_MEAN 0x7000000

int64_t agent__next_interval(uint64_t *rng, int64_t mean) {
  if (mean <= 1)
    return 0; /* rate 1: every allocation */
  if (mean > RATE_MAX_MEAN)
    mean = RATE_MAX_MEAN;
  uint64_t q = (agent__rng_next(rng) >> (64 - RATE_RANDOM_BITS)) + 1;
  double qlog = agent__log2((double)q) - RATE_RANDOM_BITS;
  if (qlog > 0)
    qlog = 0;
  const double minus_log2 = -0.6931471805599453; /* -ln 2 */
  return (int64_t)(qlog * minus_log2 * (double)mean) + 1;
}

/* Go's scaleHeapSample (runtime/pprof/protomem.go). A block of average size
 * avg is sampled with probability 1 - exp(-avg/rate), so each recorded one
 * stands for 1 / that many. */
void agent__scale(int64_t count, int64_t bytes, int64_t rate, int64_t *ocount,
                  int64_t *obytes) {
  if (count == 0 || bytes == 0) {
    *ocount = 0;
    *obytes = 0;
    return;
  }
  if (rate <= 1) {
    *ocount = count;
    *obytes = bytes;
    return;
  }
  double avg = (double)bytes / (double)count;
  double scale = 1.0 / (1.0 - agent__exp(-avg / (double)rate));
  *ocount = (int64_t)((double)count * scale);
  *obytes = (int64_t)((double)bytes * scale);
}

/* size / (1 - e^-x), x = size/rate: what one sampled block of `size`
 * stands for. Computed for every sampled allocation and free, so blocks
 * small against the rate (nearly all) skip exp: x / (1 - e^-x) is the
 * Bernoulli series 1 + x/2 + x^2/12 - x^4/720 + x^6/30240 - x^8/1209600 +
 * ..., whose next term is under 2e-17 relative for x < 1/8; times rate/x
 * it is rate + size (1/2 + x/12 - x^3/720 + x^5/30240 - x^7/1209600). */
double agent__sample_weight(uint64_t size, int64_t rate) {
  if (rate <= 1)
    return (double)size;
  if (size == 0)
    return 0;
  double n = (double)size, x = n / (double)rate;
  if (x < 0.125) {
    double x2 = x * x;
    return (double)rate +
           n * (0.5 + x * (1. / 12 -
                           x2 * (1. / 720 - x2 * (1. / 30240 - x2 / 1209600))));
  }
  return n / (1.0 - agent__exp(-x));
}

/* Bucket size key: 16-byte steps up to 256 B, then four classes per power
 * of two (at most 25 % apart). Go keys buckets by the size-class slot size,
 * of which there are ~68; keying a C program's arbitrary request sizes
 * exactly would make one bucket per distinct size (a log-uniform workload
 * makes tens of thousands). The counters still add exact requested bytes,
 * and the profile's `bytes` label is the bucket's average, as Go's is
 * (AllocBytes / AllocObjects). */
uint64_t agent__size_key(uint64_t n) {
  if (n <= 256)
    return (n + 15) & ~(uint64_t)15;
  int lg = 63 - __builtin_clzll(n - 1); /* 2^lg < n <= 2^(lg+1) */
  uint64_t step = ((uint64_t)1 << lg) / 4;
  return (n + step - 1) / step * step;
}
