/*
 * The helper programs' contract with the symbolizer tests. Each recording
 * function calls helper_record_fn right after naming itself and its line;
 * the recorder prints its own return address (a PC inside the caller) with
 * those names, so the test knows what DWARF must say about PC - 1.
 */
#ifndef FNPROF_TEST_SYMBOLIZE_HELPER_H
#define FNPROF_TEST_SYMBOLIZE_HELPER_H

typedef void (*helper_record_fn)(const char *file, const char *name, int line);

/* The shared library's one export (helper_lib.c). */
typedef void (*helper_lib_entry_fn)(helper_record_fn rec);

#endif
