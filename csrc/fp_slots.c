/*
 * fp_slots.c - see fp_slots.h for the contract and the ordering argument.
 */
#include "fp_internal.h"
#include "fp_slots.h"
#include "fp_ring.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fp_slots {
    /* Written (RMW) by every lock-free release and every enqueue: its own
     * line so it does not bounce the mutex/queue line. */
    alignas(FP_CACHE_LINE) _Atomic uint32_t nwaiters;
    alignas(FP_CACHE_LINE) pthread_mutex_t mu;
    fp_waiter *head; /* oldest linked waiter; protected by mu */
    fp_waiter *tail; /* protected by mu */
    /* immutable after fp_slots_new() */
    fp_ring *ring;
    uint32_t nslots;
    int strict;
};

/* A grant made under the mutex whose notification must run after unlock. */
typedef struct fp_pending_wake {
    fp_waiter *w;
    fp_wake_fn fn;
} fp_pending_wake;

/* Grants notified per mutex hold while draining; bounded so the batch can
 * live on the stack (we may not touch a granted node's links any more). */
#define WAKE_BATCH 8

/* pthread_mutex_lock/unlock on our own, initialised, default-type mutex can
 * only fail if memory was corrupted; carrying on would break the queue
 * invariants silently, so stop loudly instead of returning a code nobody
 * could act on. */
static void lock(fp_slots *s)
{
    if (pthread_mutex_lock(&s->mu) != 0) {
        fputs("fastpool: fp_slots mutex lock failed (corrupted?)\n", stderr);
        abort();
    }
}

static void unlock(fp_slots *s)
{
    if (pthread_mutex_unlock(&s->mu) != 0) {
        fputs("fastpool: fp_slots mutex unlock failed (corrupted?)\n", stderr);
        abort();
    }
}

void fp_waiter_init(fp_waiter *w, fp_wake_fn wake, void *user)
{
    atomic_init(&w->state, FP_WAITER_IDLE);
    w->slot = UINT32_MAX;
    w->prev = w->next = NULL;
    w->wake = wake;
    w->user = user;
}

uint32_t fp_waiter_state(const fp_waiter *w)
{
    /* cast: atomic_load on a const object is rejected by some compilers */
    return atomic_load_explicit(&((fp_waiter *)w)->state, memory_order_acquire);
}

fp_slots *fp_slots_new(uint32_t nslots, int strict_fifo)
{
    if (nslots == 0 || nslots > FP_SLOTS_MAX)
        return NULL;

    void *mem = NULL;
    /* aligned so the padding between nwaiters and mu is effective */
    if (posix_memalign(&mem, FP_CACHE_LINE, sizeof(fp_slots)) != 0)
        return NULL;
    memset(mem, 0, sizeof(fp_slots));
    fp_slots *s = mem;

    s->ring = fp_ring_new(nslots);
    if (s->ring == NULL) {
        free(s);
        return NULL;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        fp_ring_free(s->ring);
        free(s);
        return NULL;
    }
    atomic_init(&s->nwaiters, 0);
    s->head = s->tail = NULL;
    s->nslots = nslots;
    s->strict = strict_fifo != 0;
    for (uint32_t i = 0; i < nslots; i++) {
        /* capacity >= nslots, so this cannot fail; check anyway */
        if (fp_ring_push(s->ring, i) != FP_RING_OK) {
            fp_slots_free(s);
            return NULL;
        }
    }
    return s;
}

void fp_slots_free(fp_slots *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    fp_ring_free(s->ring);
    free(s);
}

/* ---- queue helpers: all require s->mu held ---------------------------- */

static void link_tail_locked(fp_slots *s, fp_waiter *w)
{
    w->next = NULL;
    w->prev = s->tail;
    if (s->tail != NULL)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
}

/* Unlink w and drop it from the waiter count.  Only for linked nodes,
 * i.e. nodes whose state is (still) WAITING. */
static void unlink_locked(fp_slots *s, fp_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        s->tail = w->prev;
    w->prev = w->next = NULL;
    /* RMW, never a store: the Dekker argument needs all modifications of
     * nwaiters totally ordered in one release sequence. */
    atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_acq_rel);
}

/* Hand `slot` to the oldest waiter.  Returns 1 and fills *pw if granted,
 * 0 if no waiter is linked (the caller still holds the slot).  The node is
 * unlinked and its fields read BEFORE the CAS: once it reads GRANTED a
 * sync waiter may return and its stack frame may be gone. */
static int grant_locked(fp_slots *s, uint32_t slot, fp_pending_wake *pw)
{
    fp_waiter *w;
    while ((w = s->head) != NULL) {
        unlink_locked(s, w);
        fp_wake_fn fn = w->wake;
        w->slot = slot;
        uint32_t expected = FP_WAITER_WAITING;
        /* release: publishes w->slot and the previous holder's writes */
        if (atomic_compare_exchange_strong_explicit(&w->state, &expected,
                                                    FP_WAITER_GRANTED,
                                                    memory_order_release,
                                                    memory_order_relaxed)) {
            pw->w = w;
            pw->fn = fn;
            return 1;
        }
        /* Unreachable while the invariant "linked <=> WAITING" holds (all
         * transitions off WAITING happen under mu after/with an unlink);
         * skipping keeps the slot safe if a caller broke it. */
    }
    return 0;
}

/* Must be called without the mutex: the callback may take other locks and
 * the sync path makes a syscall. */
static void notify(const fp_pending_wake *pw)
{
    if (pw->fn != NULL)
        pw->fn(pw->w);
    else
        fp_park_wake_one(&pw->w->state); /* address only, see header */
}

/* ---- public operations ------------------------------------------------ */

int fp_slots_try_acquire(fp_slots *s, uint32_t *slot)
{
    if (s == NULL || slot == NULL)
        return FP_SLOTS_EINVAL;
    /* No nwaiters check needed even in strict mode: there a free slot and a
     * linked waiter never coexist (see header), so popping cannot barge. */
    return fp_ring_pop(s->ring, slot) == FP_RING_OK ? FP_SLOTS_OK : FP_SLOTS_EMPTY;
}

int fp_slots_enqueue(fp_slots *s, fp_waiter *w)
{
    if (s == NULL || w == NULL)
        return FP_SLOTS_EINVAL;

    lock(s);
    /* WAITING <=> linked, and that only changes under mu: relaxed is fine */
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == FP_WAITER_WAITING) {
        unlock(s);
        return FP_SLOTS_EINVAL;
    }
    /* Announce ourselves BEFORE looking at the ring (Dekker, see header):
     * a lock-free release either pushed early enough for our pop to see
     * it, or its later RMW sees this increment and comes to drain. */
    atomic_fetch_add_explicit(&s->nwaiters, 1, memory_order_acq_rel);
    uint32_t slot;
    if (fp_ring_pop(s->ring, &slot) == FP_RING_OK) {
        atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_acq_rel);
        unlock(s);
        w->slot = slot;
        w->prev = w->next = NULL;
        atomic_store_explicit(&w->state, FP_WAITER_GRANTED, memory_order_relaxed);
        return FP_SLOTS_OK;
    }
    w->slot = UINT32_MAX;
    atomic_store_explicit(&w->state, FP_WAITER_WAITING, memory_order_relaxed);
    link_tail_locked(s, w);
    unlock(s);
    return FP_SLOTS_QUEUED;
}

/* Withdraw w if still WAITING.  Returns FP_SLOTS_CANCELLED if withdrawn,
 * else the state it had (acquire, so a GRANTED w->slot is visible) through
 * *seen and FP_SLOTS_OK. */
static int withdraw(fp_slots *s, fp_waiter *w, uint32_t *seen)
{
    uint32_t expected = FP_WAITER_WAITING;
    lock(s);
    int won = atomic_compare_exchange_strong_explicit(&w->state, &expected,
                                                      FP_WAITER_CANCELLED,
                                                      memory_order_acquire,
                                                      memory_order_acquire);
    if (won)
        unlink_locked(s, w); /* was WAITING, hence linked */
    unlock(s);
    *seen = expected;
    return won ? FP_SLOTS_CANCELLED : FP_SLOTS_OK;
}

int fp_slots_wait(fp_slots *s, fp_waiter *w, int64_t timeout_ns)
{
    if (s == NULL || w == NULL || w->wake != NULL)
        return FP_SLOTS_EINVAL;

    uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == FP_WAITER_GRANTED)
        return FP_SLOTS_OK; /* immediate grant from enqueue */
    if (st != FP_WAITER_WAITING)
        return FP_SLOTS_EINVAL;

    int prc = fp_park_wait(&w->state, FP_WAITER_WAITING, timeout_ns);
    st = atomic_load_explicit(&w->state, memory_order_acquire);
    if (st == FP_WAITER_GRANTED)
        return FP_SLOTS_OK; /* releaser unlinked us before the CAS */

    if (st == FP_WAITER_WAITING) {
        /* Timed out (or park failed): withdraw.  Losing the CAS means a
         * releaser granted us in the meantime; we own that slot. */
        if (withdraw(s, w, &st) == FP_SLOTS_CANCELLED)
            return prc == FP_PARK_ERROR ? FP_SLOTS_ERROR : FP_SLOTS_TIMEOUT;
        if (st == FP_WAITER_GRANTED)
            return FP_SLOTS_OK;
    }
    /* CANCELLED by fp_slots_cancel() from another thread.  It changed the
     * state under mu and may still be in its critical section touching
     * our node: pass through mu so it is done before we return. */
    lock(s);
    unlock(s);
    return FP_SLOTS_CANCELLED;
}

int fp_slots_cancel(fp_slots *s, fp_waiter *w, uint32_t *slot_out)
{
    if (s == NULL || w == NULL || slot_out == NULL)
        return FP_SLOTS_EINVAL;
    uint32_t st;
    if (withdraw(s, w, &st) == FP_SLOTS_CANCELLED)
        return FP_SLOTS_CANCELLED;
    if (st == FP_WAITER_GRANTED) {
        *slot_out = w->slot;
        return FP_SLOTS_OK;
    }
    return FP_SLOTS_EINVAL;
}

/* Strict mode, or waiters already counted: give the slot to the oldest
 * waiter under the mutex, else put it in the ring (still under the mutex,
 * which is what keeps "free slot + linked waiter" impossible in strict
 * mode). */
static int release_locked_path(fp_slots *s, uint32_t slot)
{
    fp_pending_wake pw;
    int rc = FP_SLOTS_OK;
    lock(s);
    int granted = grant_locked(s, slot, &pw);
    if (!granted && fp_ring_push(s->ring, slot) != FP_RING_OK)
        rc = FP_SLOTS_EINVAL; /* ring full: a slot was released twice */
    unlock(s);
    if (granted)
        notify(&pw);
    return rc;
}

/* Non-strict slow path after a lock-free push that found waiters counted:
 * move ring slots to linked waiters until one side runs out. */
static int drain(fp_slots *s)
{
    fp_pending_wake batch[WAKE_BATCH];
    int n;
    int more;
    do {
        n = 0;
        more = 0;
        lock(s);
        while (s->head != NULL) {
            uint32_t slot;
            /* EMPTY is exact: a slot pushed after this point comes with
             * its releaser's own nwaiters RMW, which sees our waiters and
             * drains again (see header). */
            if (fp_ring_pop(s->ring, &slot) != FP_RING_OK)
                break;
            if (!grant_locked(s, slot, &batch[n])) {
                /* cannot happen (head != NULL), but never drop a slot */
                if (fp_ring_push(s->ring, slot) != FP_RING_OK) {
                    unlock(s);
                    return FP_SLOTS_EINVAL;
                }
                break;
            }
            if (++n == WAKE_BATCH) {
                more = 1; /* notify this batch outside mu, then resume */
                break;
            }
        }
        unlock(s);
        for (int i = 0; i < n; i++)
            notify(&batch[i]);
    } while (more);
    return FP_SLOTS_OK;
}

int fp_slots_release(fp_slots *s, uint32_t slot)
{
    if (s == NULL || slot >= s->nslots)
        return FP_SLOTS_EINVAL;

    /* The relaxed read is only a hint for picking a path: a stale 0 is
     * corrected by the RMW below, a stale non-zero costs one mutex trip. */
    if (s->strict || atomic_load_explicit(&s->nwaiters, memory_order_relaxed) != 0)
        return release_locked_path(s, slot);

    if (fp_ring_push(s->ring, slot) != FP_RING_OK)
        return FP_SLOTS_EINVAL; /* ring full: a slot was released twice */
    /* Dekker recheck: an RMW reads the latest count and orders our push
     * against every enqueuer's increment (see header). */
    if (atomic_fetch_add_explicit(&s->nwaiters, 0, memory_order_acq_rel) == 0)
        return FP_SLOTS_OK;
    return drain(s);
}

uint32_t fp_slots_waiting(const fp_slots *s)
{
    return atomic_load_explicit(&((fp_slots *)s)->nwaiters, memory_order_relaxed);
}

uint32_t fp_slots_free_count(const fp_slots *s)
{
    return fp_ring_size(s->ring);
}

uint32_t fp_slots_capacity(const fp_slots *s)
{
    return s->nslots;
}
