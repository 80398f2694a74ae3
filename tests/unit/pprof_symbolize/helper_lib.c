/*
 * A shared library for the symbolizer tests, dlopen'ed by helper_main.c, so
 * its code runs at a load bias unlike the executable's. lib_entry is
 * exported (in .dynsym, so it keeps its name when stripped); lib_static is
 * not (only .symtab names it).
 */
#include "helper.h"

static volatile int lib_sink; /* code after each call: no tail calls */

__attribute__((noinline)) static void lib_static(helper_record_fn rec) {
  rec(__FILE__, "lib_static", __LINE__);
  lib_sink++;
}

__attribute__((visibility("default"))) void lib_entry(helper_record_fn rec) {
  rec(__FILE__, "lib_entry", __LINE__);
  lib_static(rec);
  lib_sink++;
}
