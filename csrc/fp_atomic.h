/*
 * fp_atomic.h - atomic counters and flags for code that cannot spell _Atomic
 * (the Cython core): plain functions over C11 atomics.
 *
 * Counters are relaxed: they are statistics, read without ordering against
 * anything else.  Versions count changes to data guarded elsewhere: bumped
 * (release) after the change, read (acquire) before the data, so a reader that
 * sees a count also sees every change made before it was reached.  Flags are release on store and acquire on load, so data
 * written before setting a flag is visible to a thread that sees it set.
 */
#ifndef FP_ATOMIC_H
#define FP_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

#include "fp_park.h" /* fp_atomic_u32 */

typedef _Atomic uint64_t fp_atomic_u64;

void fp_counter_init(fp_atomic_u64 *c);
void fp_counter_add(fp_atomic_u64 *c, uint64_t n);
uint64_t fp_counter_get(const fp_atomic_u64 *c);

void fp_version_bump(fp_atomic_u64 *v);
uint64_t fp_version_get(const fp_atomic_u64 *v);

void fp_flag_store(fp_atomic_u32 *f, uint32_t value);
uint32_t fp_flag_load(const fp_atomic_u32 *f);
/* Set to `value` and return what it was (acq_rel). */
uint32_t fp_flag_exchange(fp_atomic_u32 *f, uint32_t value);
/* Set to `value`, then a full (seq_cst) fence: two threads that each store their own flag
 * and then load the other's cannot both miss the other's store (Dekker). */
void fp_flag_store_fenced(fp_atomic_u32 *f, uint32_t value);

/* Counters kept per slot, each slot's on a cache line of its own: the holder of a slot
 * bumps its line, so threads holding different slots never write the same line (one
 * counter bumped by every reader checkout cost two free-threaded reader threads a tenth
 * of their reads).  Sums are read without ordering, like the counters above. */
#define FP_SLOT_COUNTER_KINDS 4
typedef struct fp_slot_counters fp_slot_counters;

/* NULL if nslots is 0 or on allocation failure; all counters 0.  Owned by the caller. */
fp_slot_counters *fp_slot_counters_new(uint32_t nslots);
void fp_slot_counters_free(fp_slot_counters *c); /* NULL accepted */
/* kind < FP_SLOT_COUNTER_KINDS and slot < nslots, unchecked (the callers pass constants
 * and slots they hold). */
void fp_slot_counter_add(fp_slot_counters *c, uint32_t slot, uint32_t kind, uint64_t n);
uint64_t fp_slot_counter_sum(const fp_slot_counters *c, uint32_t kind);

#endif /* FP_ATOMIC_H */
