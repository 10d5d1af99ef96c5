# The WAL unit (_wal.pxi): the pool's background checkpointer.

# Threads: `conn` is the checkpointer thread's alone; what it shares with the pool's threads
# is C atomics (the flags and counters) and fp_notify (events); `thread` and `autocheckpoint`
# are set before the thread starts. The Litestream fields and handoff_restart are used by
# whoever holds the writer slot: a returning writer, or this thread once handed the slot
# (handoff_gate, set before the WRITER_HANDOFF post that orders the hand-over, cleared as it
# gives the slot back).
cdef class Checkpointer:
    cdef Connection conn            # its own: used only by its thread
    cdef fp_notify events           # WAL_FULL from the writer's WAL hook, STOP from the pool
    cdef fp_atomic_u32 restart_wanted   # 1: the pool should RESTART the log between writers
    cdef fp_atomic_u32 restart_at       # log size (frames) from which a RESTART is wanted
    cdef fp_atomic_u32 in_checkpoint    # 1 while its thread is inside SQLite
    cdef fp_atomic_u32 paused           # 1 while a fork() or pool.checkpoint() runs: stay out
    cdef fp_atomic_u64 runs
    cdef fp_atomic_u64 restarts
    cdef fp_atomic_u64 errors
    cdef fp_atomic_u64 writer_waits     # commits that waited for a checkpoint (on_wal_commit)
    cdef int autocheckpoint
    # Litestream cooperation (_wal_litestream.pxi); the ints are used holding the writer slot.
    cdef fp_atomic_u32 litestream       # 1: Litestream replicates this file and checkpoints it
    cdef fp_atomic_u64 litestream_waits     # times the writers waited for its checkpoint
    cdef fp_atomic_u64 litestream_timeouts  # ... and it did not rewind the log in time
    cdef int litestream_pages       # log size (frames) at which the writers wait for it
    cdef int litestream_next        # the next such size (grows after a wait timed out)
    cdef object handoff_gate        # the WriterGate whose slot this thread holds meanwhile
    cdef Connection handoff_restart  # the writer, when handed over for a RESTART (else None)
    cdef bytes litestream_wal       # the database's -wal file, whose header shows a rewind
    cdef object thread

    cdef uint32_t loop(self) noexcept nogil
    cdef void take_writer(self, object gate) noexcept
    cdef void enter_sqlite(self) noexcept nogil
    cdef void leave_sqlite(self) noexcept nogil
    cdef void restarted(self, int rc, int log) noexcept
    cdef void stop(self) noexcept
    cdef void abandon(self) noexcept
    cdef void pause(self) noexcept
    cdef void resume(self) noexcept
