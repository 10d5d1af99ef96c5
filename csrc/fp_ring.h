/*
 * fp_ring.h - bounded multi-producer / multi-consumer lock-free ring of
 * uint32_t values (slot indices), built from sequence-numbered cells in the
 * style of Vyukov's bounded queue.
 *
 * Difference from the textbook Vyukov queue (and why)
 *   There, a producer claims a position by CAS on the tail counter and only
 *   later publishes the cell; a consumer claims by CAS on the head counter
 *   and only later frees the cell.  A thread preempted between those two
 *   steps makes pushes report FULL and pops report EMPTY although the ring
 *   is neither (the stress test hit FULL with 8 values in an 8-cell ring).
 *   A slot dispenser cannot live with a push that fails.  Here each cell is
 *   ONE 64-bit atomic word = (40-bit sequence tag << 24) | 24-bit value, so
 *   "claim + publish" and "claim + free" are each a single CAS on the cell;
 *   the head/tail counters are only hints advanced afterwards by whoever
 *   notices they lag (helping).  Consequences:
 *     - lock-free, and a preempted thread never blocks the others;
 *     - FULL and EMPTY are exact (linearizable): all operations are seq_cst,
 *       which on x86-64 and AArch64 costs nothing over acq_rel here because
 *       every write is a CAS;
 *     - so if at most `capacity` distinct values circulate (each one held by
 *       exactly one party: the ring or one thread), push never fails.
 *
 * Capacity and values
 *   fp_ring_new() rounds min_capacity up to a power of two (an index is a
 *   mask, not a division) and to at least 2 (with one cell, "published" and
 *   "free for the next lap" would carry the same tag).
 *   Valid min_capacity: 1 .. FP_RING_MAX_CAPACITY (2^24).
 *   Valid values: 0 .. FP_RING_MAX_VALUE (2^24 - 1); larger ones are
 *   rejected with FP_RING_EINVAL.  24 value bits leave 40 tag bits: a
 *   stale-tag ABA would need 2^40 ring operations while one thread sits
 *   suspended inside a three-instruction window.
 *   All memory is allocated by fp_ring_new(); push/pop never allocate,
 *   never block and never take a lock.
 *
 * Ownership
 *   The creator owns the ring and must call fp_ring_free() exactly once,
 *   after every other thread has stopped using it.  Values are plain
 *   copies; the ring owns nothing they may refer to.
 *
 * Memory ordering
 *   Every access is seq_cst.  In particular a successful push is a release
 *   and the pop returning that value an acquire on the same cell word, so
 *   everything the pusher wrote before fp_ring_push() happens-before
 *   everything the popper does after fp_ring_pop().
 */
#ifndef FP_RING_H
#define FP_RING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define FP_RING_OK     0
#define FP_RING_FULL   1  /* push: ring holds `capacity` values */
#define FP_RING_EMPTY  2  /* pop: ring holds no value */
#define FP_RING_EINVAL 3  /* push: value > FP_RING_MAX_VALUE */

#define FP_RING_MAX_CAPACITY (1u << 24)
#define FP_RING_MAX_VALUE    0xFFFFFFu

typedef struct fp_ring fp_ring;

/* NULL if min_capacity is 0 or > FP_RING_MAX_CAPACITY, or on allocation
 * failure.  The new ring is empty. */
fp_ring *fp_ring_new(uint32_t min_capacity);

/* NULL is accepted.  No other thread may use the ring concurrently. */
void fp_ring_free(fp_ring *ring);

/* FP_RING_OK, FP_RING_FULL, or FP_RING_EINVAL (value too large).
 * Lock-free, safe from any number of threads. */
int fp_ring_push(fp_ring *ring, uint32_t value);

/* FP_RING_OK with *out set, or FP_RING_EMPTY (*out untouched). */
int fp_ring_pop(fp_ring *ring, uint32_t *out);

/* Actual (rounded) capacity.  Immutable, exact. */
uint32_t fp_ring_capacity(const fp_ring *ring);

/* Approximate number of queued values (the counters it reads may lag by a
 * few operations); only for statistics, never for correctness decisions. */
uint32_t fp_ring_size(const fp_ring *ring);

#ifdef __cplusplus
}
#endif

#endif /* FP_RING_H */
