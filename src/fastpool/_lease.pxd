# The lease unit (_lease.pxi): a connection lent by the pool, and its transactions.

cdef class Lease:
    cdef PoolCore pool
    cdef Connection conn             # None once returned
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
