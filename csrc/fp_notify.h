/*
 * fp_notify.h - wake one consumer thread with a set of event bits.
 *
 * Producers (any number, any thread) OR bits into a word and wake the
 * consumer if it was idle; the single consumer sleeps until some bit is set
 * and takes all of them at once.  Posting the same bit again before the
 * consumer took it coalesces into one wake-up, so a producer that posts on
 * every event costs one atomic RMW and, at most once per consumer cycle,
 * one wake syscall.
 *
 * Ownership / lifetime
 *   The caller owns the fp_notify (embedded in an object or static).  It
 *   must stay valid while a producer may post: wakes use only the word's
 *   address (see fp_park.h), but the OR dereferences it.
 *
 * Memory ordering
 *   fp_notify_post() is a release RMW, and fp_notify_wait() takes the bits
 *   with an acquire RMW, so whatever a producer wrote before posting is
 *   visible to the consumer once it has the bit.
 *
 * Single consumer: two threads waiting on the same fp_notify may each take
 * part of the bits; nothing breaks, but that is not the intended use.
 */
#ifndef FP_NOTIFY_H
#define FP_NOTIFY_H

#include <stdint.h>

#include "fp_park.h" /* fp_atomic_u32 */

#define FP_NOTIFY_OK       0
#define FP_NOTIFY_TIMEOUT  1    /* no bit was set before the timeout */
#define FP_NOTIFY_ERROR   (-1)  /* fp_park_wait failed */
#define FP_NOTIFY_EINVAL  (-2)  /* NULL argument or bits == 0 */

typedef struct fp_notify {
    fp_atomic_u32 bits;     /* events posted and not yet taken */
} fp_notify;

/* No bits set.  Call before the first post or wait (no concurrent use). */
void fp_notify_init(fp_notify *n);

/* OR `bits` (non-zero) in; wake the consumer if no bit was set before.
 * FP_NOTIFY_OK or FP_NOTIFY_EINVAL.  Never blocks. */
int fp_notify_post(fp_notify *n, uint32_t bits);

/* Sleep until some bit is set (timeout_ns < 0: no timeout; 0: just check),
 * then take every set bit into *bits_out and clear them.
 * FP_NOTIFY_OK, FP_NOTIFY_TIMEOUT (*bits_out = 0), FP_NOTIFY_ERROR or
 * FP_NOTIFY_EINVAL. */
int fp_notify_wait(fp_notify *n, int64_t timeout_ns, uint32_t *bits_out);

#endif /* FP_NOTIFY_H */
