/*
 * fp_fencelock.h - wait for a byte-range lock that another process holds, without owning
 * it in this process's POSIX lock bookkeeping.
 *
 * A child forked while its parent was inside a SQLite write transaction inherits a copy of
 * that connection: SQLite's per-process lock bookkeeping in the child says "this process
 * holds the WAL write lock", while the kernel says the parent does. Closing the copy rolls
 * back, which edits the shared -shm index; that is only safe once the parent's transaction
 * is over and nobody else writes. This module takes that write lock (the -shm file's byte
 * 120, WAL_WRITE_LOCK in SQLite's documented shm layout) as an open-file-description lock:
 * it excludes every other process's writer like SQLite's own lock does, but it belongs to
 * our descriptor, not to the process, so neither SQLite's unlocks nor its closes in this
 * process touch it.
 *
 * There is no timed blocking wait for fcntl locks, so the wait polls with a growing sleep
 * (1 ms up to 16 ms), as SQLite's own busy handler does. It runs once, in a child, after
 * such a fork: never on a hot path.
 *
 * The descriptor stays open after fp_fencelock_release(): closing any descriptor of a
 * file drops every POSIX lock this process holds on it, including those of live SQLite
 * connections. The caller keeps the number and never closes it while SQLite may use the
 * file (a process-lifetime descriptor per fork recovery).
 *
 * Linux only (F_OFD_SETLK); elsewhere FP_FENCELOCK_UNSUPPORTED. Pure C11.
 */
#ifndef FP_FENCELOCK_H
#define FP_FENCELOCK_H

#include <stdint.h>

#define FP_FENCELOCK_OK            0
#define FP_FENCELOCK_TIMEOUT       1   /* still held by someone else at the deadline */
#define FP_FENCELOCK_ERROR       (-1)  /* a system call failed: errno says which */
#define FP_FENCELOCK_UNSUPPORTED (-2)  /* no open-file-description locks here */

/* Offset of SQLite's WAL write lock in the -shm file (walformat: locks at bytes 120-127). */
#define FP_SHM_WRITE_LOCK_OFFSET 120

/* Open `path` (never creating it, never following a symlink) and take a write lock on the
 * byte at `offset`, waiting at most timeout_ns (< 0: no limit). On FP_FENCELOCK_OK *fd_out
 * is the descriptor holding the lock; otherwise *fd_out is -1 and nothing is left open. */
int fp_fencelock_acquire(const char *path, int64_t offset, int64_t timeout_ns, int *fd_out);

/* Drop the lock taken on `fd` at `offset`; the descriptor stays open (see above). */
int fp_fencelock_release(int fd, int64_t offset);

#endif /* FP_FENCELOCK_H */
