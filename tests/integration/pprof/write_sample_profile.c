/*
 * write_sample_profile - builds a realistic heap profile through the public
 * pprof_add_* API (Go's four heap sample types, two mappings with build ids,
 * inlined frames, numeric and string labels, comments) and writes it with
 * pprof_write_file. The round-trip tests then check that go tool pprof and
 * the npm pprof-format decoder read the same numbers fnprof does.
 *
 * Values are chosen so every top list is unambiguous (no ties), and names
 * include characters JSON and SVG must escape.
 *
 * Usage: write_sample_profile [--grown | --unsymbolized] OUT.pb.gz
 * --grown writes the "later" profile diff tests compare against: the
 * cache_insert stack allocates and holds ten times as much and the
 * parse_json stack is gone (inuse_space: +6912000 and -12288 bytes).
 * --unsymbolized writes what the agent writes: bare addresses (return PC - 1
 * style, inside this program's own functions) and a mapping of this
 * executable without symbols, so `fnprof top --symbolize` has real work.
 */
#include <fnprof/pprof.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_FUNCS 10
#define N_LOCS 9 /* the last function only appears inlined */
#define KIB 1024

static const char *const FUNC_NAMES[N_FUNCS] = {
    "main",
    "server_loop",
    "handle_request",
    "parse_json",
    "alloc_buffer",
    "cache_insert",
    "std::vector<int, std::allocator<int> >::push_back(int const&)",
    "log_\"quoted\"\\path",
    "größe_berechnen", /* UTF-8 must survive every decoder */
    "dispatch_inline",
};

/* One stack (leaf first, as function indexes into FUNC_NAMES) and its four
 * values: alloc_objects, alloc_space, inuse_objects, inuse_space. */
typedef struct stack {
  int frames[6];
  int n_frames;
  int64_t value[4];
  const char *thread;
} stack;

static const stack STACKS[] = {
    {{4, 2, 1, 0}, 4, {400, 400 * 64 * KIB, 100, 100 * 64 * KIB}, "worker"},
    {{5, 2, 1, 0}, 4, {2000, 2000 * 512, 1500, 1500 * 512}, "worker"},
    {{6, 3, 2, 1, 0}, 5, {9000, 9000 * 48, 10, 10 * 48}, "worker"},
    {{3, 2, 1, 0}, 4, {700, 700 * 4 * KIB, 3, 3 * 4 * KIB}, "io"},
    {{7, 1, 0}, 3, {50, 50 * 256, 50, 50 * 256}, "main"},
    {{8, 4, 2, 1, 0}, 5, {30, 30 * 32 * KIB, 29, 29 * 32 * KIB}, "worker"},
    {{4, 0}, 2, {1, 8 * 1024 * KIB, 1, 8 * 1024 * KIB}, "main"},
};

#define CHECK(call)                                                            \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ < 0) {                                                             \
      fprintf(stderr, "write_sample_profile: %s: %s\n", #call,                 \
              fnp_strerror(rc_));                                              \
      goto fail;                                                               \
    }                                                                          \
  } while (0)

static int add_header(pprof_profile *p) {
  static const char *const types[4][2] = {{"alloc_objects", "count"},
                                          {"alloc_space", "bytes"},
                                          {"inuse_objects", "count"},
                                          {"inuse_space", "bytes"}};
  for (int i = 0; i < 4; i++)
    CHECK(pprof_add_sample_type(p, types[i][0], types[i][1]));
  p->period_type.type = pprof_string(p, "space");
  p->period_type.unit = pprof_string(p, "bytes");
  p->period = 512 * KIB;
  p->time_nanos = 1700000000123456789LL;
  CHECK(pprof_add_comment(p, "written by fnprof's write_sample_profile"));
  CHECK(pprof_add_comment(p, "second comment"));
  return 0;
fail:
  return -1;
}

static int add_mappings(pprof_profile *p) {
  pprof_mapping exe = {
      .id = 1,
      .memory_start = 0x400000,
      .memory_limit = 0x480000,
      .filename = pprof_string(p, "/usr/local/bin/fakeserver"),
      .build_id = pprof_string(p, "6c1f1e2d3c4b5a69788796a5b4c3d2e1f0011223"),
      .has_functions = true,
      .has_filenames = true,
      .has_line_numbers = true,
      .has_inline_frames = true};
  pprof_mapping libc = {
      .id = 2,
      .memory_start = 0x7f0000000000,
      .memory_limit = 0x7f0000180000,
      .file_offset = 0x28000,
      .filename = pprof_string(p, "/lib/x86_64-linux-gnu/libc.so.6"),
      .build_id = pprof_string(p, "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334"),
      .has_functions = true,
      .has_filenames = true,
      .has_line_numbers = true,
      .has_inline_frames = true};
  CHECK(pprof_add_mapping(p, &exe));
  CHECK(pprof_add_mapping(p, &libc));
  return 0;
fail:
  return -1;
}

/* Function i has id i+1; location i+1 is function i's code for i <
 * N_LOCS. server_loop's location also carries dispatch_inline inlined into
 * it (line[0] innermost), to exercise multi-line locations; it is never a
 * leaf, so only cumulative values see it. */
static int add_code(pprof_profile *p) {
  for (int i = 0; i < N_FUNCS; i++) {
    pprof_function f = {.id = (uint64_t)i + 1,
                        .name = pprof_string(p, FUNC_NAMES[i]),
                        .system_name = pprof_string(p, FUNC_NAMES[i]),
                        .filename =
                            pprof_string(p, i == 6 ? "vector.h" : "server.c"),
                        .start_line = 10 * i + 1};
    CHECK(pprof_add_function(p, &f));
  }
  for (int i = 0; i < N_LOCS; i++) {
    pprof_line lines[2] = {
        {.function_id = N_FUNCS, .line = 7},
        {.function_id = (uint64_t)i + 1, .line = 10 * i + 5}};
    bool inlined = i == 1;
    pprof_location l = {.id = (uint64_t)i + 1,
                        .mapping_id = i == 6 ? 2 : 1,
                        .address = (i == 6 ? 0x7f0000001000 : 0x401000) +
                                   0x40 * (uint64_t)i + 3,
                        .line = inlined ? lines : lines + 1,
                        .n_line = inlined ? 2 : 1};
    CHECK(pprof_add_location(p, &l));
  }
  return 0;
fail:
  return -1;
}

/* Turns stack s's values into the --grown variant in place; false drops
 * the stack. */
static bool grow(size_t s, int64_t v[4]) {
  if (s == 1) { /* cache_insert */
    for (int k = 0; k < 4; k++)
      v[k] *= 10;
  }
  return s != 3; /* parse_json's stack is gone */
}

static int add_samples(pprof_profile *p, bool grown) {
  int64_t key_bytes = pprof_string(p, "bytes");
  int64_t key_thread = pprof_string(p, "thread");
  for (size_t s = 0; s < sizeof STACKS / sizeof STACKS[0]; s++) {
    const stack *st = &STACKS[s];
    int64_t value[4];
    memcpy(value, st->value, sizeof value);
    if (grown && !grow(s, value))
      continue;
    uint64_t loc[6];
    for (int i = 0; i < st->n_frames; i++)
      loc[i] = (uint64_t)st->frames[i] + 1;
    pprof_label labels[2] = {
        {.key = key_bytes, .num = st->value[1] / st->value[0]},
        {.key = key_thread, .str = pprof_string(p, st->thread)}};
    CHECK(pprof_add_sample(p, loc, (size_t)st->n_frames, value, labels, 2));
  }
  return 0;
fail:
  return -1;
}

/* The executable mapping of /proc/self/maps that holds pc. */
static int self_mapping(pprof_profile *p, uintptr_t pc, pprof_mapping *m) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int rc = -1;
  while (f != NULL && rc < 0 && fgets(line, sizeof line, f)) {
    unsigned long start, end, off;
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &start, &end, &off,
               &path_at) < 3 ||
        path_at == 0 || pc < start || pc >= end)
      continue;
    line[strcspn(line, "\n")] = '\0';
    *m = (pprof_mapping){.id = 1,
                         .memory_start = start,
                         .memory_limit = end,
                         .file_offset = off,
                         .filename = pprof_string(p, line + path_at)};
    rc = 0;
  }
  if (f)
    fclose(f);
  return rc;
}

/* Three stacks through this file's functions (add_mappings as the root,
 * leaves add_header, add_code, add_samples with 1, 2, 3 KiB); addresses are
 * one byte into each function, as a return PC - 1 would be. */
static int add_unsymbolized(pprof_profile *p) {
  const uintptr_t code[] = {(uintptr_t)add_header, (uintptr_t)add_code,
                            (uintptr_t)add_samples, (uintptr_t)add_mappings};
  pprof_mapping m;
  if (self_mapping(p, code[0], &m) < 0) {
    fprintf(stderr, "write_sample_profile: own mapping not found\n");
    return -1;
  }
  CHECK(pprof_add_mapping(p, &m));
  for (size_t i = 0; i < 4; i++) {
    pprof_location l = {.id = i + 1, .mapping_id = 1, .address = code[i] + 1};
    CHECK(pprof_add_location(p, &l));
  }
  for (uint64_t leaf = 1; leaf <= 3; leaf++) {
    uint64_t loc[2] = {leaf, 4};
    int64_t v[4] = {1, (int64_t)leaf * KIB, 1, (int64_t)leaf * KIB};
    CHECK(pprof_add_sample(p, loc, 2, v, NULL, 0));
  }
  return 0;
fail:
  return -1;
}

int main(int argc, char **argv) {
  const char *variant = argc == 3 ? argv[1] : "";
  bool grown = strcmp(variant, "--grown") == 0;
  bool bare = strcmp(variant, "--unsymbolized") == 0;
  if (argc != 2 && !grown && !bare) {
    fprintf(stderr, "usage: write_sample_profile [--grown | --unsymbolized] "
                    "OUT.pb.gz\n");
    return 2;
  }
  const char *path = argv[argc - 1];
  fnp_error err = {0};
  pprof_profile *p = pprof_profile_new();
  if (p == NULL || add_header(p) < 0)
    goto fail;
  if (bare
          ? add_unsymbolized(p) < 0
          : add_mappings(p) < 0 || add_code(p) < 0 || add_samples(p, grown) < 0)
    goto fail;
  CHECK(pprof_validate(p, &err));
  CHECK(pprof_write_file(p, path, &err));
  pprof_profile_free(p);
  return 0;
fail:
  if (err.msg[0])
    fprintf(stderr, "write_sample_profile: %s\n", err.msg);
  pprof_profile_free(p);
  return 1;
}
