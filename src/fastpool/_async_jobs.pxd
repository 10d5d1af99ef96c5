# The asyncio engine's worker-thread side (_async_jobs.pxi).

cdef class AsyncEngine


# A Job is filled on the loop's thread, run on one worker, and fired on the loop again; each
# hand-over is a queue's (jobs: queue.SimpleQueue; back: csrc/fp_async, release/acquire), so
# its fields have one owner at a time. Only `cancelled` crosses while the worker runs (the
# loop sets it, the worker reads it): a C atomic.
cdef class Job:
    cdef fp_cq_item item
    cdef AsyncEngine engine
    cdef Connection conn
    cdef int op
    cdef str sql
    cdef object params
    cdef object result
    cdef object exc
    cdef readonly object future
    cdef int role                    # READER/WRITER: a one-shot that gives its slot back when
    cdef uint32_t slot               # fired; -1: a lease's call (the lease keeps the slot)
    cdef Lease lease
    cdef readonly bint done
    cdef int64_t elapsed_ns          # how long the worker ran it
    cdef fp_atomic_u32 cancelled     # the awaiting task was cancelled: stop, or do not start
    cdef bint take_xlock             # first wait for the cross-process writer lock (off the loop)

    cdef void fire(self)
