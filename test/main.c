/*
 * main.c: run every suite, or those named on the command line
 * (CK_RUN_SUITE and CK_RUN_CASE work as usual; CK_FORK=no under gdb).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "backtrace.h"
#include "tests.h"

#define SUITE(name) Suite *diesel_##name##_suite(void);
#include "suites.h"
#undef SUITE

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
#define SUITE(name) { #name, diesel_##name##_suite },
#include "suites.h"
#undef SUITE
};

int
main(int argc, char **argv)
{
    SRunner *sr = NULL;
    int failed;

    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++)
            want |= strcmp(argv[a], suites[i].name) == 0;
        if (!want)
            continue;
        if (sr == NULL)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (sr == NULL)
        return 2;
    /* Every loop logs "Starting diesel"; thousands of those would bury
     * Check's report.  DIESEL_TEST_LOG=1 shows the library's log. */
    if (getenv("DIESEL_TEST_LOG") == NULL) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0)
            diesel_log_fd_set(null);
    }
    /* Read the symbol and line tables that every loop reads when it
     * starts (for the signal handlers' reports) once, here: each test's
     * process inherits them instead of reading them again, which under
     * valgrind took half a second a test. */
    diesel__bt_init();      /* loads libgcc_s: a module the tables include */
    diesel__sym_prepare();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
