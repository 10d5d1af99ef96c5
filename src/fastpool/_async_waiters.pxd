# The asyncio engine's slot waiters (_async_waiters.pxi).

cdef class AsyncEngine


cdef class SlotWaiter:
    cdef fp_async_waiter node
    cdef AsyncEngine engine
    cdef readonly object future
    cdef int role
    cdef int state                   # W_* in _async_waiters.pxi
    cdef bint woken                  # the grant's completion reached the loop

    cdef void fire(self)
    cdef void return_slot(self) noexcept
