/*
 * fnprof/sidecar.h - fnprof-sidecar, the lifecycle extension of a function
 * instance: it starts the function's bootstrap on an inner loopback port,
 * proxies the platform's requests to it, captures its output, and implements
 * GET /pre-freeze and GET /pre-stop so buffered data leaves the instance
 * before it is frozen or destroyed. main.c is a thin caller of this API.
 */
#ifndef FNPROF_SIDECAR_H
#define FNPROF_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#include "fnprof/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The platform's port (CAPort) and its start limit (FC: up within 120 s). */
#define SIDECAR_DEFAULT_PORT 9000
#define SIDECAR_START_TIMEOUT_MS 120000
/* /pre-freeze answers within this even if the store is down or slow; well
 * under FC's hook timeouts (seconds) so the hook never times out. */
#define SIDECAR_FREEZE_BUDGET_MS 1000
/* A request that stops arriving halfway (a client gone quiet mid-head or
 * mid-body) loses its connection after this long without a byte. Idle
 * connections between requests are kept: they are the platform's. */
#define SIDECAR_CLIENT_TIMEOUT_MS 60000
/* Between SIGTERM and SIGKILL at /pre-stop or shutdown. */
#define SIDECAR_STOP_GRACE_MS 2000
/* Captured output and metrics kept for export while the store is away. */
#define SIDECAR_BUFFER_BYTES (8u << 20)
#define SIDECAR_MAX_EXPORTS 8

/*
 * Configuration. Strings are borrowed from argv/environ (or from `storage`,
 * owned by the config) for the life of the config; sidecar_config_destroy
 * frees what the config owns. Not thread-safe.
 */
typedef struct sidecar_config {
  const char *listen_addr; /* FNPROF_LISTEN, --listen; "0.0.0.0" */
  int port;                /* FNPROF_PORT, --port; 9000 */
  const char *exports[SIDECAR_MAX_EXPORTS]; /* FNPROF_EXPORT, --export */
  size_t n_exports;
  const char *agent_path; /* FNPROF_AGENT, --agent; NULL: search */
  int no_agent;           /* --no-agent, FNPROF_AGENT=none */
  int64_t start_timeout_ms;
  int64_t freeze_budget_ms;
  int64_t stop_grace_ms;
  int64_t client_timeout_ms; /* FNPROF_CLIENT_TIMEOUT_MS, --client-timeout */
  size_t buffer_bytes;
  const char *instance_id; /* FNPROF_INSTANCE_ID; default host-pid */
  const char *spool_dir;   /* FNPROF_SPOOL, --spool: export library spool */
  int freeze_profile;      /* FNPROF_FREEZE_PROFILE, --[no-]freeze-profile:
                              take the inuse profile at /pre-freeze (1) */
  char *const *argv;       /* bootstrap and its arguments, NULL-ended */
  char *storage;           /* owned copy of FNPROF_EXPORT, split in place */
} sidecar_config;

/* Sets every default. */
void sidecar_config_init(sidecar_config *cfg);
/* Reads FNPROF_* from envp (see hooks/README.md); call before the args so
 * that the command line wins. */
int sidecar_config_from_env(sidecar_config *cfg, char *const *envp,
                            fnp_error *err) FNP_MUST_CHECK;
/* Parses `[options] -- BOOTSTRAP ARGS...`; argv is borrowed. */
int sidecar_config_from_args(sidecar_config *cfg, int argc, char **argv,
                             fnp_error *err) FNP_MUST_CHECK;
void sidecar_config_destroy(sidecar_config *cfg);
/* The usage text, for --help and errors. Static string. */
const char *sidecar_usage(void);

/*
 * Runs the sidecar until /pre-stop, a signal, or the function's exit.
 * *exit_code gets what main should exit with: 0 after /pre-stop or SIGTERM,
 * non-zero when the function crashed or never started (so the platform
 * replaces the instance). Returns negative only when it could not run at all.
 */
int sidecar_run(const sidecar_config *cfg, int *exit_code,
                fnp_error *err) FNP_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
