/*
 * main.c - fnprof-sidecar's entry point: configuration, then sidecar_run.
 * Exit codes: 0 orderly stop; 2 usage; 3 the function never listened; the
 * function's own status (or 128+signal) when it died; 1 anything else.
 */
#include <stdio.h>
#include <string.h>

#include "fnprof/export.h"
#include "fnprof/sidecar.h"

extern char **environ;

int main(int argc, char **argv) {
  sidecar_config cfg;
  fnp_error err = {0};
  int code = 1;
  if (argc > 1 &&
      (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    fputs(sidecar_usage(), stdout);
    return 0;
  }
  /* Exporting is batch after batch of the same sizes (collector/heap.c). */
  (void)export_keep_heap();
  sidecar_config_init(&cfg);
  if (sidecar_config_from_env(&cfg, environ, &err) < 0 ||
      sidecar_config_from_args(&cfg, argc, argv, &err) < 0) {
    fprintf(stderr, "fnprof-sidecar: %s\n%s", err.msg, sidecar_usage());
    sidecar_config_destroy(&cfg);
    return 2;
  }
  if (sidecar_run(&cfg, &code, &err) < 0) {
    fprintf(stderr, "fnprof-sidecar: %s\n", err.msg);
    code = code ? code : 1;
  }
  sidecar_config_destroy(&cfg);
  return code;
}
