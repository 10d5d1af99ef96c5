# The writer unit (_writer.pxi): the pool's one writer connection and everything between a
# caller and it.


# Everything here belongs to the holder of the writer slot (fp_slots: one holder at a time,
# its handing-on a release/acquire pair), except: `owner` (a C atomic: any thread asks
# held_here(), only the holder stores it), `conn` (replaced by the holder under the gate's
# critical section; current() reads it under the same, so pool.stats() on another thread
# never takes a reference to a connection being dropped), and `slot`/`batch`, whose C
# objects synchronise themselves (csrc/fp_slots, csrc/fp_batch).
cdef class WriterGate:
    cdef object opts                 # fastpool._options.PoolOptions (never changed)
    cdef fp_slots *slot              # the one slot writers queue on (csrc/fp_slots)
    cdef fp_batch *batch             # one-shot writes waiting for a group commit (_group.pxi)
    cdef bint grouping               # group commit is on (the option, or: commits fsync)
    cdef uint32_t last_group         # ... how many the last group commit ran ...
    cdef int64_t commit_ns           # ... and how long its COMMIT took
    cdef unsigned long last_leader   # the thread that led the last one-shot write ...
    cdef int64_t shared_ns           # ... and when one-shots last came from several threads
    cdef Connection conn             # the writer connection (closed: reopened on next use)
    cdef Checkpointer checkpointer   # the WAL unit's, attached to each connection opened
    cdef double expires              # monotonic time after which the connection is replaced
    cdef fp_atomic_u64 owner         # thread ident holding the writer, 0 if none
    cdef unsigned long savepoints    # savepoint names handed out so far
    cdef str file_path               # the database file ("" for memory/temp)
    cdef object file_id              # (st_dev, st_ino) of that file when opened, or None
    cdef int64_t next_file_check     # monotonic ns before which the file is not re-checked
    cdef fp_xlock *xlock             # cross-process writer lock (csrc/fp_xlock), or NULL
    cdef bint xlock_held
    cdef unsigned int xlock_batch    # writers in a row that kept the lock for the next one

    cdef int make_slot(self) except -1
    cdef fp_slots *queue(self) noexcept
    cdef fp_batch *batch_queue(self) noexcept
    cdef Connection current(self)
    cdef str database_file(self)
    cdef bint busy(self) noexcept
    cdef uint32_t waiting(self) noexcept
    cdef void close(self) noexcept
    cdef void serve_in_order(self) noexcept
    cdef void free_slot(self) noexcept
    cdef void use_checkpointer(self, Checkpointer checkpointer) noexcept
    cdef void hand_to_checkpointer(self) noexcept
    cdef Connection open(self)
    cdef Connection connection(self, bint reopen, bint lock=*)
    cdef bint expired(self) noexcept
    cdef void give_back(self, bint closing, bint collected) noexcept
    cdef void hold_here(self) noexcept
    cdef bint held_here(self) noexcept
    cdef str next_savepoint(self)
    cdef int check_file(self) except -1
    cdef bint try_xlock(self) noexcept
    cdef int take_xlock(self) except -1
    cdef void release_xlock(self) noexcept
    cdef void drop_kept_xlock(self) noexcept
    cdef void close_xlock(self) noexcept
    cdef void forget_after_fork(self) noexcept
    cdef int open_xlock(self, object st) except -1
    cdef void lose_xlock(self, int rc) noexcept
