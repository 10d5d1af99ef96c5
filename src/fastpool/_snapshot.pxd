# The kept-snapshots unit (_snapshot.pxi): one-shot reads reusing their reader's read
# transaction, and the thread that ends idle readers' ones.

@cython.final
cdef class SnapshotSweeper:
    # The flags are C atomics; events as in fp_notify (one consumer: its thread).
    cdef fp_notify events           # SNAPSHOTS_KEPT from returning readers, STOP from the pool
    cdef fp_atomic_u32 kept         # readers may keep snapshots (set on return, cleared by a sweep)
    cdef fp_atomic_u32 last_sweep_ms    # when a sweep last ran (monotonic ms, wrapping)
    cdef object pool_ref            # weakref to the PoolCore
    cdef object thread

    cdef bint wait_for_sweep(self) noexcept nogil
    cdef void note_kept(self) noexcept
    cdef void stop(self) noexcept
