# The asyncio engine (_async.pxi).

# Threads: an engine's fields belong to the thread running the event loop it is bound to
# (bind(): one loop at a time per pool; a pool in use by one loop refuses another). Workers
# touch only their Job (_async_jobs.pxd) and `jobs` (a queue.SimpleQueue); completions come
# back through `cq` (csrc/fp_async: atomics), drained on the loop.
cdef class AsyncEngine:
    cdef PoolCore pool
    cdef fp_cq *cq                   # completions to the event loop, one wake-up per batch
    cdef dict pending                # token -> Job or SlotWaiter whose completion may be posted
    cdef uint64_t next_token
    cdef object loop                 # the loop watching cq's descriptor, or None
    cdef object jobs                 # queue.SimpleQueue of Jobs for the worker threads
    cdef list workers
    cdef int in_flight               # Jobs submitted and not yet fired on the loop
    cdef int64_t budget_ns           # how long a statement may run inline on the loop
    cdef dict slow_sql               # SQL that outran the budget once: straight to a worker
    cdef int64_t last_yield_ns
    cdef readonly bint yield_due     # the facade should let other tasks run (inline streak)
    cdef public bint closing
    cdef unsigned long long n_inline
    cdef unsigned long long n_worker
    cdef unsigned long long n_budget
    cdef unsigned long long n_cancel
    cdef Connection kept             # the reader of the last inline read, kept until the loop
    cdef uint32_t kept_slot          # runs its next callback (see read())
    cdef object kept_loop
    cdef Lease kept_writer           # a one-shot write's lease, kept the same way

    cdef int check_open(self) except -1
    cdef Job submit(self, Connection conn, int op, str sql, object params, int role,
                    uint32_t slot, Lease lease, bint take_xlock=*)
    cdef void note_inline(self) noexcept
    cdef object done_reading(self, object loop, uint32_t slot, Connection conn, object result)
    cdef void give_back(self) noexcept
    cdef void give_back_reader(self) noexcept
    cdef void give_back_writer(self) noexcept
    cdef int keep_until_next_callback(self, object loop) except -1
    cdef object write_inline(self, object loop, Lease lease, int op, str sql, object params)
    cdef int drain_posted(self) except -1
