/*
 * cu_main.c - runs the suites registered by one test executable (CUnit basic mode). A watchdog
 * thread names a test that has run for WATCH_S seconds or more (again every WATCH_S), so a
 * test that hangs until CTest's timeout kills the process says which one it was: CUnit prints
 * nothing of a suite's tests until it ends. SIGPIPE is ignored, as `cairn server` ignores it
 * (net.h: libevent and OpenSSL write to sockets with write(), not send(MSG_NOSIGNAL)): a peer
 * that a test closes mid-write is an error for the code under test, not the test's death.
 * CU_ONLY=NAME in the environment runs only the tests of that name.
 */
#include "cu_main.h"

#include <CUnit/Basic.h>
#include <CUnit/TestRun.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCH_S 60

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char cmd[300];
    if (tmpdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *cu_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

void cu_add_suite(const char *name, const cu_test *tests)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (!s) {
        fprintf(stderr, "CU_add_suite: %s\n", CU_get_error_msg());
        exit(2);
    }
    for (; tests->name; tests++)
        CU_add_test(s, tests->name, tests->fn);
}

/* A thread, not a signal (a signal would cut the tests' sleeps short): every WATCH_S seconds,
 * the test running now when it also ran at the previous look. It only reads CUnit's
 * current-test pointers, which the runner sets before a test and clears after the run. */
static void *watch(void *arg)
{
    CU_pTest last = NULL;
    (void)arg;
    for (;;) {
        sleep(WATCH_S);
        CU_pTest t = CU_get_current_test();
        CU_pSuite su = CU_get_current_suite();
        if (t && t == last)
            fprintf(stderr, "cu_main: still running after %d+ s: %s/%s\n", WATCH_S,
                    su ? su->pName : "?", t->pName);
        last = t;
    }
    return NULL;
}

static void watch_start(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, watch, NULL) != 0 || pthread_detach(th) != 0)
        fprintf(stderr, "cu_main: watchdog not started\n");
}

/* CU_ONLY=TEST runs the tests of that name in every suite (to loop one flaky test). */
static void run_only(const char *name)
{
    CU_pTestRegistry reg = CU_get_registry();
    for (CU_pSuite su = reg ? reg->pSuite : NULL; su; su = su->pNext)
        for (CU_pTest t = su->pTest; t; t = t->pNext)
            if (strcmp(t->pName, name) == 0)
                CU_basic_run_test(su, t);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    watch_start();
    cu_register();
    CU_basic_set_mode(CU_BRM_NORMAL);
    const char *only = getenv("CU_ONLY");
    if (only && *only)
        run_only(only);
    else
        CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no tests ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
