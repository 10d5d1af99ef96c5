# The writer unit: what stands between a caller and the pool's one writer connection once it
# holds the writer slot. It opens the writer, checks that the database file is still the one
# it opened, takes and hands on the cross-process writer lock (csrc/fp_xlock, the side file
# <database>-writerlock), and is the one place a write transaction begins (begin_write).
# Functions of the PoolCore they are given, called holding the writer slot unless they say
# otherwise.

import os

from fastpool.errors import NotSupportedError

cdef enum:
    # How many writers of one process in a row may pass the cross-process lock on
    # (bench/multiprocess_writers.py: 0 halves throughput, 8-16 match SQLite's busy handler
    # and keep every process's share within a few percent; 64 starts to starve some).
    XLOCK_BATCH = 8


cdef dict XLOCK_REFUSALS = {
    ELOOP: "is a symbolic link",
    EISDIR: "is a directory",
    EINVAL: "is not a regular file",
    EMLINK: "has more than one hard link",
    EPERM: "is owned by another user than the database file's owner",
    EBADMSG: "is not a fastpool lock file (it has other content)",
}


cdef void forget_parent_xlock(PoolCore pool) noexcept:
    # The child shares the parent's open file description of the side file, and with it the
    # byte lock that says the parent is alive: close the child's copy (never releasing the
    # word or the parent's locks) so the child opens a handle, and a token, of its own.
    if pool.xlock != NULL:
        if pool.writer_conn is not None:
            pool.writer_conn.hooks.xlock = NULL
            pool.writer_conn.hooks.xlock_held = NULL
        fp_xlock_forget_after_fork(pool.xlock)
        pool.xlock = NULL
    pool.xlock_held = False
    pool.xlock_batch = 0


cdef Connection open_writer(PoolCore pool):
    conn = open_connection(pool.opts, False)
    choice = uri_vfs_choice(conn)
    if choice in ("nolock=1", "vfs=unix-none"):
        path = pool.opts.path
        conn.close()
        raise NotSupportedError(
            f"cannot use database {path!r} in a pool: {choice} in the URI turns off "
            f"SQLite's file locks, so the pool's writer would change pages while its "
            f"readers read them, and readers would see half-written data. Remove {choice} "
            f"from the URI")
    if sqlite3_db_readonly(conn.db, b"main") == 1:
        path = pool.opts.path
        conn.close()
        raise error_for_code(SQLITE_READONLY, (
            f"cannot write to database {path!r}: SQLite opened it read-only (the file, its "
            f"directory or a mode=ro URI forbids writing), and a Pool needs a writer. Make "
            f"the file and its directory writable, or read it with a read-only connection"))
    if pool.checkpointer is not None:
        conn.attach_checkpointer(pool.checkpointer)
    pool.writer_expires = expiry(pool)
    name = sqlite3_db_filename(conn.db, b"main")
    pool.file_path = name.decode("utf-8", "surrogateescape") if name != NULL else ""
    pool.file_id = None
    st = None
    if pool.file_path and not pool.opts.memory:
        try:
            st = os.stat(pool.file_path)
            pool.file_id = (st.st_dev, st.st_ino)
        except OSError:
            pass
    if pool.file_id is not None and pool.opts.writer_lock and pool.xlock == NULL:
        open_xlock(pool, st)
    bind_xlock(pool, conn)
    return conn


cdef int open_xlock(PoolCore pool, object st) except -1:
    # The side file <database>-writerlock, created with the database file's mode and (as
    # root) owner. Without it (unsupported platform, a refused or failing side file) the
    # pool still works: SQLite's own locks alone decide who writes next.
    cdef fp_xlock *lock = NULL
    cdef bytes lock_path = os.fsencode(pool.file_path + "-writerlock")
    cdef const char *c_path = lock_path
    cdef unsigned int mode = st.st_mode & 0o777
    cdef int64_t uid = st.st_uid
    cdef int64_t gid = st.st_gid
    cdef int rc, err
    with nogil:
        rc = fp_xlock_open(c_path, mode, uid, gid, &lock)
        err = errno
    if rc == FP_XLOCK_OK:
        pool.xlock = lock
    elif rc != FP_XLOCK_UNSUPPORTED:
        name = pool.file_path + "-writerlock"
        if rc == FP_XLOCK_REFUSED:
            why = XLOCK_REFUSALS.get(err, os.strerror(err))
            todo = ("remove it (or fix its owner) so fastpool can create its own; it was "
                    "left untouched")
        else:
            why = f"could not be used: [Errno {err}] {os.strerror(err)}"
            todo = ("make room on the disk" if err == ENOSPC else
                    "check the permissions of the file and its directory")
        log.warning("the cross-process writer lock file %r %s; this pool runs without "
                    "it (SQLite's own locking still keeps writes correct, only the "
                    "queueing of writers between processes is lost): %s",
                    name, why, todo)
    return 0


cdef void bind_xlock(PoolCore pool, Connection conn) noexcept:
    # The writer's busy handler gives the cross-process lock up before it sleeps on a lock
    # another process holds in SQLite (see on_busy).
    conn.hooks.xlock = pool.xlock
    conn.hooks.xlock_held = &pool.xlock_held if pool.xlock != NULL else NULL


cdef void close_xlock(PoolCore pool) noexcept:
    # Unmap the side file and close its descriptor (not releasing a held lock: the owner
    # releases first). The writer connection may outlive the pool: unhook it first.
    if pool.writer_conn is not None:
        pool.writer_conn.hooks.xlock = NULL
        pool.writer_conn.hooks.xlock_held = NULL
    fp_xlock_close(pool.xlock)
    pool.xlock = NULL


cdef void lose_xlock(PoolCore pool, int rc) noexcept:
    # Called holding the writer slot: the side file went bad under this pool (truncated,
    # or a system call failed). Stop using it; a writer reopened later tries it afresh.
    cdef int err = errno
    pool.xlock_held = False
    pool.xlock_batch = 0
    close_xlock(pool)
    try:
        what = ("was truncated while in use" if rc == FP_XLOCK_STALE else
                f"failed: [Errno {err}] {os.strerror(err)}")
        log.warning("the cross-process writer lock file %r %s; this pool goes on "
                    "without it (SQLite's own locking still keeps writes correct). Do not "
                    "truncate or delete <database>-writerlock while processes use the "
                    "database", pool.file_path + "-writerlock", what)
    except BaseException:
        pass    # logging must never break a return path


cdef int check_file(PoolCore pool) except -1:
    # Called holding the writer slot. SQLite keeps writing to a database file that was
    # deleted (into an unlinked inode: lost at close) or replaced (the old file), so the
    # writer compares the path's identity with the one it opened, at most every 100 ms.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    cdef int64_t now = <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec
    if now < pool.next_file_check:
        return 0
    # stat() straight from C, holding the GIL: it takes a microsecond, and os.stat()
    # would drop the GIL while this thread holds the writer slot, which is all it takes
    # for the other writers to queue up behind it and convoy from then on (measured:
    # 8 one-shot writer threads went from no waits to a wait at every checkout).
    cdef struct_stat st
    cdef bytes path = os.fsencode(pool.file_path)
    if stat(path, &st) == 0:
        same = (st.st_dev, st.st_ino) == pool.file_id
        what = "replaced by another file"
    elif errno == ENOENT:
        same = False
        what = "deleted"
    else:
        same = True     # cannot tell (permissions): SQLite reports real I/O failures
    if same:
        pool.next_file_check = now + 100000000
        return 0
    raise error_for_code(SQLITE_READONLY_DBMOVED, (
        f"the database file {pool.file_path!r} was {what} while this pool had it open; "
        f"writes are refused because they would go to the old file and be lost. Close "
        f"this pool and open a new one on the file you mean"))


cdef void drop_kept_xlock(PoolCore pool) noexcept:
    # A writer kept the cross-process lock for this thread, which then timed out: if
    # nobody else took the writer slot since, give the lock up so other processes do not
    # wait for a writer that is not coming.
    cdef uint32_t slot
    if fp_slots_try_acquire(pool.writer_slot, &slot) == FP_SLOTS_OK:
        release_xlock(pool)
        fp_slots_release(pool.writer_slot, slot)


cdef void release_xlock(PoolCore pool) noexcept:
    # Called holding the writer slot (or with it collected by close()).
    cdef int rc
    if pool.xlock_held:
        pool.xlock_held = False
        pool.xlock_batch = 0
        rc = fp_xlock_release(pool.xlock)
        if rc != FP_XLOCK_OK and rc != FP_XLOCK_ERROR:
            lose_xlock(pool, rc)     # ERROR is EPERM: not ours any more, nothing to undo


cdef bint try_xlock(PoolCore pool) noexcept:
    # Holding the writer slot: True when the cross-process lock is not used, already held
    # or free right now (then taken); False when someone else holds it.
    cdef int rc
    if pool.xlock == NULL or pool.xlock_held:
        return True
    rc = fp_xlock_acquire(pool.xlock, 0)
    if rc == FP_XLOCK_OK:
        pool.xlock_held = True
        pool.xlock_batch = 0
        return True
    if rc == FP_XLOCK_TIMEOUT:
        return False
    lose_xlock(pool, rc)
    return True


cdef int take_xlock(PoolCore pool) except -1:
    cdef int rc
    cdef int64_t timeout = <int64_t>(pool.opts.busy_timeout * 1e9)
    if pool.xlock == NULL or pool.xlock_held:
        return 0                # dropped since the caller looked (a bad side file)
    rc = fp_xlock_acquire(pool.xlock, 0)
    if rc == FP_XLOCK_TIMEOUT and timeout > 0:
        with nogil:
            rc = fp_xlock_acquire(pool.xlock, timeout)
    if rc == FP_XLOCK_OK:
        pool.xlock_held = True
        pool.xlock_batch = 0
        return 0
    if rc == FP_XLOCK_TIMEOUT:
        raise error_for_code(SQLITE_BUSY, (
            f"database is locked: another process held the write lock of "
            f"{pool.file_path!r} for longer than busy_timeout "
            f"({pool.opts.busy_timeout:g} s); its transactions are too long, or raise "
            f"busy_timeout with pragmas={{'busy_timeout': ms}}"))
    lose_xlock(pool, rc)     # a bad side file never stops writes: go on without it
    return 0


cdef Connection writer_connection(PoolCore pool, bint lock=True):
    # Called holding the writer slot. A writer discarded earlier is reopened here.
    # lock=False leaves the cross-process lock to the caller (AsyncPool takes it with
    # try_xlock, or waits for it on a worker thread, never on the event loop).
    try:
        if pool.writer_conn.db == NULL and not pool.is_closed:
            pool.writer_conn = open_writer(pool)
        if pool.file_id is not None:
            check_file(pool)
        if lock and pool.xlock != NULL and not pool.xlock_held:
            take_xlock(pool)
    except BaseException:
        pool.writer_owner = 0
        release_xlock(pool)        # it may have been kept for us by the last writer
        fp_slots_release(pool.writer_slot, 0)
        raise
    return pool.writer_conn


cdef void hand_on_xlock(PoolCore pool) noexcept:
    # A writer is returning the writer slot: keep the cross-process lock for the next writer
    # of this process, or release it.
    if pool.xlock_held:
        # A thread of this process queued for the writer gets the slot straight from us:
        # let it keep the cross-process lock too, for a few writers in a row. Each
        # hand-over between processes costs a wake-up and a context switch; a bounded
        # batch buys throughput and still lets every process in after XLOCK_BATCH.
        if (fp_slots_waiting(pool.writer_slot) > 0 and pool.xlock_batch < XLOCK_BATCH
                and not pool.is_closed):
            pool.xlock_batch += 1
        else:
            release_xlock(pool)
    if pool.is_closed and pool.collected:
        close_xlock(pool)      # the last writer of a closed pool came back


# -- beginning a write transaction -----------------------------------------------------------

cdef int begin_write(Connection conn) except -1:
    # The one place a write transaction begins, inside a call (conn.enter()). BEGIN IMMEDIATE
    # takes SQLite's write lock now, so the transaction never fails later with "database is
    # locked" when a deferred transaction would have to upgrade its lock.
    cdef int rc
    arm(&conn.hooks)
    rc = sqlite3_exec(conn.db, b"BEGIN IMMEDIATE", NULL, NULL, NULL)
    disarm(&conn.hooks)
    if rc != SQLITE_OK:
        conn.raise_error(rc)
    return 0


cdef int begin_lease_write(Lease lease) except -1:
    # A writer lease's transaction: begun, then guarded (if SQLite rolls the whole transaction
    # back by itself, later statements and the block's end raise instead of committing half
    # of it), with the change count that close() compares against.
    cdef Connection conn = lease.conn
    conn.enter()
    try:
        begin_write(conn)
    finally:
        conn.leave()
    conn.guard_tx = True
    lease.changes_at_begin = sqlite3_total_changes64(conn.db)
    return 0
