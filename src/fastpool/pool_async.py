"""``fastpool.AsyncPool``: the asyncio facade over the pool core and its async engine.

Statements run inline on the event loop's thread under a ~200 µs budget; longer ones go to
worker threads and complete through one eventfd the loop watches (see docs/async.md). This
module only awaits, validates arguments and documents; the per-query work is in C.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Literal

from fastpool._core import NEED, AsyncEngine, Connection, Cursor, Job, Lease, PoolCore, SlotWaiter
from fastpool._options import pool_options
from fastpool.errors import InterfaceError

__all__ = ["AsyncCursor", "AsyncLease", "AsyncPool"]

_FETCHONE, _FETCHALL, _EXECUTE, _EXECUTEMANY, _SCRIPT, _CHECKPOINT = range(6)


class _Core(PoolCore):
    """The pool core of an AsyncPool (a subclass so the core can track it weakly)."""


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
    __slots__ = ("leases", "savepoints", "writer")

    def __init__(self) -> None:
        self.writer: weakref.ref[AsyncLease] | None = None
        self.leases: weakref.WeakSet[AsyncLease] = weakref.WeakSet()
        self.savepoints = 0

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
                owner.savepoints += 1
                name = f"fastpool_async_{owner.savepoints}"
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
        r = self._engine.call(self._live(), op, sql, params)
        if r.__class__ is Job:
            return await _finish(r)
        # Never yield holding the writer: every task would queue behind it, and from then on
        # each transaction would need a hand-off (writer leases yield in __aexit__ instead).
        if self._engine.yield_due and not self._writer:
            self._engine.yielded()
            await asyncio.sleep(0)
        return r

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
        if self._savepoint is not None:
            await self.__aexit__(None, None, None)
            return
        lease, self._lease = self._lease, None
        if lease is not None:
            self._forget()
            lease.close()

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


class AsyncPool:
    """A SQLite connection pool for asyncio: one writer, handed out in FIFO order, and N readers.

    Args:
        path: database file path, ``file:`` URI, or ``":memory:"`` (one in-memory database
            shared by every connection of this pool).
        readers: number of read-only connections (WAL lets them read while the writer writes).
        pragmas: extra or overriding pragmas; defaults are ``journal_mode=wal``,
            ``synchronous=normal``, ``foreign_keys=on``, ``journal_size_limit=64 MiB``,
            ``busy_timeout=5000`` and ``wal_autocheckpoint=1000``.
        statement_cache_size: prepared statements kept per connection (0 disables the cache).
        acquisition_timeout: seconds to wait for a connection before ``PoolTimeout``
            (None waits forever).
        on_connect: called with each new connection (e.g. to ``create_function``).
        row_factory: None for tuples, or ``fastpool.Row``.
        debug: record where each lease was checked out, for timeout and leak messages.
        max_lifetime: seconds after which a connection is replaced when returned (with up
            to 10% jitter); None keeps connections forever.
        idle_timeout: seconds after which an idle reader beyond ``min_readers`` is closed.
        min_readers: readers opened at once and never closed for idleness (default: all).
        writer_lock: before ``BEGIN IMMEDIATE``, take a cross-process lock (a side file
            ``<database>-writerlock``) that waiting processes sleep on in the kernel and are
            woken from in turn, instead of SQLite's sleep-and-retry busy handler. It waits at
            most ``busy_timeout``. False turns it off (see docs/durability.md).
        defensive: turn on SQLite's defensive mode on every connection, so SQL cannot corrupt
            the file (``PRAGMA writable_schema=1`` then editing ``sqlite_master``, writes to
            ``sqlite_dbpage``, ``journal_mode=off``). False allows them again.

    The writer is opened at once, so a bad path, pragma or permission fails here, and so does
    a configuration that would wedge the pool: ``locking_mode=exclusive`` (ValueError); and
    (NotSupportedError) a ``nolock=1`` or ``vfs=unix-none`` URI, or ``journal_mode=wal``
    that SQLite did not apply (a VFS without shared memory, such as ``vfs=unix-dotfile``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | bytes,
        readers: int = 4,
        *,
        pragmas: dict[str, object] | None = None,
        statement_cache_size: int = 128,
        acquisition_timeout: float | None = 30.0,
        on_connect: Callable[[Connection], Any] | None = None,
        row_factory: type | None = None,
        debug: bool = False,
        max_lifetime: float | None = None,
        idle_timeout: float | None = None,
        min_readers: int | None = None,
        writer_lock: bool = True,
        defensive: bool = True,
    ) -> None:
        options = pool_options(
            path,
            readers=readers,
            pragmas=pragmas,
            statement_cache_size=statement_cache_size,
            acquisition_timeout=acquisition_timeout,
            on_connect=on_connect,
            row_factory=row_factory,
            debug=debug,
            max_lifetime=max_lifetime,
            idle_timeout=idle_timeout,
            min_readers=min_readers,
            writer_lock=writer_lock,
            defensive=defensive,
        )
        self._timeout: float | None = options.acquisition_timeout
        self._core = _Core(options)
        self._engine = AsyncEngine(self._core)
        self._owner = _WriterOwner()

    # -- leases --------------------------------------------------------------------------------

    def reader(self) -> AsyncLease:
        """Check out one of the read-only connections; return it as an AsyncLease.

        Use it as ``async with apool.reader() as conn:``. It goes back to the pool at the end of
        the block (or on ``await conn.close()``); using it afterwards raises InterfaceError.
        """
        return AsyncLease(self._engine, False, True, self._timeout, self._owner)

    def writer(self) -> AsyncLease:
        """Check out the writer, in FIFO order of arrival; return it as an AsyncLease in a
        transaction.

        ``async with apool.writer() as conn:`` runs ``BEGIN IMMEDIATE`` now, ``COMMIT`` at the end
        of the block, or ``ROLLBACK`` if the block raises. Inside it, a nested ``apool.writer()``
        in the same task becomes a SAVEPOINT instead of waiting for itself.
        """
        return AsyncLease(self._engine, True, True, self._timeout, self._owner)

    def writer_no_transaction(self) -> AsyncLease:
        """Check out the writer without opening a transaction (for checkpoints and VACUUM)."""
        return AsyncLease(self._engine, True, False, self._timeout, self._owner)

    # -- one-shots -----------------------------------------------------------------------------

    async def _read(self, op: int, sql: str, params: Any) -> Any:
        engine = self._engine
        r = engine.read(op, sql, params)
        if r is NEED:
            slot = await _slot(engine, self._owner, False, self._timeout)
            r = engine.read_on(slot, op, sql, params)
            if r.__class__ is Job:
                return await _finish(r)
        elif engine.yield_due:
            engine.yielded()
            await asyncio.sleep(0)
        return r

    async def _write(self, op: int, sql: str, params: Any) -> Any:
        engine = self._engine
        if self._owner.writer is not None:
            held = self._owner.held_by_current_task()
            if held is not None:  # join the task's own transaction
                r = engine.call(held, op, sql, params)
                return await _finish(r) if r.__class__ is Job else r
        r = engine.write(op, sql, params)
        if r is NEED:
            await _slot(engine, self._owner, True, self._timeout)
            r = engine.write_on(op, sql, params)
            if r.__class__ is Job:
                return await _finish(r)
        elif engine.yield_due:
            engine.yielded()
            await asyncio.sleep(0)
        return r

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        """Run a query on a reader and return its first row (or None)."""
        return await self._read(_FETCHONE, sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Run a query on a reader and return all its rows."""
        return await self._read(_FETCHALL, sql, params)  # type: ignore[no-any-return]

    async def execute(self, sql: str, params: Any = ()) -> AsyncCursor:
        """Run one write statement on the writer, in its own transaction; return its AsyncCursor.

        The cursor is finished: rowcount and lastrowid are set, and rows from RETURNING are
        already fetched. Inside an ``apool.writer()`` block in this task it joins that
        transaction.
        """
        return AsyncCursor(await self._write(_EXECUTE, sql, params))

    async def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> AsyncCursor:
        """Run a write statement for each parameter set, all in one transaction."""
        async with self.writer() as conn:
            return await conn.executemany(sql, seq_of_params)

    async def checkpoint(self, mode: str = "passive") -> tuple[int, int]:
        """Checkpoint the WAL on the writer: mode is passive, full, restart or truncate.

        Returns ``(wal_frames, checkpointed_frames)``. Waits for the writer like any writer.
        """
        async with self.writer_no_transaction() as conn:
            return await conn._call(_CHECKPOINT, mode, ())  # type: ignore[no-any-return]

    # -- state ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters and gauges of the pool, as a dict (see the README for each key)."""
        return {**self._core.stats(), **self._engine.stats()}

    async def close(self, timeout: float | None = 5.0) -> None:
        """Stop lending connections, wait up to ``timeout`` s for leases to come back, close all.

        New checkouts raise PoolClosed at once. Leases still out when the timeout passes (or
        the writer, when the calling task holds it) are closed when they come back, with a
        ResourceWarning. ``timeout=None`` waits for them forever. Idempotent.
        """
        if self._core.closed or self._engine.closing:
            return
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, not {timeout!r}")
        engine = self._engine
        # Leases and waiters of a closed loop would otherwise hold the close up to `timeout`.
        engine.adopt(asyncio.get_running_loop())
        self._owner.reap()
        engine.closing = True
        from fastpool.errors import PoolClosed

        engine.fail_waiters(PoolClosed("the pool was closed while waiting for a connection"))
        deadline = None if timeout is None else time.monotonic() + timeout
        # The caller's own writer lease cannot come back while we wait for it.
        own_writer = self._owner.held_by_current_task() is not None
        while engine.busy(own_writer) and (deadline is None or time.monotonic() < deadline):
            await asyncio.sleep(0.002)
        engine.stop()
        still_out = engine.busy(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            self._core.close(timeout=0)  # takes every idle slot: busy() says True from now on
        if still_out:
            warnings.warn(
                "fastpool.AsyncPool.close(): leases still checked out or statements still "
                f"running after {timeout} s; their connections are closed when they come back "
                "(end 'async with' blocks before closing the pool)",
                ResourceWarning,
                stacklevel=2,
            )

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return bool(self._core.closed or self._engine.closing)

    @property
    def debug(self) -> bool:
        """True when the pool records where each lease was checked out."""
        return bool(self._core.debug)

    @property
    def holders(self) -> dict[Any, Any]:
        """With debug=True: (kind, slot) -> (thread name, since, stack) of leases out."""
        return self._core.holders

    async def __aenter__(self) -> AsyncPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        await self.close()
        return False

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is None or core.closed:
            return
        warnings.warn(
            "a fastpool.AsyncPool was garbage-collected without close(); use 'async with "
            "AsyncPool(...) as apool:' or 'await apool.close()'",
            ResourceWarning,
            stacklevel=2,
        )
        try:
            self._engine.stop()
            core.close(timeout=0)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fastpool.AsyncPool readers={self._core.stats()['readers']} {state}>"
