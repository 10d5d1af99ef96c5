/*
 * fp_xlock.h - a cross-process writer lock that waiters sleep on in the kernel.
 *
 * SQLite's own answer to a write lock held by another process is to sleep and
 * retry (its busy handler): a waiter notices a release only when it next wakes
 * up, and whoever happens to retry first wins, so waits are long and unfair.
 * This lock sits in front of BEGIN IMMEDIATE: one 32-bit word in a small side
 * file mapped MAP_SHARED by every process using the database. Waiters sleep
 * on it with a shared futex and the releaser wakes exactly one of them, in
 * the kernel's (FIFO for equal priority) order. fp_xlock_release frees the
 * word: whoever runs first takes it, often the releasing process's next
 * writer (throughput; a Pool bounds that by its batch). fp_xlock_hand_over
 * hands the lock on: the word goes from the owner to XLOCK_HANDOFF (no
 * owner, waiters bit set), which only a writer that was already waiting takes
 * (the one woken, or one about to sleep), so a writer that arrives after the
 * release (the releasing process's next one, say) queues behind them; when no
 * waiter slept (the waiters bit was left by one that gave up) the word is
 * freed at once. A hand-off
 * nobody takes for a whole probe interval (the woken waiter died or gave up)
 * is taken by the next waiter that probes. Waiters that time out to probe
 * re-enter the kernel's queue at its end, so order among waiters of several
 * processes is FIFO only within FP_XLOCK_PROBE_NS. (A fastpool from before
 * the hand-off sees XLOCK_HANDOFF as a live owner and waits until a newer
 * process takes and releases it.) It only adds queueing: SQLite's
 * own locks still decide who may write, so a caller that cannot use this lock
 * (any code but FP_XLOCK_OK from fp_xlock_open) stays correct without it.
 *
 * The side file (layout version 2):
 *   bytes 0-3   magic "fpl2" (version 1 pages, magic "fplk", are recognised
 *               and converted: their word at byte 4 is left alone, so a
 *               version-1 process and a version-2 one never share a word);
 *               (Version 1 processes cannot share the file with version 2 ones:
 *               their open takes a whole-file POSIX lock, which waits for as long
 *               as any version-2 handle holds its token byte lock.)
 *   bytes 64-67 the lock word: 0 when free, else the owner's token | WAITERS;
 *   4096 bytes in all, really allocated (posix_fallocate, or written zeros
 *   where the filesystem cannot), so a store into the page never meets a
 *   missing block (SIGBUS on a full disk).
 *
 * Liveness. Every handle keeps the file open (O_CLOEXEC) and, for its whole
 * life, holds an open-file-description lock (F_OFD_SETLK) on one byte past the
 * page, at FP_XLOCK_TOKEN_BASE + token, for a random 31-bit token no other
 * live handle holds. The word holds that token, not a pid, so any thread of
 * the owning process may release it (a pool lease can be returned from
 * another thread). The kernel drops the byte lock when the last descriptor of
 * that open file description is closed, i.e. when the holder's process dies,
 * in any pid namespace and whatever pid the kernel hands out next. A waiter
 * probes the owner's byte with F_OFD_GETLK once when it first has to wait and
 * then every FP_XLOCK_PROBE_NS; if nothing holds it, the owner is gone and
 * the waiter takes the word over with one compare-and-swap (one waiter wins).
 * A handle never takes the lock over from its own token (it is not
 * reentrant: it waits for itself until its timeout).
 *
 * Fork: a child shares its parent's open file descriptions, so through an
 * inherited handle it would see the parent's byte locks as its own. The child
 * must fp_xlock_forget_after_fork() every inherited handle (closes its
 * descriptor copy and unmaps; the parent's locks stay with the parent) and
 * open a handle of its own.
 *
 * Hostile side files. fp_xlock_open() opens the file like SQLite opens -wal
 * and -shm: O_NOFOLLOW (no symlinks), then fstat. It returns FP_XLOCK_REFUSED,
 * and never writes to the file, when it is not one this lock may use, with
 * errno saying why:
 *   ELOOP   a symbolic link;           EISDIR  a directory;
 *   EINVAL  not a regular file;        EMLINK  more than one hard link;
 *   EPERM   owned by a uid that is neither `uid` (the database file's owner)
 *           nor the effective uid;
 *   EBADMSG not empty and not a fastpool lock page (wrong magic).
 * Its setup lock (on the page's bytes, a few system calls long) is waited for
 * at most 2 s: a lock someone else holds there for longer gives FP_XLOCK_ERROR
 * with EAGAIN instead of a hang.
 * A file it creates gets `mode` (fchmod, so the umask does not widen or
 * narrow it) and, when running as root, the owner `uid`/`gid` (fchown), so a
 * side file created by root never locks a non-root service out.
 *
 * A shrunken side file: every acquire and release first reads the file's
 * size through the kept descriptor (lseek to its end: the descriptor is
 * otherwise used only with pread/pwrite, so its offset does not matter); once
 * the file is shorter than the page (truncated by a cleanup script under live
 * mappings) the handle stops touching the page for good and those calls
 * return FP_XLOCK_STALE (the caller closes it and goes on without the lock).
 * A truncation racing the few instructions between that check and the store
 * can still fault: the check narrows the window, it cannot close it.
 *
 * Ownership: fp_xlock_open() allocates the handle; fp_xlock_close() frees it,
 * unmaps the page and closes the descriptor (which drops the token byte lock).
 * Neither releases a held lock word: the owner must (if it does not, the next
 * waiter finds the token unlocked and takes the word over).
 *
 * Linux only (shared futexes, OFD locks). Elsewhere fp_xlock_open() returns
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
#define FP_XLOCK_UNSUPPORTED (-2)  /* no shared futexes / OFD locks on this platform */
#define FP_XLOCK_REFUSED     (-3)  /* open: the side file is not ours to use; errno says why */
#define FP_XLOCK_STALE       (-4)  /* the side file shrank under the mapping: close the handle */

/* How often a waiter checks that the owner is still alive (also once at once). */
#define FP_XLOCK_PROBE_NS (100 * 1000 * 1000)

/* Token byte locks live at this offset + token (past the page, never written). */
#define FP_XLOCK_TOKEN_BASE ((int64_t)1 << 32)

typedef struct fp_xlock fp_xlock;

/* Open (creating if needed, with permission bits `mode` and, as root, owner
 * uid/gid; uid or gid < 0: unknown) the lock file at `path`, map its page and
 * take a token. On FP_XLOCK_OK *out is a new handle; otherwise *out is NULL
 * and the code is FP_XLOCK_REFUSED, FP_XLOCK_ERROR (e.g. ENOSPC, EACCES, EROFS)
 * or FP_XLOCK_UNSUPPORTED. */
int fp_xlock_open(const char *path, unsigned int mode, int64_t uid, int64_t gid,
                  fp_xlock **out);

/* Take the lock, sleeping at most timeout_ns (< 0: no limit, 0: try once).
 * FP_XLOCK_OK, FP_XLOCK_TIMEOUT, FP_XLOCK_STALE or FP_XLOCK_ERROR. Not
 * reentrant: a handle that already holds it waits for itself until the
 * timeout. */
int fp_xlock_acquire(fp_xlock *lock, int64_t timeout_ns);

/* Release a lock this handle holds: FP_XLOCK_OK, FP_XLOCK_STALE, or
 * FP_XLOCK_ERROR with EPERM when it was not held by this handle (nothing is
 * changed then). */
int fp_xlock_release(fp_xlock *lock);

/* Release like fp_xlock_release, but hand the lock on to the writers waiting
 * now: none that arrives later can take it before them. */
int fp_xlock_hand_over(fp_xlock *lock);

/* Number of times this handle took the lock over from a dead holder. */
uint64_t fp_xlock_takeovers(const fp_xlock *lock);

/* Unmap, close the descriptor (dropping the token byte lock) and free; NULL is
 * allowed. */
void fp_xlock_close(fp_xlock *lock);

/* In a forked child, for a handle inherited from the parent: close the child's
 * copy of the descriptor and unmap, without touching the word or any lock the
 * parent holds; then free. NULL is allowed. */
void fp_xlock_forget_after_fork(fp_xlock *lock);

#endif /* FP_XLOCK_H */
