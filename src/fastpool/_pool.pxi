# The pool: N read-only connections handed out through a lock-free slot ring, and one writer
# handed out in strict FIFO order. Waiting parks the thread in C with the GIL dropped.

import atexit
import difflib
import os
import random
import threading
import time
import traceback
import warnings
import weakref

from fastpool.errors import Error, PoolClosed, PoolTimeout

from cpython.pythread cimport PyThread_get_thread_ident

cdef enum LeaseKind:
    READER = 0
    WRITER = 1
    SAVEPOINT = 2

cdef tuple KIND_NAMES = ("reader", "writer", "writer savepoint")

cdef enum:
    # How many writers of one process in a row may pass the cross-process lock on
    # (bench/multiprocess_writers.py: 0 halves throughput, 8-16 match SQLite's busy handler
    # and keep every process's share within a few percent; 64 starts to starve some).
    XLOCK_BATCH = 8

# Bumped in a child process after fork(): pools made before it must not touch their handles.
cdef unsigned int FORK_GENERATION = 0
cdef object LIVE_POOLS = weakref.WeakSet()


def _before_fork():
    # No pool's checkpointer may be inside SQLite while the process is copied.
    for pool in list(LIVE_POOLS):
        ck = (<PoolCore>pool).checkpointer
        if ck is not None and (<PoolCore>pool).fork_generation == FORK_GENERATION:
            ck.pause_for_fork()


def _after_fork_in_parent():
    for pool in list(LIVE_POOLS):
        ck = (<PoolCore>pool).checkpointer
        if ck is not None:
            ck.resume_after_fork()


def _after_fork_in_child():
    global FORK_GENERATION
    FORK_GENERATION += 1
    for pool in list(LIVE_POOLS):
        forget_parent_handles(<PoolCore>pool)


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
        if pool.writer_conn is not None:
            pool.writer_conn.epoch += 1
        pool.writer_owner = 0
        forget_parent_xlock(pool)
    except BaseException:
        pass    # an at-fork hook must not raise; acquire() still calls after_fork()


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


cdef dict XLOCK_REFUSALS = {
    ELOOP: "is a symbolic link",
    EISDIR: "is a directory",
    EINVAL: "is not a regular file",
    EMLINK: "has more than one hard link",
    EPERM: "is owned by another user than the database file's owner",
    EBADMSG: "is not a fastpool lock file (it has other content)",
}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


# Descriptors that took SQLite's WAL write lock from outside SQLite to retire a parent's
# writer in a forked child (csrc/fp_fencelock.h): never closed, because closing one would
# drop every POSIX lock this process holds on the -shm file, live connections' included.
cdef list FENCE_FDS = []


def _warn_open_pools_at_exit():
    # Exit does not close pools (a daemon thread may still be using one), but it should not
    # go unnoticed: a lease still out at exit is an uncommitted transaction or a lost read.
    for pool in list(LIVE_POOLS):
        if not (<PoolCore>pool).is_closed and (<PoolCore>pool).fork_generation == FORK_GENERATION:
            out = ((<PoolCore>pool).nreaders - fp_slots_free_count((<PoolCore>pool).reader_slots)
                   + 1 - fp_slots_free_count((<PoolCore>pool).writer_slot))
            warnings.warn(
                f"a fastpool pool is still open at interpreter exit with {out} lease(s) "
                f"checked out; close pools (and return leases) before exiting",
                ResourceWarning)


atexit.register(_warn_open_pools_at_exit)


# The pragma names this SQLite knows, read once from PRAGMA pragma_list (empty when SQLite was
# built without it). SQLite silently ignores an unknown pragma, so a typo would go unnoticed.
cdef object KNOWN_PRAGMAS = None


cdef int check_pragma_names(object pragmas) except -1:
    global KNOWN_PRAGMAS
    if KNOWN_PRAGMAS is None:
        probe = Connection(":memory:")
        try:
            KNOWN_PRAGMAS = frozenset([row[0] for row in probe.fetchall("PRAGMA pragma_list")])
        finally:
            probe.close()
    if not KNOWN_PRAGMAS:
        return 0
    for name in pragmas:
        if name not in KNOWN_PRAGMAS:
            close = difflib.get_close_matches(name, sorted(KNOWN_PRAGMAS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown pragma {name!r}: SQLite {sqlite_version()} has no such "
                             f"pragma and would silently ignore it{hint}")
    return 0


cdef void one_shot_left_transaction(Connection conn) noexcept:
    # A one-shot read ran BEGIN (or similar): nobody holds a lease to end it, and the reader
    # would pin its snapshot (and the WAL) for its next user.
    try:
        conn.reset()
        warnings.warn(
            "a one-shot read (pool.fetchone/fetchall) left a transaction open; fastpool rolled "
            "it back. Run transactions inside 'with pool.reader() as conn, conn.transaction():'",
            ResourceWarning, stacklevel=3)
    except BaseException:
        conn.fatal = True   # discarded by release_reader instead of handed on half-reset


cdef inline int64_t seconds_to_ns(object seconds):
    # -1 means no limit: None, inf, or more than int64 nanoseconds can hold (~292 years).
    if seconds is None:
        return -1
    cdef double s = seconds
    if s != s or s >= 9.2e9:
        return -1
    if s <= 0:
        return 0
    return <int64_t>(s * 1e9)


cdef class PoolCore:
    """The pool's engine (internal): fastpool.Pool is its public face."""

    def __cinit__(self):
        self.reader_slots = NULL
        self.writer_slot = NULL
        # Closed until __init__ succeeds: a pool whose construction failed has nothing to
        # close, and must not warn about a missing close() when it is collected.
        self.is_closed = True

    def __init__(self, options):
        check_pragma_names(options.writer_pragmas)
        self.opts = options
        self.nreaders = options.readers
        self.timeout_ns = seconds_to_ns(options.acquisition_timeout)
        self.debug = options.debug
        self.track_time = options.max_lifetime is not None or options.idle_timeout is not None
        self.fork_generation = FORK_GENERATION
        self.holders = {}
        self.make_slots()
        self.readers = [None] * self.nreaders
        self.expires = [float("inf")] * self.nreaders
        self.last_used = [0.0] * self.nreaders
        self.writer_conn = self.open_writer()
        try:
            self.start_checkpointer()
            for i in range(options.min_readers):
                self.open_reader(i)
        except BaseException:
            self.close_all_connections()
            raise
        self.last_sweep = time.monotonic()
        self.is_closed = False
        try:
            LIVE_POOLS.add(self)
        except TypeError:
            pass    # a bare PoolCore has no weakref slot; fastpool.Pool always has one

    def __dealloc__(self):
        # The mutexes inside may have been copied mid-use by fork(); a child never frees them.
        if self.checkpointer is not None:
            self.checkpointer.stop()    # a pool collected without close(): its thread exits
        if self.fork_generation == FORK_GENERATION:
            fp_slots_free(self.reader_slots)
            fp_slots_free(self.writer_slot)
        if self.fork_generation == FORK_GENERATION:
            self.close_xlock()          # a held lock was released on return
        else:
            fp_xlock_forget_after_fork(self.xlock)
            self.xlock = NULL

    cdef int make_slots(self) except -1:
        self.reader_slots = fp_slots_new(self.nreaders, 0)
        self.writer_slot = fp_slots_new(1, 1)
        if self.reader_slots == NULL or self.writer_slot == NULL:
            raise MemoryError("could not allocate the pool's slot rings")
        return 0

    # -- connections -------------------------------------------------------------------------

    cdef Connection open_connection(self, bint readonly):
        opts = self.opts
        conn = Connection(
            opts.path, readonly=readonly,
            pragmas=opts.reader_pragmas if readonly else opts.writer_pragmas,
            statement_cache_size=opts.statement_cache_size, busy_timeout=opts.busy_timeout,
            autocheckpoint=opts.autocheckpoint, row_factory=opts.row_factory,
            defensive=opts.defensive)
        conn.reader_hint = readonly
        try:
            if opts.on_connect is not None:
                opts.on_connect(conn)
            # pool_options refuses the pragma; on_connect could still have run it.
            if conn.pragma_text(b"PRAGMA locking_mode") == "exclusive":
                raise NotSupportedError(
                    f"cannot use database {opts.path!r} in a pool: on_connect set "
                    f"locking_mode=exclusive, so the first connection to read or write keeps "
                    f"the file locked and every other connection of the pool waits forever. "
                    f"Leave locking_mode normal")
        except BaseException:
            conn.close()
            raise
        return conn

    cdef Connection open_writer(self):
        conn = self.open_connection(False)
        choice = conn.uri_vfs_choice()
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
        self.writer_expires = self.expiry()
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
        self.bind_xlock(conn)
        return conn

    cdef int open_xlock(self, object st) except -1:
        # The side file <database>-writerlock, created with the database file's mode and (as
        # root) owner. Without it (unsupported platform, a refused or failing side file) the
        # pool still works: SQLite's own locks alone decide who writes next.
        cdef fp_xlock *lock = NULL
        cdef bytes lock_path = os.fsencode(self.file_path + "-writerlock")
        cdef const char *c_path = lock_path
        cdef unsigned int mode = st.st_mode & 0o777
        cdef int64_t uid = st.st_uid
        cdef int64_t gid = st.st_gid
        cdef int rc, err
        with nogil:
            rc = fp_xlock_open(c_path, mode, uid, gid, &lock)
            err = errno
        if rc == FP_XLOCK_OK:
            self.xlock = lock
        elif rc != FP_XLOCK_UNSUPPORTED:
            name = self.file_path + "-writerlock"
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

    cdef void bind_xlock(self, Connection conn) noexcept:
        # The writer's busy handler gives the cross-process lock up before it sleeps on a lock
        # another process holds in SQLite (see on_busy).
        conn.hooks.xlock = self.xlock
        conn.hooks.xlock_held = &self.xlock_held if self.xlock != NULL else NULL

    cdef void close_xlock(self) noexcept:
        # Unmap the side file and close its descriptor (not releasing a held lock: the owner
        # releases first). The writer connection may outlive the pool: unhook it first.
        if self.writer_conn is not None:
            self.writer_conn.hooks.xlock = NULL
            self.writer_conn.hooks.xlock_held = NULL
        fp_xlock_close(self.xlock)
        self.xlock = NULL

    cdef void lose_xlock(self, int rc) noexcept:
        # Called holding the writer slot: the side file went bad under this pool (truncated,
        # or a system call failed). Stop using it; a writer reopened later tries it afresh.
        cdef int err = errno
        self.xlock_held = False
        self.xlock_batch = 0
        self.close_xlock()
        try:
            what = ("was truncated while in use" if rc == FP_XLOCK_STALE else
                    f"failed: [Errno {err}] {os.strerror(err)}")
            log.warning("the cross-process writer lock file %r %s; this pool goes on "
                        "without it (SQLite's own locking still keeps writes correct). Do not "
                        "truncate or delete <database>-writerlock while processes use the "
                        "database", self.file_path + "-writerlock", what)
        except BaseException:
            pass    # logging must never break a return path

    cdef int check_file(self) except -1:
        # Called holding the writer slot. SQLite keeps writing to a database file that was
        # deleted (into an unlinked inode: lost at close) or replaced (the old file), so the
        # writer compares the path's identity with the one it opened, at most every 100 ms.
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
        # A writer kept the cross-process lock for this thread, which then timed out: if
        # nobody else took the writer slot since, give the lock up so other processes do not
        # wait for a writer that is not coming.
        cdef uint32_t slot
        if fp_slots_try_acquire(self.writer_slot, &slot) == FP_SLOTS_OK:
            self.release_xlock()
            fp_slots_release(self.writer_slot, slot)

    cdef void release_xlock(self) noexcept:
        # Called holding the writer slot (or with it collected by close()).
        cdef int rc
        if self.xlock_held:
            self.xlock_held = False
            self.xlock_batch = 0
            rc = fp_xlock_release(self.xlock)
            if rc != FP_XLOCK_OK and rc != FP_XLOCK_ERROR:
                self.lose_xlock(rc)     # ERROR is EPERM: not ours any more, nothing to undo

    cdef bint try_xlock(self) noexcept:
        # Holding the writer slot: True when the cross-process lock is not used, already held
        # or free right now (then taken); False when someone else holds it.
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

    cdef int start_checkpointer(self) except -1:
        # Only a WAL database has a log to checkpoint (":memory:" through memdb has none).
        opts = self.opts
        self.wal = self.writer_conn.fetchone("PRAGMA journal_mode") == ("wal",)
        if opts.autocheckpoint <= 0 or not self.wal:
            return 0
        conn = Connection(opts.path, pragmas=opts.writer_pragmas, statement_cache_size=0,
                          busy_timeout=opts.busy_timeout, autocheckpoint=0)
        self.checkpointer = Checkpointer(conn, opts.autocheckpoint)
        self.writer_conn.attach_checkpointer(self.checkpointer)
        return 0

    cdef void restart_wal(self, Connection conn) noexcept:
        # Called holding the writer slot, between two writers, when the checkpointer found
        # the log past its threshold. RESTART copies what is left of the log (little: the
        # checkpointer's PASSIVE runs did the bulk) and, once no reader is left in the log,
        # makes the next commit rewind it to its start.
        #
        # First try holding the GIL, not waiting for readers: point reads run with the GIL
        # held, so while this thread holds it, usually no reader is inside the log, and
        # nobody else can queue for the writer meanwhile. Dropping the GIL here would let the
        # other threads run and queue behind this slot; the slot then goes from one parked
        # thread to the next, each needing a GIL time slice (ms) to wake up: a convoy that
        # outlives the restart by far. Only when a reader really holds a snapshot (a reader
        # transaction, a long query) is it worth dropping the GIL and waiting for it briefly.
        cdef Checkpointer ck = self.checkpointer
        cdef sqlite3 *db = conn.db
        cdef Hooks *hooks = &conn.hooks
        cdef int rc, log = -1, done = -1
        if ck is None or db == NULL or fp_flag_exchange(&ck.restart_wanted, 0) == 0:
            return
        sqlite3_busy_handler(db, NULL, NULL)
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done)
        if rc & 0xFF == SQLITE_BUSY and log >= 0:
            conn.in_call = True     # a fork() meanwhile must not reuse this copy in the child
            with nogil:
                sqlite3_busy_handler(db, on_busy_brief, NULL)
                rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done)
            conn.in_call = False
        sqlite3_busy_handler(db, on_busy, hooks)
        ck.restarted(rc, log)

    cdef double expiry(self):
        # Jitter spreads the reopening of connections made together over 10% of the lifetime.
        lifetime = self.opts.max_lifetime
        if lifetime is None:
            return float("inf")
        return time.monotonic() + lifetime * (1.0 - 0.1 * random.random())

    cdef Connection open_reader(self, uint32_t slot):
        conn = self.open_connection(True)
        self.readers[slot] = conn
        self.expires[slot] = self.expiry()
        return conn

    cdef void discard(self, Connection conn) noexcept:
        self.n_discarded += 1
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

    cdef void close_all_connections(self) noexcept:
        for i in range(self.nreaders):
            conn = self.readers[i]
            if conn is not None:
                (<Connection>conn).close()
                self.readers[i] = None
        if self.writer_conn is not None:
            self.writer_conn.close()

    cdef int after_fork(self, bint wait=True) except -1:
        # In a child process, on its first use of the pool. fork() copied the parent's
        # connections into this process together with SQLite's per-process lock bookkeeping,
        # but not the locks the kernel holds for the parent. A copy left open would make
        # SQLite believe this process holds the parent's locks: its new connections would
        # skip taking them for real (reads unprotected from the parent's checkpoints), and a
        # copied write transaction would block every writer here for good. So the copies are
        # retired first (retire_parent_connections); then the child opens its own.
        # wait=False (from close()) retires what can be retired now and opens nothing.
        if self.fork_error is None:
            self.retire_parent_connections(wait)
        for i in range(self.nreaders):
            self.readers[i] = None
        self.checkpointer = None     # its thread was not copied into this process
        self.holders.clear()
        self.writer_owner = 0
        forget_parent_xlock(self)   # held (if at all) by the parent's token, not by us
        self.fork_generation = FORK_GENERATION
        self.make_slots()
        if self.fork_error is not None:
            if wait:
                raise InterfaceError(self.fork_error)
            return 0
        if not self.is_closed:
            self.writer_conn = self.open_writer()
            self.start_checkpointer()
        return 0

    cdef int retire_parent_connections(self, bint wait) except -1:
        # Closing a copy is safe where SQLite's close touches only this process: no call of
        # it running (a copy inside a call in another thread of the parent has half-done
        # state and maybe SQLite's mutexes taken: then the pool refuses to work here), and
        # no write transaction to roll back (retire_parent_writer waits for that).
        copies = [c for c in self.readers if c is not None]
        if self.checkpointer is not None:
            copies.append(self.checkpointer.conn)   # out of SQLite: _before_fork paused it
        writer = self.writer_conn
        if self.opts.memory:
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
            self.fork_error = (
                f"this process was forked while another thread of the parent was inside a "
                f"SQLite call on this pool's connection to {self.opts.path!r}; SQLite's state "
                f"of that call was copied into this process and can never be released here, "
                f"so this pool cannot be used in it. Fork before starting threads that use "
                f"the pool (or between their calls), or use the 'spawn' or 'forkserver' "
                f"start method")
            return 0
        for conn in copies:
            if conn is not writer:
                (<Connection>conn).close()
        if writer is not None:
            self.retire_parent_writer(writer, wait)
        return 0

    cdef int retire_parent_writer(self, Connection conn, bint wait) except -1:
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
        if not self.wal:
            conn.abandon()
            self.fork_error = (
                f"this process was forked inside a write transaction on {self.opts.path!r}, "
                f"which is not in WAL mode; the copy of that transaction cannot be undone "
                f"here without touching the parent's files, so this pool cannot be used in "
                f"this process. Fork outside 'with pool.writer()' blocks")
            return 0
        shm = os.fsencode(self.file_path + "-shm")
        c_shm = shm
        timeout = seconds_to_ns(self.opts.busy_timeout)
        with nogil:
            rc = fp_fencelock_acquire(c_shm, FP_SHM_WRITE_LOCK_OFFSET, timeout, &fd)
        if rc == FP_FENCELOCK_TIMEOUT:
            raise error_for_code(SQLITE_BUSY, (
                f"database is locked: this process was forked while its parent was inside a "
                f"write transaction on {self.file_path!r}, and that transaction (or another "
                f"process's) did not end within busy_timeout ({self.opts.busy_timeout:g} s). "
                f"The pool works here once it has ended; fork outside 'with pool.writer()' "
                f"blocks to avoid the wait"))
        if rc != FP_FENCELOCK_OK:
            reason = (os.strerror(errno) if rc == FP_FENCELOCK_ERROR
                      else "this platform has no open-file-description locks")
            conn.abandon()
            self.fork_error = (
                f"this process was forked inside a write transaction on {self.opts.path!r}, "
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

    # -- checkout and return -----------------------------------------------------------------

    cdef uint32_t acquire(self, fp_slots *slots, int kind) except? 0xFFFFFFFF:
        cdef uint32_t slot
        cdef fp_waiter waiter
        cdef int rc
        cdef int64_t started, waited
        if self.fork_generation != FORK_GENERATION:
            self.after_fork()
            slots = self.writer_slot if kind == WRITER else self.reader_slots
        if self.fork_error is not None:
            raise InterfaceError(self.fork_error)
        if self.is_closed:
            raise PoolClosed("the pool is closed; create a new pool to keep working")
        if fp_slots_try_acquire(slots, &slot) == FP_SLOTS_OK:
            self.n_checkouts += 1
            return slot
        fp_waiter_init(&waiter, NULL, NULL)
        rc = fp_slots_enqueue(slots, &waiter)
        if rc == FP_SLOTS_QUEUED:
            self.n_waits += 1
            started = time.monotonic_ns()
            with nogil:
                rc = fp_slots_wait(slots, &waiter, self.timeout_ns)
            waited = time.monotonic_ns() - started
            self.wait_ns += waited
            if rc == FP_SLOTS_TIMEOUT:
                self.n_timeouts += 1
                if kind == WRITER and self.xlock_held:
                    self.drop_kept_xlock()
                raise PoolTimeout(self.timeout_message(kind, waited))
        if rc != FP_SLOTS_OK:
            raise InternalError(f"the pool's slot ring failed (code {rc})")
        slot = waiter.slot
        if self.is_closed:
            if kind == WRITER:
                self.release_xlock()    # kept for us by the previous writer
            fp_slots_release(slots, slot)
            raise PoolClosed("the pool was closed while waiting for a connection")
        self.n_checkouts += 1
        return slot

    cdef str timeout_message(self, int kind, int64_t waited_ns):
        cdef fp_slots *slots = self.writer_slot if kind == WRITER else self.reader_slots
        size = fp_slots_capacity(slots)
        in_use = size - fp_slots_free_count(slots)
        message = (
            f"timed out after {waited_ns / 1e9:.3f} s waiting for a {KIND_NAMES[kind]}: "
            f"{size} {KIND_NAMES[kind]} connection(s), {in_use} in use, "
            f"{fp_slots_waiting(slots)} other caller(s) waiting. ")
        if not self.debug:
            return message + ("Leases are held too long or never returned (use 'with'); "
                              "pass debug=True to see who holds them")
        now = time.monotonic()
        lines = [message + "Held by:"]
        for (held_kind, slot), (thread_name, since, stack) in list(self.holders.items()):
            if held_kind == kind:
                lines.append(f"  - {KIND_NAMES[kind]} {slot}: thread {thread_name!r} for "
                             f"{now - since:.3f} s, checked out at:\n{stack}")
        return "\n".join(lines)

    cdef Connection reader_connection(self, uint32_t slot):
        conn = self.readers[slot]
        if conn is None or (<Connection>conn).db == NULL:
            if conn is not None:
                self.discard(<Connection>conn)      # closed underneath while idle
            try:
                conn = self.open_reader(slot)
            except BaseException:
                fp_slots_release(self.reader_slots, slot)
                raise
        return <Connection>conn

    cdef Connection writer_connection(self, bint lock=True):
        # Called holding the writer slot. A writer discarded earlier is reopened here.
        # lock=False leaves the cross-process lock to the caller (AsyncPool takes it with
        # try_xlock, or waits for it on a worker thread, never on the event loop).
        try:
            if self.writer_conn.db == NULL and not self.is_closed:
                self.writer_conn = self.open_writer()
            if self.file_id is not None:
                self.check_file()
            if lock and self.xlock != NULL and not self.xlock_held:
                self.take_xlock()
        except BaseException:
            self.writer_owner = 0
            self.release_xlock()        # it may have been kept for us by the last writer
            fp_slots_release(self.writer_slot, 0)
            raise
        return self.writer_conn

    cdef void release_reader(self, uint32_t slot, Connection conn) noexcept:
        if conn.fatal or conn.db == NULL:
            self.discard(conn)
            self.readers[slot] = None       # reopened by its next user
        elif self.track_time:
            now = time.monotonic()
            self.last_used[slot] = now
            if now >= self.expires[slot]:
                self.readers[slot] = None
                conn.close()
        if self.is_closed:
            conn = self.readers[slot]
            if conn is not None and self.collected:
                (<Connection>conn).close()
                self.readers[slot] = None
        fp_slots_release(self.reader_slots, slot)
        if self.track_time and not self.is_closed and self.opts.idle_timeout is not None:
            self.maybe_sweep_idle()

    cdef void release_writer(self, Connection conn) noexcept:
        self.writer_owner = 0
        broken = conn.fatal or conn.db == NULL
        expired = self.track_time and time.monotonic() >= self.writer_expires
        if (broken or expired) and not self.is_closed:
            if broken:
                self.discard(conn)
            else:
                conn.close()
            try:
                self.writer_conn = self.open_writer()
            except BaseException as exc:
                # Keep the closed one: every writer call raises InterfaceError until a later
                # return manages to reopen it.
                log.error("could not reopen the writer connection to %r: %s",
                          self.opts.path, exc)
                warnings.warn(f"fastpool could not reopen the writer connection: {exc}",
                              RuntimeWarning, stacklevel=2)
        if self.is_closed and self.collected:
            self.writer_conn.close()
        elif not broken:
            self.restart_wal(conn)
        if self.xlock_held:
            # A thread of this process queued for the writer gets the slot straight from us:
            # let it keep the cross-process lock too, for a few writers in a row. Each
            # hand-over between processes costs a wake-up and a context switch; a bounded
            # batch buys throughput and still lets every process in after XLOCK_BATCH.
            if (fp_slots_waiting(self.writer_slot) > 0 and self.xlock_batch < XLOCK_BATCH
                    and not self.is_closed):
                self.xlock_batch += 1
            else:
                self.release_xlock()
        if self.is_closed and self.collected:
            self.close_xlock()      # the last writer of a closed pool came back
        fp_slots_release(self.writer_slot, 0)

    cdef void maybe_sweep_idle(self) noexcept:
        # Close readers idle longer than idle_timeout, keeping min_readers open. Runs at most
        # twice per idle_timeout, from a returning caller; idle slots are taken out of the
        # ring while checked so no one else can be using them.
        cdef uint32_t slot
        now = time.monotonic()
        idle = self.opts.idle_timeout
        if now - self.last_sweep < idle / 2:
            return
        self.last_sweep = now
        taken = []
        open_count = sum(1 for c in self.readers if c is not None)
        while fp_slots_try_acquire(self.reader_slots, &slot) == FP_SLOTS_OK:
            taken.append(slot)
        for slot in taken:
            conn = self.readers[slot]
            if (conn is not None and open_count > self.opts.min_readers
                    and now - self.last_used[slot] >= idle):
                (<Connection>conn).close()
                self.readers[slot] = None
                open_count -= 1
        for slot in taken:
            fp_slots_release(self.reader_slots, slot)

    cdef void note_holder(self, int kind, uint32_t slot):
        thread = threading.current_thread()
        # The pool's methods are C functions without Python frames: the innermost frame is
        # the caller's own.
        stack = "".join(traceback.format_stack()) if self.debug else (
            "    (pass debug=True to record where)\n")
        self.holders[(kind, slot)] = (thread.name, time.monotonic(), stack)

    cdef Lease lease(self, int kind, uint32_t slot, Connection conn):
        cdef Lease lease = Lease.__new__(Lease)
        lease.pool = self
        lease.conn = conn
        lease.slot = slot
        lease.role = kind
        lease.epoch = conn.epoch
        lease.fork_generation = self.fork_generation
        lease.thread = PyThread_get_thread_ident()
        if self.debug:
            self.note_holder(kind, slot)
        return lease

    cdef void give_back(self, Lease lease) noexcept:
        # Return a lease's connection: reset cursors, roll back a forgotten transaction, then
        # hand the slot on. Never raises: it runs from __exit__, close() and the finalizer.
        cdef Connection conn = lease.conn
        if conn is None:
            return
        lease.conn = None
        if lease.role == SAVEPOINT:
            return
        if lease.fork_generation != FORK_GENERATION:
            return                          # a lease from the parent process: not ours to return
        if self.debug:
            self.holders.pop((lease.role, lease.slot), None)
        if conn.db != NULL and not conn.fatal:
            try:
                if conn.reset() and lease.role == READER:
                    warnings.warn(
                        "a reader lease was returned with an open transaction; fastpool rolled "
                        "it back (end transactions with commit/rollback or 'with "
                        "conn.transaction():')", ResourceWarning, stacklevel=3)
            except Error:
                conn.fatal = True
            except BaseException:
                conn.fatal = True
        if lease.role == READER:
            self.release_reader(lease.slot, conn)
        else:
            self.release_writer(conn)

    # -- public API ----------------------------------------------------------------------------

    @cython.binding(False)                      # a plain C method: see Lease.__enter__
    @cython.embedsignature.format('clinic')
    def reader(self):
        """Check out one of the read-only connections; return it as a Lease.

        Use it as ``with pool.reader() as conn:``. It goes back to the pool at the end of the
        block (or on ``conn.close()``); using it afterwards raises InterfaceError.
        """
        cdef uint32_t slot = self.acquire(self.reader_slots, READER)
        return self.lease(READER, slot, self.reader_connection(slot))

    def writer(self):
        """Check out the writer, in FIFO order of arrival; return it as a Lease in a transaction.

        ``with pool.writer() as conn:`` runs ``BEGIN IMMEDIATE`` now, ``COMMIT`` at the end of
        the block, or ``ROLLBACK`` if the block raises. Inside it, a nested ``pool.writer()``
        on the same thread becomes a SAVEPOINT instead of waiting for itself.
        """
        cdef Lease outer
        cdef Lease lease
        if self.writer_owner == PyThread_get_thread_ident() and self.writer_owner != 0 \
                and self.fork_generation == FORK_GENERATION:
            self.savepoint_counter += 1
            lease = self.lease(SAVEPOINT, 0, self.writer_conn)
            lease.savepoint = f"fastpool_{self.savepoint_counter}"
            self.writer_conn.executescript(f"SAVEPOINT {lease.savepoint}")
            return lease
        self.acquire(self.writer_slot, WRITER)
        self.writer_owner = PyThread_get_thread_ident()
        lease = self.lease(WRITER, 0, self.writer_connection())
        try:
            self.writer_conn.executescript("BEGIN IMMEDIATE")
        except BaseException:
            self.give_back(lease)
            raise
        self.writer_conn.guard_tx = True
        lease.changes_at_begin = sqlite3_total_changes64(self.writer_conn.db)
        return lease

    cpdef object fetchone(self, str sql, object params=()):
        """Run a query on a reader and return its first row (or None)."""
        cdef uint32_t slot = self.acquire(self.reader_slots, READER)
        cdef Connection conn = self.reader_connection(slot)
        try:
            return conn.fetchone(sql, params)
        finally:
            if conn.db != NULL and not sqlite3_get_autocommit(conn.db):
                one_shot_left_transaction(conn)
            self.release_reader(slot, conn)

    cpdef list fetchall(self, str sql, object params=()):
        """Run a query on a reader and return all its rows."""
        cdef uint32_t slot = self.acquire(self.reader_slots, READER)
        cdef Connection conn = self.reader_connection(slot)
        try:
            return conn.fetchall(sql, params)
        finally:
            if conn.db != NULL and not sqlite3_get_autocommit(conn.db):
                one_shot_left_transaction(conn)
            self.release_reader(slot, conn)

    cpdef Cursor execute(self, str sql, object params=()):
        """Run one write statement on the writer, in its own transaction; return its Cursor.

        The cursor is finished: rowcount and lastrowid are set, and rows from RETURNING are
        already fetched. Inside a ``pool.writer()`` block on this thread it joins that
        transaction.
        """
        cdef Cursor cur
        if self.writer_owner == PyThread_get_thread_ident() and self.writer_owner != 0 \
                and self.fork_generation == FORK_GENERATION:
            cur = self.writer_conn.execute(sql, params)
            cur.materialize()
            return cur
        self.acquire(self.writer_slot, WRITER)
        conn = self.writer_connection()
        try:
            cur = conn.execute(sql, params)
            cur.materialize()
            return cur
        finally:
            self.give_back(self.lease(WRITER, 0, conn))

    cpdef Cursor executemany(self, str sql, object seq_of_params):
        """Run a write statement for each parameter set, all in one transaction."""
        with self.writer() as conn:
            return conn.executemany(sql, seq_of_params)

    def checkpoint(self, str mode="passive"):
        """Checkpoint the WAL on the writer: mode is passive, full, restart or truncate.

        Returns ``(wal_frames, checkpointed_frames)``. Waits for the writer like any writer.
        """
        with self.writer_no_transaction() as lease:
            return (<Lease>lease).live().checkpoint(mode)

    def writer_no_transaction(self):
        """Check out the writer without opening a transaction (for checkpoints and VACUUM)."""
        cdef Lease lease
        self.acquire(self.writer_slot, WRITER)
        self.writer_owner = PyThread_get_thread_ident()
        lease = self.lease(WRITER, 0, self.writer_connection())
        lease.plain = True
        return lease

    def stats(self):
        """Counters and gauges of the pool, as a dict (see the README for each key)."""
        cache = {"hits": 0, "misses": 0, "evictions": 0}
        conns = [c for c in self.readers if c is not None] + [self.writer_conn]
        for c in conns:
            if not (<Connection>c).closed:
                s = (<Connection>c).cache_stats()
                for key in cache:
                    cache[key] += s[key]
        readers_idle = fp_slots_free_count(self.reader_slots)
        return {
            "readers": self.nreaders,
            "readers_open": sum(1 for c in self.readers if c is not None),
            "readers_idle": readers_idle,
            "readers_in_use": self.nreaders - readers_idle,
            "writer_busy": fp_slots_free_count(self.writer_slot) == 0,
            "waiting_readers": fp_slots_waiting(self.reader_slots),
            "waiting_writers": fp_slots_waiting(self.writer_slot),
            "checkouts": self.n_checkouts,
            "waits": self.n_waits,
            "wait_time": self.wait_ns / 1e9,
            "timeouts": self.n_timeouts,
            "discarded": self.n_discarded,
            "statement_cache_hits": cache["hits"],
            "statement_cache_misses": cache["misses"],
            "statement_cache_evictions": cache["evictions"],
            **(self.checkpointer.stats() if self.checkpointer is not None else
               {"checkpoints": 0, "wal_restarts": 0, "checkpoint_errors": 0}),
            "closed": self.is_closed,
        }

    def close(self, timeout=5.0):
        """Stop lending connections, wait up to ``timeout`` s for leases to come back, close all.

        New checkouts raise PoolClosed at once. Leases still out when the timeout passes (or
        the writer, when the calling thread holds it) are closed when they come back, with a
        ResourceWarning. ``timeout=None`` waits for them forever. Idempotent.
        """
        if self.is_closed:
            return
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
        self.is_closed = True
        if self.fork_generation != FORK_GENERATION:
            self.after_fork(False)
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.checkpointer is not None:
            self.checkpointer.join()
        # Collect every slot: the idle ones at once, the busy ones as their leases return.
        collected = []
        for _ in range(self.nreaders):
            slot = self.collect_slot(self.reader_slots, deadline)
            if slot < 0:
                break
            collected.append(slot)
        # The caller's own writer lease cannot come back while we wait for it.
        own_writer = self.writer_owner == PyThread_get_thread_ident() and self.writer_owner != 0
        writer_collected = not own_writer and self.collect_slot(self.writer_slot, deadline) >= 0
        self.collected = True
        # Close only what was collected. A lease still out may be running a call in another
        # thread right now: its connection is closed when it comes back (release_*).
        for slot in collected:
            conn = self.readers[slot]
            self.readers[slot] = None
            if conn is not None:
                (<Connection>conn).close()
        if writer_collected:
            self.release_xlock()
            self.close_xlock()      # its descriptor goes with close(), not with the object
        if writer_collected and self.writer_conn is not None:
            self.writer_conn.close()
        out = self.nreaders - len(collected) + (0 if writer_collected else 1)
        if out:
            warnings.warn(
                f"fastpool.Pool.close(): {out} lease(s) still checked out after "
                f"{timeout if timeout is not None else 0} s; their connections are closed when "
                f"they come back (return leases before closing the pool)",
                ResourceWarning, stacklevel=2)

    cdef int64_t collect_slot(self, fp_slots *slots, object deadline):
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

    @property
    def closed(self):
        """True once close() was called."""
        return self.is_closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
