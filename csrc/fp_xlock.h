/*
 * fp_xlock.h - a cross-process writer lock that waiters sleep on in the kernel.
 *
 * SQLite's own answer to a write lock held by another process is to sleep and
 * retry (its busy handler): a waiter notices a release only when it next wakes
 * up, and whoever happens to retry first wins, so waits are long and unfair.
 * This lock sits in front of BEGIN IMMEDIATE: one 32-bit word in a small side
 * file mapped MAP_SHARED by every process using the database. Waiters sleep
 * on it with a shared futex and the releaser wakes exactly one of them, in
 * the kernel's (FIFO for equal priority) order.
 *
 * The word holds the owner's process id (plus a WAITERS bit), not a thread
 * id, so any thread of the owning process may release it (a pool lease can be
 * returned from another thread). A process killed while holding it leaves its
 * pid behind: a waiter that has slept FP_XLOCK_PROBE_NS checks with kill(pid,
 * 0) whether that process still exists and, if not, takes the lock over.
 * (Processes in different pid namespaces sharing one file are not supported:
 * their pids mean nothing to each other.)
 *
 * Ownership: fp_xlock_open() allocates the handle; fp_xlock_close() frees it
 * and unmaps the page (it does not release a held lock: the owner must).
 * The file descriptor is closed as soon as the page is mapped.
 *
 * Linux only (shared futexes). Elsewhere fp_xlock_open() returns
 * FP_XLOCK_UNSUPPORTED and callers go on without the lock.
 *
 * Pure C11, no Python.h, no sqlite3.h. Every function returns a code.
 */
#ifndef FP_XLOCK_H
#define FP_XLOCK_H

#include <stdint.h>

#define FP_XLOCK_OK            0
#define FP_XLOCK_TIMEOUT       1   /* the deadline passed; the lock is not held */
#define FP_XLOCK_ERROR       (-1)  /* a system call failed: errno says which */
#define FP_XLOCK_UNSUPPORTED (-2)  /* no shared futexes on this platform */

/* How long a waiter sleeps before it checks that the owner is still alive. */
#define FP_XLOCK_PROBE_NS (100 * 1000 * 1000)

typedef struct fp_xlock fp_xlock;

/* Open (creating if needed) the lock file at `path` and map its lock word.
 * On FP_XLOCK_OK *out is a new handle; otherwise *out is NULL. */
int fp_xlock_open(const char *path, fp_xlock **out);

/* Take the lock, sleeping at most timeout_ns (< 0: no limit, 0: try once).
 * FP_XLOCK_OK, FP_XLOCK_TIMEOUT or FP_XLOCK_ERROR. Not reentrant: a process
 * that already holds it waits for itself until the timeout. */
int fp_xlock_acquire(fp_xlock *lock, int64_t timeout_ns);

/* Release a lock this process holds: FP_XLOCK_OK, or FP_XLOCK_ERROR when it
 * was not held by this process (nothing is changed then). */
int fp_xlock_release(fp_xlock *lock);

/* Number of times this handle took the lock over from a dead process. */
uint64_t fp_xlock_takeovers(const fp_xlock *lock);

/* Unmap and free; NULL is allowed. */
void fp_xlock_close(fp_xlock *lock);

#endif /* FP_XLOCK_H */
