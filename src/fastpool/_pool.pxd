# The pool unit (_pool.pxi): slots, checkout and return. The writer is the writer unit's
# (WriterGate, _writer.pxd). PoolCore also carries the state that the module-level functions
# of the WAL unit (_wal.pxi: checkpointer, wal) and the lifecycle unit (_lifecycle.pxi:
# expires, last_used, last_sweep, fork_*) work on; those units take the PoolCore as an
# argument.

#
# Threads (no field relies on a GIL): the C slot objects synchronise themselves (fp_slots:
# atomics and its own mutex; taking a slot acquires what its last holder released). Entry i
# of readers/expires/last_used belongs to the holder of reader slot i; the lists are never
# replaced or resized, and each item access is a list operation, atomic by itself, so other
# threads (stats(), close()) may read them. The options and sizes are set in __init__ and
# never change. Counters and the closed flags are C atomics; `holders` is one dict operation
# at a time. last_sweep is racy on purpose: two threads may both sweep, and a sweep takes
# the slots it looks at. In a forked child, the first users run after_fork under
# AFTER_FORK_LOCK, one after the other; it stores fork_generation last, so a thread that
# sees the current generation sees the child's slots and writer made before it. A reader
# Connection's kept snapshot belongs to the holder of its slot (_snapshot.pxi).

cdef class Lease


cdef class PoolCore:
    cdef fp_slots *reader_slots
    cdef object opts                 # fastpool._options.PoolOptions
    cdef uint32_t nreaders
    cdef list readers                # Connection or None (opened on first use) per slot
    cdef list expires                # monotonic time after which a reader is replaced
    cdef list last_used              # monotonic time a reader was last returned
    cdef WriterGate gate             # the writer, its queue and its cross-process lock
    cdef Checkpointer checkpointer   # None unless the database is in WAL mode
    cdef int64_t timeout_ns
    cdef readonly bint debug
    cdef bint track_time
    cdef fp_atomic_u32 is_closed     # set by close(), read by every thread (C atomic)
    cdef fp_atomic_u32 collected     # close() has gathered every slot it could (C atomic)
    cdef fp_atomic_u32 fork_generation   # stored last by after_fork (C atomic, see above)
    cdef double last_sweep
    cdef readonly dict holders       # (role, slot) -> (thread name, since, stack), debug only
    # Statistics, bumped by every thread: C atomics (fp_counter_add, relaxed), read by stats().
    cdef fp_atomic_u64 n_checkouts
    cdef fp_atomic_u64 n_waits
    cdef fp_atomic_u64 n_timeouts
    cdef fp_atomic_u64 n_discarded
    cdef fp_atomic_u64 wait_ns
    cdef fp_atomic_u64 n_group_commits  # transactions that ran several one-shot writes
    cdef fp_atomic_u64 n_grouped        # one-shot writes run in those
    cdef str fork_error              # set in a child whose copied connections cannot be made safe
    cdef bint wal                    # the database was in WAL mode when the writer opened
    cdef bint snapshots              # one-shot reads may keep snapshots (_snapshot.pxi) ...
    cdef SnapshotSweeper sweeper     # ... and this thread ends idle readers' (else None)
    cdef fp_atomic_u64 n_snapshot_reuses    # ... folded in from reader_counts by a fork
    # Reader checkouts and snapshot reuses, counted per reader slot by its holder (C atomics
    # on a cache line per slot: a counter every reader bumps slowed free-threaded readers).
    cdef fp_slot_counters *reader_counts
    cdef fp_atomic_u32 sweeping      # a sweep_snapshots() runs (C atomic: one at a time)
    cdef uint32_t *sweep_taken       # the slots it holds (nreaders entries, its own)
    cdef fp_atomic_u32 sweep_held    # how many, for stats() (C atomic, stored by the sweep)

    cdef int make_slots(self) except -1
    cdef Connection open_reader(self, uint32_t slot)
    cdef uint32_t acquire(self, fp_slots *slots, int role, int64_t timeout_ns) except? 0xFFFFFFFF
    cdef str timeout_message(self, int role, int64_t waited_ns)

    # the async engine's way in (final: direct calls)
    @cython.final
    cdef bint try_reader(self, uint32_t *slot) noexcept

    @cython.final
    cdef bint try_writer(self) noexcept

    @cython.final
    cdef int enqueue_waiter(self, int role, fp_waiter *waiter) noexcept

    @cython.final
    cdef int cancel_waiter(self, int role, fp_waiter *waiter, uint32_t *slot) noexcept

    @cython.final
    cdef void return_slot(self, int role, uint32_t slot) noexcept

    @cython.final
    cdef void note_checkout(self) noexcept

    @cython.final
    cdef void note_reader_checkout(self, uint32_t slot) noexcept

    @cython.final
    cdef void count_checkout(self, int role, uint32_t slot) noexcept

    @cython.final
    cdef void note_timeout(self) noexcept

    @cython.final
    cdef bint readers_out(self) noexcept

    @cython.final
    cdef bint writer_out(self) noexcept

    @cython.final
    cdef bint has_closed(self) noexcept

    @cython.final
    cdef bint is_forked_copy(self) noexcept

    @cython.final
    cdef Connection current_writer(self)

    @cython.final
    cdef Connection writer_connection(self, bint lock, bint sweep=*)

    @cython.final
    cdef bint try_xlock(self) noexcept

    @cython.final
    cdef int take_xlock(self) except -1

    @cython.final
    cdef void release_xlock(self) noexcept

    @cython.final
    cdef str next_savepoint(self)

    cdef Connection reader_connection(self, uint32_t slot)
    cdef Connection one_shot_reader(self, uint32_t slot)
    cdef void return_reader(self, uint32_t slot, Connection conn) noexcept
    cdef void return_writer(self, Connection conn) noexcept
    cdef void note_holder(self, int role, uint32_t slot)
    cdef Lease lease(self, int role, uint32_t slot, Connection conn)
    cdef void end_lease(self, Lease lease) noexcept
    cpdef object fetchone(self, str sql, object params=*)
    cpdef list fetchall(self, str sql, object params=*)
    cpdef Cursor execute(self, str sql, object params=*)
    cpdef Cursor executemany(self, str sql, object seq_of_params)
