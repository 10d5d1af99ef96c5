"""The DB-API connection SQLAlchemy's SQLite dialect drives, made of a fastpool pool's leases.

SQLAlchemy holds one of these per pooled connection record. It owns no SQLite connection:
each transaction checks out a lease from the pool at its first statement and returns it at
``commit()``/``rollback()``. A transaction takes the writer (``BEGIN IMMEDIATE``, in the
pool's FIFO order) unless the statement that opens it asked for a reader
(``fastpool_readonly``), so an ORM read-then-write never fails to upgrade a read lock and
never loses an update. The same code serves ``Pool`` and ``AsyncPool``: the async flavour
awaits each pool call through SQLAlchemy's greenlet bridge, which costs no thread hop when
the pool completed the call inline, and only the first of a greenlet's calls goes over the
bridge when the others complete inline (``AsyncAdaptedConnection._statement``).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastpool import errors
from fastpool._async_lease import _EXECUTE, _EXECUTEMANY, _SCRIPT, _finish
from fastpool._core import Connection as CoreConnection
from fastpool._core import Job
from fastpool.pool import Pool
from fastpool.pool_async import AsyncPool

__all__ = ["AdaptedConnection", "AdaptedCursor", "AsyncAdaptedConnection", "await_fn"]

#: pysqlite's keywords SQLAlchemy may pass: ``timeout`` and ``cached_statements`` are
#: translated, ``detect_types`` is refused unless 0, the others do not apply to a pool.
_PYSQLITE_KEYS = {"check_same_thread", "uri", "timeout", "cached_statements", "detect_types"}

#: AsyncPool.close() tasks started by close_pool on a running loop, kept until done.
_closing: set[asyncio.Task[None]] = set()


class _Rollback(Exception):
    """The exception type a lease's exit is given to roll back instead of commit."""


def _regexp(pattern: str, value: str | None) -> bool | None:
    # SQLite's REGEXP operator, which SQLAlchemy's regexp_match() compiles to.
    return None if value is None else re.search(pattern, value) is not None


def _sqlalchemy_functions(conn: CoreConnection) -> None:
    # What SQLAlchemy's SQLite dialect registers on every DB-API connection, here on every
    # connection the pool opens (a connection record here is not one SQLite connection).
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    conn.create_function("floor", 1, math.floor, deterministic=True)


def pool_arguments(database: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn ``connect()``'s keywords (pysqlite's and the pool's) into the pool's arguments."""
    opts = dict(kwargs)
    for key in _PYSQLITE_KEYS & opts.keys():
        value = opts.pop(key)
        if key == "timeout":
            pragmas = dict(opts.get("pragmas") or {})
            pragmas.setdefault("busy_timeout", int(float(value) * 1000))
            opts["pragmas"] = pragmas
        elif key == "cached_statements":
            opts.setdefault("statement_cache_size", int(value))
        elif key == "detect_types" and value:
            raise errors.NotSupportedError(
                "detect_types is not supported by sqlite+fastpool: SQLAlchemy's types convert "
                "dates and times themselves"
            )
    user_hook = opts.pop("on_connect", None)

    def on_connect(conn: CoreConnection) -> None:
        _sqlalchemy_functions(conn)
        if user_hook is not None:
            user_hook(conn)

    opts["on_connect"] = on_connect
    opts["path"] = database
    return opts


class AdaptedCursor:
    """A PEP 249 cursor whose statement ran to completion: its rows are already fetched.

    Rows are fetched at ``execute`` so that a cursor never holds its lease (or a snapshot)
    past the transaction that made it.
    """

    __slots__ = (
        "_pos",
        "_rows",
        "arraysize",
        "connection",
        "description",
        "lastrowid",
        "rowcount",
        "server_side",
    )

    def __init__(self, connection: AdaptedConnection, server_side: bool = False) -> None:
        self.connection = connection
        #: Asked for as a server-side cursor (``stream()``); its rows are fetched all the same.
        self.server_side = server_side
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1
        self._rows: list[Any] = []
        self._pos = 0

    def execute(self, sql: str, params: Any = ()) -> AdaptedCursor:
        """Run one statement (in the connection's transaction) and fetch its rows."""
        self.connection._run(self, sql, params, False)
        return self

    def executemany(self, sql: str, seq_of_params: Iterable[Any]) -> AdaptedCursor:
        """Run one data-changing statement per parameter set."""
        self.connection._run(self, sql, seq_of_params, True)
        return self

    def _take(self, description: Any, rows: list[Any], rowcount: int, lastrowid: int) -> None:
        self.description = description
        self._rows = rows
        self._pos = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        """The next row, or None."""
        pos = self._pos
        if pos < len(self._rows):
            self._pos = pos + 1
            return self._rows[pos]
        return None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` (default ``arraysize``) more rows."""
        pos = self._pos
        end = pos + (self.arraysize if size is None else size)
        self._pos = min(end, len(self._rows))
        return self._rows[pos:end]

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        pos, self._pos = self._pos, len(self._rows)
        return self._rows[pos:] if pos else self._rows

    def __iter__(self) -> Iterator[Any]:
        rows, pos = self._rows, self._pos
        self._pos = len(rows)
        return iter(rows[pos:])

    def close(self) -> None:
        """Drop the rows."""
        self._rows = []
        self._pos = 0

    async def _async_soft_close(self) -> None:
        # SQLAlchemy's async results call this on a cursor: the rows are here already.
        return None

    def setinputsizes(self, sizes: object) -> None:
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored (PEP 249)."""


class AdaptedConnection:
    """The blocking flavour: a DB-API connection over a ``fastpool.Pool``."""

    #: Pool class this flavour opens; the async flavour overrides it.
    pool_class: type[Pool] | type[AsyncPool] = Pool

    def __init__(self, database: str, kwargs: dict[str, Any]) -> None:
        self.pool_arguments = pool_arguments(database, kwargs)
        self.pool: Any = None
        self._owns_pool = False
        self._lease: Any = None
        self._reading = False  # the lease is a reader in a snapshot (BEGIN ... COMMIT)
        self._plain = False  # the lease runs in autocommit mode (AUTOCOMMIT isolation)
        self._closed = False
        #: None: AUTOCOMMIT; "": transactions (the name pysqlite uses).
        self.isolation_level: str | None = ""
        #: The isolation level SQLAlchemy last set (SQLite serialises anyway).
        self.level_name = "SERIALIZABLE"
        #: Set by the dialect before each statement: whether a transaction it opens reads only.
        self.readonly_hint = False

    # -- flavour hooks: the async subclass awaits what these return ---------------------------

    def _wait(self, value: Any) -> Any:
        return value

    def _exit(self, lease: Any, ok: bool) -> None:
        lease.__exit__(None if ok else _Rollback, None, None)

    def _script(self, lease: Any, sql: str) -> None:
        lease.executescript(sql)

    def _execute(self, lease: Any, sql: str, params: Any, many: bool) -> Any:
        # The statement's fastpool Cursor (core), whose rows fetchall() returns.
        return lease.executemany(sql, params) if many else lease.execute(sql, params)

    def _close_lease(self, lease: Any) -> None:
        lease.close()

    @classmethod
    def close_pool(cls, pool: Any) -> None:
        """Close a pool this flavour opened."""
        pool.close()

    # -- the pool -----------------------------------------------------------------------------

    def open_pool(self) -> Any:
        """Open a pool with this connection's arguments (its SQLAlchemy pool shares it)."""
        args = dict(self.pool_arguments)
        return self.pool_class(args.pop("path"), **args)

    def attach(self, pool: Any) -> None:
        """Run this connection's transactions on ``pool`` (its SQLAlchemy pool's)."""
        self.pool = pool

    def _pool(self) -> Any:
        if self._closed:
            raise errors.ProgrammingError("Cannot operate on a closed database.")
        if self.pool is None:  # made outside FastpoolPool (another poolclass): a private pool
            self.pool = self.open_pool()
            self._owns_pool = True
        return self.pool

    # -- statements ---------------------------------------------------------------------------

    def cursor(self, server_side: bool = False) -> AdaptedCursor:
        """A new cursor on this connection (``server_side``: only marked so, see the class)."""
        return AdaptedCursor(self, server_side)

    def _checkout(self, plain: bool) -> Any:
        pool = self._pool()
        if self.readonly_hint:
            lease = self._wait(pool.reader())
            if not plain:
                try:
                    self._script(lease, "BEGIN")
                except BaseException:
                    self._close_lease(lease)
                    raise
            self._reading = True
        else:
            lease = self._wait(pool.writer_no_transaction() if plain else pool.writer())
            self._reading = False
        self._plain = plain
        self._lease = lease
        return lease

    def _run(self, cur: AdaptedCursor, sql: str, params: Any, many: bool) -> None:
        lease = self._lease
        if lease is None:
            lease = self._checkout(self.isolation_level is None)
        try:
            c = self._execute(lease, sql, params, many)
            description = c.description
            rows = c.fetchall() if description is not None else []
            cur._take(description, rows, c.rowcount, c.lastrowid)
        finally:
            # Autocommit: the lease goes back after each statement, unless the SQL began a
            # transaction of its own (it is kept until that ends).
            if self._plain and self._lease is not None and not self._lease_in_transaction():
                self._release()

    def _lease_in_transaction(self) -> bool:
        lease = self._lease
        return not lease.closed and bool(lease.in_transaction)

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        self.readonly_hint = False
        if lease is not None:
            self._close_lease(lease)

    def _end(self, ok: bool) -> None:
        lease = self._lease
        if lease is None:
            self.readonly_hint = False
            return
        if self._plain or self._reading:
            # A reader's snapshot, or a transaction the SQL began itself in autocommit mode
            # (SQLAlchemy's recipe: isolation_level=None and BEGIN in a "begin" event): ended
            # here as sqlite3's commit()/rollback() would, then the lease goes back.
            try:
                if not lease.closed and lease.in_transaction:
                    self._script(lease, "COMMIT" if ok else "ROLLBACK")
            finally:
                self._release()
            return
        self._lease = None
        self.readonly_hint = False
        self._exit(lease, ok)

    def commit(self) -> None:
        """Commit the transaction and give its connection back to the pool."""
        if self._closed:
            raise errors.ProgrammingError("Cannot operate on a closed database.")
        self._end(True)

    def rollback(self) -> None:
        """Roll back the transaction and give its connection back to the pool."""
        if self._closed:
            raise errors.ProgrammingError("Cannot operate on a closed database.")
        self._end(False)

    def close(self) -> None:
        """Roll back what is open and, if this connection opened its own pool, close it."""
        if self._closed:
            return
        try:
            self._end(False)
        finally:
            self._closed = True
            if self._owns_pool and self.pool is not None:
                self.close_pool(self.pool)

    def ping(self) -> None:
        """Raise a DB-API error if this connection can no longer run statements."""
        pool = self._pool()
        if pool.closed:
            raise errors.PoolClosed("the pool behind this connection was closed")
        lease = self._lease
        if lease is not None and lease.closed:
            raise errors.InterfaceError("the connection is closed (its lease was discarded)")

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Refused: functions must be registered on every pool connection (``on_connect``)."""
        raise errors.NotSupportedError(
            "register SQL functions with connect_args={'on_connect': ...}: a sqlite+fastpool "
            "connection runs on whichever pool connection its transaction gets"
        )

    @property
    def driver_connection(self) -> Any:
        """The fastpool pool behind this connection."""
        return self._pool()


class AsyncAdaptedConnection(AdaptedConnection):
    """The asyncio flavour over a ``fastpool.AsyncPool``, used from SQLAlchemy's greenlets."""

    pool_class = AsyncPool

    def __init__(self, database: str, kwargs: dict[str, Any], await_: Callable[[Any], Any]) -> None:
        from greenlet import getcurrent  # SQLAlchemy's asyncio support brings it

        super().__init__(database, kwargs)
        self._await = await_
        self._greenlet = getcurrent
        self._bridged: Any = None  # the greenlet whose last call went over the bridge

    def _wait(self, value: Any) -> Any:
        current = self._greenlet()
        result = self._await(value)  # raises outside SQLAlchemy's greenlets
        self._bridged = current
        return result

    def _exit(self, lease: Any, ok: bool) -> None:
        self._wait(lease.__aexit__(None if ok else _Rollback, None, None))

    def _statement(self, lease: Any, op: int, sql: str, params: Any) -> Any:
        # A statement on the AsyncLease, awaited only when it must be. Each await over
        # SQLAlchemy's bridge costs two greenlet switches, a turn of its loop and coroutines,
        # though nearly every call completes inline. But SQLAlchemy requires at least one await
        # in some of its greenlets (AsyncConnection.execute: AwaitRequired otherwise), so a
        # greenlet's first call takes the bridge; the later ones run here and await only a
        # statement sent to a worker or the pause that lets other tasks run (_yield_now).
        if self._greenlet() is not self._bridged:
            return self._wait(lease._call(op, sql, params))
        result = lease._call_now(op, sql, params)
        if result.__class__ is Job:
            return self._await(_finish(result))
        if lease._yield_now():
            self._await(asyncio.sleep(0))
        return result

    def _script(self, lease: Any, sql: str) -> None:
        self._statement(lease, _SCRIPT, sql, ())

    def _execute(self, lease: Any, sql: str, params: Any, many: bool) -> Any:
        return self._statement(lease, _EXECUTEMANY if many else _EXECUTE, sql, params)

    def _close_lease(self, lease: Any) -> None:
        if not lease._close_now():  # a savepoint: its exit runs statements
            self._wait(lease.close())

    @classmethod
    def close_pool(cls, pool: Any) -> None:
        """Close an AsyncPool: awaited from SQLAlchemy's greenlet (``await engine.dispose()``),
        on a loop of its own from plain code (``sync_engine.dispose()`` after the loop ended),
        or as a task when called on a running loop outside a greenlet."""
        from sqlalchemy.util.concurrency import in_greenlet

        if in_greenlet():
            await_fn()(pool.close())
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(pool.close())
            return
        task = loop.create_task(pool.close())
        _closing.add(task)  # a pending task must be referenced until it is done
        task.add_done_callback(_closing.discard)

    def terminate(self) -> None:
        """Give the lease back without waiting for anything (a cancelled or collected task).

        The lease's exit runs as for a coroutine being closed (``GeneratorExit``): it never
        suspends, rolls the transaction back, and, when its task or loop is gone (garbage
        collection, maybe on another thread), takes the connection back the way fastpool
        takes back any leaked lease.
        """
        lease, self._lease = self._lease, None
        self._closed = True
        if lease is None:
            return
        step = lease.__aexit__(GeneratorExit, None, None)
        try:
            step.send(None)
        except StopIteration:
            return
        step.close()  # not reached: that exit has no suspension point


def await_fn() -> Callable[[Any], Any]:
    """SQLAlchemy's greenlet bridge (``await_`` in 2.1, ``await_only`` in 2.0)."""
    from sqlalchemy.util import concurrency

    names = vars(concurrency)
    fn: Callable[[Any], Any] = names.get("await_") or names["await_only"]
    return fn
