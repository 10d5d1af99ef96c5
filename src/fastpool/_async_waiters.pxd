# The asyncio engine's slot waiters (_async_waiters.pxi).

cdef class AsyncEngine


# A waiter's fields are its loop thread's; the slot granted to it crosses from the returning
# thread in `node` (csrc/fp_slots and csrc/fp_async: atomics, release/acquire), and `fire`
# runs on the loop once the completion arrives.
cdef class SlotWaiter:
    cdef fp_async_waiter node
    cdef AsyncEngine engine
    cdef readonly object future
    cdef int role
    cdef int state                   # W_* in _async_waiters.pxi
    cdef bint woken                  # the grant's completion reached the loop

    cdef void fire(self)
    cdef void return_slot(self) noexcept
