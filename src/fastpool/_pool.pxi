# The pool: N read-only connections handed out through a lock-free slot ring, and one writer
# handed out in strict FIFO order. Waiting parks the thread in C with the GIL dropped.

import threading
import time
import traceback
import warnings

from fastpool.errors import Error, PoolClosed, PoolTimeout

from cpython.pythread cimport PyThread_get_thread_ident

cdef enum LeaseRole:
    READER = 0
    WRITER = 1
    SAVEPOINT = 2

cdef tuple ROLE_NAMES = ("reader", "writer", "writer savepoint")


# What reader_counts counts (fp_slot_counters kinds).
cdef enum:
    COUNT_CHECKOUTS = 0
    COUNT_SNAPSHOT_REUSES = 1


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
        conn.fatal = True   # discarded by return_reader instead of handed on half-reset


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
        self.gate = WriterGate(options)
        self.make_slots()
        self.readers = [None] * self.nreaders
        self.expires = [float("inf")] * self.nreaders
        self.last_used = [0.0] * self.nreaders
        writer = self.gate.open()
        try:
            self.wal = in_wal_mode(writer)
            if self.wal:
                self.checkpointer = start_checkpointer(self.opts, writer)
                self.gate.use_checkpointer(self.checkpointer)
            self.snapshots = start_snapshots(self, writer)
            for i in range(options.min_readers):
                self.open_reader(i)
        except BaseException:
            close_all_connections(self)
            raise
        self.last_sweep = time.monotonic()
        self.is_closed = False
        try:
            add_live_pool(self)
        except TypeError:
            pass    # a bare PoolCore has no weakref slot; fastpool.Pool always has one

    def __dealloc__(self):
        # The mutexes inside may have been copied mid-use by fork(); a child never frees them.
        if self.checkpointer is not None:
            self.checkpointer.stop()    # a pool collected without close(): its thread exits
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.gate is None:
            return                      # __init__ failed before it made the gate
        if self.fork_generation == FORK_GENERATION:
            fp_slots_free(self.reader_slots)
            PyMem_RawFree(self.sweep_taken)
            fp_slot_counters_free(self.reader_counts)
            self.gate.free_slot()
            self.gate.close_xlock()     # a held lock was released on return
        else:
            self.gate.forget_after_fork()

    cdef int make_slots(self) except -1:
        self.reader_slots = fp_slots_new(self.nreaders, self.opts.fifo_after_ns)
        self.sweep_taken = <uint32_t *>PyMem_RawMalloc(self.nreaders * sizeof(uint32_t))
        self.reader_counts = fp_slot_counters_new(self.nreaders)
        if self.reader_slots == NULL or self.sweep_taken == NULL or self.reader_counts == NULL:
            raise MemoryError("could not allocate the pool's slot ring")
        return self.gate.make_slot()

    # -- connections -------------------------------------------------------------------------

    cdef Connection open_reader(self, uint32_t slot):
        conn = open_connection(self.opts, True)
        self.readers[slot] = conn
        self.expires[slot] = expiry(self.opts)
        return conn

    # -- checkout and return -----------------------------------------------------------------

    cdef uint32_t acquire(self, fp_slots *slots, int role, int64_t timeout_ns) except? 0xFFFFFFFF:
        # A slot of the role's ring, waiting up to timeout_ns (-1: no limit).
        cdef uint32_t slot
        cdef fp_waiter waiter
        cdef int rc
        cdef int64_t started, waited
        if role == READER and gil_turn_due() and not self.gate.held_here():
            # Readers take the turns (never holding the writer: it would wait for the GIL
            # with it); a writer's wait for the GIL would be every other writer's too. First:
            # a fork or close() may come while the GIL is away, and the checks below see it.
            gil_turn()
        if self.fork_generation != FORK_GENERATION:
            after_fork(self)
            slots = self.gate.queue() if role == WRITER else self.reader_slots
        if self.fork_error is not None:
            raise InterfaceError(self.fork_error)
        if self.is_closed:
            raise PoolClosed("the pool is closed; create a new pool to keep working")
        if fp_slots_try_acquire(slots, &slot) == FP_SLOTS_OK:
            self.count_checkout(role, slot)
            return slot
        fp_waiter_init(&waiter, NULL, NULL)
        rc = fp_slots_enqueue(slots, &waiter)
        if rc == FP_SLOTS_QUEUED:
            fp_counter_add(&self.n_waits, 1)
            started = time.monotonic_ns()
            with nogil:
                rc = fp_slots_wait(slots, &waiter, timeout_ns)
            waited = time.monotonic_ns() - started
            fp_counter_add(&self.wait_ns, <uint64_t>waited)
            if rc == FP_SLOTS_TIMEOUT:
                fp_counter_add(&self.n_timeouts, 1)
                if role == WRITER:
                    self.gate.drop_kept_xlock()
                raise PoolTimeout(self.timeout_message(role, waited))
        if rc != FP_SLOTS_OK:
            raise InternalError(f"the pool's slot ring failed (code {rc})")
        slot = waiter.slot
        if self.is_closed:
            if role == WRITER:
                self.gate.release_xlock()    # kept for us by the previous writer
            fp_slots_release(slots, slot)
            raise PoolClosed("the pool was closed while waiting for a connection")
        self.count_checkout(role, slot)
        return slot

    @cython.final
    cdef void count_checkout(self, int role, uint32_t slot) noexcept:
        if role == READER:
            fp_slot_counter_add(self.reader_counts, slot, COUNT_CHECKOUTS, 1)
        else:
            fp_counter_add(&self.n_checkouts, 1)

    # What the async engine (_async*.pxi) takes and counts goes through these, so it never
    # touches the slots or the counters itself. Final: called directly, never through the
    # vtable (Pool subclasses PoolCore).

    @cython.final
    cdef bint try_reader(self, uint32_t *slot) noexcept:
        # A reader slot if one is free now (counted as a checkout); never waits.
        if fp_slots_try_acquire(self.reader_slots, slot) != FP_SLOTS_OK:
            return False
        fp_slot_counter_add(self.reader_counts, slot[0], COUNT_CHECKOUTS, 1)
        return True

    @cython.final
    cdef bint try_writer(self) noexcept:
        # The writer slot if it is free now (counted as a checkout); never waits.
        cdef uint32_t slot
        if fp_slots_try_acquire(self.gate.queue(), &slot) != FP_SLOTS_OK:
            return False
        fp_counter_add(&self.n_checkouts, 1)
        return True

    @cython.final
    cdef int enqueue_waiter(self, int role, fp_waiter *waiter) noexcept:
        # fp_slots_enqueue on the role's slots: FP_SLOTS_OK (granted at once, counted as a
        # checkout), FP_SLOTS_QUEUED (counted as a wait) or an error code.
        cdef int rc = fp_slots_enqueue(self.gate.queue() if role == WRITER else self.reader_slots,
                                       waiter)
        if rc == FP_SLOTS_OK:
            self.count_checkout(role, waiter.slot)
        elif rc == FP_SLOTS_QUEUED:
            fp_counter_add(&self.n_waits, 1)
        return rc

    @cython.final
    cdef int cancel_waiter(self, int role, fp_waiter *waiter, uint32_t *slot) noexcept:
        # fp_slots_cancel on the role's slots: FP_SLOTS_CANCELLED (withdrawn, no slot) or
        # FP_SLOTS_OK (the grant won the race: *slot is the caller's to return).
        return fp_slots_cancel(self.gate.queue() if role == WRITER else self.reader_slots,
                               waiter, slot)

    @cython.final
    cdef void return_slot(self, int role, uint32_t slot) noexcept:
        # Hand a bare slot on, one taken but never given a connection or a lease (the
        # cross-process lock is the caller's business).
        fp_slots_release(self.gate.queue() if role == WRITER else self.reader_slots, slot)

    @cython.final
    cdef void note_checkout(self) noexcept:
        fp_counter_add(&self.n_checkouts, 1)

    @cython.final
    cdef void note_reader_checkout(self, uint32_t slot) noexcept:
        fp_slot_counter_add(self.reader_counts, slot, COUNT_CHECKOUTS, 1)

    @cython.final
    cdef void note_timeout(self) noexcept:
        fp_counter_add(&self.n_timeouts, 1)

    @cython.final
    cdef bint readers_out(self) noexcept:
        return fp_slots_free_count(self.reader_slots) < self.nreaders

    @cython.final
    cdef bint writer_out(self) noexcept:
        return self.gate.busy()

    @cython.final
    cdef bint has_closed(self) noexcept:
        return self.is_closed

    @cython.final
    cdef bint is_forked_copy(self) noexcept:
        # Made before os.fork(): this process holds a copy, not the pool.
        return self.fork_generation != FORK_GENERATION

    @cython.final
    cdef Connection current_writer(self):
        return self.gate.current()

    @cython.final
    cdef Connection writer_connection(self, bint lock, bint sweep=False):
        # Holding the writer slot: the writer, checked and reopened if need be; with lock,
        # the cross-process lock taken too (see WriterGate.connection). Idle readers give up
        # their kept snapshots when they would keep this writer's commit from rewinding the
        # log (only sweeping before the pool's RESTART let it reach 22-32 MiB), or always
        # with sweep (a checkpoint or VACUUM must find no reader in the log).
        cdef Connection conn = self.gate.connection(not self.is_closed, lock)
        if sweep or snapshots_in_the_way(self, conn):
            sweep_snapshots(self)
        return conn

    @cython.final
    cdef bint try_xlock(self) noexcept:
        return self.gate.try_xlock()

    @cython.final
    cdef int take_xlock(self) except -1:
        return self.gate.take_xlock()

    @cython.final
    cdef void release_xlock(self) noexcept:
        self.gate.release_xlock()

    @cython.final
    cdef str next_savepoint(self):
        return self.gate.next_savepoint()

    cdef str timeout_message(self, int role, int64_t waited_ns):
        return timeout_text(self, role, waited_ns)

    cdef Connection reader_connection(self, uint32_t slot):
        # Holding the slot: its connection, opened if need be, lent so that each of its calls
        # sees the newest commit (a kept snapshot renewed per call, or none: _snapshot.pxi).
        cdef Connection conn = self.one_shot_reader(slot)
        lend_snapshot(self, conn, slot)
        return conn

    cdef Connection one_shot_reader(self, uint32_t slot):
        # The same for a one-shot read: use_snapshot() decides about its kept snapshot.
        conn = self.readers[slot]
        if conn is None or (<Connection>conn).db == NULL:
            if conn is not None:
                discard(self, <Connection>conn)      # closed underneath while idle
            try:
                conn = self.open_reader(slot)
            except BaseException:
                fp_slots_release(self.reader_slots, slot)
                raise
        return <Connection>conn

    cdef void return_reader(self, uint32_t slot, Connection conn) noexcept:
        unlend_snapshot(conn)
        if fp_flag_load(&conn.snapshot_held):
            returning_snapshot(self, conn)
        if conn.fatal or conn.db == NULL:
            discard(self, conn)
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
        # Set aside for this thread while nobody waits: its next checkout gets the same
        # connection back, warm in this core's cache (csrc/fp_slots.h, "Slots set aside").
        fp_slots_set_aside(self.reader_slots, slot)
        if self.track_time and not self.is_closed and self.opts.idle_timeout is not None:
            maybe_sweep_idle(self)

    cdef void return_writer(self, Connection conn) noexcept:
        broken = conn.fatal or conn.db == NULL
        if (broken or self.track_time and self.gate.expired()) and not self.is_closed:
            if broken:
                discard(self, conn)
            else:
                conn.close()
            try:
                self.gate.open()
            except BaseException as exc:
                # Keep the closed one: every writer call raises InterfaceError until a later
                # return manages to reopen it.
                log.error("could not reopen the writer connection to %r: %s",
                          self.opts.path, exc)
                warnings.warn(f"fastpool could not reopen the writer connection: {exc}",
                              RuntimeWarning, stacklevel=2)
        if self.is_closed and self.collected:
            self.gate.current().close()
        elif not broken and restart_wal(self, conn):
            self.gate.hand_to_checkpointer()    # it waits for readers or Litestream; we go on
            return
        self.gate.give_back(self.is_closed, self.collected)

    cdef void note_holder(self, int role, uint32_t slot):
        thread = threading.current_thread()
        # The pool's methods are C functions without Python frames: the innermost frame is
        # the caller's own.
        stack = "".join(traceback.format_stack()) if self.debug else (
            "    (pass debug=True to record where)\n")
        self.holders[(role, slot)] = (thread.name, time.monotonic(), stack)

    cdef Lease lease(self, int role, uint32_t slot, Connection conn):
        cdef Lease lease = Lease.__new__(Lease)
        lease.pool = self
        lease.conn = conn
        lease.slot = slot
        lease.role = role
        lease.epoch = conn.epoch
        lease.fork_generation = self.fork_generation
        lease.thread = PyThread_get_thread_ident()
        if self.debug:
            self.note_holder(role, slot)
        return lease

    cdef void end_lease(self, Lease lease) noexcept:
        # Return a lease's connection: reset cursors, roll back a forgotten transaction, then
        # hand the slot on. Never raises: it runs from __exit__, close() and the finalizer.
        cdef Connection conn
        with cython.critical_section(lease):    # one ender wins; see _lease.pxd
            conn = lease.conn
            lease.conn = None
        if conn is None:
            return
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
            self.return_reader(lease.slot, conn)
        else:
            self.return_writer(conn)

    # -- public API ----------------------------------------------------------------------------

    @cython.binding(False)                      # a plain C method: see Lease.__enter__
    @cython.embedsignature.format('clinic')
    def reader(self):
        """Check out one of the read-only connections; return it as a Lease.

        Use it as ``with pool.reader() as conn:``. It goes back to the pool at the end of the
        block (or on ``conn.close()``); using it afterwards raises InterfaceError.
        """
        cdef uint32_t slot = self.acquire(self.reader_slots, READER, self.timeout_ns)
        return self.lease(READER, slot, self.reader_connection(slot))

    def writer(self):
        """Check out the writer, in FIFO order of arrival; return it as a Lease in a transaction.

        ``with pool.writer() as conn:`` runs ``BEGIN IMMEDIATE`` now, ``COMMIT`` at the end of
        the block, or ``ROLLBACK`` if the block raises. Inside it, a nested ``pool.writer()``
        on the same thread becomes a SAVEPOINT instead of waiting for itself.
        """
        cdef Lease lease
        if self.gate.held_here() and self.fork_generation == FORK_GENERATION:
            lease = self.lease(SAVEPOINT, 0, self.gate.current())
            lease.savepoint = self.gate.next_savepoint()
            lease.conn.executescript(f"SAVEPOINT {lease.savepoint}")
            return lease
        self.acquire(self.gate.queue(), WRITER, self.timeout_ns)
        self.gate.hold_here()
        lease = self.lease(WRITER, 0, self.writer_connection(True))
        try:
            begin_lease_write(lease)
        except BaseException:
            self.end_lease(lease)
            raise
        return lease

    cpdef object fetchone(self, str sql, object params=()):
        """Run a query on a reader and return its first row (or None)."""
        cdef uint32_t slot = self.acquire(self.reader_slots, READER, self.timeout_ns)
        cdef Connection conn = self.one_shot_reader(slot)
        use_snapshot(self, conn, slot)
        try:
            return conn.fetchone(sql, params)
        except BaseException:
            give_up_snapshot(conn)  # a failed statement: SQLite's state after it is not ours
            raise
        finally:
            if conn.db != NULL and not sqlite3_get_autocommit(conn.db):
                one_shot_left_transaction(conn)
            self.return_reader(slot, conn)

    cpdef list fetchall(self, str sql, object params=()):
        """Run a query on a reader and return all its rows."""
        cdef uint32_t slot = self.acquire(self.reader_slots, READER, self.timeout_ns)
        cdef Connection conn = self.one_shot_reader(slot)
        use_snapshot(self, conn, slot)
        try:
            return conn.fetchall(sql, params)
        except BaseException:
            give_up_snapshot(conn)  # a failed statement: SQLite's state after it is not ours
            raise
        finally:
            if conn.db != NULL and not sqlite3_get_autocommit(conn.db):
                one_shot_left_transaction(conn)
            self.return_reader(slot, conn)

    cpdef Cursor execute(self, str sql, object params=()):
        """Run one write statement on the writer, in its own transaction; return its Cursor.

        The cursor is finished: rowcount and lastrowid are set, and rows from RETURNING are
        already fetched. Inside a ``pool.writer()`` block on this thread it joins that
        transaction.
        """
        cdef Cursor cur
        if self.fork_generation == FORK_GENERATION:
            if self.gate.held_here():
                cur = self.gate.current().execute(sql, params)
                cur.materialize()
                return cur
            if self.gate.grouping and groupable(sql):
                return group_write(self, sql, params, False)
        self.acquire(self.gate.queue(), WRITER, self.timeout_ns)
        conn = self.writer_connection(True)
        try:
            cur = conn.execute(sql, params)
            cur.materialize()
            return cur
        finally:
            self.end_lease(self.lease(WRITER, 0, conn))

    cpdef Cursor executemany(self, str sql, object seq_of_params):
        """Run a write statement for each parameter set, all in one transaction."""
        if (self.gate.grouping and type(seq_of_params) in (list, tuple)
                and self.fork_generation == FORK_GENERATION and not self.gate.held_here()
                and groupable(sql)):
            return group_write(self, sql, seq_of_params, True)
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
        self.acquire(self.gate.queue(), WRITER, self.timeout_ns)
        self.gate.hold_here()
        lease = self.lease(WRITER, 0, self.writer_connection(True, True))
        lease.plain = True
        return lease

    def stats(self):
        """Counters and gauges of the pool, as a dict (see the README for each key)."""
        return pool_stats(self)

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
        close_pool(self, timeout)

    @property
    def closed(self):
        """True once close() was called."""
        return <bint>self.is_closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
