/*
 * fp_xlock_internal.h - private to fp_xlock.c and fp_xlock_file.c: the side file's page
 * layout, the handle, and the clock both read. fp_xlock.h is the public contract.
 *
 * Include it after fp_internal.h, in a .c that defines _FILE_OFFSET_BITS 64 above every
 * include (the static assert below checks it). Not part of the public API.
 */
#ifndef FP_XLOCK_INTERNAL_H
#define FP_XLOCK_INTERNAL_H

#if defined(__linux__)

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fp_xlock.h"

#define XLOCK_MAGIC_V1 0x6b6c7066u  /* "fplk": version 1, word at byte 4, owner pids */
#define XLOCK_MAGIC    0x326c7066u  /* "fpl2": version 2, word at byte 64, owner tokens */
#define XLOCK_WAITERS 0x80000000u
#define XLOCK_TOKEN_MASK 0x7fffffffu
/* Released to the waiter the releaser woke: no owner token, only the waiters bit. No
 * newcomer may take it (they take only 0), so a sleeping waiter is never overtaken. */
#define XLOCK_HANDOFF XLOCK_WAITERS
#define XLOCK_MAP_SIZE 4096
#define XLOCK_WORD_OFFSET 64

struct xlock_page {
    uint32_t magic;                 /* written (under the setup lock) before the page is mapped */
    uint32_t v1_word;               /* version 1's word: never touched by version 2 */
    unsigned char pad[XLOCK_WORD_OFFSET - 8];
    _Atomic uint32_t word;          /* 0: free; XLOCK_HANDOFF; else owner token | WAITERS */
};

_Static_assert(sizeof(off_t) >= 8, "token byte locks need a 64-bit off_t");
_Static_assert(sizeof(struct xlock_page) <= XLOCK_MAP_SIZE, "page layout");

struct fp_xlock {
    struct xlock_page *page;
    int fd;                         /* kept open: it carries the token byte lock */
    uint32_t token;                 /* 1 .. 2^31-1 */
    int stale;                      /* the file shrank: the page is never touched again */
    uint64_t takeovers;
};

static inline int64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;                   /* cannot fail for CLOCK_MONOTONIC on Linux */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* __linux__ */

#endif /* FP_XLOCK_INTERNAL_H */
