/*
 * fp_slots.h - slot dispenser: hands out indices 0..nslots-1 (pool slots for
 * readers, or the single writer slot) to threads and asyncio tasks, with a
 * FIFO queue of parked waiters, and a hand-off policy that bounds how long a
 * waiter can be passed over without forcing a context switch per hand-off.
 *
 * Structure
 *   - an fp_ring holding the indices of free slots (lock-free fast path);
 *   - a doubly linked FIFO of fp_waiter nodes, protected by a pthread mutex
 *     that is held only for list/ring operations, never while sleeping and
 *     never while calling a waiter's wake callback;
 *   - `nwaiters`, an atomic count of waiters that are linked or about to
 *     be (see the Dekker argument below);
 *   - slots set aside (fp_slots_set_aside): free slots kept out of the ring
 *     for the thread that gave them back, a word per slot holding that thread's
 *     token.
 *
 * Waiter states and who may change them
 *   IDLE      -> set by fp_waiter_init(); the node is not in any queue.
 *   WAITING   -> set by fp_slots_enqueue() under the mutex; the node is
 *                linked.  A node is linked  <=>  its state is WAITING.
 *                A "nudge" (barging mode) bumps the upper bits of the word
 *                (FP_WAITER_NUDGE) and leaves it WAITING: it only wakes the
 *                waiter to look at the ring.
 *   GRANTED   -> by enqueue (immediate grant, node never linked) or by a
 *                releaser (CAS WAITING->GRANTED under the mutex after
 *                unlinking the node).  w->slot is valid and OWNED by the
 *                waiter's owner, who must eventually fp_slots_release() it.
 *   CANCELLED -> by fp_slots_wait() on timeout or by fp_slots_cancel()
 *                (WAITING->CANCELLED under the mutex, with the unlink).
 *   GRANTED also by fp_slots_wait() itself in barging mode, when the waiter
 *                took a slot from the ring (WAITING->GRANTED under the
 *                mutex, with the unlink).
 *   Every change of a linked node's word happens under the mutex, so
 *   exactly one of "granted" / "cancelled" wins for each enqueued waiter.
 *   A node may be enqueued again once it is not WAITING; an async node
 *   only after the wake callback of its previous grant (if any) has fired.
 *
 * Ownership / lifetime of fp_waiter
 *   The caller owns the node (stack or heap).  While it is WAITING the
 *   dispenser holds a pointer to it; it must stay valid until:
 *     sync waiter  (wake == NULL): fp_slots_wait() has returned.  Releasers
 *        touch the node only under the mutex before granting it, and after
 *        the grant only use the ADDRESS &w->state for fp_park_wake_one()
 *        (harmless if the memory was reused: spurious wake-up).
 *     async waiter (wake != NULL): until the outcome is known AND, if it was
 *        granted by a releaser, wake(w) has been invoked.  NOTE: a releaser
 *        calls wake(w) outside the mutex, after the grant, so wake(w) may
 *        run after fp_slots_cancel() has already returned 0 for the same
 *        node; the owner must keep the node alive until its wake callback
 *        has fired.  The dispenser never touches the node after calling
 *        wake(w), so the callback may hand the node back to its owner as
 *        its very last action.
 *
 * wake callback
 *   Called exactly once per grant made by fp_slots_release(), by the
 *   releasing thread, OUTSIDE the mutex, after the state became GRANTED
 *   (so the callee may read w->state / w->slot).  NOT called for an
 *   immediate grant returned by fp_slots_enqueue() (the return value
 *   already says so).  It must not block: it delays the releasing thread,
 *   which may be a pool user returning a connection (writing an eventfd or
 *   a pipe byte is the intended use).  Running outside the mutex, it could
 *   call fp_slots functions without deadlocking, but should not need to.
 *   wake == NULL means the waiter sleeps in fp_slots_wait() and is woken
 *   with fp_park_wake_one(&w->state).
 *
 * Memory ordering ("no lost wake-up, no lost slot, no slot handed twice")
 *   Handing a slot to someone is always a release, taking it an acquire:
 *   ring push/pop (cell sequence numbers), or the release-CAS of
 *   w->state to GRANTED paired with the waiter's acquire load.  So the
 *   previous holder's writes to slot-protected data happen-before the next
 *   holder's reads.
 *
 *   Handed twice: a slot index is in exactly one place at a time: the
 *   ring (each pushed value is popped at most once), a thread's hands, or
 *   a granted waiter (a waiter is unlinked under the mutex before its
 *   CAS, and WAITING->GRANTED can succeed once).  Release hands the slot
 *   either to one waiter or to the ring, never both.
 *
 *   Lost slot: a timed-out/cancelled waiter withdraws with a CAS
 *   WAITING->CANCELLED under the mutex.  If that CAS fails the waiter was
 *   already GRANTED, and fp_slots_wait()/fp_slots_cancel() then return 0
 *   with the slot, so the caller owns it and must release it.
 *
 *   Lost wake-up (a waiter sleeping while a slot sits in the ring):
 *   The ring is linearizable (exact FULL/EMPTY, seq_cst, see fp_ring.h).
 *   strict FIFO (fifo_after_ns == 0): every push and every enqueue happens
 *     under the mutex; a release pushes only if no waiter is linked, an
 *     enqueue links only if its pop found the ring empty.  So a linked
 *     waiter and a free slot never coexist, and there is nothing to lose.
 *   barging: a release may push without the mutex.  Protocol:
 *     enqueuer E:  lock; RMW nwaiters += 1; pop; if EMPTY link, unlock.
 *     releaser R:  push; RMW nwaiters += 0; if it read != 0: lock and serve
 *                  (grant ring slots to async heads, nudge as many sync
 *                  waiters as the ring holds slots).
 *     Every modification of nwaiters is an RMW (increments, decrements
 *     and the "+= 0"), so they form one modification order in which each
 *     later acq_rel RMW synchronizes with each earlier one.
 *     - R's RMW before E's: R's push happens-before E's pop, so E's pop
 *       is after the push in the seq_cst order and cannot report EMPTY
 *       while R's slot is still in the ring; E takes a slot.
 *     - E's RMW before R's: R reads a count that includes E (unless E has
 *       already been unlinked) and serves under the mutex, after E linked.
 *     A sync waiter reads its word, then pops, then parks only while the
 *     word is unchanged.  A slot pushed after its pop is followed by a
 *     serve that nudges it (or a waiter ahead of it), which changes the
 *     word: the park returns at once or is woken.  The serve skips a
 *     waiter that is quiet or already nudged (see "Quiet waiters"): a quiet
 *     one parks with its spell's end as deadline and looks then, a nudged
 *     one has yet to look (it sets its spell under the mutex, then looks
 *     once more), so a free slot waits at most one spell.  A nudged waiter
 *     that leaves (took a slot, timed out, cancelled) serves again under
 *     the mutex as it unlinks, so a nudge is never lost with it.
 *     (An RMW rather than a seq_cst fence + load: the same guarantee,
 *     provable from happens-before alone, and visible to ThreadSanitizer,
 *     which does not model fences; gcc also warns about fences under
 *     -fsanitize=thread.)
 *
 * Order: strict FIFO or bounded barging
 *   fifo_after_ns == 0 (strict FIFO): every release hands the slot to the
 *   oldest waiter, and nobody takes a free slot past a linked waiter.
 *   Fair, but under load each hand-off wakes a sleeping thread and the
 *   releaser, wanting the slot again, must queue and sleep: one context
 *   switch per hand-off (a lock convoy).
 *   fifo_after_ns > 0 (barging): a release puts the slot in the ring and
 *   nudges the oldest sync waiter, and a running thread may take the slot
 *   first (the releaser itself, typically, going round its loop), which
 *   costs no context switch.  Once the oldest waiter has waited
 *   fifo_after_ns, the next release hands the slot straight to it, as in
 *   strict mode (the idea of Go's sync.Mutex starvation mode), and the
 *   clock starts again for the next waiter: one hand-off per fifo_after_ns
 *   while waiters are that old, barging in between.  (Handing the whole
 *   queue over in a row would be a convoy again: measured, it halved the
 *   throughput of 8 writer threads.)  So a sync waiter is passed over for
 *   at most fifo_after_ns for itself and for each waiter queued ahead of
 *   it, plus the time the slot is held when the bound comes.
 *   Async waiters (wake != NULL) are always handed slots in FIFO order.
 *
 * Quiet waiters (barging)
 *   A nudge that finds the slot gone (the releaser took it back, going
 *   round its loop) was a wasted wake-up, paid by the releaser on its own
 *   critical path (a futex wake of a sleeping thread, an IPI).  So a nudged
 *   waiter that finds nothing turns quiet: releasers stop nudging it until
 *   quiet_until, and it sleeps with that deadline and looks at the ring
 *   itself when it passes.  Each fruitless look doubles the spell (from
 *   FP_SLOTS_QUIET_FIRST_NS up to fifo_after_ns or FP_SLOTS_QUIET_MAX_NS,
 *   the smaller).  A quiet waiter counts against the free slots it would
 *   have been nudged for, so nobody behind it is nudged instead.  What it
 *   costs: a slot that stays free (its releaser went away) waits at most
 *   one spell for the quiet waiter to look; the fairness bound is the same,
 *   since hand-offs to a waiter that has waited fifo_after_ns do not depend
 *   on nudges.  Measured with 8 threads looping on the writer slot
 *   under the GIL: 7-8 % of the releasing thread's time had gone to waking
 *   waiters that then found nothing.
 *
 * Slots set aside (thread affinity)
 *   fp_slots_set_aside() gives a slot back like fp_slots_release(), but
 *   while no waiter is counted (and not in strict mode) keeps it out of the
 *   ring, marked with the releasing thread's token.  fp_slots_try_acquire()
 *   looks first for the slot this thread set aside last (one CAS on a line
 *   only that slot uses), then at the ring, then takes a slot anyone set
 *   aside; so does fp_slots_enqueue() before it links a waiter.  A thread
 *   that keeps coming back gets the same slot, its connection warm in that
 *   core's cache, and with the GIL off two threads write no line in common.
 *   No lost wake-up: the thread setting a slot aside exchanges its token in,
 *   then reads nwaiters; an enqueuer increments nwaiters, then looks for
 *   slots set aside (all seq_cst).  So either the first sees the waiter, and
 *   takes the slot back to release it the usual way, or the enqueuer sees
 *   the slot and takes it; both may, and one CAS decides.  A slot set aside
 *   counts as free (fp_slots_free_count).  Only dispensers of up to
 *   FP_SLOTS_ASIDE_MAX slots set slots aside (a line each); larger ones
 *   release instead.
 *
 * Capacity
 *   1 <= nslots <= FP_SLOTS_MAX.  Slot indices are 0..nslots-1.  Releasing an
 *   index that is not held is undefined; out-of-range indices and detected
 *   double releases return FP_SLOTS_EINVAL.  No allocation after
 *   fp_slots_new(); the waiter queue lives in the callers' nodes.
 *
 * Return codes: 0 (FP_SLOTS_OK) is success; positive codes are expected
 * outcomes; negative codes are errors.  C11 only.
 */
#ifndef FP_SLOTS_H
#define FP_SLOTS_H

#include <stdint.h>

#include "fp_park.h" /* fp_atomic_u32 */

#define FP_SLOTS_OK         0
#define FP_SLOTS_EMPTY      1  /* try_acquire: no free slot */
#define FP_SLOTS_QUEUED     2  /* enqueue: waiter linked, state WAITING */
#define FP_SLOTS_TIMEOUT    3  /* wait: timed out and withdrawn */
#define FP_SLOTS_CANCELLED  4  /* cancel/wait: waiter withdrawn, no slot */
#define FP_SLOTS_EINVAL   (-1) /* bad argument or waiter in wrong state */
#define FP_SLOTS_ERROR    (-2) /* parking failed (fp_park_wait error); the
                                  waiter was withdrawn, no slot held */

#define FP_SLOTS_MAX (1u << 24)
/* Dispensers of more slots than this never set one aside (see "Slots set
 * aside"). */
#define FP_SLOTS_ASIDE_MAX 256u

/* A quiet waiter's first spell (see "Quiet waiters"): about one wake-up's
 * latency on a busy machine, so a slot left free is seen soon; and its
 * longest, whatever fifo_after_ns is. */
#define FP_SLOTS_QUIET_FIRST_NS 50000
#define FP_SLOTS_QUIET_MAX_NS 1000000

/* fp_waiter.state values (the low bits of the word: FP_WAITER_STATE_MASK;
 * the upper bits count nudges, see above) */
#define FP_WAITER_IDLE      0u
#define FP_WAITER_WAITING   1u
#define FP_WAITER_GRANTED   2u
#define FP_WAITER_CANCELLED 3u
#define FP_WAITER_STATE_MASK 3u
#define FP_WAITER_NUDGE     4u

struct fp_waiter;
/* See "wake callback" above. */
typedef void (*fp_wake_fn)(struct fp_waiter *);

typedef struct fp_waiter {
    fp_atomic_u32 state;   /* FP_WAITER_* | nudges; read with fp_waiter_state() */
    uint32_t slot;         /* valid once state == GRANTED */
    int64_t since;         /* CLOCK_MONOTONIC ns when queued (sync, barging) */
    int64_t quiet_until;   /* sync, barging: no nudges before this (ns); written
                              by the waiter under mu, read by releasers under mu */
    int64_t backoff;       /* sync, barging: its last quiet spell (ns); the
                              waiter's own (written under mu with quiet_until) */
    struct fp_waiter *prev, *next; /* queue links, owned by the dispenser */
    fp_wake_fn wake;       /* NULL: sync waiter (fp_slots_wait) */
    void *user;            /* free for the owner (e.g. the asyncio facade) */
} fp_waiter;

typedef struct fp_slots fp_slots;

/* Initialise a node: state IDLE, links NULL, slot UINT32_MAX.  Call once
 * before first use (atomic_init semantics: no other thread may see it). */
void fp_waiter_init(fp_waiter *w, fp_wake_fn wake, void *user);

/* FP_WAITER_*: acquire load of w->state, nudges masked off. */
uint32_t fp_waiter_state(const fp_waiter *w);

/* nslots in 1..FP_SLOTS_MAX; all slots start free.  fifo_after_ns: 0 for
 * strict FIFO, > 0 for barging until the oldest waiter has waited that long
 * (see "Order").  NULL on bad argument or allocation/mutex-init failure. */
fp_slots *fp_slots_new(uint32_t nslots, int64_t fifo_after_ns);

/* NULL accepted.  No thread may use it concurrently and no waiter may
 * still be WAITING (they would be left dangling). */
void fp_slots_free(fp_slots *s);

/* Lock-free: the slot this thread set aside last, else one from the ring,
 * else one any thread set aside.  FP_SLOTS_OK with *slot set,
 * FP_SLOTS_EMPTY, or FP_SLOTS_EINVAL (NULL argument). */
int fp_slots_try_acquire(fp_slots *s, uint32_t *slot);

/* Under the mutex: if a slot is free, take it: returns FP_SLOTS_OK,
 * w->slot set, w->state GRANTED, node not queued, wake NOT called.
 * Otherwise append w at the tail: FP_SLOTS_QUEUED, state WAITING.
 * FP_SLOTS_EINVAL if an argument is NULL or w is already WAITING.
 * w->wake and w->user must be set before the call. */
int fp_slots_enqueue(fp_slots *s, fp_waiter *w);

/* Sync waiters only (w->wake == NULL), called by the waiter's owner after
 * fp_slots_enqueue().  Sleeps until granted (in barging mode also until it
 * takes a slot from the ring when nudged) or timeout_ns elapses (< 0
 * forever, 0 = just check).
 *   FP_SLOTS_OK        granted (also if the grant raced with the timeout);
 *                      w->slot is owned by the caller.
 *   FP_SLOTS_TIMEOUT   timed out, withdrawn from the queue, no slot.
 *   FP_SLOTS_CANCELLED someone fp_slots_cancel()ed it (misuse: cancel is for
 *                      the owner); no slot.
 *   FP_SLOTS_ERROR     fp_park_wait failed; withdrawn, no slot.
 *   FP_SLOTS_EINVAL    NULL argument, wake != NULL, or w not enqueued. */
int fp_slots_wait(fp_slots *s, fp_waiter *w, int64_t timeout_ns);

/* Withdraw an enqueued waiter (meant for async waiters; the owner calls it,
 * never concurrently with fp_slots_wait on the same node).
 *   FP_SLOTS_CANCELLED it was still WAITING: unlinked, state CANCELLED.
 *   FP_SLOTS_OK        it had already been GRANTED: *slot_out = its slot,
 *                      which the caller now owns and must release.  (For an
 *                      async node its wake callback may still be pending.)
 *   FP_SLOTS_EINVAL    NULL argument, or w neither WAITING nor GRANTED.
 * Calling it twice on a GRANTED node returns the slot twice: don't. */
int fp_slots_cancel(fp_slots *s, fp_waiter *w, uint32_t *slot_out);

/* Give a held slot back: to the oldest WAITING waiter when it must have it
 * (strict mode, an async waiter, or one that has waited fifo_after_ns; its
 * wake then runs, outside the mutex, on this thread), else to the free ring,
 * nudging sync waiters (see "Order").  Barging mode pushes without the
 * mutex when no waiter is counted.
 * FP_SLOTS_OK, or FP_SLOTS_EINVAL (NULL, slot >= nslots, or the free ring
 * overflowed, which can only be a double release). */
int fp_slots_release(fp_slots *s, uint32_t slot);

/* Give a held slot back, set aside for this thread when no waiter is
 * counted (see "Slots set aside"); otherwise exactly fp_slots_release().
 * FP_SLOTS_OK, or FP_SLOTS_EINVAL (NULL, slot >= nslots, a double release). */
int fp_slots_set_aside(fp_slots *s, uint32_t slot);

/* Switch to strict FIFO from now on (a pool that is closing: every waiter is served, in
 * order, before the closer collects the slots).  Slots in the ring go to the waiters
 * linked.  FP_SLOTS_OK, or FP_SLOTS_EINVAL for NULL. */
int fp_slots_make_strict(fp_slots *s);

/* Approximate, racy counts for statistics only. */
uint32_t fp_slots_waiting(const fp_slots *s);
uint32_t fp_slots_free_count(const fp_slots *s);
uint32_t fp_slots_capacity(const fp_slots *s); /* nslots, exact */

#endif /* FP_SLOTS_H */
