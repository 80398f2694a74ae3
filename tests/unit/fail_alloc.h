/*
 * Fault injection for unit tests (curl memdebug style): fail the Nth
 * malloc/calloc/realloc made by the code under test. The calls are rerouted
 * with ld's --wrap (fnprof_fail_alloc() in tests/CMakeLists.txt), so only
 * calls from the test and the statically linked fnprof libraries count, not
 * those inside libc, zlib, libdw or cmocka.
 */
#ifndef FNPROF_TESTS_FAIL_ALLOC_H
#define FNPROF_TESTS_FAIL_ALLOC_H

#include <stdbool.h>

/* From now on, allocation number n (0-based) fails; n < 0: none fails. */
void fail_alloc_arm(long n);
/* No more failures. Returns whether the armed allocation was reached (and
 * failed) since fail_alloc_arm. */
bool fail_alloc_disarm(void);

#endif
