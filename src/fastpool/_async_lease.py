"""The leases of ``fastpool.AsyncPool`` (the asyncio facade, pool_async.py): ``AsyncLease``,
``AsyncCursor``, and how a task waits for a slot, for a statement on a worker thread and for
the writer it may already hold. Public names are re-exported by ``fastpool.pool_async`` and
``fastpool``.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Literal

from fastpool._core import ASYNC_OPS, AsyncEngine, Cursor, Job, Lease, SlotWaiter
from fastpool.errors import InterfaceError

__all__ = ["AsyncCursor", "AsyncLease"]

# The engine's operation codes, named after the methods that run them (_async_jobs.pxi).
_FETCHONE = ASYNC_OPS["fetchone"]
_FETCHALL = ASYNC_OPS["fetchall"]
_EXECUTE = ASYNC_OPS["execute"]
_EXECUTEMANY = ASYNC_OPS["executemany"]
_SCRIPT = ASYNC_OPS["executescript"]
_CHECKPOINT = ASYNC_OPS["checkpoint"]


async def _finish(job: Job) -> Any:
    # Await a statement running on a worker. Cancelled meanwhile: interrupt exactly its
    # connection, wait until the worker has let go of it, then let CancelledError go on.
    fut = job.future
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        job.interrupt()
        while not fut.done():
            try:
                await asyncio.wait((fut,), timeout=0.02)
            except asyncio.CancelledError:
                pass  # already on the way out
            job.interrupt()  # again: one sent before the statement began is forgotten
        if not fut.cancelled():
            fut.exception()  # retrieved: the caller was cancelled, the outcome is moot
        raise


async def _slot(
    engine: AsyncEngine, owner: _WriterOwner, writer: bool, timeout: float | None
) -> int:
    # A reader slot or the writer, waiting (FIFO) for it when none is free.
    loop = asyncio.get_running_loop()
    if engine.bind(loop):  # the last loop was closed: take back what its tasks held
        owner.reap()
    got = engine.acquire(writer)
    if isinstance(got, int):
        return got
    waiter: SlotWaiter = got
    owner.reap()  # maybe held by a task of another loop, closed since
    handle = None
    if timeout is not None:
        started = time.monotonic()
        handle = loop.call_later(
            timeout,
            lambda: waiter.expire(engine.timeout_message(writer, time.monotonic() - started)),
        )
    try:
        await waiter.future
    except BaseException:
        waiter.abandon()
        raise
    finally:
        if handle is not None:
            handle.cancel()
    return waiter.take()


class AsyncCursor:
    """The rows of one executed statement, fetched when it ran: await fetchone/fetchmany/fetchall,
    or ``async for row in cursor``; also description, rowcount and lastrowid."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    async def fetchone(self) -> Any:
        """Return the next row, or None when there are no more."""
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Return up to ``size`` rows (default ``arraysize``) as a list."""
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        """Return all remaining rows as a list."""
        return self._cursor.fetchall()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    @property
    def description(self) -> Any:
        """PEP 249 column descriptions (name and declared type), or None for no columns."""
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement (-1 for queries)."""
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int:
        """The rowid of the last inserted row."""
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        """Default number of rows fetchmany() returns."""
        return self._cursor.arraysize

    async def close(self) -> None:
        """Drop the remaining rows."""
        self._cursor.close()

    def __repr__(self) -> str:
        return "<fastpool.AsyncCursor>"


# Why a lease was taken back (the ResourceWarning says it).
_LOOP_CLOSED = "when its task's event loop was closed with the task still pending"
_TASK_GONE = "when its task was destroyed while still pending"


class _WriterOwner:
    # An AsyncPool's record of its leases. `writer`: the AsyncLease holding the writer, so
    # that a nested apool.writer() in its task becomes a SAVEPOINT (and apool.execute joins
    # its transaction) instead of waiting for itself; tasks play the part threads play for
    # Pool. `leases`: every lease checked out, so that those of a closed loop can be taken
    # back. Both weak: a task that is gone, with the leases it held, must not be kept alive
    # by the pool, or its connections would never come back.
    __slots__ = ("leases", "writer")

    def __init__(self) -> None:
        self.writer: weakref.ref[AsyncLease] | None = None
        self.leases: weakref.WeakSet[AsyncLease] = weakref.WeakSet()

    def held_by_current_task(self) -> Lease | None:
        holder = None if self.writer is None else self.writer()
        if holder is None:
            return None
        lease = holder._lease
        task = holder._task
        if lease is None or lease.closed or task is None or task() is not asyncio.current_task():
            return None
        return lease

    def reap(self) -> None:
        """Take back the leases whose event loop is closed: their tasks can never run again."""
        for holder in list(self.leases):
            if holder._loop is not None and holder._loop.is_closed():
                holder._reclaim(_LOOP_CLOSED)


class AsyncLease:
    """A pooled connection lent to one task: ``async with apool.reader() as conn:``.

    Offers awaitable fetchone/fetchall/execute/executemany/executescript. A writer lease is
    always inside a transaction: ``await conn.commit()`` and ``await conn.rollback()`` end it
    and start the next; the ``async with`` block commits on a clean exit and rolls back when it
    raises (also when the task is cancelled). A lease serves one task at a time.
    """

    __slots__ = (
        "__weakref__",
        "_begin",
        "_engine",
        "_lease",
        "_loop",
        "_owner",
        "_savepoint",
        "_task",
        "_timeout",
        "_used",
        "_writer",
    )

    def __init__(
        self,
        engine: AsyncEngine,
        writer: bool,
        begin: bool,
        timeout: float | None,
        owner: _WriterOwner,
    ) -> None:
        self._engine = engine
        self._lease: Lease | None = None
        self._writer = writer
        self._begin = begin
        self._timeout = timeout
        self._used = False
        self._owner = owner
        self._savepoint: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: weakref.ref[asyncio.Task[Any]] | None = None

    async def _checkout(self) -> AsyncLease:
        if self._used:
            raise InterfaceError(
                "this lease was already checked out once; call reader()/writer() again"
            )
        self._used = True
        owner = self._owner
        # Weak: the task refers to this lease (through its coroutine), never the other way.
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        self._task = None if task is None else weakref.ref(task)
        if self._writer:
            held = owner.held_by_current_task()
            if held is not None:
                if not self._begin:
                    raise InterfaceError(
                        "this task already holds the writer in a transaction; end that block first"
                    )
                name = self._engine.savepoint_name()
                self._engine.call(held, _SCRIPT, f"SAVEPOINT {name}", ())
                self._savepoint = name
                self._lease = held
                return self
        slot = await _slot(self._engine, owner, self._writer, self._timeout)
        if self._writer:
            job = self._engine.lock_writer()
            if job is not None:  # another process writes: its lock is awaited off the loop
                try:
                    await _finish(job)
                except BaseException:
                    self._engine.release(True, slot)
                    raise
        self._lease = self._engine.lease_on(self._writer, slot, self._begin)
        owner.leases.add(self)
        if self._writer:
            owner.writer = weakref.ref(self)
        return self

    def __await__(self) -> Any:
        return self._checkout().__await__()

    async def __aenter__(self) -> AsyncLease:
        if self._lease is None:
            await self._checkout()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        lease, self._lease = self._lease, None
        if lease is None:
            return False
        name = self._savepoint
        if exc_type is GeneratorExit and self._orphaned():
            # The coroutine is being closed by the garbage collector (its task was destroyed
            # while pending) or after its loop was closed: nothing may be awaited, and this
            # may run on any thread. The outermost block takes the whole transaction back.
            if name is None:
                closed = self._loop is not None and self._loop.is_closed()
                self._reclaim(_LOOP_CLOSED if closed else _TASK_GONE, lease)
            return False
        if name is not None:
            if lease.closed:
                return False
            if exc_type is None:
                self._engine.call(lease, _SCRIPT, f"RELEASE {name}", ())
            else:
                self._engine.call(lease, _SCRIPT, f"ROLLBACK TO {name}; RELEASE {name}", ())
            return False
        self._forget()
        engine = self._engine
        engine.end(lease, exc_type)
        # (Not while a coroutine is being closed: it must not suspend.)
        if engine.yield_due and exc_type is not GeneratorExit:
            # A streak of inline calls: let other tasks run, holding nothing.
            engine.yielded()
            await asyncio.sleep(0)
        return False

    def _forget(self) -> None:
        # This lease is ending: the pool's record of it goes.
        owner = self._owner
        if self._writer and owner.writer is not None and owner.writer() is self:
            owner.writer = None
        owner.leases.discard(self)

    def _orphaned(self) -> bool:
        # Its task is gone (a collected task's weak reference is cleared before its coroutine
        # is closed), or its loop is closed or not the one running here.
        loop = self._loop
        if (self._task is not None and self._task() is None) or loop is None or loop.is_closed():
            return True
        try:
            return asyncio.get_running_loop() is not loop
        except RuntimeError:
            return True

    def _reclaim(self, cause: str, lease: Lease | None = None) -> None:
        # Give the connection back, rolled back, with the ResourceWarning of a leaked lease.
        if lease is None:
            lease, self._lease = self._lease, None
        self._forget()
        if lease is None:
            return
        what = "writer" if self._writer else "reader"
        self._engine.reclaim(
            lease,
            f"{cause}; its transaction, if any, was rolled back. End 'async with "
            f"apool.{what}()' blocks before their loop closes (cancel and await its tasks: "
            "asyncio.run() does)",
        )

    def _live(self) -> Lease:
        lease = self._lease
        if lease is None:
            raise InterfaceError(
                "this lease is not checked out (use 'async with apool.reader() as conn:') or "
                "was already returned to the pool; check out a new one"
            )
        return lease

    async def _call(self, op: int, sql: str, params: Any) -> Any:
        r = self._call_now(op, sql, params)
        if r.__class__ is Job:
            return await _finish(r)
        if self._yield_now():
            await asyncio.sleep(0)
        return r

    def _call_now(self, op: int, sql: str, params: Any) -> Any:
        # The statement's result if it ran inline, else the Job to await with _finish().
        # (The parts of _call that need no await, for callers that await only when they must:
        # SQLAlchemy's greenlet bridge, fastpool.sqlalchemy.)
        return self._engine.call(self._live(), op, sql, params)

    def _yield_now(self) -> bool:
        # After an inline call: True when this task should let others run now (sleep(0)).
        # Never yield holding the writer: every task would queue behind it, and from then on
        # each transaction would need a hand-off (writer leases yield in __aexit__ instead).
        if self._engine.yield_due and not self._writer:
            self._engine.yielded()
            return True
        return False

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        """Run ``sql`` and return its first row, or None."""
        return await self._call(_FETCHONE, sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Run ``sql`` and return all its rows."""
        return await self._call(_FETCHALL, sql, params)  # type: ignore[no-any-return]

    async def execute(self, sql: str, params: Any = ()) -> AsyncCursor:
        """Run one statement and return an AsyncCursor over its rows (fetched now)."""
        return AsyncCursor(await self._call(_EXECUTE, sql, params))

    async def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> AsyncCursor:
        """Run a data-changing statement once per parameter set."""
        return AsyncCursor(await self._call(_EXECUTEMANY, sql, seq_of_params))

    async def executescript(self, sql: str) -> None:
        """Run a script of statements without parameters."""
        await self._call(_SCRIPT, sql, ())

    async def commit(self) -> None:
        """Commit the writer's transaction now and begin the next one (readers: end a snapshot)."""
        self._live().commit()

    async def rollback(self) -> None:
        """Roll back the writer's transaction and begin the next one."""
        self._live().rollback()

    def interrupt(self) -> None:
        """Stop the statement running on this connection (from any thread)."""
        self._live().interrupt()

    async def close(self) -> None:
        """Give the connection back to the pool; uncommitted writes are rolled back. Idempotent."""
        if not self._close_now():
            await self.__aexit__(None, None, None)

    def _close_now(self) -> bool:
        # close() without awaiting; False for a savepoint, which its __aexit__ must end.
        if self._savepoint is not None:
            return False
        lease, self._lease = self._lease, None
        if lease is not None:
            self._forget()
            lease.close()
        return True

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on this connection."""
        return self._live().in_transaction

    @property
    def kind(self) -> str:
        """'reader', 'writer' or 'writer savepoint'."""
        if self._savepoint is not None:
            return "writer savepoint"
        return "writer" if self._writer else "reader"

    @property
    def closed(self) -> bool:
        """True unless the lease is checked out and not yet returned."""
        return self._lease is None or self._lease.closed

    def __repr__(self) -> str:
        return f"<fastpool.AsyncLease {self.kind} {'returned' if self.closed else 'active'}>"
