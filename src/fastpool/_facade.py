"""What ``fastpool.Pool`` and ``fastpool.AsyncPool`` share: the constructor and the finalizer.

Its typed signature and its documentation are written here once. ``PoolFacade.__init__``
validates the arguments with ``pool_options`` (``_options.py``) and hands the result to the
facade's ``_start``, which builds the pool core from it: ``Pool`` *is* the core (it also
inherits ``PoolCore``, so its hot methods are the core's C methods), ``AsyncPool`` *has* one,
with the async engine on top (an awaiting facade cannot inherit blocking methods under the
same names). Each names its core with ``_pool_core()``: ``Pool`` itself, ``AsyncPool``
its ``_core``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from fastpool._core import Connection, PoolCore
from fastpool._options import PoolOptions, pool_options

__all__ = ["PoolFacade"]


class PoolFacade:
    """The constructor of both pool facades (internal); a mixin without state of its own."""

    __slots__ = ()

    #: How the ResourceWarning of a pool collected without close() tells to close it.
    _CLOSE_HINT = ""
    _NAME = ""

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
        fifo_after: float = 0.001,
        group_commit: bool | None = None,
    ) -> None:
        """Open the pool.

        Args:
            path: database file path, ``file:`` URI, or ``":memory:"`` (one in-memory database
                shared by every connection of this pool).
            readers: number of read-only connections (WAL lets them read while the writer
                writes).
            pragmas: extra or overriding pragmas; defaults are ``journal_mode=wal``,
                ``synchronous=normal``, ``foreign_keys=on``, ``journal_size_limit=64 MiB``,
                ``busy_timeout=5000`` and ``wal_autocheckpoint=1000``.
            statement_cache_size: prepared statements kept per connection (0 disables the
                cache).
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
                ``<database>-writerlock``) that waiting processes sleep on in the kernel and
                are woken from in turn, instead of SQLite's sleep-and-retry busy handler. It
                waits at most ``busy_timeout``. False turns it off (see docs/durability.md).
            defensive: turn on SQLite's defensive mode on every connection, so SQL cannot
                corrupt the file (``PRAGMA writable_schema=1`` then editing ``sqlite_master``,
                writes to ``sqlite_dbpage``, ``journal_mode=off``). False allows them again.
            fifo_after: the fairness bound, in seconds. A thread that finds a connection
                free takes it even when others are queued (no context switch per checkout),
                until the oldest queued thread has waited this long: from then on each
                connection returned goes straight to the oldest waiter. 0 hands every
                connection to the oldest waiter (strict FIFO, slower under load). Async
                waiters are always served in FIFO order.
            group_commit: one-shot writes (``execute``/``executemany`` of INSERT, UPDATE,
                DELETE, REPLACE or WITH) that find the writer busy wait to be run together:
                one transaction (one fsync) for all of them, each statement still failing
                or succeeding on its own, each call returning once its COMMIT is done (see
                docs/transactions.md). None (the default): on when every commit fsyncs
                (``synchronous=full`` or ``extra`` in WAL mode, ``normal`` or more with a
                rollback journal); True: always; False: each in a transaction of its own.

        The writer is opened at once, so a bad path, pragma or permission fails here, and so
        does a configuration that would wedge the pool: ``locking_mode=exclusive``
        (ValueError); and (NotSupportedError) a ``nolock=1`` or ``vfs=unix-none`` URI, or
        ``journal_mode=wal`` that SQLite did not apply (a VFS without shared memory, such as
        ``vfs=unix-dotfile``).
        """
        self._start(
            pool_options(
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
                fifo_after=fifo_after,
                group_commit=group_commit,
            )
        )

    def _start(self, options: PoolOptions) -> None:
        """Build the pool from validated options (each facade its own way)."""
        raise NotImplementedError

    def _pool_core(self) -> PoolCore:
        """The pool core this facade is (Pool) or has (AsyncPool)."""
        raise NotImplementedError

    def _close_now(self) -> None:
        """Close without waiting for leases (from the finalizer)."""
        raise NotImplementedError

    def __del__(self, _warn: Any = warnings.warn, _category: type = ResourceWarning) -> None:
        # Defaults bind what the finalizer needs: at interpreter shutdown module globals such
        # as ``warnings`` may already be None. A pool whose construction failed is closed or
        # has no core (AttributeError): nothing to say or close.
        try:
            core = self._pool_core()
        except Exception:
            return
        if core.closed:
            return
        try:
            _warn(
                f"a fastpool.{self._NAME} was garbage-collected without close(); use "
                f"{self._CLOSE_HINT}",
                _category,
                stacklevel=2,
            )
        except Exception:
            pass
        try:
            self._close_now()
        except Exception:
            pass
