/*
 * fp_park.h - block a thread until a 32-bit atomic word changes.
 *
 * A minimal futex-like primitive: fp_park_wait() sleeps while *word still
 * equals `expected`; another thread changes the word and then calls
 * fp_park_wake_one()/fp_park_wake_all() on the same address.
 *
 * Implementation
 *   Linux (unless FP_PARK_FORCE_CONDVAR is defined): futex(2) with
 *   FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE, i.e. process-private words.
 *   Elsewhere: a fixed table of FP_PARK_BUCKETS mutex+condvar buckets, the
 *   word's address hashed to a bucket (CLOCK_MONOTONIC condvars where the
 *   platform has pthread_condattr_setclock, a relative wait on Apple).
 *   Either way at most FP_PARK_SPIN pause-instruction iterations are spent
 *   re-reading the word before going to sleep; there is no polling sleep.
 *
 * Ownership / lifetime
 *   The word is owned by the caller.  The wake functions use only the
 *   ADDRESS of the word (futex key / bucket hash) and never dereference it,
 *   so it is safe to call them after the waiter may have returned and
 *   released the memory; at worst that is a spurious wakeup for whatever
 *   reuses the address, which fp_park_wait() absorbs by re-checking.
 *
 * Memory ordering
 *   The waker must modify *word (any memory order) BEFORE calling a wake
 *   function.  fp_park_wait() reads the word with acquire ordering, so when
 *   it returns FP_PARK_OK because the word changed, everything written
 *   before the (release or stronger) store that changed it is visible.
 *   No wake-up is lost: futex compares the word inside the kernel; the
 *   fallback re-checks the word under the bucket mutex and the waker takes
 *   that mutex (see fp_park.c for the waiter-count handshake).
 *
 * Semantics
 *   Return FP_PARK_OK only once *word != expected has been observed.  A
 *   wake without a change of the word is treated as spurious (the caller
 *   keeps sleeping), as are EINTR and condvar spurious wakeups; timeouts
 *   are measured against a CLOCK_MONOTONIC deadline computed on entry, so
 *   retries never extend the total wait.
 *   Word size is exactly 32 bits because that is what futex(2) compares.
 *
 * C11 only (uses <stdatomic.h> types in the interface).
 */
#ifndef FP_PARK_H
#define FP_PARK_H

#include <stdatomic.h>
#include <stdint.h>

/* Return codes of fp_park_wait(). */
#define FP_PARK_OK       0
#define FP_PARK_TIMEOUT  1  /* deadline passed and *word still == expected */
#define FP_PARK_ERROR   (-1) /* unexpected futex/pthread failure, or the
                                fallback bucket table failed to initialise */

/* Bounded busy re-check before sleeping (each iteration one pause). */
#define FP_PARK_SPIN 64

/* Number of mutex+condvar buckets in the non-futex fallback. */
#define FP_PARK_BUCKETS 64

/* Atomic 32-bit word type (named so bindings, e.g. Cython, can refer to
 * it without spelling _Atomic). */
typedef _Atomic uint32_t fp_atomic_u32;

/* Sleep while *word == expected.
 * timeout_ns < 0: no timeout; 0: check once, never sleep.
 * Returns FP_PARK_OK (word observed != expected), FP_PARK_TIMEOUT, or
 * FP_PARK_ERROR. */
int fp_park_wait(fp_atomic_u32 *word, uint32_t expected, int64_t timeout_ns);

/* Wake one / all threads parked on `word`.  The fallback may wake more
 * threads than asked (buckets are shared); they re-check and sleep again.
 * Never blocks for longer than a bucket mutex hold (a few instructions). */
void fp_park_wake_one(fp_atomic_u32 *word);
void fp_park_wake_all(fp_atomic_u32 *word);

#endif /* FP_PARK_H */
