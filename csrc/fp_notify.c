/*
 * fp_notify.c - see fp_notify.h for the contract.
 */
#include "fp_internal.h"
#include "fp_notify.h"

#include <stddef.h>

void fp_notify_init(fp_notify *n)
{
    atomic_init(&n->bits, 0u);
}

int fp_notify_post(fp_notify *n, uint32_t bits)
{
    if (n == NULL || bits == 0)
        return FP_NOTIFY_EINVAL;
    /* Only the post that turns the word from 0 to non-zero can find the
     * consumer asleep on 0; later posts see a non-zero word and the
     * consumer, once woken, takes their bits too. */
    if (atomic_fetch_or_explicit(&n->bits, bits, memory_order_acq_rel) == 0)
        fp_park_wake_one(&n->bits);
    return FP_NOTIFY_OK;
}

int fp_notify_wait(fp_notify *n, int64_t timeout_ns, uint32_t *bits_out)
{
    if (n == NULL || bits_out == NULL)
        return FP_NOTIFY_EINVAL;
    *bits_out = 0;
    switch (fp_park_wait(&n->bits, 0u, timeout_ns)) {
    case FP_PARK_OK:
        break;
    case FP_PARK_TIMEOUT:
        return FP_NOTIFY_TIMEOUT;
    default:
        return FP_NOTIFY_ERROR;
    }
    *bits_out = atomic_exchange_explicit(&n->bits, 0u, memory_order_acq_rel);
    return FP_NOTIFY_OK;
}
