/*
 * gen_profile - writes a large synthetic heap profile for the pprof
 * benchmark: Go's four heap sample types, one mapping, N_LOCS symbolized
 * locations (one function each, every eighth with an inlined callee), and
 * N_SAMPLES samples with stacks 4..40 frames deep. A fixed-seed PRNG makes
 * the files identical from run to run.
 *
 * --grown writes the "later" profile for diff: the same stacks with values
 * changed, one sample in ten dropped and as many new stacks added, so a
 * diff has to match, cancel and keep samples.
 *
 * Usage: gen_profile [--grown] N_SAMPLES N_LOCS OUT.pb.gz
 */
#include <fnprof/pprof.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 40
#define MIN_DEPTH 4
#define INLINE_EVERY 8 /* one location in eight has an inlined frame */
#define MAPPING_START 0x400000ULL
#define CODE_STRIDE 0x40ULL /* bytes between generated code addresses */

/* xorshift64*: fast, deterministic, good enough for synthetic data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "gen_profile: %s: %s\n", what, fnp_strerror(rc));
  return 1;
}

static int add_header(pprof_profile *p) {
  static const char *const types[4][2] = {{"alloc_objects", "count"},
                                          {"alloc_space", "bytes"},
                                          {"inuse_objects", "count"},
                                          {"inuse_space", "bytes"}};
  for (int i = 0; i < 4; i++) {
    int rc = pprof_add_sample_type(p, types[i][0], types[i][1]);
    if (rc < 0)
      return fail("sample type", rc);
  }
  p->period_type.type = pprof_string(p, "space");
  p->period_type.unit = pprof_string(p, "bytes");
  p->period = 512 * 1024;
  return 0;
}

static int add_code(pprof_profile *p, size_t n_locs) {
  pprof_mapping m = {.id = 1,
                     .memory_start = MAPPING_START,
                     .memory_limit = MAPPING_START + CODE_STRIDE * n_locs,
                     .filename = pprof_string(p, "/usr/local/bin/bigserver"),
                     .build_id = pprof_string(p, "00112233445566778899aabb"),
                     .has_functions = true,
                     .has_filenames = true,
                     .has_line_numbers = true};
  int rc = pprof_add_mapping(p, &m);
  if (rc < 0)
    return fail("mapping", rc);
  char name[64], file[64];
  for (size_t i = 0; i < n_locs; i++) {
    snprintf(name, sizeof name, "pkg%zu.function_%zu", i % 97, i);
    snprintf(file, sizeof file, "src/pkg%zu/file.c", i % 97);
    pprof_function f = {.id = i + 1,
                        .name = pprof_string(p, name),
                        .system_name = pprof_string(p, name),
                        .filename = pprof_string(p, file),
                        .start_line = (int64_t)(i % 500) + 1};
    if ((rc = pprof_add_function(p, &f)) < 0)
      return fail("function", rc);
  }
  for (size_t i = 0; i < n_locs; i++) {
    /* line[0] is the inlined callee: some other function. */
    pprof_line lines[2] = {
        {.function_id = (i * 7919) % n_locs + 1, .line = 12},
        {.function_id = i + 1, .line = (int64_t)(i % 500) + 5}};
    bool inl = i % INLINE_EVERY == 0;
    pprof_location l = {.id = i + 1,
                        .mapping_id = 1,
                        .address = MAPPING_START + CODE_STRIDE * i + 3,
                        .line = inl ? lines : lines + 1,
                        .n_line = inl ? 2 : 1};
    if ((rc = pprof_add_location(p, &l)) < 0)
      return fail("location", rc);
  }
  return 0;
}

/* One sample's stack and values; `grown` changes the values. */
static int add_sample(pprof_profile *p, size_t n_locs, bool grown, bool keep) {
  uint64_t loc[MAX_DEPTH];
  size_t depth = MIN_DEPTH + rng() % (MAX_DEPTH - MIN_DEPTH + 1);
  /* Roots come from a small set, as real programs have few entry points;
   * leaves are spread over all locations. */
  for (size_t d = 0; d < depth; d++) {
    size_t span = d == 0 ? 16 : n_locs; /* d == 0 is the root */
    loc[depth - 1 - d] = rng() % span + 1;
  }
  int64_t objects = (int64_t)(rng() % 1000) + 1;
  int64_t size = (int64_t)(16 << (rng() % 12));
  uint64_t extra = rng() % 200; /* drawn always: keeps both files aligned */
  if (grown)
    objects += (int64_t)extra;
  int64_t v[4] = {objects, objects * size, objects / 3, objects / 3 * size};
  pprof_label label = {.key = pprof_string(p, "bytes"), .num = size};
  if (!keep)
    return 0; /* drawn anyway so later samples stay the same */
  int rc = pprof_add_sample(p, loc, depth, v, &label, 1);
  return rc < 0 ? fail("sample", rc) : 0;
}

int main(int argc, char **argv) {
  bool grown = argc > 1 && strcmp(argv[1], "--grown") == 0;
  if (argc != 4 + grown) {
    fprintf(stderr, "usage: gen_profile [--grown] N_SAMPLES N_LOCS OUT\n");
    return 2;
  }
  size_t n_samples = strtoull(argv[1 + grown], NULL, 10);
  size_t n_locs = strtoull(argv[2 + grown], NULL, 10);
  if (n_samples == 0 || n_locs < 16) {
    fprintf(stderr, "gen_profile: want N_SAMPLES > 0 and N_LOCS >= 16\n");
    return 2;
  }
  pprof_profile *p = pprof_profile_new();
  fnp_error err = {0};
  int rc = 1;
  if (p == NULL || add_header(p) || add_code(p, n_locs))
    goto out;
  for (size_t i = 0; i < n_samples; i++) {
    /* --grown: drop every tenth sample, and add a new one in its place
     * (drawn after the original stream so shared stacks stay aligned). */
    if (add_sample(p, n_locs, grown, !grown || i % 10 != 0))
      goto out;
  }
  for (size_t i = 0; grown && i < n_samples / 10; i++)
    if (add_sample(p, n_locs, true, true))
      goto out;
  int wrc = pprof_write_file(p, argv[3 + grown], &err);
  if (wrc < 0) {
    fprintf(stderr, "gen_profile: %s\n", err.msg[0] ? err.msg : "write");
    goto out;
  }
  rc = 0;
out:
  pprof_profile_free(p);
  return rc;
}
