# The asyncio engine behind fastpool.AsyncPool.
#
# The cost to beat is the thread hop: aiosqlite pays a future, a Python queue and a
# call_soon_threadsafe per query, tens of microseconds, while a point select takes a few.
# So a statement first runs *inline*, on the event loop's thread, under a time budget
# (budget_ns, ~200 µs) measured by a progress handler. Nearly every OLTP statement finishes
# well inside it and costs no more than a synchronous call. A statement on a reader that
# outruns the budget is interrupted (a read-only statement can be: nothing to roll back)
# and run again from the start on a worker thread; its SQL is remembered, so the next run
# goes to a worker at once. On the writer nothing is interrupted (an interrupted write
# rolls back the whole transaction): a write that outran the budget finishes inline once,
# and from then on its SQL goes to a worker.
#
# Completions come back through one C completion queue (csrc/fp_async): workers and threads
# that return a slot to an asyncio waiter post an item and, only when the queue was idle,
# write one eventfd (self-pipe off Linux) that the loop watches with add_reader. Each
# wake-up drains every completion posted so far.
#
# Statements that go off the loop are Jobs (_async_jobs.pxi); tasks waiting for a slot are
# SlotWaiters (_async_waiters.pxi).

import queue
import threading
from asyncio import _get_running_loop

cdef enum:
    YIELD_NS = 2000000          # an inline streak longer than this lets other tasks run
    SLOW_SQL_MAX = 4096


class _Need:
    """Returned by the engine's fast paths when the call must take the awaiting path."""
    __slots__ = ()

    def __repr__(self):
        return "<fastpool NEED>"


NEED = _Need()


@cython.final
cdef class AsyncEngine:
    """The asyncio execution engine of one pool (internal: fastpool.AsyncPool is its face)."""

    def __cinit__(self):
        self.cq = NULL

    def __init__(self, PoolCore pool, double budget=0.0002):
        self.pool = pool
        self.cq = fp_cq_new()
        if self.cq == NULL:
            raise OSError("fastpool could not create its event-loop wake-up descriptor")
        self.pending = {}
        self.next_token = 1
        self.jobs = queue.SimpleQueue()
        self.workers = []
        self.budget_ns = <int64_t>(budget * 1e9)
        self.slow_sql = {}
        self.last_yield_ns = fp_monotonic_ns()

    def __dealloc__(self):
        # Jobs and waiters whose completion may still be posted keep this object alive
        # (they are referenced from `pending` and reference it back), so nobody posts now.
        if self.cq != NULL:
            fp_cq_free(self.cq)
            self.cq = NULL

    # -- the event loop --------------------------------------------------------------------

    def bind(self, loop):
        """Watch the completion queue from ``loop`` (the running loop of the caller).

        True when the loop it replaces was closed: that loop's waiting tasks can never run
        again, so they are dropped from the slot queues, and what completed meanwhile is
        settled now."""
        self.settle()
        if loop is self.loop:
            return False
        old = self.loop
        dead = old is not None and old.is_closed()
        if old is not None and not dead:
            if self.pending:
                raise InterfaceError(
                    "this AsyncPool is in use by another event loop; use one pool per loop")
            old.remove_reader(fp_cq_fd(self.cq))
        loop.add_reader(fp_cq_fd(self.cq), self.drain)
        self.loop = loop
        if dead:
            self.drop_dead_waiters()
            self.drain()
        return dead

    def adopt(self, loop):
        """bind(loop) if no loop is bound or the bound one is closed; else False."""
        if self.loop is None or self.loop.is_closed():
            return self.bind(loop)
        return False

    def drop_dead_waiters(self):
        """Withdraw the waiters whose event loop is closed: a slot handed to one of them
        would never be taken, or given back."""
        for obj in list(self.pending.values()):
            if type(obj) is SlotWaiter and (<SlotWaiter>obj).future.get_loop().is_closed():
                (<SlotWaiter>obj).abandon()

    def drain(self):
        """Take every posted completion and settle its future (the loop's reader callback)."""
        cdef fp_cq_item *item = fp_cq_take_all(self.cq)
        cdef fp_cq_item *nxt
        cdef uint64_t token
        while item != NULL:
            nxt = item.next
            token = item.token
            obj = self.pending.pop(token, None)
            if obj is not None:
                if type(obj) is Job:
                    (<Job>obj).fire()
                else:
                    (<SlotWaiter>obj).fire()
            item = nxt

    cdef int drain_posted(self) except -1:
        # Settle what was posted (e.g. a slot this thread just handed to a waiting task) now,
        # not one loop iteration and a select() later; nothing posted, no read syscall.
        if self.pending and fp_cq_signalled(self.cq):
            self.drain()
        return 0

    def stop(self):
        """Stop watching the descriptor and let the worker threads end."""
        self.settle()
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.remove_reader(fp_cq_fd(self.cq))
            except RuntimeError:
                pass        # called from another thread or during interpreter shutdown
        self.loop = None
        for _ in self.workers:
            self.jobs.put(None)
        self.workers = []

    # -- checks and accounting ---------------------------------------------------------------

    cdef int check_open(self) except -1:
        if self.closing or self.pool.has_closed():
            raise PoolClosed("the pool is closed; create a new pool to keep working")
        if self.pool.is_forked_copy():
            raise InterfaceError(
                "this AsyncPool was created before os.fork(); create a new AsyncPool in the "
                "child process")
        return 0

    cdef void note_inline(self) noexcept:
        cdef int64_t now = fp_monotonic_ns()
        self.n_inline += 1
        if now - self.last_yield_ns > YIELD_NS:
            self.last_yield_ns = now
            self.yield_due = True

    def yielded(self):
        """The facade let other tasks run."""
        self.yield_due = False

    def busy(self, bint except_writer=False):
        """True while a lease is out or a statement runs on a worker."""
        self.settle()
        return (self.in_flight > 0 or self.pool.readers_out()
                or (not except_writer and self.pool.writer_out()))

    def stats(self):
        """The engine's counters."""
        return {"inline_calls": self.n_inline, "worker_calls": self.n_worker,
                "budget_interrupts": self.n_budget, "cancel_interrupts": self.n_cancel}

    # -- running a statement -------------------------------------------------------------------

    def learn_slow(self, sql):
        if len(self.slow_sql) >= SLOW_SQL_MAX:
            self.slow_sql.clear()
        self.slow_sql[sql] = True

    def slow_count(self):
        return len(self.slow_sql)

    cdef Job submit(self, Connection conn, int op, str sql, object params, int role,
                    uint32_t slot, Lease lease, bint take_xlock=False):
        cdef Job job = Job.__new__(Job)
        if self.loop is None:
            raise InternalError("the async engine has no event loop bound")
        job.engine = self
        job.conn = conn
        job.op = op
        job.sql = sql
        job.params = params
        job.role = role
        job.slot = slot
        job.lease = lease
        job.take_xlock = take_xlock
        job.future = self.loop.create_future()
        job.item.token = self.next_token
        self.next_token += 1
        self.pending[job.item.token] = job
        self.in_flight += 1
        self.n_worker += 1
        if self.in_flight > len(self.workers):
            t = threading.Thread(target=_async_worker, args=(self.jobs,),
                                 name="fastpool-async-worker", daemon=True)
            t.start()
            self.workers.append(t)
        self.jobs.put(job)
        return job

    # -- one-shots ---------------------------------------------------------------------------

    def read(self, int op, str sql, object params=()):
        """Fast path of a one-shot read: the result, or NEED (no free reader, or slow SQL)."""
        cdef uint32_t slot
        cdef PoolCore pool = self.pool
        cdef Connection conn = self.kept
        self.check_open()
        if sql in self.slow_sql:
            return NEED
        loop = _get_running_loop()
        if conn is not None and loop is self.kept_loop:
            slot = self.kept_slot
            self.kept = None
            pool.note_reader_checkout(slot)
        else:
            self.give_back_reader()
            if not pool.try_reader(&slot):
                return NEED
            conn = pool.one_shot_reader(slot)
        use_snapshot(pool, conn, slot)
        try:
            result = run_inline(self, conn, op, sql, params, True)
        except BaseException:
            give_up_snapshot(conn)
            pool.return_reader(slot, conn)
            raise
        if result is NEED:
            give_up_snapshot(conn)  # interrupted: run again, on a worker, with none
        return self.done_reading(loop, slot, conn, result)

    cdef object done_reading(self, loop, uint32_t slot, Connection conn, result):
        # Keep the reader until this loop runs its next callback, i.e. until the task lets
        # others run: no other task can use it meanwhile, so a task's run of reads costs one
        # checkout, not one each (nor, behind waiters, a wait each).
        if result is NEED or loop is None:
            self.pool.return_reader(slot, conn)
        else:
            self.give_back_reader()
            self.keep_until_next_callback(loop)
            self.kept = conn
            self.kept_slot = slot
        self.drain_posted()
        return result

    cdef int keep_until_next_callback(self, loop) except -1:
        if self.kept_loop is not loop:
            loop.call_soon(self.settle)     # the running loop: never closed
            self.kept_loop = loop
        return 0

    cdef void give_back(self) noexcept:
        self.give_back_reader()
        self.give_back_writer()

    cdef void give_back_reader(self) noexcept:
        cdef Connection conn = self.kept
        if conn is not None:
            self.kept = None
            self.pool.return_reader(self.kept_slot, conn)

    cdef void give_back_writer(self) noexcept:
        cdef Lease lease = self.kept_writer
        if lease is not None:
            self.kept_writer = None
            self.pool.end_lease(lease)

    def settle(self):
        """Give back the reader and the writer kept since the last inline one-shots (never
        in use: a one-shot takes its kept one out while it runs)."""
        self.kept_loop = None
        self.give_back()
        if self.loop is _get_running_loop():
            self.drain_posted()

    def read_on(self, uint32_t slot, int op, str sql, object params=()):
        """A one-shot read holding ``slot``: the result, or a Job that gives the slot back."""
        cdef PoolCore pool = self.pool
        cdef Connection conn
        try:
            self.check_open()
            conn = pool.reader_connection(slot)
        except BaseException:
            pool.return_slot(READER, slot)
            raise
        if sql not in self.slow_sql:
            try:
                result = run_inline(self, conn, op, sql, params, True)
            except BaseException:
                pool.return_reader(slot, conn)
                raise
            if result is not NEED:
                return self.done_reading(_get_running_loop(), slot, conn, result)
        return self.submit(conn, op, sql, params, READER, slot, None)

    def write(self, int op, str sql, object params=()):
        """Fast path of a one-shot write: the result, or NEED (writer busy, or slow SQL)."""
        cdef Lease lease = self.kept_writer
        self.check_open()
        if sql in self.slow_sql:
            return NEED
        loop = _get_running_loop()
        if lease is not None and loop is self.kept_loop:
            self.kept_writer = None
            self.pool.note_checkout()
            return self.write_inline(loop, lease, op, sql, params)
        self.give_back_writer()
        if not self.pool.try_writer():
            return NEED
        return self.write_on(op, sql, params)

    def write_on(self, int op, str sql, object params=()):
        """A one-shot write holding the writer slot: the result, or a Job that returns it."""
        cdef PoolCore pool = self.pool
        cdef Connection conn
        cdef Lease lease
        try:
            self.check_open()
            conn = pool.writer_connection(False, op == OP_CHECKPOINT)   # see writer_no_transaction
        except BaseException:
            pool.return_slot(WRITER, 0)
            raise
        lease = pool.lease(WRITER, 0, conn)
        if not pool.try_xlock():
            # Another process is writing: wait for it on a worker, never on the loop. (The
            # fast path may run before this loop is bound: then take the awaiting path.)
            if self.loop is None:
                pool.end_lease(lease)
                return NEED
            return self.submit(conn, op, sql, params, WRITER, 0, lease, True)
        if sql in self.slow_sql:
            return self.submit(conn, op, sql, params, WRITER, 0, lease)
        return self.write_inline(_get_running_loop(), lease, op, sql, params)

    cdef object write_inline(self, loop, Lease lease, int op, str sql, object params):
        # Like a reader (done_reading), the writer of a one-shot that committed is kept until
        # the loop runs its next callback; one that left a transaction open, or that a WAL
        # RESTART waits for, goes back now.
        cdef Connection conn = lease.conn
        try:
            result = run_inline(self, conn, op, sql, params, False)
        except BaseException:
            self.pool.end_lease(lease)
            self.drain_posted()
            raise
        ck = self.pool.checkpointer
        if (loop is None or conn.fatal or conn.db == NULL or not sqlite3_get_autocommit(conn.db)
                or (ck is not None and fp_flag_load(&(<Checkpointer>ck).restart_wanted))):
            # (A WAL RESTART is due: the writer's return runs it now, as before.)
            self.pool.end_lease(lease)
        else:
            self.give_back_writer()
            self.keep_until_next_callback(loop)
            self.kept_writer = lease
        self.drain_posted()
        return result

    # -- leases ------------------------------------------------------------------------------

    def acquire(self, bint writer):
        """A slot now (int), or a SlotWaiter to await (FIFO for the writer)."""
        cdef PoolCore pool = self.pool
        cdef uint32_t slot
        cdef SlotWaiter w
        cdef int rc
        self.settle()
        self.check_open()
        if not writer and pool.try_reader(&slot):
            return slot
        if self.loop is None:
            raise InternalError("the async engine has no event loop bound")
        w = SlotWaiter.__new__(SlotWaiter)
        w.engine = self
        w.role = WRITER if writer else READER
        w.state = W_WAITING
        fp_async_waiter_init(&w.node, self.cq, self.next_token)
        self.next_token += 1
        rc = pool.enqueue_waiter(w.role, &w.node.waiter)
        if rc == FP_SLOTS_OK:
            return w.node.waiter.slot
        if rc != FP_SLOTS_QUEUED:
            raise InternalError(f"the pool's slot ring failed (code {rc})")
        w.future = self.loop.create_future()
        self.pending[w.node.item.token] = w
        return w

    def savepoint_name(self):
        """A name for a savepoint on the writer (one scheme for every savepoint of the pool)."""
        return self.pool.next_savepoint()

    def timeout_message(self, bint writer, double waited):
        return self.pool.timeout_message(WRITER if writer else READER, <int64_t>(waited * 1e9))

    def fail_waiters(self, exc):
        """Fail every task still waiting for a slot with ``exc`` (the pool is closing)."""
        for obj in list(self.pending.values()):
            if type(obj) is SlotWaiter:
                (<SlotWaiter>obj).fail(exc)

    def release(self, bint writer, uint32_t slot):
        """Give back a slot taken with acquire() but never made into a lease."""
        if writer:
            self.pool.release_xlock()   # taken (or kept for us) for a lease that never began
        self.pool.return_slot(WRITER if writer else READER, slot)

    def lock_writer(self):
        """Holding the writer slot: None when the cross-process writer lock is ours (or not
        used), else a Job to await that waits for it on a worker thread."""
        cdef PoolCore pool = self.pool
        if pool.try_xlock():
            return None
        return self.submit(pool.current_writer(), OP_LOCK, "", None, -1, 0, None, True)

    def lease_on(self, bint writer, uint32_t slot, bint begin=True):
        """Make a Lease of an acquired slot; a writer lease begins its transaction (IMMEDIATE)."""
        cdef PoolCore pool = self.pool
        cdef Lease lease
        cdef Connection conn
        if not writer:
            try:
                self.check_open()
            except BaseException:
                pool.return_slot(READER, slot)
                raise
            return pool.lease(READER, slot, pool.reader_connection(slot))
        try:
            self.check_open()
        except BaseException:
            pool.release_xlock()
            pool.return_slot(WRITER, 0)
            raise
        lease = pool.lease(WRITER, 0, pool.writer_connection(True))
        if not begin:
            lease.plain = True
            return lease
        try:
            begin_lease_write(lease)    # guarded, as in Pool.writer()
        except BaseException:
            pool.end_lease(lease)
            raise
        return lease

    def call(self, Lease lease, int op, str sql, object params=()):
        """A statement on a lease: the result, or a Job to await."""
        cdef Connection conn = lease.live()
        if op == OP_CHECKPOINT or sql in self.slow_sql:
            if conn.in_call == FP_CLAIM_CALL:
                raise InterfaceError(
                    "this connection is still running a statement (another task awaits it); "
                    "a lease serves one task at a time: await each call before the next")
            return self.submit(conn, op, sql, params, -1, 0, None)
        # A script is never interrupted and run again: its first statements would run twice.
        result = run_inline(self, conn, op, sql, params, lease.role == READER and op != OP_SCRIPT)
        if result is NEED:
            return self.submit(conn, op, sql, params, -1, 0, None)
        return result

    def end(self, Lease lease, exc_type):
        """End a lease: COMMIT (clean exit) or ROLLBACK a writer's transaction, give it back."""
        cdef Connection conn = lease.conn
        if conn is not None and conn.in_call == FP_CLAIM_CALL:
            # Only reachable if a task left a call running; wait for nothing, take it back
            # once it ends: interrupt it so that is soon.
            raise InterfaceError("a statement is still running on this lease; await it first")
        try:
            return lease.__exit__(exc_type, None, None)
        finally:
            self.drain_posted()     # the slot may have gone to a waiting task

    def reclaim(self, Lease lease, str why):
        """Take back a lease whose task or event loop is gone, with the ResourceWarning of a
        garbage-collected lease (``why`` says what happened); its transaction is rolled back.
        If a worker still runs a statement on it, the lease goes back when that ends."""
        cdef Job job
        if lease.conn is None:
            return
        # Never drains: this may run from a garbage collection on any thread.
        for obj in list(self.pending.values()):
            if type(obj) is Job:
                job = <Job>obj
                if job.conn is lease.conn and not job.done:
                    warn_leaked(lease, why)
                    job.lease = lease
                    return
        lease_collected(lease, why)
