# The worker-thread side of the asyncio engine (_async.pxi): the operations an async call
# runs (OP_*, run_op), run inline on the loop under the budget (run_inline) or on a worker;
# the worker threads; and the Job that runs a statement off the loop and posts its
# completion to the engine's queue.

import os
import sys
import threading

cdef enum:
    OP_FETCHONE = 0
    OP_FETCHALL = 1
    OP_EXECUTE = 2
    OP_EXECUTEMANY = 3
    OP_SCRIPT = 4
    OP_CHECKPOINT = 5
    OP_LOCK = 6                 # only wait for the cross-process writer lock
    WORKER_NICE = 10            # added to the worker threads' nice value (Linux)
    INLINE_OPS = 400            # VM instructions between two looks at the clock (~5 µs)

ASYNC_OPS = {"fetchone": OP_FETCHONE, "fetchall": OP_FETCHALL, "execute": OP_EXECUTE,
             "executemany": OP_EXECUTEMANY, "executescript": OP_SCRIPT,
             "checkpoint": OP_CHECKPOINT}


cdef object run_op(Connection conn, int op, str sql, object params):
    cdef Cursor cur
    if op == OP_FETCHONE:
        return conn.fetchone(sql, params)
    if op == OP_FETCHALL:
        return conn.fetchall(sql, params)
    if op == OP_EXECUTE:
        # Rows are fetched now, so the cursor holds no statement (and no WAL snapshot) across
        # the awaits that follow, and reading it never touches the connection again.
        cur = conn.execute(sql, params)
        cur.materialize()
        return cur
    if op == OP_EXECUTEMANY:
        return conn.executemany(sql, params)
    if op == OP_SCRIPT:
        return conn.executescript(sql)
    if op == OP_CHECKPOINT:
        return conn.checkpoint(sql)
    raise InternalError(f"unknown async operation {op}")


cdef struct InlineBudget:
    int64_t deadline
    int expired


cdef int on_inline_progress(void *arg) noexcept nogil:
    cdef InlineBudget *b = <InlineBudget *>arg
    if fp_monotonic_ns() >= b.deadline:
        b.expired = 1
        return 1            # interrupts the statement: SQLITE_INTERRUPT
    return 0


cdef object run_inline(AsyncEngine self, Connection conn, int op, str sql, object params,
                       bint interruptible):
    # Run on the loop's thread. Returns NEED when the statement outran the budget and was
    # interrupted (it left nothing behind: read-only, no transaction of its own).
    cdef InlineBudget budget
    cdef int64_t started
    if conn.in_call == FP_CLAIM_CALL:
        raise InterfaceError(
            "this connection is still running a statement (another task awaits it); a "
            "lease serves one task at a time: await each call before the next")
    if conn.db == NULL:
        raise InterfaceError("the connection is closed")
    if not interruptible:
        started = fp_monotonic_ns()
        result = run_op(conn, op, sql, params)
        if fp_monotonic_ns() - started > self.budget_ns:
            self.learn_slow(sql)
        self.note_inline()
        return result
    budget.deadline = fp_monotonic_ns() + self.budget_ns
    budget.expired = 0
    sqlite3_progress_handler(conn.db, INLINE_OPS, on_inline_progress, &budget)
    try:
        result = run_op(conn, op, sql, params)
    except OperationalError:
        if budget.expired:
            self.n_budget += 1
            self.learn_slow(sql)
            return NEED
        raise
    finally:
        if conn.db != NULL:
            # Back to the pool's handler, which drops the GIL during long statements.
            sqlite3_progress_handler(conn.db, PROGRESS_OPS, on_progress, &conn.hooks)
    self.note_inline()
    return result


def _async_worker(jobs):
    # A daemon thread: it never keeps the interpreter alive. Long statements drop the GIL
    # through the connection's own progress handler.
    #
    # It runs at a lower CPU priority than the event loop's thread. The GIL is not the only
    # thing the two share: on a busy machine a worker grinding through a long query and the
    # loop waking for a timer compete for the same cores, and measured here (2 cores, load
    # ~5) that alone made 40-100 ms heartbeat gaps. Linux gives each thread its own nice
    # value (elsewhere setpriority(PRIO_PROCESS, tid) would name a process: not done).
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except OSError:
            pass        # not allowed here: run at the loop's priority
    while True:
        job = jobs.get()
        if job is None:
            return
        (<Job>job).run()
        job = None


@cython.final
cdef class Job:
    """A statement handed to a worker thread (internal)."""

    def run(self):
        # On a worker thread.
        cdef AsyncEngine engine = self.engine
        cdef int64_t started = fp_monotonic_ns()
        try:
            if self.take_xlock:
                # Another process holds the writer lock: sleep on it here, not on the loop.
                # It is ours (the process's) from now on; giving the writer back releases it.
                engine.pool.take_xlock()
            if self.cancelled:
                raise OperationalError("interrupted before it started: the task was cancelled")
            if self.op == OP_LOCK:
                self.result = None
            else:
                self.result = run_op(self.conn, self.op, self.sql, self.params)
        except BaseException as exc:
            self.exc = exc
        self.elapsed_ns = fp_monotonic_ns() - started
        self.params = None
        # The engine keeps this Job in `pending` until the loop took the item.
        fp_cq_post(engine.cq, &self.item)

    def interrupt(self):
        """Interrupt the statement (sqlite3_interrupt on exactly this job's connection)."""
        # sqlite3_interrupt() only stops a statement that is running: one called just before
        # the worker starts it is forgotten. So the worker also checks `cancelled` first, and
        # the facade calls this again until the job is done.
        cdef Connection conn = self.conn
        if self.done or conn is None:
            return
        if not self.cancelled:
            self.cancelled = 1
            self.engine.n_cancel += 1
        conn.interrupt()    # never on a handle being closed (see Connection.interrupt)

    cdef void fire(self):
        # On the loop: the worker is done with the connection.
        cdef PoolCore pool = self.engine.pool
        self.done = True
        self.engine.in_flight -= 1
        if self.elapsed_ns < self.engine.budget_ns // 2 and self.exc is None:
            # Fast again (the earlier run was slow for another reason: a lock, a cold cache,
            # the machine): try it inline next time.
            self.engine.slow_sql.pop(self.sql, None)
        if self.role == READER:
            pool.return_reader(self.slot, self.conn)
        elif self.lease is not None:
            # A one-shot write's lease, or a lease taken back (reclaim) while this ran.
            pool.end_lease(self.lease)
        self.lease = None
        self.conn = None
        fut = self.future
        if fut.done() or fut.get_loop().is_closed():
            return          # the awaiting task was cancelled, or its loop is gone
        if self.exc is not None:
            fut.set_exception(self.exc)
        else:
            fut.set_result(self.result)
        self.exc = self.result = None
