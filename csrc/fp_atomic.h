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

#endif /* FP_ATOMIC_H */
