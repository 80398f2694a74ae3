/*
 * pprof_symbolize on real programs. helper_main.c (a PIE with DWARF) and
 * helper_lib.c (a dlopen'ed shared library) print the return addresses of
 * recording calls with the function names and __LINE__s the compiler gave
 * them, and their executable mappings; each test builds a profile from that
 * as an agent would (address = return PC - 1, build ids read from the
 * files), symbolizes it and compares with what the compiler said.
 */
#include <fnprof/pprof.h>

#include <ctype.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fail_alloc.h"

#define MAX_FRAMES 4
#define MAX_RECORDS 16
#define MAX_MAPS 128
#define PATH_BYTES 1024
#define VDSO_LOCATION_ID 1000

typedef struct frame {
  char name[64];
  char file[PATH_BYTES];
  int line;
} frame;

typedef struct record {
  uint64_t pc; /* return address */
  size_t n;
  frame f[MAX_FRAMES]; /* innermost first */
} record;

typedef struct map_line {
  uint64_t start, end, offset;
  char path[PATH_BYTES]; /* "-" for anonymous */
} map_line;

typedef struct helper {
  pid_t pid;
  int to_child;
  FILE *from_child;
  record rec[MAX_RECORDS];
  size_t n_rec;
  map_line map[MAX_MAPS];
  size_t n_map;
  uint64_t vdso_addr; /* 0 when the helper found no vdso function */
} helper;

/* ---- running the helper ----------------------------------------------- */

static void parse_frame(helper *h, char *line) {
  assert_true(h->n_rec < MAX_RECORDS);
  record *r = &h->rec[h->n_rec++];
  char *save = NULL;
  strtok_r(line, " \n", &save); /* "frame" */
  r->pc = strtoull(strtok_r(NULL, " \n", &save), NULL, 16);
  r->n = strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
  assert_true(r->n >= 1 && r->n <= MAX_FRAMES);
  for (size_t i = 0; i < r->n; i++) {
    const char *name = strtok_r(NULL, " \n", &save);
    const char *file = strtok_r(NULL, " \n", &save);
    const char *ln = strtok_r(NULL, " \n", &save);
    assert_non_null(ln);
    snprintf(r->f[i].name, sizeof r->f[i].name, "%s", name);
    snprintf(r->f[i].file, sizeof r->f[i].file, "%s", file);
    r->f[i].line = atoi(ln);
  }
}

static void parse_line(helper *h, char *line) {
  if (strncmp(line, "frame ", 6) == 0) {
    parse_frame(h, line);
  } else if (strncmp(line, "map ", 4) == 0) {
    assert_true(h->n_map < MAX_MAPS);
    map_line *m = &h->map[h->n_map++];
    assert_int_equal(sscanf(line, "map %lx %lx %lx %1023[^\n]", &m->start,
                            &m->end, &m->offset, m->path),
                     4);
  } else if (strncmp(line, "vdso ", 5) == 0) {
    h->vdso_addr = strtoull(line + 5, NULL, 16);
  } else {
    fail_msg("unexpected helper output: %s", line);
  }
}

/* Starts exe LIB and reads what it prints up to "end"; it then waits. */
static void helper_start(helper *h, const char *exe, const char *lib) {
  memset(h, 0, sizeof *h);
  int in[2], out[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  h->pid = fork();
  assert_true(h->pid >= 0);
  if (h->pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execl(exe, exe, lib, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  h->to_child = in[1];
  h->from_child = fdopen(out[0], "r");
  assert_non_null(h->from_child);
  char line[4096];
  while (fgets(line, sizeof line, h->from_child) != NULL &&
         strcmp(line, "end\n") != 0)
    parse_line(h, line);
  /* leaf_a, twice (2), outer_c, lib_entry, lib_static. */
  assert_int_equal(h->n_rec, 6);
}

static void helper_stop(helper *h) {
  close(h->to_child);
  fclose(h->from_child);
  int status;
  assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- building the profile an agent would write ------------------------ */

/* The ELF build id of path in hex, as agents put it in Mapping.build_id;
 * "" when the file has none or is not a file (pseudo mappings). */
static void build_id_hex(const char *path, char *hex, size_t cap) {
  hex[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  elf_version(EV_CURRENT);
  Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
  const void *id = NULL;
  ssize_t len = elf != NULL ? dwelf_elf_gnu_build_id(elf, &id) : -1;
  for (ssize_t i = 0; i < len && (size_t)(2 * i + 2) < cap; i++)
    sprintf(hex + 2 * i, "%02x", ((const unsigned char *)id)[i]);
  elf_end(elf);
  close(fd);
}

static size_t map_index(const helper *h, uint64_t addr) {
  for (size_t i = 0; i < h->n_map; i++)
    if (addr >= h->map[i].start && addr < h->map[i].end)
      return i;
  fail_msg("address %llx in no executable mapping", (unsigned long long)addr);
  return 0;
}

/* Mappings get ids 1..n in maps order, locations ids 1..n in record order,
 * plus the vdso function (when found) as VDSO_LOCATION_ID. One sample holds
 * every location, so the profile is one a reader accepts. */
static pprof_profile *profile_of(const helper *h) {
  pprof_profile *p = pprof_profile_new();
  assert_non_null(p);
  for (size_t i = 0; i < h->n_map; i++) {
    const map_line *ml = &h->map[i];
    char hex[128];
    build_id_hex(ml->path, hex, sizeof hex);
    pprof_mapping m = {
        .id = i + 1,
        .memory_start = ml->start,
        .memory_limit = ml->end,
        .file_offset = ml->offset,
        .filename = pprof_string(p, strcmp(ml->path, "-") == 0 ? "" : ml->path),
        .build_id = pprof_string(p, hex)};
    assert_int_equal(pprof_add_mapping(p, &m), 0);
  }
  uint64_t ids[MAX_RECORDS + 1];
  size_t n = 0;
  for (size_t i = 0; i < h->n_rec; i++) {
    /* The -1 convention: a return address minus one is inside the call. */
    pprof_location l = {.id = i + 1,
                        .mapping_id = map_index(h, h->rec[i].pc) + 1,
                        .address = h->rec[i].pc - 1};
    assert_int_equal(pprof_add_location(p, &l), 0);
    ids[n++] = l.id;
  }
  if (h->vdso_addr != 0) {
    /* An address inside the function (not a return address). */
    pprof_location l = {.id = VDSO_LOCATION_ID,
                        .mapping_id = map_index(h, h->vdso_addr) + 1,
                        .address = h->vdso_addr + 1};
    assert_int_equal(pprof_add_location(p, &l), 0);
    ids[n++] = l.id;
  }
  assert_int_equal(pprof_add_sample_type(p, "inuse_space", "bytes"), 0);
  int64_t v = 1;
  assert_int_equal(pprof_add_sample(p, ids, n, &v, NULL, 0), 0);
  return p;
}

static pprof_mapping *mapping_of(pprof_profile *p, const helper *h,
                                 uint64_t pc) {
  pprof_mapping *m = pprof_mapping_mut(p, map_index(h, pc) + 1);
  assert_non_null(m);
  return m;
}

static bool in_lib(const record *r) {
  return strncmp(r->f[0].name, "lib_", 4) == 0;
}

/* ---- checking the result ---------------------------------------------- */

static const pprof_function *function_of(const pprof_profile *p,
                                         const pprof_location *l, size_t i) {
  const pprof_function *f = pprof_find_function(p, l->line[i].function_id);
  assert_non_null(f);
  return f;
}

/* The location has exactly the frames the compiler said, with files. */
static void assert_frames(const pprof_profile *p, const record *r,
                          uint64_t id) {
  const pprof_location *l = pprof_find_location(p, id);
  assert_non_null(l);
  for (size_t i = 0; i < l->n_line || i < r->n; i++) {
    const frame *want = i < r->n ? &r->f[i] : NULL;
    const pprof_function *f =
        i < l->n_line ? pprof_find_function(p, l->line[i].function_id) : NULL;
    const char *name = f != NULL ? pprof_str(p, f->name) : "(none)";
    const char *file = f != NULL ? pprof_str(p, f->filename) : "(none)";
    long line = i < l->n_line ? (long)l->line[i].line : -1;
    if (want == NULL || f == NULL || strcmp(name, want->name) != 0 ||
        strcmp(file, want->file) != 0 || line != want->line ||
        f->system_name != f->name)
      fail_msg("location %llu frame %zu: got %s %s:%ld, want %s %s:%d",
               (unsigned long long)id, i, name, file, line,
               want ? want->name : "(none)", want ? want->file : "",
               want ? want->line : -1);
  }
}

static void assert_flags(const pprof_mapping *m, bool functions, bool filenames,
                         bool lines, bool inlines) {
  assert_int_equal(m->has_functions, functions);
  assert_int_equal(m->has_filenames, filenames);
  assert_int_equal(m->has_line_numbers, lines);
  assert_int_equal(m->has_inline_frames, inlines);
}

static void assert_valid(const pprof_profile *p) {
  fnp_error err = {0};
  int rc = pprof_validate(p, &err);
  if (rc != 0)
    fail_msg("invalid profile: %s", err.msg);
}

static int symbolize(pprof_profile *p, int pid, bool force, size_t *resolved,
                     size_t *unresolved) {
  pprof_symbolize_opts opts = {.pid = pid, .force = force};
  fnp_error err = {0};
  int rc = pprof_symbolize(p, &opts, resolved, unresolved, &err);
  if (rc != 0)
    print_error("pprof_symbolize: %d %s\n", rc, err.msg);
  return rc;
}

static int elf_type(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  elf_version(EV_CURRENT);
  Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
  GElf_Ehdr eh;
  assert_non_null(gelf_getehdr(elf, &eh));
  elf_end(elf);
  close(fd);
  return eh.e_type;
}

/* Function names, files and lines, inline chain included, for the PIE and
 * the shared library, from the files alone. */
static void test_file_mode(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  /* The point of the exercise: both are position independent, loaded at a
   * bias the symbolizer has to work out from the mapping. */
  assert_int_equal(elf_type(HELPER_EXE), ET_DYN);
  pprof_profile *p = profile_of(&h);
  size_t resolved = 99, unresolved = 99;
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  for (size_t i = 0; i < h.n_rec; i++)
    assert_frames(p, &h.rec[i], i + 1);
  assert_int_equal(resolved, h.n_rec);
  /* The vdso has no file: file mode leaves it alone. */
  assert_int_equal(unresolved, h.vdso_addr != 0 ? 1 : 0);
  if (h.vdso_addr != 0) {
    assert_int_equal(pprof_find_location(p, VDSO_LOCATION_ID)->n_line, 0);
    assert_flags(mapping_of(p, &h, h.vdso_addr), false, false, false, false);
  }
  /* Both calls in twice() are one function; seven functions in all. */
  assert_int_equal(pprof_find_location(p, 2)->line[0].function_id,
                   pprof_find_location(p, 3)->line[0].function_id);
  assert_int_equal(p->n_function, 7);
  assert_flags(mapping_of(p, &h, h.rec[0].pc), true, true, true, true);
  assert_flags(mapping_of(p, &h, h.rec[5].pc), true, true, true, true);
  assert_true(in_lib(&h.rec[5]));
  assert_valid(p);
  pprof_profile_free(p);
  helper_stop(&h);
}

/* The same from the live process, plus what only it can give: the vdso,
 * and a location with no mapping. */
static void test_pid_mode(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  pprof_profile *p = profile_of(&h);
  pprof_location orphan = {.id = 2000, .address = h.rec[0].pc - 1};
  assert_int_equal(pprof_add_location(p, &orphan), 0);
  size_t resolved = 99, unresolved = 99;
  assert_int_equal(symbolize(p, h.pid, false, &resolved, &unresolved), 0);
  for (size_t i = 0; i < h.n_rec; i++)
    assert_frames(p, &h.rec[i], i + 1);
  assert_frames(p, &h.rec[0], 2000);
  assert_int_equal(unresolved, 0);
  assert_int_equal(resolved, h.n_rec + 1 + (h.vdso_addr != 0));
  if (h.vdso_addr != 0) {
    const pprof_location *l = pprof_find_location(p, VDSO_LOCATION_ID);
    assert_int_equal(l->n_line, 1);
    const char *name = pprof_str(p, function_of(p, l, 0)->name);
    if (strstr(name, "clock_gettime") == NULL)
      fail_msg("vdso function named %s", name);
  } else {
    print_message("no vdso function found; vdso not checked\n");
  }
  assert_flags(mapping_of(p, &h, h.rec[0].pc), true, true, true, true);
  assert_valid(p);
  pprof_profile_free(p);
  helper_stop(&h);
}

/* Stripped files keep .dynsym: the library's export keeps its name (no file,
 * no line); everything else stays a bare address in a mapping that is kept. */
static void test_stripped(void **state) {
  (void)state;
  helper h;
  helper_start(&h, STRIPPED_EXE, STRIPPED_LIB);
  pprof_profile *p = profile_of(&h);
  size_t resolved = 99, unresolved = 99;
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  for (size_t i = 0; i < h.n_rec; i++) {
    const pprof_location *l = pprof_find_location(p, i + 1);
    if (strcmp(h.rec[i].f[0].name, "lib_entry") != 0) {
      if (l->n_line != 0)
        fail_msg("%s: stripped, yet named %s", h.rec[i].f[0].name,
                 pprof_str(p, function_of(p, l, 0)->name));
      continue;
    }
    assert_int_equal(l->n_line, 1);
    const pprof_function *f = function_of(p, l, 0);
    assert_string_equal(pprof_str(p, f->name), "lib_entry");
    assert_int_equal(f->filename, 0);
    assert_int_equal(l->line[0].line, 0);
  }
  assert_int_equal(resolved, 1);
  assert_int_equal(unresolved, h.n_rec - 1 + (h.vdso_addr != 0));
  pprof_mapping *exe = mapping_of(p, &h, h.rec[0].pc);
  assert_string_equal(pprof_str(p, exe->filename), STRIPPED_EXE);
  assert_flags(exe, false, false, false, false);
  assert_flags(mapping_of(p, &h, h.rec[5].pc), false, false, false, false);
  assert_valid(p);
  pprof_profile_free(p);
  helper_stop(&h);
}

/* Another build of the file (wrong build id) is never trusted, in either
 * mode; a right one matches whatever the case of its hex. */
static void test_build_id_mismatch(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  for (int pid_mode = 0; pid_mode <= 1; pid_mode++) {
    pprof_profile *p = profile_of(&h);
    pprof_mapping *exe = mapping_of(p, &h, h.rec[0].pc);
    pprof_mapping *lib = mapping_of(p, &h, h.rec[5].pc);
    char id[128];
    snprintf(id, sizeof id, "%s", pprof_str(p, exe->build_id));
    assert_true(strlen(id) >= 40);
    id[0] = id[0] == '0' ? '1' : '0';
    exe->build_id = pprof_string(p, id);
    snprintf(id, sizeof id, "%s", pprof_str(p, lib->build_id));
    for (char *c = id; *c; c++)
      *c = (char)toupper((unsigned char)*c);
    lib->build_id = pprof_string(p, id);
    size_t resolved = 99, unresolved = 99;
    assert_int_equal(
        symbolize(p, pid_mode ? h.pid : 0, false, &resolved, &unresolved), 0);
    for (size_t i = 0; i < h.n_rec; i++)
      if (in_lib(&h.rec[i]))
        assert_frames(p, &h.rec[i], i + 1);
      else
        assert_int_equal(pprof_find_location(p, i + 1)->n_line, 0);
    assert_int_equal(resolved, 2 + (pid_mode && h.vdso_addr != 0));
    assert_flags(exe, false, false, false, false);
    pprof_profile_free(p);
  }
  helper_stop(&h);
}

/* A file that is gone costs its locations, not the profile. */
static void test_missing_file(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  pprof_profile *p = profile_of(&h);
  mapping_of(p, &h, h.rec[0].pc)->filename =
      pprof_string(p, "/nonexistent/fnprof/symbolize_helper");
  size_t resolved = 99, unresolved = 99;
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  assert_int_equal(resolved, 2);
  assert_int_equal(unresolved, 4 + (h.vdso_addr != 0));
  assert_int_equal(pprof_find_location(p, 1)->n_line, 0);
  assert_frames(p, &h.rec[5], 6);
  pprof_profile_free(p);
  helper_stop(&h);
}

/* Lines already there are kept unless forced; functions are reused across
 * passes (deduplicated against the profile's own) and new ids follow the
 * largest existing one. */
static void test_existing_lines_and_force(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  pprof_profile *p = profile_of(&h);
  pprof_function custom = {.id = 500, .name = pprof_string(p, "custom")};
  custom.system_name = custom.name;
  assert_int_equal(pprof_add_function(p, &custom), 0);
  pprof_line line = {.function_id = 500, .line = 7};
  assert_int_equal(pprof_set_lines(p, pprof_location_mut(p, 1), &line, 1), 0);

  size_t resolved = 99, unresolved = 99;
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  assert_int_equal(resolved, h.n_rec - 1); /* location 1 was left alone */
  assert_int_equal(pprof_find_location(p, 1)->line[0].function_id, 500);
  for (size_t i = 0; i < p->n_function; i++)
    assert_true(p->function[i].id == 500 || p->function[i].id > 500);
  size_t n_function = p->n_function;

  /* A second pass finds nothing to do but the vdso it cannot read. */
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  assert_int_equal(resolved, 0);
  assert_int_equal(unresolved, h.vdso_addr != 0 ? 1 : 0);
  assert_int_equal(p->n_function, n_function);

  /* Forced: location 1 is redone; twice()'s function is the one made by the
   * first pass, and leaf_a is the only new function. */
  uint64_t twice_id = pprof_find_location(p, 2)->line[0].function_id;
  assert_int_equal(symbolize(p, 0, true, &resolved, &unresolved), 0);
  assert_int_equal(resolved, h.n_rec);
  for (size_t i = 0; i < h.n_rec; i++)
    assert_frames(p, &h.rec[i], i + 1);
  assert_int_equal(pprof_find_location(p, 2)->line[0].function_id, twice_id);
  assert_int_equal(p->n_function, n_function + 1);
  assert_valid(p);
  pprof_profile_free(p);
  helper_stop(&h);
}

/* Failing each allocation in turn gives -ENOMEM, no leak (ASan pass) and a
 * profile that is still valid, partly symbolized; with none failed, the
 * result is complete. */
static void test_allocation_failures(void **state) {
  (void)state;
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  bool completed = false;
  long failures = 0;
  for (long n = 0; !completed && n < 10000; n++) {
    pprof_profile *p = profile_of(&h);
    pprof_symbolize_opts opts = {0};
    fnp_error err = {0};
    fail_alloc_arm(n);
    int rc = pprof_symbolize(p, &opts, NULL, NULL, &err);
    if (fail_alloc_disarm()) {
      failures++;
      assert_int_equal(rc, -ENOMEM);
      assert_int_equal(err.code, -ENOMEM);
    } else {
      assert_int_equal(rc, 0);
      for (size_t i = 0; i < h.n_rec; i++)
        assert_frames(p, &h.rec[i], i + 1);
      completed = true;
    }
    assert_valid(p);
    pprof_profile_free(p);
  }
  assert_true(completed);
  print_message("%ld allocations failed in turn\n", failures);
  assert_true(failures > 0);
  helper_stop(&h);
}

/* A pid that names no process is an error for the whole call. */
static void test_no_such_pid(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(0);
  assert_int_equal(waitpid(pid, NULL, 0), pid); /* reaped: pid is free */
  pprof_profile *p = pprof_profile_new();
  assert_non_null(p);
  pprof_symbolize_opts opts = {.pid = pid};
  fnp_error err = {0};
  int rc = pprof_symbolize(p, &opts, NULL, NULL, &err);
  assert_true(rc < 0);
  assert_int_equal(err.code, rc);
  assert_non_null(strstr(err.msg, "pid"));
  pprof_profile_free(p);
}

/* CPU time, so engineers building on the same cores do not fail the test. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 5,000 locations spread over the PIE, the library and libc symbolize well
 * under a second: files are opened once, not once per location. */
static void test_many_locations(void **state) {
  (void)state;
  enum { N_LOCATIONS = 5000, PRIME = 7919 };
  helper h;
  helper_start(&h, HELPER_EXE, HELPER_LIB);
  pprof_profile *p = profile_of(&h);
  size_t maps[3] = {map_index(&h, h.rec[0].pc), map_index(&h, h.rec[5].pc),
                    h.n_map};
  for (size_t i = 0; i < h.n_map; i++)
    if (strstr(h.map[i].path, "/libc.so") != NULL)
      maps[2] = i;
  assert_true(maps[2] < h.n_map);
  for (uint64_t k = 0; k < N_LOCATIONS; k++) {
    const map_line *m = &h.map[maps[k % 3]];
    pprof_location l = {.id = 10000 + k,
                        .mapping_id = maps[k % 3] + 1,
                        .address = m->start + k * PRIME % (m->end - m->start)};
    assert_int_equal(pprof_add_location(p, &l), 0);
  }
  size_t resolved = 0, unresolved = 0;
  double t0 = cpu_s();
  assert_int_equal(symbolize(p, 0, false, &resolved, &unresolved), 0);
  double elapsed = cpu_s() - t0;
  print_message("%d locations in %.3f s CPU (%zu resolved)\n", N_LOCATIONS,
                elapsed, resolved);
  assert_int_equal(resolved + unresolved,
                   N_LOCATIONS + h.n_rec + (h.vdso_addr != 0));
  assert_true(resolved > h.n_rec);
  assert_true(elapsed < 1.0 * SYMBOLIZE_SLOWDOWN);
  assert_valid(p);
  pprof_profile_free(p);
  helper_stop(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_mode),
      cmocka_unit_test(test_pid_mode),
      cmocka_unit_test(test_stripped),
      cmocka_unit_test(test_build_id_mismatch),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_existing_lines_and_force),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_no_such_pid),
      cmocka_unit_test(test_many_locations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
