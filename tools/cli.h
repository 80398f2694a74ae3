/*
 * tools/cli.h - what the fnprof verbs share, internal to tools/: exit codes,
 * the one error format, loading a profile, picking a sample type, value
 * formatting, output to a file or stdout, and a tiny JSON writer. The
 * profile work itself is the pprof library's; the verbs only present it.
 */
#ifndef FNPROF_TOOLS_CLI_H
#define FNPROF_TOOLS_CLI_H

#include <fnprof/pprof.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in `fnprof --help`. Scripts rely on them, so they
 * never change meaning. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR = 1, /* runtime failure: unreadable or malformed input... */
  CLI_EXIT_USAGE = 2, /* bad command line */
  CLI_EXIT_OVER = 3,  /* diff: growth exceeded --fail-over */
};

/* Prints "fnprof <verb>: <message>" to stderr and returns exit_code, so a
 * verb can `return cli_fail(...)`. */
int cli_fail(const char *verb, int exit_code, const char *fmt, ...)
    FNP_PRINTF(3, 4);

/* getopt_long's '?' and ':' results turned into a usage error naming the
 * offending argument (getopt's own messages are silenced so every error
 * has the same shape). Returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *verb, int c, char *const argv[]);

/* Parses a non-negative count for option `opt`. */
int cli_parse_count(const char *verb, const char *opt, const char *s,
                    size_t *out);

/* Reads and validates PATH (gzip'd or raw); with `symbolize`, fills in
 * missing symbols from the mappings' files on this machine. Returns an exit
 * code; on success *out is the caller's to free. */
int cli_load(const char *verb, const char *path, bool symbolize,
             pprof_profile **out);

/* The index of sample type `type` (NULL: the profile's default). Unknown
 * types are a usage error that lists the ones the profile has. */
int cli_sample_index(const char *verb, const pprof_profile *p, const char *type,
                     int *index);

/* Sum of one sample type's values over all samples. */
int64_t cli_total(const pprof_profile *p, int index);

/* Formats v in the sample type's unit: human bytes for "bytes", a plain
 * number otherwise. `sign` forces a leading '+' on positive values. */
void cli_format_value(const pprof_profile *p, int index, int64_t v, bool sign,
                      char *buf, size_t len);

/* "12.34%" of v in total, in go tool pprof's style ("100%", "0%"). */
void cli_format_percent(int64_t v, int64_t total, char *buf, size_t len);

/* Writes data to path atomically, or to stdout when path is NULL or "-".
 * Returns an exit code. */
int cli_emit(const char *verb, const char *path, const void *data, size_t len);

/* Flushes stdout and reports a failed write (full disk, closed pipe) so it
 * never passes silently. Returns exit_code or CLI_EXIT_ERROR. */
int cli_finish(const char *verb, int exit_code);

/* ---- JSON (json.c) ---------------------------------------------------- */

/* Writes s as a JSON string literal: quotes, escapes, and invalid UTF-8
 * bytes replaced by U+FFFD so the document always parses. */
void json_string(FILE *f, const char *s);
/* Writes "key": with a leading comma unless first. */
void json_key(FILE *f, bool first, const char *key);
/* The sample type block every verb's JSON starts with:
 * "sample_type": "...", "unit": "...". */
void json_sample_type(FILE *f, const pprof_profile *p, int index);

/* ---- verbs ------------------------------------------------------------ */

/* Each takes the verb's own argv (argv[0] is the verb name) and returns an
 * exit code. */
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_flame(int argc, char **argv);
int cmd_folded(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_local(int argc, char **argv);

#endif
