"""``fastpool.AsyncPool``: the asyncio facade; it *has* a pool core and the async engine on it.

Its constructor is ``PoolFacade.__init__`` (``_facade.py``, shared with ``Pool``); ``_start``
builds the core (``PoolCore``, the class ``Pool`` *is*) and the ``AsyncEngine`` over it.
``AsyncPool`` cannot be a core itself: its methods have the core's names and parameters but
are awaitable. Statements run inline on the event loop's thread under a ~200 µs budget; longer
ones go to worker threads and complete through one eventfd the loop watches (see
docs/async.md). This module only awaits what the engine hands back; the per-query work is in C.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal

from fastpool._async_lease import (
    _CHECKPOINT,
    _EXECUTE,
    _FETCHALL,
    _FETCHONE,
    AsyncCursor,
    AsyncLease,
    _finish,
    _slot,
    _WriterOwner,
)
from fastpool._core import NEED, AsyncEngine, Job, PoolCore
from fastpool._facade import PoolFacade
from fastpool._options import PoolOptions
from fastpool.errors import NotSupportedError

__all__ = ["AsyncCursor", "AsyncLease", "AsyncPool"]


class _Core(PoolCore):
    """The pool core of an AsyncPool (a subclass so the core can track it weakly)."""


class AsyncPool(PoolFacade):
    """A SQLite connection pool for asyncio: one writer, handed out in FIFO order, and N readers.

    ``AsyncPool(path, readers=4, *, ...)``: the arguments of ``Pool``, see ``__init__``. The
    writer is opened at once, so a bad path, pragma or permission fails there.
    """

    _NAME = "AsyncPool"
    _CLOSE_HINT = "'async with AsyncPool(...) as apool:' or 'await apool.close()'"

    def _start(self, options: PoolOptions) -> None:
        if options.group_commit:
            raise NotSupportedError(
                "group_commit=True: AsyncPool does not group writes yet (its one-shot writes "
                "each run in a transaction of their own); leave group_commit at None"
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

    async def _one_shot(self, writer: bool, op: int, sql: str, params: Any) -> Any:
        # Inline on a free reader (or the free writer); else await a slot, then a worker if the
        # statement outran the inline budget.
        engine = self._engine
        if writer:
            held = None if self._owner.writer is None else self._owner.held_by_current_task()
            if held is not None:  # join the task's own transaction
                r = engine.call(held, op, sql, params)
                return await _finish(r) if r.__class__ is Job else r
            r = engine.write(op, sql, params)
        else:
            r = engine.read(op, sql, params)
        return await self._after_fast_path(r, writer, op, sql, params)

    async def _after_fast_path(self, r: Any, writer: bool, op: int, sql: str, params: Any) -> Any:
        engine = self._engine
        if r is NEED:
            slot = await _slot(engine, self._owner, writer, self._timeout)
            if writer:
                r = engine.write_on(op, sql, params)
            else:
                r = engine.read_on(slot, op, sql, params)
            if r.__class__ is Job:
                return await _finish(r)
        elif engine.yield_due:
            engine.yielded()
            await asyncio.sleep(0)
        return r

    # fetchone and fetchall take the engine's fast path themselves: one coroutine per call.
    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        """Run a query on a reader and return its first row (or None)."""
        r = self._engine.read(_FETCHONE, sql, params)
        if r is NEED or self._engine.yield_due:
            return await self._after_fast_path(r, False, _FETCHONE, sql, params)
        return r

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Run a query on a reader and return all its rows."""
        r = self._engine.read(_FETCHALL, sql, params)
        if r is NEED or self._engine.yield_due:
            r = await self._after_fast_path(r, False, _FETCHALL, sql, params)
        return r  # type: ignore[no-any-return]

    async def execute(self, sql: str, params: Any = ()) -> AsyncCursor:
        """Run one write statement on the writer, in its own transaction; return its AsyncCursor.

        The cursor is finished: rowcount and lastrowid are set, and rows from RETURNING are
        already fetched. Inside an ``apool.writer()`` block in this task it joins that
        transaction.
        """
        return AsyncCursor(await self._one_shot(True, _EXECUTE, sql, params))

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
        self._engine.settle()  # a reader kept between inline reads is not in use
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
        """With ``debug=True``, the leases out, as ``Pool.holders``; empty otherwise."""
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

    def _pool_core(self) -> PoolCore:
        return self._core

    def _close_now(self) -> None:
        self._engine.stop()
        self._core.close(timeout=0)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fastpool.AsyncPool readers={self._core.stats()['readers']} {state}>"
