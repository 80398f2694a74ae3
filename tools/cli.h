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

/*
 * The options every profile verb (top, diff, flame, folded) takes:
 * -t/--sample-type, --json, --symbolize and -h/--help. A verb lists
 * CLI_PROFILE_OPTIONS in its getopt_long table, keeps a cli_profile_opts,
 * and hands getopt's answer to cli_profile_opt before its own cases.
 */
enum { CLI_OPT_JSON = 0x1000, CLI_OPT_SYMBOLIZE };
// clang-format off
#define CLI_PROFILE_OPTIONS                                                   \
  {"sample-type", required_argument, NULL, 't'},                              \
  {"json", no_argument, NULL, CLI_OPT_JSON},                                  \
  {"symbolize", no_argument, NULL, CLI_OPT_SYMBOLIZE},                        \
  {"help", no_argument, NULL, 'h'}
// clang-format on
#define CLI_PROFILE_HELP                                                       \
  "  -t, --sample-type T    inuse_space, alloc_space, ... (default: the\n"     \
  "                         profile's default, as pprof picks it)\n"           \
  "      --symbolize        resolve unsymbolized frames from the mapped\n"     \
  "                         files on this machine\n"                           \
  "      --json             machine-readable output\n"                         \
  "  -h, --help             this help\n"

typedef struct cli_profile_opts {
  const char *type; /* NULL: the profile's default sample type */
  bool json;
  bool symbolize;
} cli_profile_opts;

/* Takes getopt's answer c (with optarg) when it is one of
 * CLI_PROFILE_OPTIONS other than help; returns whether it was. */
bool cli_profile_opt(int c, const char *arg, cli_profile_opts *o);

/* Parses a non-negative count for option `opt`. */
int cli_parse_count(const char *verb, const char *opt, const char *s,
                    size_t *out);

/* Reads and validates PATH (gzip'd or raw); with `symbolize`, fills in
 * missing symbols from the mappings' files on this machine. Returns an exit
 * code; on success *out is the caller's to free. */
int cli_load(const char *verb, const char *path, bool symbolize,
             pprof_profile **out);

/* cli_load for each of paths[0..n), merged into one profile (pprof_merge:
 * same sample types required) when n > 1, as go tool pprof does with
 * several inputs. */
int cli_load_merged(const char *verb, char *const paths[], size_t n,
                    bool symbolize, pprof_profile **out);

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

/* ---- querying fnprof-collector (cmd_query.c) --------------------------- */

/* The collector's base URL: opt (--url), else FNPROF_COLLECTOR_URL, else
 * the collector's loopback default. Borrowed. */
const char *query_base_url(const char *opt);

/* A request URL under construction; values are %-escaped as added. */
typedef struct query_url {
  fnp_buf buf;
  int n_params;
  bool bad; /* too long or out of memory: query_get refuses it */
} query_url;

int query_url_init(query_url *q, const char *base, const char *path);
void query_param(query_url *q, const char *key, const char *value);
void query_param_num(query_url *q, const char *key, int64_t value);
void query_url_destroy(query_url *q);

/* An empty, capped buffer for an answer. */
void query_buf_init(fnp_buf *b);
/* GETs url into body (which the caller initialized and destroys), with
 * "Authorization: Bearer ID:SECRET" when FNPROF_ACCESS_KEY_ID and
 * FNPROF_ACCESS_KEY_SECRET are set. Anything but a 200 is reported as
 * "fnprof VERB: ..." with the collector's errorMessage. Returns an exit
 * code. */
int query_get(const char *verb, query_url *url, fnp_buf *body);

/* --from/--to: Unix ns, "15m" (ago; s m h d), "now", or
 * YYYY-MM-DDTHH:MM:SSZ. Returns an exit code. */
int query_parse_time(const char *verb, const char *opt, const char *s,
                     int64_t *ns);
/* Unix ns (as the API writes them) as an RFC 3339 UTC time. */
void query_format_time(const char *ns_text, char *out, size_t cap);

/* A minimal JSON reader for presenting answers: a tree owned by the root,
 * freed with json_free. Numbers keep their text (time_ns exceeds a
 * double's precision). */
typedef enum json_type {
  JSON_NULL,
  JSON_FALSE,
  JSON_TRUE,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_type;
typedef struct json_value json_value;

int json_parse(const char *text, size_t len, json_value **out);
void json_free(json_value *v);
/* Member `key` of an object, or NULL. */
const json_value *json_get(const json_value *obj, const char *key);
/* First element/member of an array/object, and the one after v. */
const json_value *json_first(const json_value *v);
const json_value *json_next(const json_value *v);
const char *json_key_of(const json_value *member);
/* The text of a string or number; NULL for other types. */
const char *json_str_of(const json_value *v);
json_type json_type_of(const json_value *v);

/* ---- verbs ------------------------------------------------------------ */

/* Each takes the verb's own argv (argv[0] is the verb name) and returns an
 * exit code. */
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_flame(int argc, char **argv);
int cmd_folded(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_local(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_profiles(int argc, char **argv);
int cmd_spikes(int argc, char **argv);

#endif
