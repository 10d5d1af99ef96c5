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

#endif
