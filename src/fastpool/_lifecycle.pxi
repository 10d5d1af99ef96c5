# The lifecycle unit: a pool's connections across their lives. fork() (the at-fork hooks, and
# retiring the parent's copies in the child), the warning at exit, expiry after max_lifetime,
# the idle sweep, discarding a broken connection, and collecting the slots on close().

import atexit
import os
import random
import threading
import time
import warnings
import weakref

from fastpool.errors import InterfaceError

# Bumped in a child process after fork(), by the at-fork hook, while the child has one
# thread: pools made before it must not touch their handles. Read without a lock.
cdef unsigned int FORK_GENERATION = 0


# Every live pool, for the at-fork hooks and the warning at exit. A WeakSet is not safe to
# iterate while another thread adds to it: it is added to and read only under LIVE_POOLS_LOCK
# (live_pools()). The fork hooks hold that lock across fork() itself, so the child never
# inherits it held by a thread it does not have.
cdef object LIVE_POOLS = weakref.WeakSet()
cdef object LIVE_POOLS_LOCK = threading.Lock()
# Serialises after_fork() between the child's threads (a fresh one in every child: a parent
# thread may have held the old one at the fork).
cdef object AFTER_FORK_LOCK = threading.Lock()


cdef void add_live_pool(object pool) except *:
    with LIVE_POOLS_LOCK:
        LIVE_POOLS.add(pool)


cdef list live_pools():
    with LIVE_POOLS_LOCK:
        return list(LIVE_POOLS)


def _before_fork():
    # No pool's checkpointer may be inside SQLite while the process is copied.
    LIVE_POOLS_LOCK.acquire()
    for pool in list(LIVE_POOLS):
        ck = (<PoolCore>pool).checkpointer
        if ck is not None and (<PoolCore>pool).fork_generation == FORK_GENERATION:
            ck.pause()


def _after_fork_in_parent():
    try:
        for pool in list(LIVE_POOLS):
            ck = (<PoolCore>pool).checkpointer
            if ck is not None:
                ck.resume()
    finally:
        LIVE_POOLS_LOCK.release()


def _after_fork_in_child():
    global FORK_GENERATION, AFTER_FORK_LOCK
    FORK_GENERATION += 1
    AFTER_FORK_LOCK = threading.Lock()
    try:
        for pool in list(LIVE_POOLS):
            forget_parent_handles(<PoolCore>pool)
    finally:
        LIVE_POOLS_LOCK.release()   # taken by this very thread in _before_fork


cdef void forget_parent_handles(PoolCore pool) noexcept:
    # Right after fork(), in the child: every cursor lent from the parent's connections dies
    # now (their epochs change; leases die by their fork generation), so none can step,
    # COMMIT or ROLLBACK on a copy of the parent's connections. The copies themselves are
    # retired by after_fork() on the child's first use of the pool.
    try:
        if pool.readers is not None:
            for conn in pool.readers:
                if conn is not None:
                    (<Connection>conn).epoch += 1
        if pool.gate is not None:
            pool.gate.forget_after_fork()
    except BaseException:
        pass    # an at-fork hook must not raise; acquire() still calls after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


# Descriptors that took SQLite's WAL write lock from outside SQLite to retire a parent's
# writer in a forked child (csrc/fp_fencelock.h): never closed, because closing one would
# drop every POSIX lock this process holds on the -shm file, live connections' included.
# Appended to only (one list operation: atomic by the list's own lock).
cdef list FENCE_FDS = []


def _warn_open_pools_at_exit():
    # Exit does not close pools (a daemon thread may still be using one), but it should not
    # go unnoticed: a lease still out at exit is an uncommitted transaction or a lost read.
    for pool in live_pools():
        if not (<PoolCore>pool).is_closed and (<PoolCore>pool).fork_generation == FORK_GENERATION:
            out = ((<PoolCore>pool).nreaders - fp_slots_free_count((<PoolCore>pool).reader_slots)
                   + (<PoolCore>pool).gate.busy())
            warnings.warn(
                f"a fastpool pool is still open at interpreter exit with {out} lease(s) "
                f"checked out; close pools (and return leases) before exiting",
                ResourceWarning)


atexit.register(_warn_open_pools_at_exit)


cdef double expiry(object opts):
    # Jitter spreads the reopening of connections made together over 10% of the lifetime.
    lifetime = opts.max_lifetime
    if lifetime is None:
        return float("inf")
    return time.monotonic() + lifetime * (1.0 - 0.1 * random.random())


cdef void discard(PoolCore pool, Connection conn) noexcept:
    fp_counter_add(&pool.n_discarded, 1)
    try:
        conn.close()
    except BaseException:
        pass    # a connection broken enough to be discarded may fail to close; it is gone
    try:
        log.warning("discarded a broken %s connection to %r (fatal error or closed "
                    "underneath); a fresh one is opened on next use",
                    "read-only" if conn.readonly else "writer", conn.path)
    except BaseException:
        pass    # logging must never break a return path


cdef void close_all_connections(PoolCore pool) noexcept:
    for i in range(pool.nreaders):
        conn = pool.readers[i]
        if conn is not None:
            (<Connection>conn).close()
            pool.readers[i] = None
    if pool.gate is not None and pool.gate.current() is not None:
        pool.gate.current().close()


cdef int after_fork(PoolCore pool, bint wait=True) except -1:
    with AFTER_FORK_LOCK:
        if pool.fork_generation == FORK_GENERATION:
            return 0        # another thread of this child did it meanwhile
        return after_fork_locked(pool, wait)


cdef int after_fork_locked(PoolCore pool, bint wait) except -1:
    # In a child process, on its first use of the pool. fork() copied the parent's
    # connections into this process together with SQLite's per-process lock bookkeeping,
    # but not the locks the kernel holds for the parent. A copy left open would make
    # SQLite believe this process holds the parent's locks: its new connections would
    # skip taking them for real (reads unprotected from the parent's checkpoints), and a
    # copied write transaction would block every writer here for good. So the copies are
    # retired first (retire_parent_connections); then the child opens its own.
    # wait=False (from close()) retires what can be retired now and opens nothing.
    if pool.fork_error is None:
        retire_parent_connections(pool, wait)
    for i in range(pool.nreaders):
        pool.readers[i] = None
    pool.checkpointer = None     # its thread was not copied into this process
    pool.gate.use_checkpointer(None)
    pool.snapshots = False       # until the child's sweeper runs
    pool.sweeper = None          # its thread was not copied either
    fp_flag_store(&pool.sweeping, 0)
    fp_flag_store(&pool.sweep_held, 0)
    pool.holders.clear()
    pool.gate.forget_after_fork()   # held (if at all) by the parent's token, not by us
    # The parent's per-slot counts (a copy here, like the parent's other allocations, never
    # freed by the child) carry on in the pool-wide counters.
    fp_counter_add(&pool.n_checkouts, fp_slot_counter_sum(pool.reader_counts, COUNT_CHECKOUTS))
    fp_counter_add(&pool.n_snapshot_reuses,
                   fp_slot_counter_sum(pool.reader_counts, COUNT_SNAPSHOT_REUSES))
    pool.make_slots()
    if pool.fork_error is not None:
        pool.fork_generation = FORK_GENERATION
        if wait:
            raise InterfaceError(pool.fork_error)
        return 0
    try:
        if not pool.is_closed:
            writer = pool.gate.open()
            pool.wal = in_wal_mode(writer)
            if pool.wal:
                pool.checkpointer = start_checkpointer(pool.opts, writer)
                pool.gate.use_checkpointer(pool.checkpointer)
            pool.snapshots = start_snapshots(pool, writer)
    finally:
        pool.fork_generation = FORK_GENERATION     # last: see _pool.pxd
    return 0


cdef int retire_parent_connections(PoolCore pool, bint wait) except -1:
    # Closing a copy is safe where SQLite's close touches only this process: no call of
    # it running (a copy inside a call in another thread of the parent has half-done
    # state and maybe SQLite's mutexes taken: then the pool refuses to work here), and
    # no write transaction to roll back (retire_parent_writer waits for that).
    copies = [c for c in pool.readers if c is not None]
    if pool.checkpointer is not None:
        copies.append(pool.checkpointer.conn)   # out of SQLite: _before_fork paused it
    writer = pool.gate.current()
    if pool.opts.memory:
        # memdb is private memory after fork: the copies are this process's own database,
        # kept alive by them (closing the last would free it); only a copied write
        # transaction must go.
        if writer is not None and writer.db != NULL and not writer.in_call:
            sqlite3_exec(writer.db, b"ROLLBACK", NULL, NULL, NULL)
        for conn in copies:
            (<Connection>conn).abandon()
        if writer is not None:
            writer.abandon()
        return 0
    if writer is not None:
        copies.append(writer)
    if any([(<Connection>c).db != NULL and (<Connection>c).in_call for c in copies]):
        for conn in copies:
            (<Connection>conn).abandon()
        pool.fork_error = (
            f"this process was forked while another thread of the parent was inside a "
            f"SQLite call on this pool's connection to {pool.opts.path!r}; SQLite's state "
            f"of that call was copied into this process and can never be released here, "
            f"so this pool cannot be used in it. Fork before starting threads that use "
            f"the pool (or between their calls), or use the 'spawn' or 'forkserver' "
            f"start method")
        return 0
    for conn in copies:
        if conn is not writer:
            (<Connection>conn).close()
    if writer is not None:
        retire_parent_writer(pool, writer, wait)
    return 0


cdef int retire_parent_writer(PoolCore pool, Connection conn, bint wait) except -1:
    # Outside a write transaction, closing the copy is as safe as any close. Inside one,
    # close() rolls back, which edits the WAL index the processes share: first take
    # SQLite's WAL write lock ourselves, as an open-file-description lock that SQLite's
    # unlocks in this process cannot drop. Once we hold it, the parent's transaction is
    # over and no other writer is in the log, so the rollback edits nobody's frames.
    # Never while holding the cross-process writer lock: the wait is the child's alone.
    cdef int rc, fd = -1
    cdef int64_t timeout
    cdef bytes shm
    cdef const char *c_shm
    if conn.db == NULL:
        return 0
    if sqlite3_txn_state(conn.db, NULL) != SQLITE_TXN_WRITE:
        conn.close()
        return 0
    if not wait:
        conn.abandon()      # the pool is closing in the child: leave the copy alone
        return 0
    if not pool.wal:
        conn.abandon()
        pool.fork_error = (
            f"this process was forked inside a write transaction on {pool.opts.path!r}, "
            f"which is not in WAL mode; the copy of that transaction cannot be undone "
            f"here without touching the parent's files, so this pool cannot be used in "
            f"this process. Fork outside 'with pool.writer()' blocks")
        return 0
    shm = os.fsencode(pool.gate.database_file() + "-shm")
    c_shm = shm
    timeout = seconds_to_ns(pool.opts.busy_timeout)
    with nogil:
        rc = fp_fencelock_acquire(c_shm, FP_SHM_WRITE_LOCK_OFFSET, timeout, &fd)
    if rc == FP_FENCELOCK_TIMEOUT:
        raise error_for_code(SQLITE_BUSY, (
            f"database is locked: this process was forked while its parent was inside a "
            f"write transaction on {pool.gate.database_file()!r}, and that transaction (or another "
            f"process's) did not end within busy_timeout ({pool.opts.busy_timeout:g} s). "
            f"The pool works here once it has ended; fork outside 'with pool.writer()' "
            f"blocks to avoid the wait"))
    if rc != FP_FENCELOCK_OK:
        reason = (os.strerror(errno) if rc == FP_FENCELOCK_ERROR
                  else "this platform has no open-file-description locks")
        conn.abandon()
        pool.fork_error = (
            f"this process was forked inside a write transaction on {pool.opts.path!r}, "
            f"and the copy of that transaction cannot be undone safely here ({reason}), "
            f"so this pool cannot be used in this process. Fork outside "
            f"'with pool.writer()' blocks")
        return 0
    FENCE_FDS.append(fd)
    try:
        conn.close()
    finally:
        fp_fencelock_release(fd, FP_SHM_WRITE_LOCK_OFFSET)
    return 0


cdef void maybe_sweep_idle(PoolCore pool) noexcept:
    # Close readers idle longer than idle_timeout, keeping min_readers open. Runs at most
    # twice per idle_timeout, from a returning caller; idle slots are taken out of the
    # ring while checked so no one else can be using them.
    cdef uint32_t slot
    now = time.monotonic()
    idle = pool.opts.idle_timeout
    if now - pool.last_sweep < idle / 2:
        return
    pool.last_sweep = now
    taken = []
    open_count = sum(1 for c in pool.readers if c is not None)
    while fp_slots_try_acquire(pool.reader_slots, &slot) == FP_SLOTS_OK:
        taken.append(slot)
    for slot in taken:
        conn = pool.readers[slot]
        if (conn is not None and open_count > pool.opts.min_readers
                and now - pool.last_used[slot] >= idle):
            (<Connection>conn).close()
            pool.readers[slot] = None
            open_count -= 1
    for slot in taken:
        fp_slots_release(pool.reader_slots, slot)


cdef int64_t collect_slot(PoolCore pool, fp_slots *slots, object deadline):
    # Take one slot for close(): its index, or -1 if none came back before the deadline.
    cdef uint32_t slot
    cdef fp_waiter waiter
    cdef int rc
    cdef int64_t budget
    if fp_slots_try_acquire(slots, &slot) == FP_SLOTS_OK:
        return slot
    budget = -1 if deadline is None else seconds_to_ns(deadline - time.monotonic())
    fp_waiter_init(&waiter, NULL, NULL)
    rc = fp_slots_enqueue(slots, &waiter)
    if rc == FP_SLOTS_QUEUED:
        with nogil:
            rc = fp_slots_wait(slots, &waiter, budget)
    return waiter.slot if rc == FP_SLOTS_OK else -1


cdef int close_pool(PoolCore pool, object timeout) except -1:
    # PoolCore.close() after its argument check: stop lending, collect the slots until the
    # deadline, close what came back.
    pool.is_closed = True
    if pool.fork_generation != FORK_GENERATION:
        after_fork(pool, False)
    deadline = None if timeout is None else time.monotonic() + timeout
    # Strict FIFO from here: every thread already queued is handed its slot (and raises
    # PoolClosed) before the collection below, queued behind them, takes it for good.
    # Barging, the collection could take a slot past a waiter, who would then wait for a
    # slot that never comes back until its acquisition_timeout.
    fp_slots_make_strict(pool.reader_slots)
    pool.gate.serve_in_order()
    if pool.checkpointer is not None:
        pool.checkpointer.join()
    if pool.sweeper is not None:
        pool.sweeper.join()
    # Collect every slot: the idle ones at once, the busy ones as their leases return.
    collected = []
    for _ in range(pool.nreaders):
        slot = collect_slot(pool, pool.reader_slots, deadline)
        if slot < 0:
            break
        collected.append(slot)
    # The caller's own writer lease cannot come back while we wait for it.
    own_writer = pool.gate.held_here()
    writer_collected = not own_writer and collect_slot(pool, pool.gate.queue(), deadline) >= 0
    pool.collected = True
    # Close only what was collected. A lease still out may be running a call in another
    # thread right now: its connection is closed when it comes back (return_*).
    for slot in collected:
        conn = pool.readers[slot]
        pool.readers[slot] = None
        if conn is not None:
            (<Connection>conn).close()
    if writer_collected:
        pool.gate.close()
    out = pool.nreaders - len(collected) + (0 if writer_collected else 1)
    if out:
        warnings.warn(
            f"fastpool.Pool.close(): {out} lease(s) still checked out after "
            f"{timeout if timeout is not None else 0} s; their connections are closed when "
            f"they come back (return leases before closing the pool)",
            ResourceWarning, stacklevel=2)
    return 0
