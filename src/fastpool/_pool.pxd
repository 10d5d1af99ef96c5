# The pool unit (_pool.pxi): slots, checkout and return. The writer is the writer unit's
# (WriterGate, _writer.pxd). PoolCore also carries the state that the module-level functions
# of the WAL unit (_wal.pxi: checkpointer, wal) and the lifecycle unit (_lifecycle.pxi:
# expires, last_used, last_sweep, fork_*) work on; those units take the PoolCore as an
# argument.

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
    cdef bint is_closed
    cdef bint collected              # close() has gathered every slot it could
    cdef unsigned int fork_generation
    cdef double last_sweep
    cdef readonly dict holders       # (role, slot) -> (thread name, since, stack), debug only
    cdef unsigned long long n_checkouts
    cdef unsigned long long n_waits
    cdef unsigned long long n_timeouts
    cdef unsigned long long n_discarded
    cdef int64_t wait_ns
    cdef unsigned long long n_group_commits  # transactions that ran several one-shot writes
    cdef unsigned long long n_grouped        # one-shot writes run in those
    cdef str fork_error              # set in a child whose copied connections cannot be made safe
    cdef bint wal                    # the database was in WAL mode when the writer opened

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
    cdef Connection writer_connection(self, bint lock)

    @cython.final
    cdef bint try_xlock(self) noexcept

    @cython.final
    cdef int take_xlock(self) except -1

    @cython.final
    cdef void release_xlock(self) noexcept

    @cython.final
    cdef str next_savepoint(self)

    cdef Connection reader_connection(self, uint32_t slot)
    cdef void return_reader(self, uint32_t slot, Connection conn) noexcept
    cdef void return_writer(self, Connection conn) noexcept
    cdef void note_holder(self, int role, uint32_t slot)
    cdef Lease lease(self, int role, uint32_t slot, Connection conn)
    cdef void end_lease(self, Lease lease) noexcept
    cpdef object fetchone(self, str sql, object params=*)
    cpdef list fetchall(self, str sql, object params=*)
    cpdef Cursor execute(self, str sql, object params=*)
    cpdef Cursor executemany(self, str sql, object seq_of_params)
