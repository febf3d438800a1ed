/*
 * cu_main.h - shared CUnit runner. Each tests/unit/test_*.c defines cu_register(), which adds its
 * suites to the registry; cu_main.c runs them all and exits non-zero on any failure.
 */
#ifndef CU_MAIN_H
#define CU_MAIN_H

#include <CUnit/CUnit.h>

void cu_register(void);

/* Add a suite with the given tests (NULL-terminated {name, fn} array). */
typedef struct {
    const char *name;
    CU_TestFunc fn;
} cu_test;
void cu_add_suite(const char *name, const cu_test *tests);

/* A scratch directory unique to this test process, created on first use, removed at exit. */
const char *cu_tmpdir(void);

#endif
