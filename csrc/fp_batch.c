/*
 * fp_batch.c - see fp_batch.h for the contract.
 *
 * One mutex guards the queue and the `leading` flag; it is held for a few pointer moves,
 * never while sleeping or waking. Owners sleep on their own job's state word (fp_park).
 */
#include "fp_internal.h"
#include "fp_batch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct fp_batch {
    pthread_mutex_t mu;
    fp_batch_job *head;         /* oldest queued job */
    fp_batch_job *tail;
    fp_atomic_u32 queued;       /* changed under mu; read racily by fp_batch_queued */
    int leading;                /* a thread leads (under mu) */
    uint32_t want;              /* fp_batch_gather waits for this many queued (0: nobody) */
    fp_atomic_u32 gathered;     /* 0 while it waits; set to 1 by the join that satisfies it */
};

fp_batch *fp_batch_new(void)
{
    fp_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    atomic_init(&b->queued, 0u);
    atomic_init(&b->gathered, 0u);
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

void fp_batch_free(fp_batch *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void unlink_job(fp_batch *b, fp_batch_job *prev, fp_batch_job *job)
{
    if (prev == NULL)
        b->head = job->next;
    else
        prev->next = job->next;
    if (b->tail == job)
        b->tail = prev;
    job->next = NULL;
    atomic_fetch_sub_explicit(&b->queued, 1u, memory_order_relaxed);
}

int fp_batch_join(fp_batch *b, fp_batch_job *job)
{
    int rc, wake = 0;
    if (b == NULL || job == NULL)
        return FP_BATCH_EINVAL;
    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_BATCH_ERROR;
    if (!b->leading) {
        b->leading = 1;
        atomic_store_explicit(&job->state, FP_BATCH_LEAD, memory_order_relaxed);
        rc = FP_BATCH_LEAD;
    } else {
        job->next = NULL;
        atomic_store_explicit(&job->state, FP_BATCH_QUEUED, memory_order_relaxed);
        if (b->tail == NULL)
            b->head = job;
        else
            b->tail->next = job;
        b->tail = job;
        if (atomic_fetch_add_explicit(&b->queued, 1u, memory_order_relaxed) + 1 == b->want) {
            b->want = 0;
            atomic_store_explicit(&b->gathered, 1u, memory_order_relaxed);
            wake = 1;
        }
        rc = FP_BATCH_QUEUED;
    }
    pthread_mutex_unlock(&b->mu);
    if (wake)
        fp_park_wake_one(&b->gathered);
    return rc;
}

int fp_batch_wait(fp_batch_job *job, int64_t timeout_ns, uint32_t *state_out)
{
    uint32_t state;
    if (job == NULL || state_out == NULL)
        return FP_BATCH_EINVAL;
    for (;;) {
        state = atomic_load_explicit(&job->state, memory_order_acquire);
        if (state == FP_BATCH_QUEUED) {
            switch (fp_park_wait(&job->state, FP_BATCH_QUEUED, timeout_ns)) {
            case FP_PARK_OK:
                continue;
            case FP_PARK_TIMEOUT:
                /* The deadline passed; the state may have moved on since. */
                if (atomic_load_explicit(&job->state, memory_order_acquire) == FP_BATCH_QUEUED)
                    return FP_BATCH_TIMEOUT;
                continue;
            default:
                return FP_BATCH_ERROR;
            }
        }
        if (state == FP_BATCH_TAKEN) {
            /* The leader is doing it: no deadline applies any more. */
            if (fp_park_wait(&job->state, FP_BATCH_TAKEN, -1) == FP_PARK_ERROR)
                return FP_BATCH_ERROR;
            continue;
        }
        *state_out = state;
        return FP_BATCH_OK;
    }
}

int fp_batch_cancel(fp_batch *b, fp_batch_job *job, uint32_t *state_out)
{
    fp_batch_job *prev = NULL, *it;
    if (b == NULL || job == NULL || state_out == NULL)
        return FP_BATCH_EINVAL;
    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_BATCH_ERROR;
    if (atomic_load_explicit(&job->state, memory_order_relaxed) == FP_BATCH_QUEUED) {
        for (it = b->head; it != NULL && it != job; it = it->next)
            prev = it;
        if (it == job) {
            unlink_job(b, prev, job);
            atomic_store_explicit(&job->state, FP_BATCH_CANCELLED, memory_order_relaxed);
        }
    }
    *state_out = atomic_load_explicit(&job->state, memory_order_acquire);
    pthread_mutex_unlock(&b->mu);
    return FP_BATCH_OK;
}

fp_batch_job *fp_batch_take(fp_batch *b, uint32_t max)
{
    fp_batch_job *first, *last, *job;
    uint32_t n = 0;
    if (b == NULL || pthread_mutex_lock(&b->mu) != 0)
        return NULL;
    first = b->head;
    last = NULL;
    for (job = first; job != NULL && (max == 0 || n < max); job = job->next) {
        atomic_store_explicit(&job->state, FP_BATCH_TAKEN, memory_order_relaxed);
        last = job;
        n++;
    }
    if (last != NULL) {
        b->head = last->next;
        if (b->head == NULL)
            b->tail = NULL;
        last->next = NULL;
        atomic_fetch_sub_explicit(&b->queued, n, memory_order_relaxed);
    }
    pthread_mutex_unlock(&b->mu);
    return last != NULL ? first : NULL;
}

void fp_batch_done(fp_batch_job *taken)
{
    fp_batch_job *job = taken, *next;
    while (job != NULL) {
        next = job->next;       /* the owner may reuse the node once it sees DONE */
        atomic_store_explicit(&job->state, FP_BATCH_DONE, memory_order_release);
        fp_park_wake_one(&job->state);
        job = next;
    }
}

int fp_batch_step_down(fp_batch *b)
{
    fp_batch_job *next;
    if (b == NULL)
        return FP_BATCH_EINVAL;
    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_BATCH_ERROR;
    next = b->head;
    if (next == NULL) {
        b->leading = 0;
    } else {
        unlink_job(b, NULL, next);
        atomic_store_explicit(&next->state, FP_BATCH_LEAD, memory_order_release);
    }
    pthread_mutex_unlock(&b->mu);
    if (next != NULL)
        fp_park_wake_one(&next->state);     /* by address only: see fp_batch.h */
    return FP_BATCH_OK;
}

int fp_batch_gather(fp_batch *b, uint32_t want, int64_t timeout_ns)
{
    int rc;
    if (b == NULL)
        return FP_BATCH_EINVAL;
    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_BATCH_ERROR;
    if (atomic_load_explicit(&b->queued, memory_order_relaxed) >= want) {
        pthread_mutex_unlock(&b->mu);
        return FP_BATCH_OK;
    }
    b->want = want;
    atomic_store_explicit(&b->gathered, 0u, memory_order_relaxed);
    pthread_mutex_unlock(&b->mu);
    rc = fp_park_wait(&b->gathered, 0u, timeout_ns);
    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_BATCH_ERROR;
    b->want = 0;
    if (rc != FP_PARK_ERROR)
        rc = atomic_load_explicit(&b->gathered, memory_order_relaxed) ? FP_BATCH_OK
                                                                       : FP_BATCH_TIMEOUT;
    else
        rc = FP_BATCH_ERROR;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

uint32_t fp_batch_queued(fp_batch *b)
{
    return b == NULL ? 0 : atomic_load_explicit(&b->queued, memory_order_relaxed);
}
