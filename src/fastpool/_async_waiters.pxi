# The slot waiters of the asyncio engine (_async.pxi): an asyncio task waiting for a reader
# slot or the writer.
#
# Waiting for a slot uses fp_slots' asynchronous waiters: the releasing thread's wake
# callback posts to the queue (no GIL needed), so reader slots and the writer's FIFO are
# the same ones the blocking pool uses, and a waiter that was cancelled or timed out is
# unlinked (or, if the grant raced it, gives the slot straight back): never a lost slot.

# SlotWaiter.state
cdef enum:
    W_WAITING = 0               # linked in the slot queue (as far as the loop knows)
    W_GRANTED = 1               # the slot is ours and not yet taken by the owner
    W_TAKEN = 2                 # the owner took the slot
    W_RELEASED = 3              # granted, then given straight back (owner gone)
    W_WITHDRAWN = 4             # unlinked before any grant: no slot


@cython.final
cdef class SlotWaiter:
    """An asyncio task waiting for a reader slot or the writer (internal)."""

    cdef void fire(self):
        # On the loop: the grant's wake callback ran.
        self.woken = True
        if self.state != W_WAITING:
            return          # already settled by abandon() or expire(); nothing to hand over
        self.state = W_GRANTED
        if self.future.done() or self.future.get_loop().is_closed():
            # The owner was cancelled and will call abandon(), or is gone (its loop too, so
            # it could never take the slot): give it back now.
            self.return_slot()
        else:
            self.future.set_result(None)

    cdef void return_slot(self) noexcept:
        self.state = W_RELEASED
        self.engine.pool.return_slot(self.role, self.node.waiter.slot)

    def take(self):
        """The granted slot, now owned by the caller."""
        if self.state != W_GRANTED:
            raise InternalError(f"slot waiter in state {self.state} has no slot to take")
        self.state = W_TAKEN
        self.engine.pool.note_checkout()
        return self.node.waiter.slot

    def abandon(self):
        """The owner gives up (cancelled, failed): withdraw, or give a granted slot back."""
        cdef uint32_t slot
        cdef int rc
        if self.state == W_GRANTED:
            self.return_slot()
        elif self.state == W_WAITING:
            rc = self.engine.pool.cancel_waiter(self.role, &self.node.waiter, &slot)
            if rc == FP_SLOTS_CANCELLED:
                self.state = W_WITHDRAWN
                self.engine.pending.pop(self.node.item.token, None)
            elif rc == FP_SLOTS_OK:
                # Granted while we were giving up; its wake item is still on its way, so the
                # engine keeps this object until it arrives.
                self.return_slot()

    def expire(self, message):
        """Acquisition timeout: fail with PoolTimeout unless the grant won the race."""
        cdef uint32_t slot
        cdef int rc
        if self.state != W_WAITING:
            return
        rc = self.engine.pool.cancel_waiter(self.role, &self.node.waiter, &slot)
        if rc == FP_SLOTS_CANCELLED:
            self.state = W_WITHDRAWN
            self.engine.pending.pop(self.node.item.token, None)
            self.engine.pool.note_timeout()
            if not self.future.done():
                self.future.set_exception(PoolTimeout(message))
        elif rc == FP_SLOTS_OK:
            self.state = W_GRANTED
            if self.future.done():
                self.return_slot()
            else:
                self.future.set_result(None)

    def fail(self, exc):
        """Withdraw and fail the waiting task with ``exc`` (the pool is closing)."""
        cdef uint32_t slot
        cdef int rc
        if self.state != W_WAITING:
            return
        rc = self.engine.pool.cancel_waiter(self.role, &self.node.waiter, &slot)
        if rc == FP_SLOTS_CANCELLED:
            self.state = W_WITHDRAWN
            self.engine.pending.pop(self.node.item.token, None)
        elif rc == FP_SLOTS_OK:
            self.return_slot()
        if not self.future.done():
            self.future.set_exception(exc)
