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
#include <time.h>

/* A slot set aside by fp_slots_set_aside(): that thread's token, 0 when the
 * slot is not set aside (in the ring, or held).  A line each, so that a thread
 * re-taking its own slot writes no line another thread uses. */
typedef struct fp_aside {
    alignas(FP_CACHE_LINE) _Atomic uintptr_t owner;
} fp_aside;

struct fp_slots {
    /* Written (RMW) by every lock-free release and every enqueue: its own
     * line so it does not bounce the mutex/queue line. */
    alignas(FP_CACHE_LINE) _Atomic uint32_t nwaiters;
    alignas(FP_CACHE_LINE) pthread_mutex_t mu;
    fp_waiter *head; /* oldest linked waiter; protected by mu */
    fp_waiter *tail; /* protected by mu */
    int64_t last_handoff; /* when a release last granted a sync waiter; mu */
    /* immutable after fp_slots_new() */
    fp_ring *ring;
    fp_aside *aside; /* nslots entries; NULL when nslots > FP_SLOTS_ASIDE_MAX */
    uint32_t nslots;
    /* 0: strict FIFO hand-off (see header).  Set at creation; only ever changes to 0
     * (fp_slots_make_strict, under mu), so a stale non-zero read is harmless. */
    _Atomic int64_t fifo_after_ns;
};

/* A grant or a nudge made under the mutex whose notification must run after
 * unlock. */
typedef struct fp_pending_wake {
    fp_waiter *w;
    fp_wake_fn fn;
} fp_pending_wake;

/* Notifications per mutex hold while serving; bounded so the batch can live
 * on the stack (we may not touch a granted node's links any more). */
#define WAKE_BATCH 8

#define STATE_OF(word) ((word) & FP_WAITER_STATE_MASK)

/* fp_waiter.quiet_until of a waiter nudged since it last looked at the ring:
 * it will look once it runs, so a second nudge would only be a syscall. */
#define NUDGED INT64_MAX

/* The thread's token (the address of a thread-local: unique among live
 * threads, never 0), and the slot it set aside last in up to HINTS
 * dispensers (direct-mapped by address; a stale entry only costs a failed
 * CAS, since the slot's owner word must still hold our token). */
#define HINTS 8
static _Thread_local char token_anchor;
static _Thread_local struct {
    const fp_slots *s;
    uint32_t slot;
} hints[HINTS];

static inline uintptr_t my_token(void) { return (uintptr_t)&token_anchor; }

static inline unsigned hint_of(const fp_slots *s)
{
    return (unsigned)(((uintptr_t)s / FP_CACHE_LINE) % HINTS);
}

static inline int64_t fifo_after(const fp_slots *s)
{
    return atomic_load_explicit(&((fp_slots *)s)->fifo_after_ns, memory_order_relaxed);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* pthread_mutex_lock/unlock on our own, initialised, default-type mutex can
 * only fail if memory was corrupted; carrying on would break the queue
 * invariants silently, so stop loudly instead of returning a code nobody
 * could act on. */
static void mutex_or_abort(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "fastpool: fp_slots mutex %s failed (corrupted?)\n", what);
        abort();
    }
}

static void lock(fp_slots *s) { mutex_or_abort(pthread_mutex_lock(&s->mu), "lock"); }
static void unlock(fp_slots *s) { mutex_or_abort(pthread_mutex_unlock(&s->mu), "unlock"); }

void fp_waiter_init(fp_waiter *w, fp_wake_fn wake, void *user)
{
    atomic_init(&w->state, FP_WAITER_IDLE);
    w->slot = UINT32_MAX;
    w->since = 0;
    w->quiet_until = 0;
    w->backoff = 0;
    w->prev = w->next = NULL;
    w->wake = wake;
    w->user = user;
}

uint32_t fp_waiter_state(const fp_waiter *w)
{
    /* cast: atomic_load on a const object is rejected by some compilers */
    return STATE_OF(atomic_load_explicit(&((fp_waiter *)w)->state, memory_order_acquire));
}

fp_slots *fp_slots_new(uint32_t nslots, int64_t fifo_after_ns)
{
    if (nslots == 0 || nslots > FP_SLOTS_MAX || fifo_after_ns < 0)
        return NULL;

    void *mem = NULL;
    /* aligned so the padding between nwaiters and mu is effective */
    if (posix_memalign(&mem, FP_CACHE_LINE, sizeof(fp_slots)) != 0)
        return NULL;
    memset(mem, 0, sizeof(fp_slots));
    fp_slots *s = mem;

    s->ring = fp_ring_new(nslots);
    void *aside = NULL;
    int aside_ok = nslots > FP_SLOTS_ASIDE_MAX ||
                   posix_memalign(&aside, FP_CACHE_LINE, nslots * sizeof(fp_aside)) == 0;
    if (s->ring == NULL || !aside_ok || pthread_mutex_init(&s->mu, NULL) != 0) {
        fp_ring_free(s->ring); /* NULL accepted */
        free(aside);
        free(s);
        return NULL;
    }
    s->aside = aside;
    for (uint32_t i = 0; aside != NULL && i < nslots; i++)
        atomic_init(&s->aside[i].owner, 0);
    atomic_init(&s->nwaiters, 0);
    s->head = s->tail = NULL;
    s->nslots = nslots;
    atomic_init(&s->fifo_after_ns, fifo_after_ns);
    for (uint32_t i = 0; i < nslots; i++) {
        if (fp_ring_push(s->ring, i) != FP_RING_OK) { /* capacity >= nslots: cannot */
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
    free(s->aside);
    free(s);
}

/* ---- slots set aside -------------------------------------------------- */

/* Take a slot any thread set aside.  seq_cst loads: with the enqueuer's
 * seq_cst increment of nwaiters before them, and the seq_cst exchange then
 * load of nwaiters in fp_slots_set_aside(), one of the two sees the other. */
static int steal(fp_slots *s, uint32_t *slot)
{
    if (s->aside == NULL)
        return 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        uintptr_t owner = atomic_load(&s->aside[i].owner);
        if (owner != 0 && atomic_compare_exchange_strong(&s->aside[i].owner, &owner, 0)) {
            *slot = i;
            return 1;
        }
    }
    return 0;
}

/* Re-take the slot this thread set aside last, if nobody took it since. */
static int take_own(fp_slots *s, uint32_t *slot)
{
    unsigned h = hint_of(s);
    if (s->aside == NULL || hints[h].s != s)
        return 0;
    uint32_t mine = hints[h].slot;
    uintptr_t token = my_token();
    /* acquire: the previous holder's writes (our own, or a thief's that
     * set it aside again under its token would fail this CAS) */
    if (mine >= s->nslots ||
        !atomic_compare_exchange_strong_explicit(&s->aside[mine].owner, &token, 0,
                                                 memory_order_acquire, memory_order_relaxed))
        return 0;
    *slot = mine;
    return 1;
}

static uint32_t aside_count(const fp_slots *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; s->aside != NULL && i < s->nslots; i++)
        n += atomic_load_explicit(&((fp_slots *)s)->aside[i].owner, memory_order_relaxed) != 0;
    return n;
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
 * unlinked and its fields read BEFORE the store: once it reads GRANTED a
 * sync waiter may return and its stack frame may be gone. */
static int grant_locked(fp_slots *s, uint32_t slot, fp_pending_wake *pw)
{
    fp_waiter *w;
    while ((w = s->head) != NULL) {
        unlink_locked(s, w);
        fp_wake_fn fn = w->wake;
        w->slot = slot;
        uint32_t word = atomic_load_explicit(&w->state, memory_order_relaxed);
        /* release: publishes w->slot and the previous holder's writes */
        if (STATE_OF(word) == FP_WAITER_WAITING &&
            atomic_compare_exchange_strong_explicit(&w->state, &word,
                                                    (word & ~FP_WAITER_STATE_MASK) |
                                                        FP_WAITER_GRANTED,
                                                    memory_order_release,
                                                    memory_order_relaxed)) {
            pw->w = w;
            pw->fn = fn;
            return 1;
        }
        /* Unreachable while the invariant "linked <=> WAITING" holds (every
         * change of a linked node's word happens under mu); skipping keeps
         * the slot safe if a caller broke it. */
    }
    return 0;
}

/* Slots may sit in the ring while waiters are linked (barging mode, or a
 * lock-free push racing an enqueue): this keeps such a slot from being
 * forgotten.  Grant ring slots to async heads, and in strict mode to every
 * head; then nudge as many sync waiters (oldest first) as the ring holds
 * slots: bump their words, which wakes them (after unlock) to try the ring.
 * A nudged waiter that takes a slot serves again as it leaves; one that
 * finds the slot gone sleeps again, keeping its place.  Fills batch[] with
 * what must be notified after unlock; returns how many, with *more set when
 * grants filled it first. */
static int serve_locked(fp_slots *s, fp_pending_wake *batch, int *more)
{
    int n = 0;
    *more = 0;
    /* Async heads cannot look for themselves, and in strict mode nobody may: grant. */
    while (s->head != NULL && (s->head->wake != NULL || fifo_after(s) == 0)) {
        uint32_t slot;
        if (n == WAKE_BATCH) {
            *more = 1;
            return n;
        }
        if (fp_ring_pop(s->ring, &slot) != FP_RING_OK)
            return n;
        if (!grant_locked(s, slot, &batch[n])) { /* cannot happen: head != NULL */
            if (fp_ring_push(s->ring, slot) != FP_RING_OK)
                abort(); /* we just popped it: there is room */
            return n;
        }
        n++;
    }
    /* Exact enough: a slot pushed after this look comes with its releaser's
     * own nwaiters RMW, which sees these waiters and serves again. */
    uint32_t free = fp_ring_size(s->ring);
    int64_t now = 0;
    for (fp_waiter *w = s->head; w != NULL && free > 0 && n < WAKE_BATCH; w = w->next) {
        if (w->wake != NULL)
            continue; /* served once it is the head */
        if (w->quiet_until != 0) {
            if (now == 0 && w->quiet_until != NUDGED)
                now = now_ns();
            if (w->quiet_until == NUDGED || now < w->quiet_until) {
                free--; /* it looks by itself: woken already, or when its spell ends */
                continue;
            }
        }
        w->quiet_until = NUDGED;
        atomic_fetch_add_explicit(&w->state, FP_WAITER_NUDGE, memory_order_release);
        batch[n].w = w;
        batch[n].fn = NULL;
        n++;
        free--;
    }
    return n;
}

/* Must be called without the mutex: a callback may take other locks and the
 * sync path makes a syscall.  A sync waiter's node is used by address only
 * (see header). */
static void notify_all(const fp_pending_wake *batch, int n)
{
    for (int i = 0; i < n; i++) {
        if (batch[i].fn != NULL)
            batch[i].fn(batch[i].w);
        else
            fp_park_wake_one(&batch[i].w->state);
    }
}

/* serve_locked() until it is done, taking the mutex for each batch. */
static void serve(fp_slots *s)
{
    fp_pending_wake batch[WAKE_BATCH];
    int more;
    do {
        lock(s);
        int n = serve_locked(s, batch, &more);
        unlock(s);
        notify_all(batch, n);
    } while (more);
}

/* ---- public operations ------------------------------------------------ */

int fp_slots_try_acquire(fp_slots *s, uint32_t *slot)
{
    if (s == NULL || slot == NULL)
        return FP_SLOTS_EINVAL;
    /* Strict mode: a free slot and a linked waiter never coexist (see
     * header), so taking one cannot pass a waiter.  Barging mode: it may, by
     * design, until the oldest waiter has waited fifo_after_ns. */
    if (take_own(s, slot) || fp_ring_pop(s->ring, slot) == FP_RING_OK || steal(s, slot))
        return FP_SLOTS_OK;
    return FP_SLOTS_EMPTY;
}

int fp_slots_enqueue(fp_slots *s, fp_waiter *w)
{
    if (s == NULL || w == NULL)
        return FP_SLOTS_EINVAL;

    /* Before the mutex: the clock is the slowest part of a queued enqueue. */
    int64_t since = fifo_after(s) != 0 && w->wake == NULL ? now_ns() : 0;
    lock(s);
    /* WAITING <=> linked, and that only changes under mu: relaxed is fine */
    uint32_t word = atomic_load_explicit(&w->state, memory_order_relaxed);
    if (STATE_OF(word) == FP_WAITER_WAITING) {
        unlock(s);
        return FP_SLOTS_EINVAL;
    }
    word &= ~FP_WAITER_STATE_MASK;
    /* Announce ourselves BEFORE looking at the ring (Dekker, see header):
     * a lock-free release either pushed early enough for our pop to see
     * it, or its later RMW sees this increment and comes to serve. */
    atomic_fetch_add(&s->nwaiters, 1); /* seq_cst: see steal() */
    uint32_t slot;
    if (fp_ring_pop(s->ring, &slot) == FP_RING_OK || steal(s, &slot)) {
        atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_acq_rel);
        unlock(s);
        w->slot = slot;
        w->prev = w->next = NULL;
        atomic_store_explicit(&w->state, word | FP_WAITER_GRANTED, memory_order_relaxed);
        return FP_SLOTS_OK;
    }
    w->slot = UINT32_MAX;
    w->since = since;
    w->quiet_until = 0;
    w->backoff = 0;
    atomic_store_explicit(&w->state, word | FP_WAITER_WAITING, memory_order_relaxed);
    link_tail_locked(s, w);
    unlock(s);
    return FP_SLOTS_QUEUED;
}

/* Withdraw w if still WAITING, then serve the new head if the ring holds a
 * slot (w may have been the one nudged for it).  Returns
 * FP_SLOTS_CANCELLED if withdrawn, else FP_SLOTS_OK with the state it had
 * (acquire, so a GRANTED w->slot is visible) in *seen.  With `took` (a
 * slot w popped from the ring itself), a withdrawn w is GRANTED that slot
 * instead of CANCELLED. */
static int withdraw(fp_slots *s, fp_waiter *w, uint32_t *seen, const uint32_t *took)
{
    fp_pending_wake batch[WAKE_BATCH];
    int more, n = 0;
    lock(s);
    uint32_t word = atomic_load_explicit(&w->state, memory_order_acquire);
    int won = STATE_OF(word) == FP_WAITER_WAITING;
    if (won) {
        unlink_locked(s, w); /* was WAITING, hence linked */
        uint32_t to = FP_WAITER_CANCELLED;
        if (took != NULL) {
            w->slot = *took;
            to = FP_WAITER_GRANTED;
        }
        atomic_store_explicit(&w->state, (word & ~FP_WAITER_STATE_MASK) | to,
                              memory_order_relaxed);
        n = serve_locked(s, batch, &more);
    }
    unlock(s);
    if (won) {
        notify_all(batch, n);
        if (more)
            serve(s);
    }
    *seen = STATE_OF(word);
    return won ? FP_SLOTS_CANCELLED : FP_SLOTS_OK;
}

int fp_slots_wait(fp_slots *s, fp_waiter *w, int64_t timeout_ns)
{
    if (s == NULL || w == NULL || w->wake != NULL)
        return FP_SLOTS_EINVAL;

    uint32_t word = atomic_load_explicit(&w->state, memory_order_acquire);
    if (STATE_OF(word) == FP_WAITER_GRANTED)
        return FP_SLOTS_OK; /* immediate grant from enqueue */
    if (STATE_OF(word) != FP_WAITER_WAITING)
        return FP_SLOTS_EINVAL;

    int64_t deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
    int64_t left = timeout_ns;
    int prc = FP_PARK_OK;
    int woken = 0;       /* a park returned: every later look is one we were woken for */
    int fresh_spell = 0; /* a spell began since the last pop */
    uint32_t st;
    for (;;) {
        int64_t nap = left;
        if (fifo_after(s) != 0) {
            /* Barging mode: a slot in the ring is anyone's, ours too.  The
             * word was read before this pop: a slot pushed after the pop
             * comes with a nudge that changes the word (or, while we are
             * quiet, with none: then our nap ends by the spell's end), so
             * the park below cannot sleep through it for longer. */
            uint32_t slot;
            if (fp_ring_pop(s->ring, &slot) == FP_RING_OK) {
                if (withdraw(s, w, &st, &slot) == FP_SLOTS_CANCELLED)
                    return FP_SLOTS_OK; /* GRANTED the slot it popped */
                /* granted or cancelled meanwhile: never keep two slots */
                if (fp_slots_release(s, slot) != FP_SLOTS_OK)
                    return FP_SLOTS_EINVAL;
                return st == FP_WAITER_GRANTED ? FP_SLOTS_OK : FP_SLOTS_CANCELLED;
            }
            if (left != 0 && !fresh_spell) {
                /* Nothing there.  If we were nudged (woken, or before our first
                 * look) or our spell ended, that was a wake-up for nothing:
                 * quiet, for twice as long as last time.  Under mu, as nudges
                 * are: one that came after our pop means look again. */
                lock(s);
                uint32_t seen = atomic_load_explicit(&w->state, memory_order_acquire);
                if (seen == word && (woken || w->quiet_until == NUDGED)) {
                    int64_t spell = w->backoff * 2;
                    if (spell < FP_SLOTS_QUIET_FIRST_NS)
                        spell = FP_SLOTS_QUIET_FIRST_NS;
                    if (spell > FP_SLOTS_QUIET_MAX_NS)
                        spell = FP_SLOTS_QUIET_MAX_NS;
                    if (spell > fifo_after(s))
                        spell = fifo_after(s);
                    w->backoff = spell;
                    w->quiet_until = now_ns() + spell;
                    fresh_spell = 1;
                }
                unlock(s);
                if (seen != word) {
                    word = seen;
                    if (STATE_OF(word) != FP_WAITER_WAITING)
                        break;
                    continue; /* nudged since the pop: look again */
                }
                /* A release between the pop and the spell skipped us (we were
                 * NUDGED): look once more, now that releases see the spell. */
                if (fresh_spell)
                    continue;
            }
            fresh_spell = 0;
            /* Our own field (only we write it while linked): no need for mu. */
            if (w->backoff != 0 && (nap < 0 || nap > w->backoff))
                nap = w->backoff;
        }
        if (left == 0 || prc == FP_PARK_ERROR)
            break;
        prc = fp_park_wait(&w->state, word, nap);
        woken = 1;
        word = atomic_load_explicit(&w->state, memory_order_acquire);
        if (STATE_OF(word) != FP_WAITER_WAITING)
            break;
        if (prc == FP_PARK_TIMEOUT)
            prc = FP_PARK_OK; /* a nap's end; the deadline below decides */
        if (timeout_ns > 0) {
            left = deadline - now_ns();
            if (left < 0)
                left = 0;
        }
    }
    if (STATE_OF(word) == FP_WAITER_GRANTED)
        return FP_SLOTS_OK; /* the releaser unlinked us before its store */
    if (STATE_OF(word) == FP_WAITER_WAITING) {
        /* Timed out (or park failed): withdraw.  Failing to means a releaser
         * granted us in the meantime; we own that slot. */
        if (withdraw(s, w, &st, NULL) == FP_SLOTS_CANCELLED)
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
    if (withdraw(s, w, &st, NULL) == FP_SLOTS_CANCELLED)
        return FP_SLOTS_CANCELLED;
    if (st == FP_WAITER_GRANTED) {
        *slot_out = w->slot;
        return FP_SLOTS_OK;
    }
    return FP_SLOTS_EINVAL;
}

/* Has the oldest waiter w waited fifo_after_ns?  Counted from when it was
 * queued, or from the last hand-off if that came later: once waiters have
 * waited that long, one is handed a slot per fifo_after_ns and barging goes
 * on in between, rather than the whole queue being served by hand-offs in a
 * row (a convoy again).  If so, notes the hand-off about to be made. */
static int starving_locked(fp_slots *s, const fp_waiter *w)
{
    int64_t now = now_ns();
    int64_t from = w->since > s->last_handoff ? w->since : s->last_handoff;
    if (now - from < fifo_after(s))
        return 0;
    s->last_handoff = now;
    return 1;
}

/* Waiters counted (or strict mode): under the mutex, hand the slot straight
 * to the oldest waiter if it must have it (strict mode, an async waiter, or
 * one that has waited fifo_after_ns), else put it in the ring and nudge that
 * waiter (still under the mutex, which is what keeps "free slot + linked
 * waiter" impossible in strict mode). */
static int release_locked(fp_slots *s, uint32_t slot)
{
    fp_pending_wake batch[WAKE_BATCH];
    int more = 0, n = 0, rc = FP_SLOTS_OK;
    lock(s);
    fp_waiter *w = s->head;
    if (w != NULL && (fifo_after(s) == 0 || w->wake != NULL || starving_locked(s, w))) {
        n = grant_locked(s, slot, &batch[0]);
    } else if (fp_ring_push(s->ring, slot) != FP_RING_OK) {
        rc = FP_SLOTS_EINVAL; /* ring full: a slot was released twice */
    } else if (w != NULL) {
        n = serve_locked(s, batch, &more);
    }
    unlock(s);
    notify_all(batch, n);
    if (more)
        serve(s);
    return rc;
}

int fp_slots_release(fp_slots *s, uint32_t slot)
{
    if (s == NULL || slot >= s->nslots)
        return FP_SLOTS_EINVAL;
    if (s->aside != NULL &&
        atomic_load_explicit(&s->aside[slot].owner, memory_order_relaxed) != 0)
        return FP_SLOTS_EINVAL; /* set aside, not held: released twice */

    /* The relaxed read is only a hint for picking a path: a stale 0 is
     * corrected by the RMW below, a stale non-zero costs one mutex trip. */
    if (fifo_after(s) == 0 || atomic_load_explicit(&s->nwaiters, memory_order_relaxed) != 0)
        return release_locked(s, slot);

    if (fp_ring_push(s->ring, slot) != FP_RING_OK)
        return FP_SLOTS_EINVAL; /* ring full: a slot was released twice */
    /* Dekker recheck: an RMW reads the latest count and orders our push
     * against every enqueuer's increment (see header). */
    if (atomic_fetch_add_explicit(&s->nwaiters, 0, memory_order_acq_rel) != 0)
        serve(s);
    return FP_SLOTS_OK;
}

int fp_slots_set_aside(fp_slots *s, uint32_t slot)
{
    if (s == NULL || slot >= s->nslots)
        return FP_SLOTS_EINVAL;
    if (s->aside == NULL || fifo_after(s) == 0 ||
        atomic_load_explicit(&s->nwaiters, memory_order_relaxed) != 0)
        return fp_slots_release(s, slot);
    uintptr_t token = my_token();
    /* seq_cst exchange, then a seq_cst load of nwaiters: an enqueuer either
     * counted itself before our load (we see it, and hand the slot over the
     * usual way) or its steal() comes after our exchange and sees the slot. */
    if (atomic_exchange(&s->aside[slot].owner, token) != 0)
        return FP_SLOTS_EINVAL; /* it was set aside already: released twice */
    unsigned h = hint_of(s);
    hints[h].s = s;
    hints[h].slot = slot;
    if (atomic_load(&s->nwaiters) != 0 &&
        atomic_compare_exchange_strong(&s->aside[slot].owner, &token, 0))
        return fp_slots_release(s, slot); /* (or a waiter already took it) */
    return FP_SLOTS_OK;
}

int fp_slots_make_strict(fp_slots *s)
{
    if (s == NULL)
        return FP_SLOTS_EINVAL;
    lock(s); /* under mu: a release deciding under mu sees the new mode */
    atomic_store_explicit(&s->fifo_after_ns, 0, memory_order_relaxed);
    unlock(s);
    serve(s); /* strict mode's invariant: no free slot while a waiter is linked */
    return FP_SLOTS_OK;
}

uint32_t fp_slots_waiting(const fp_slots *s)
{
    return atomic_load_explicit(&((fp_slots *)s)->nwaiters, memory_order_relaxed);
}

uint32_t fp_slots_free_count(const fp_slots *s)
{
    return fp_ring_size(s->ring) + aside_count(s);
}

uint32_t fp_slots_capacity(const fp_slots *s)
{
    return s->nslots;
}
