/*
 * cputime OUT CMD ARGS...: runs CMD, then appends to OUT the CPU seconds
 * (user + system) it and every descendant it waited for used, and its peak
 * RSS in KiB. The bench
 * scripts read cost as CPU time as well as wall time: on a shared machine
 * wall time also counts the time other processes held the CPU, CPU time
 * does not. It also charges a profiler's helper processes to the profiled
 * run (heaptrack's interpreter and compressor run beside the program and
 * are waited for by its wrapper script). Exits with CMD's status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OUT CMD [ARGS...]\n", argv[0]);
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) {
    perror("wait4");
    return 2;
  }
  FILE *f = fopen(argv[1], "a");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  fprintf(f, "%.6f %ld\n", s, ru.ru_maxrss); /* seconds, peak RSS in KiB */
  fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
