/* CHECK(cond, msg): the C stress programs' assertion; a failed one prints VIOLATION with
 * msg and the place, and ends the process with status 1. Include after <stdio.h> and
 * <stdlib.h>. */
#ifndef FP_STRESS_CHECK_H
#define FP_STRESS_CHECK_H

#define CHECK(cond, msg)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "VIOLATION: %s (%s:%d)\n", msg, __FILE__, __LINE__); \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* watchdog(arg): a thread body that ends the process with status 3 if *arg (an atomic_int
 * the program sets once its threads are done) is still 0 after WATCHDOG_SECONDS: a hung
 * run (a lost wake-up) says so instead of waiting for the test's timeout. Define
 * WATCHDOG_SECONDS and include <stdatomic.h>, <time.h> and <unistd.h> first. */
#ifdef WATCHDOG_SECONDS
static void *watchdog(void *arg)
{
    atomic_int *finished = arg;
    for (int s = 0; s < WATCHDOG_SECONDS * 10; s++) {
        if (atomic_load(finished))
            return NULL;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "VIOLATION: no progress in %d s (a lost wake-up?)\n", WATCHDOG_SECONDS);
    _exit(3);
}
#endif

#endif
