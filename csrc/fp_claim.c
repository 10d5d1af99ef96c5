/*
 * fp_claim.c - see fp_claim.h.
 */
#include "fp_internal.h"
#include "fp_claim.h"

#include <sched.h>
#include <stdatomic.h>

uint32_t fp_claim_call(fp_atomic_u32 *word)
{
    for (;;) {
        uint32_t seen = FP_CLAIM_FREE;
        if (atomic_compare_exchange_strong_explicit(word, &seen, FP_CLAIM_CALL,
                                                    memory_order_acquire,
                                                    memory_order_acquire))
            return FP_CLAIM_FREE;
        if (seen == FP_CLAIM_CALL)
            return FP_CLAIM_CALL;
        if (seen == FP_CLAIM_SWEEP) {
            /* Say that someone waits, so the sweep wakes us; if the sweep is done
             * meanwhile the exchange fails and the loop claims the free word. */
            atomic_compare_exchange_strong_explicit(word, &seen, FP_CLAIM_SWEEP_WAITED,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed);
            continue;
        }
        /* FP_CLAIM_SWEEP_WAITED: the sweep holds it for one reset. */
        if (fp_park_wait(word, FP_CLAIM_SWEEP_WAITED, -1) == FP_PARK_ERROR)
            sched_yield(); /* cannot sleep on the word: let the sweep run, look again */
    }
}

int fp_claim_sweep(fp_atomic_u32 *word)
{
    uint32_t seen = FP_CLAIM_FREE;
    return atomic_compare_exchange_strong_explicit(word, &seen, FP_CLAIM_SWEEP,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

void fp_claim_release_sweep(fp_atomic_u32 *word)
{
    if (atomic_exchange_explicit(word, FP_CLAIM_FREE, memory_order_acq_rel)
            == FP_CLAIM_SWEEP_WAITED)
        fp_park_wake_all(word);
}
