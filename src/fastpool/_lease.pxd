# The lease unit (_lease.pxi): a connection lent by the pool, and its transactions.

# A lease belongs to its borrower, and may be passed to another thread, but serves one call
# at a time (the connection's call claim enforces it). `conn` alone is shared: the thread
# that ends the lease (close(), __exit__, the finalizer, the pool's close) swaps it for None
# under the lease's critical section, and live() reads it under the same, so a call racing
# the end either gets the connection with a reference of its own or finds the lease dead.
# The other fields are set before the lease is handed out and never change.
cdef class Lease:
    cdef PoolCore pool
    cdef Connection conn             # None once returned (critical section: see above)
    cdef uint32_t slot
    cdef int role                    # READER, WRITER or SAVEPOINT
    cdef bint plain                  # a writer lease with no transaction (checkpoint)
    cdef unsigned int epoch          # conn.epoch when lent: a reset connection kills the lease
    cdef unsigned int fork_generation
    cdef unsigned long thread
    cdef long long changes_at_begin
    cdef str savepoint

    cdef Connection live(self)
    cdef int end_savepoint(self, bint keep) except -1


cdef class Transaction:
    cdef Lease lease
    cdef str savepoint               # set on a writer (a savepoint), None on a reader
