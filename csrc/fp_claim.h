/*
 * fp_claim.h - the claim word of a connection: who may use its SQLite handle now.
 *
 * Connections are opened SQLITE_OPEN_NOMUTEX, so one thread at a time may call into a
 * handle.  The thread holding a connection (its pool slot, or a plain connection's user)
 * claims the word for each call (FP_CLAIM_CALL) and stores FP_CLAIM_FREE after it; a
 * second claimant while a call runs is refused, never made to wait (its call would
 * interleave with the first one's).  Between its holder's calls, a pool reader may be
 * claimed by the snapshot sweep (FP_CLAIM_SWEEP), which ends the reader's kept read
 * transaction with one sqlite3_reset; a holder that claims meanwhile waits that out,
 * parked on the word, instead of being refused.
 *
 * Memory ordering: a claim is an acquire, a release (a store of FP_CLAIM_FREE, release,
 * or fp_claim_release_sweep) publishes everything the claimant did to the next one.
 */
#ifndef FP_CLAIM_H
#define FP_CLAIM_H

#include <stdint.h>

#include "fp_park.h" /* fp_atomic_u32 */

#define FP_CLAIM_FREE 0u
#define FP_CLAIM_CALL 1u         /* a call runs: its claimant owns the handle */
#define FP_CLAIM_SWEEP 2u        /* the snapshot sweep owns it, for a moment */
#define FP_CLAIM_SWEEP_WAITED 3u /* ... and a holder waits for it to be done */

/* Claim for a call: FP_CLAIM_FREE once this thread holds the claim, or FP_CLAIM_CALL when
 * a call holds it (not claimed: the caller refuses).  A sweep's claim is waited out.
 * Give the claim back with fp_flag_store(word, FP_CLAIM_FREE). */
uint32_t fp_claim_call(fp_atomic_u32 *word);

/* The sweep: 1 if it claimed the free word, 0 if anyone holds it.  Never waits. */
int fp_claim_sweep(fp_atomic_u32 *word);

/* Give a sweep's claim back and wake the holders that waited for it. */
void fp_claim_release_sweep(fp_atomic_u32 *word);

#endif /* FP_CLAIM_H */
