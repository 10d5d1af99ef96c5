# The writer unit: the pool's one writer connection and everything that stands between a
# caller and it. WriterGate owns the slot writers queue on, the connection (opened, checked
# that its database file is still the one it opened, reopened after a discard), the
# cross-process writer lock (csrc/fp_xlock, the side file <database>-writerlock) and its
# hand-on to the next writer, and who holds the writer: a nested pool.writer() on the
# holding thread becomes a savepoint, named here. begin_write, below, is the one place a
# write transaction begins. The gate's methods run holding the writer slot unless they say
# otherwise.

import os
import time

from fastpool.errors import NotSupportedError

from cpython.pythread cimport PyThread_get_thread_ident

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


@cython.final
cdef class WriterGate:
    """The pool's writer, its queue and its cross-process lock (internal)."""

    def __init__(self, opts):
        self.opts = opts        # the C fields start zeroed: no slot, no lock, no owner

    cdef int make_slot(self) except -1:
        self.slot = fp_slots_new(1, self.opts.fifo_after_ns)
        self.batch = fp_batch_new()
        if self.slot == NULL or self.batch == NULL:
            raise MemoryError("could not allocate the writer's slot and queue")
        return 0

    cdef fp_slots *queue(self) noexcept:
        return self.slot

    cdef fp_batch *batch_queue(self) noexcept:
        return self.batch

    cdef Connection current(self):
        cdef Connection conn
        with cython.critical_section(self):     # see _writer.pxd
            conn = self.conn
        return conn

    cdef str database_file(self):
        # The path SQLite opened ("" for a memory or temporary database).
        return self.file_path

    cdef bint busy(self) noexcept:
        # Racy, for statistics and for the async engine's "writer out" check.
        return fp_slots_free_count(self.slot) == 0

    cdef uint32_t waiting(self) noexcept:
        return fp_slots_waiting(self.slot)

    cdef void serve_in_order(self) noexcept:
        # The pool is closing: from now on the writer goes to the oldest waiter (who finds
        # the pool closed and hands it on), and the closer, queued last, gets it last.
        fp_slots_make_strict(self.slot)

    cdef void close(self) noexcept:
        # close() of the pool collected the writer slot: nobody uses the writer any more.
        self.release_xlock()
        self.close_xlock()      # its descriptor goes with close(), not with the object
        if self.conn is not None:
            self.conn.close()

    cdef void free_slot(self) noexcept:
        # Not in a child after fork(): the mutex inside may have been copied mid-use.
        fp_slots_free(self.slot)
        self.slot = NULL
        fp_batch_free(self.batch)
        self.batch = NULL

    cdef void hold_here(self) noexcept:
        # The calling thread took the writer for a lease: its nested writers are savepoints.
        self.owner = PyThread_get_thread_ident()

    cdef bint held_here(self) noexcept:
        # Does the calling thread hold the writer (so a nested writer is a savepoint)?
        cdef unsigned long owner = self.owner     # one atomic load
        return owner != 0 and owner == PyThread_get_thread_ident()

    cdef str next_savepoint(self):
        # One naming scheme for every savepoint on the writer, sync or async.
        self.savepoints += 1
        return f"fastpool_sp_{self.savepoints}"

    cdef void use_checkpointer(self, Checkpointer checkpointer) noexcept:
        # The WAL unit's checkpointer (None: none), attached to every connection opened later.
        self.checkpointer = checkpointer

    cdef Connection open(self):
        # Open (or reopen) the writer connection: refuse files SQLite cannot lock or write,
        # note the file's identity, and open the cross-process lock beside it.
        conn = open_connection(self.opts, False)
        choice = uri_vfs_choice(conn)
        if choice in ("nolock=1", "vfs=unix-none"):
            path = self.opts.path
            conn.close()
            raise NotSupportedError(
                f"cannot use database {path!r} in a pool: {choice} in the URI turns off "
                f"SQLite's file locks, so the pool's writer would change pages while its "
                f"readers read them, and readers would see half-written data. Remove {choice} "
                f"from the URI")
        if sqlite3_db_readonly(conn.db, b"main") == 1:
            path = self.opts.path
            conn.close()
            raise error_for_code(SQLITE_READONLY, (
                f"cannot write to database {path!r}: SQLite opened it read-only (the file, its "
                f"directory or a mode=ro URI forbids writing), and a Pool needs a writer. Make "
                f"the file and its directory writable, or read it with a read-only connection"))
        if self.checkpointer is not None:
            conn.attach_checkpointer(self.checkpointer)
        # The writer keeps the GIL through commits that do not fsync: dropping it there
        # would hand it to another thread per transaction (the convoy _hooks.pxi avoids).
        conn.hooks.commit_syncs = commits_fsync(conn)
        self.grouping = (conn.hooks.commit_syncs if self.opts.group_commit is None
                         else self.opts.group_commit)
        self.expires = expiry(self.opts)
        name = sqlite3_db_filename(conn.db, b"main")
        self.file_path = name.decode("utf-8", "surrogateescape") if name != NULL else ""
        self.file_id = None
        st = None
        if self.file_path and not self.opts.memory:
            try:
                st = os.stat(self.file_path)
                self.file_id = (st.st_dev, st.st_ino)
            except OSError:
                pass
        if self.file_id is not None and self.opts.writer_lock and self.xlock == NULL:
            self.open_xlock(st)
        # The writer's busy handler gives the cross-process lock up before it sleeps on a
        # lock another process holds in SQLite (see on_busy).
        conn.hooks.xlock = self.xlock
        conn.hooks.xlock_held = &self.xlock_held if self.xlock != NULL else NULL
        with cython.critical_section(self):     # see _writer.pxd
            self.conn = conn
        return conn

    cdef Connection connection(self, bint reopen, bint lock=True):
        # The writer connection for the thread that just took the slot, which it now owns:
        # reopened if discarded earlier (unless reopen is False: the pool is closing), its
        # file checked, the cross-process lock taken. lock=False leaves that lock to the
        # caller (AsyncPool takes it with try_xlock, or waits for it on a worker thread,
        # never on the event loop). On failure the slot is given back.
        try:
            if self.conn.db == NULL and reopen:
                self.open()
            if self.file_id is not None:
                self.check_file()
            if lock and self.xlock != NULL and not self.xlock_held:
                self.take_xlock()
        except BaseException:
            self.owner = 0
            self.release_xlock()        # it may have been kept for us by the last writer
            fp_slots_release(self.slot, 0)
            raise
        return self.conn

    cdef bint expired(self) noexcept:
        # Past max_lifetime: the pool replaces the connection when it comes back.
        return time.monotonic() >= self.expires

    cdef void give_back(self, bint closing, bint collected) noexcept:
        # The holder is done with the writer: keep the cross-process lock for the next
        # writer of this process, or release it, and hand the slot on. (collected: close()
        # gathered the slots, and this was the last writer of a closed pool.)
        self.owner = 0
        if self.xlock_held:
            # A thread of this process queued for the writer takes the slot next: let it
            # keep the cross-process lock too, for a few writers in a row. Each hand-over
            # between processes costs a wake-up and a context switch; a bounded batch buys
            # throughput and still lets every process in after XLOCK_BATCH.
            if (fp_slots_waiting(self.slot) > 0 and self.xlock_batch < XLOCK_BATCH
                    and not closing):
                self.xlock_batch += 1
            else:
                self.release_xlock()
        if closing and collected:
            self.close_xlock()
        fp_slots_release(self.slot, 0)

    cdef void hand_to_checkpointer(self) noexcept:
        # Instead of give_back: the checkpointer thread holds the slot (and the cross-process
        # lock, if held) while it waits for readers to leave the log or for Litestream, then
        # gives it back (restart_wal).
        self.owner = 0
        self.checkpointer.take_writer(self)

    cdef int open_xlock(self, object st) except -1:
        # Without the side file (unsupported platform, refused or failing) the pool still
        # works: SQLite's own locks alone decide who writes next.
        return open_side_lock(self.file_path, st, "this pool runs", &self.xlock)

    cdef void close_xlock(self) noexcept:
        # Unmap the side file and close its descriptor (not releasing a held lock: the owner
        # releases first). The writer connection may outlive the pool: unhook it first.
        if self.conn is not None:
            self.conn.hooks.xlock = NULL
            self.conn.hooks.xlock_held = NULL
        fp_xlock_close(self.xlock)
        self.xlock = NULL

    cdef void forget_after_fork(self) noexcept:
        # In a child after fork(); may run twice. The child shares the parent's open file
        # description of the side file, and with it the byte lock that says the parent is
        # alive: close the child's copy (never releasing the word or the parent's locks), so
        # that the child opens a handle, and a token, of its own. The parent's holder is no
        # thread here.
        if self.xlock != NULL:
            if self.conn is not None:
                self.conn.hooks.xlock = NULL
                self.conn.hooks.xlock_held = NULL
            fp_xlock_forget_after_fork(self.xlock)
            self.xlock = NULL
        self.xlock_held = False
        self.xlock_batch = 0
        self.owner = 0
        if self.conn is not None:
            self.conn.epoch += 1    # cursors lent from the parent's copy die now

    cdef void lose_xlock(self, int rc) noexcept:
        # The side file went bad under this pool (truncated, or a system call failed). Stop
        # using it; a writer reopened later tries it afresh.
        cdef int err = errno
        self.xlock_held = False
        self.xlock_batch = 0
        self.close_xlock()
        warn_side_lock_lost(self.file_path, rc, err, "this pool goes")

    cdef int check_file(self) except -1:
        # SQLite keeps writing to a database file that was deleted (into an unlinked inode:
        # lost at close) or replaced (the old file), so the writer compares the path's
        # identity with the one it opened, at most every 100 ms.
        cdef timespec ts
        clock_gettime(CLOCK_MONOTONIC, &ts)
        cdef int64_t now = <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec
        if now < self.next_file_check:
            return 0
        # stat() straight from C, holding the GIL: it takes a microsecond, and os.stat()
        # would drop the GIL while this thread holds the writer slot, which is all it takes
        # for the other writers to queue up behind it and convoy from then on (measured:
        # 8 one-shot writer threads went from no waits to a wait at every checkout).
        cdef struct_stat st
        cdef bytes path = os.fsencode(self.file_path)
        if stat(path, &st) == 0:
            same = (st.st_dev, st.st_ino) == self.file_id
            what = "replaced by another file"
        elif errno == ENOENT:
            same = False
            what = "deleted"
        else:
            same = True     # cannot tell (permissions): SQLite reports real I/O failures
        if same:
            self.next_file_check = now + 100000000
            return 0
        raise error_for_code(SQLITE_READONLY_DBMOVED, (
            f"the database file {self.file_path!r} was {what} while this pool had it open; "
            f"writes are refused because they would go to the old file and be lost. Close "
            f"this pool and open a new one on the file you mean"))

    cdef void drop_kept_xlock(self) noexcept:
        # Not holding the writer slot: a writer kept the cross-process lock for this thread,
        # which then timed out. If nobody else took the writer slot since, give the lock up
        # so other processes do not wait for a writer that is not coming.
        # xlock_held belongs to the slot's holder: read it only once the slot is ours (read
        # first, it raced the next holder's take_xlock(): ThreadSanitizer's report).
        cdef uint32_t slot
        if fp_slots_try_acquire(self.slot, &slot) == FP_SLOTS_OK:
            if self.xlock_held:
                self.release_xlock()
            fp_slots_release(self.slot, slot)

    cdef void release_xlock(self) noexcept:
        # Holding the writer slot (or with it collected by close()). Handed over: with a
        # plain release this process's next writer took it back before a woken waiter of
        # another process ran, and a one-thread pool starved dbapi writers (1 % of commits).
        cdef int rc
        if self.xlock_held:
            self.xlock_held = False
            self.xlock_batch = 0
            rc = fp_xlock_hand_over(self.xlock)
            if rc != FP_XLOCK_OK and rc != FP_XLOCK_ERROR:
                self.lose_xlock(rc)     # ERROR is EPERM: not ours any more, nothing to undo

    cdef bint try_xlock(self) noexcept:
        # True when the cross-process lock is not used, already held or free right now (then
        # taken); False when someone else holds it.
        cdef int rc
        if self.xlock == NULL or self.xlock_held:
            return True
        rc = fp_xlock_acquire(self.xlock, 0)
        if rc == FP_XLOCK_OK:
            self.xlock_held = True
            self.xlock_batch = 0
            return True
        if rc == FP_XLOCK_TIMEOUT:
            return False
        self.lose_xlock(rc)
        return True

    cdef int take_xlock(self) except -1:
        # Wait for the cross-process lock, up to busy_timeout, with the GIL dropped.
        cdef int rc
        cdef int64_t timeout = <int64_t>(self.opts.busy_timeout * 1e9)
        if self.xlock == NULL or self.xlock_held:
            return 0                # dropped since the caller looked (a bad side file)
        rc = fp_xlock_acquire(self.xlock, 0)
        if rc == FP_XLOCK_TIMEOUT and timeout > 0:
            with nogil:
                rc = fp_xlock_acquire(self.xlock, timeout)
        if rc == FP_XLOCK_OK:
            self.xlock_held = True
            self.xlock_batch = 0
            return 0
        if rc == FP_XLOCK_TIMEOUT:
            raise error_for_code(SQLITE_BUSY, (
                f"database is locked: another process held the write lock of "
                f"{self.file_path!r} for longer than busy_timeout "
                f"({self.opts.busy_timeout:g} s); its transactions are too long, or raise "
                f"busy_timeout with pragmas={{'busy_timeout': ms}}"))
        self.lose_xlock(rc)     # a bad side file never stops writes: go on without it
        return 0

# -- the side file, for the pool's writer and fastpool.dbapi's write turns ------------------

cdef int open_side_lock(str file_path, object st, str who, fp_xlock **out) except -1:
    # Open <file_path>-writerlock, created with the database file's mode and (as root) owner,
    # into out[0]; left NULL, with a warning naming the file unless the platform has no such
    # lock, when it cannot be used (`who`: "this pool runs", ...).
    cdef fp_xlock *lock = NULL
    cdef bytes lock_path = os.fsencode(file_path + "-writerlock")
    cdef const char *c_path = lock_path
    cdef unsigned int mode = st.st_mode & 0o777
    cdef int64_t uid = st.st_uid
    cdef int64_t gid = st.st_gid
    cdef int rc, err
    with nogil:
        rc = fp_xlock_open(c_path, mode, uid, gid, &lock)
        err = errno
    if rc == FP_XLOCK_OK:
        out[0] = lock
    elif rc != FP_XLOCK_UNSUPPORTED:
        name = file_path + "-writerlock"
        if rc == FP_XLOCK_REFUSED:
            why = XLOCK_REFUSALS.get(err, os.strerror(err))
            todo = ("remove it (or fix its owner) so fastpool can create its own; it was "
                    "left untouched")
        else:
            why = f"could not be used: [Errno {err}] {os.strerror(err)}"
            todo = ("make room on the disk" if err == ENOSPC else
                    "check the permissions of the file and its directory")
        log.warning("the cross-process writer lock file %r %s; %s without it (SQLite's "
                    "own locking still keeps writes correct, only the queueing of "
                    "writers between processes is lost): %s", name, why, who, todo)
    return 0


cdef void warn_side_lock_lost(str file_path, int rc, int err, str who) noexcept:
    try:
        what = ("was truncated while in use" if rc == FP_XLOCK_STALE else
                f"failed: [Errno {err}] {os.strerror(err)}")
        log.warning("the cross-process writer lock file %r %s; %s on without it (SQLite's "
                    "own locking still keeps writes correct). Do not truncate or delete "
                    "<database>-writerlock while processes use the database",
                    file_path + "-writerlock", what, who)
    except BaseException:
        pass    # logging must never break a return path


# -- beginning a write transaction -----------------------------------------------------------

cdef int begin_write(Connection conn) except -1:
    # The one place a write transaction begins, inside a call (conn.enter()). BEGIN IMMEDIATE
    # takes SQLite's write lock now, so the transaction never fails later with "database is
    # locked" when a deferred transaction would have to upgrade its lock.
    conn.run_control("BEGIN IMMEDIATE")
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
