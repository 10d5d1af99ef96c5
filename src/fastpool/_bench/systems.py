"""The systems compared: every way a Python program commonly talks to SQLite concurrently.

Each system opens its connections with the same pragmas (``data.PRAGMAS``) and does the same
operations, written the way that library's users write them:

- threaded systems give each worker thread an ``Ops`` (point read, heavier read, single-row
  INSERT transaction, single-row UPDATE transaction) and, for pools, a checkout+return loop;
- asyncio systems give each task an ``AsyncOps`` (point read, INSERT transaction) and, for
  pools, an async checkout+return loop.

A system whose library is not installed reports why (``missing()``) and is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import queue
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastpool
from fastpool._core import Connection as CoreConnection

from .data import (
    BUSY_TIMEOUT,
    INSERT,
    JOIN,
    POOL_SIZE,
    PRAGMAS,
    SELECT,
    UPDATE,
    connection_pragmas,
    stdlib_connect,
)

#: Connections of aiosqlitepool (the size the AsyncPool targets were set against: 10).
AIOSQLITEPOOL_SIZE = 10


def _fastpool_has_own_sqlite() -> bool:
    """True when fastpool runs on another copy of SQLite than the stdlib's (a wheel bundles
    one); False for a source build on the system's libsqlite3, which both then share."""
    conn = sqlite3.connect(":memory:")
    try:
        options = tuple(row[0] for row in conn.execute("PRAGMA compile_options"))
    finally:
        conn.close()
    stdlib = (sqlite3.sqlite_version, options)
    return stdlib != (fastpool.sqlite_version(), fastpool.sqlite_compile_options())


#: See ``ApswPerThread``: a second copy of SQLite must not open the database the stdlib's has
#: open, so a wheel-installed fastpool gets its own copy of the database, like apsw.
FASTPOOL_OWN_SQLITE = _fastpool_has_own_sqlite()


@dataclass
class Ops:
    """What one worker thread can do; each call is one complete operation."""

    read: Callable[[tuple[int]], object]
    join: Callable[[tuple[int, int]], object]
    insert: Callable[[tuple[str, str, float]], object]
    update: Callable[[tuple[int]], object]
    close: Callable[[], None] = lambda: None


@dataclass
class AsyncOps:
    """What one asyncio task can do; each call is one complete operation."""

    read: Callable[[tuple[int]], Awaitable[object]]
    insert: Callable[[tuple[str, str, float]], Awaitable[object]]


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class System:
    """Base of every system: a name, how it is set up, and what it can run."""

    name = ""
    #: "threads" (blocking calls from worker threads) or "async" (tasks on one event loop)
    kind = "threads"
    #: one line on how it is used
    how = ""
    #: can it do checkout+return without a query (it is a pool, or opens per operation)?
    checkout = False
    #: the exceptions a write may raise for 'database is locked'
    errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
    #: the distribution whose version the report prints
    package = ""
    #: True for a system that brings its own copy of the SQLite library: it gets a copy of
    #: the database to itself (see ``ApswPerThread``)
    private_database = False

    def keeper_connect(self, path: str) -> Any:
        """For a ``private_database`` system: an autocommit connection of its own SQLite
        (``execute(...).fetchall()``), for the suite's housekeeping on that database."""
        raise NotImplementedError

    #: the third-party modules it imports (each installed by the distribution of that name)
    requires: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """None when it can run here, else why not (and how to fix that)."""
        for module in self.requires:
            if not _has(module):
                return f"{module} is not installed (pip install {module})"
        return None

    # threaded systems
    def open(self, path: str) -> None:
        """Open whatever is shared by all threads (a pool); per-thread systems keep the path."""
        self.path = path

    def thread_ops(self) -> Ops:
        """Called once in each worker thread (untimed): that thread's operations."""
        raise NotImplementedError

    def checkout_loop(self) -> Callable[[int], None]:
        """A function that checks out and returns a connection ``n`` times, no query."""
        raise NotImplementedError

    def close(self) -> None:
        """Close everything ``open`` made."""

    # asyncio systems
    async def aopen(self, path: str) -> None:
        """Open the system inside the benchmark's event loop."""
        self.path = path

    async def async_ops(self) -> AsyncOps:
        """The operations shared by the tasks of one round."""
        raise NotImplementedError

    def async_checkout_loop(self) -> Callable[[int], Awaitable[None]]:
        """An async function that checks out and returns a connection ``n`` times."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close everything ``aopen`` made."""


# -- threaded systems ------------------------------------------------------------------------------


class _FastpoolDatabase(System):
    """What both fastpool systems share: a database of their own when fastpool's SQLite is
    not the stdlib's (``FASTPOOL_OWN_SQLITE``), housekept through fastpool's own library."""

    private_database = FASTPOOL_OWN_SQLITE

    def keeper_connect(self, path: str) -> Any:
        return CoreConnection(path, busy_timeout=BUSY_TIMEOUT, autocommit=True)


class FastpoolSync(_FastpoolDatabase):
    name = "fastpool"
    how = (
        f"fastpool.Pool(path, readers={POOL_SIZE}); pool.fetchone / pool.fetchall; "
        "writes: with pool.writer() as w: w.execute(...) (BEGIN IMMEDIATE, FIFO writer)"
    )
    checkout = True
    errors = (fastpool.OperationalError,)
    package = "fastpool"

    def open(self, path: str) -> None:
        self.pool = fastpool.Pool(path, readers=POOL_SIZE, pragmas=dict(PRAGMAS))

    def thread_ops(self) -> Ops:
        fetchone, fetchall, writer = self.pool.fetchone, self.pool.fetchall, self.pool.writer

        def read(key: tuple[int]) -> object:
            return fetchone(SELECT, key)

        def join(params: tuple[int, int]) -> object:
            return fetchall(JOIN, params)

        def insert(row: tuple[str, str, float]) -> None:
            with writer() as w:
                w.execute(INSERT, row)

        def update(key: tuple[int]) -> None:
            with writer() as w:
                w.execute(UPDATE, key)

        return Ops(read, join, insert, update)

    def checkout_loop(self) -> Callable[[int], None]:
        return _checkout_loop(self.pool.reader)

    def close(self) -> None:
        self.pool.close()


class FastpoolLease(FastpoolSync):
    name = "fastpool-lease"
    how = (
        f"fastpool.Pool(path, readers={POOL_SIZE}); reads through a lease: with pool.reader() "
        "as c: c.fetchone(...) / c.fetchall(...); writes as fastpool's"
    )

    def thread_ops(self) -> Ops:
        ops, reader = super().thread_ops(), self.pool.reader

        def read(key: tuple[int]) -> object:
            with reader() as c:
                return c.fetchone(SELECT, key)

        def join(params: tuple[int, int]) -> object:
            with reader() as c:
                return c.fetchall(JOIN, params)

        return Ops(read, join, ops.insert, ops.update)


def _checkout_loop(connection: Callable[[], Any]) -> Callable[[int], None]:
    """``n`` times ``with connection(): pass``."""

    def loop(n: int) -> None:
        for _ in range(n):
            with connection():
                pass

    return loop


def _async_checkout_loop(connection: Callable[[], Any]) -> Callable[[int], Awaitable[None]]:
    """``n`` times ``async with connection(): pass``."""

    async def loop(n: int) -> None:
        for _ in range(n):
            async with connection():
                pass

    return loop


def _connection_ops(conn: Any) -> Ops:
    """Ops over one connection of its own (sqlite3's or apsw's): ``conn.execute`` for reads,
    ``with conn: conn.execute(...)`` for write transactions."""
    execute = conn.execute

    def read(key: tuple[int]) -> object:
        return execute(SELECT, key).fetchone()

    def join(params: tuple[int, int]) -> object:
        return execute(JOIN, params).fetchall()

    def insert(row: tuple[str, str, float]) -> None:
        with conn:
            execute(INSERT, row)

    def update(key: tuple[int]) -> None:
        with conn:
            execute(UPDATE, key)

    return Ops(read, join, insert, update, conn.close)


def _checkout_ops(connection: Callable[[], Any]) -> Ops:
    """Ops that check out a stdlib connection for every operation (``with connection() as
    conn``), writes as ``with conn: conn.execute(...)``."""

    def read(key: tuple[int]) -> object:
        with connection() as conn:
            return conn.execute(SELECT, key).fetchone()

    def join(params: tuple[int, int]) -> object:
        with connection() as conn:
            return conn.execute(JOIN, params).fetchall()

    def insert(row: tuple[str, str, float]) -> None:
        with connection() as conn, conn:
            conn.execute(INSERT, row)

    def update(key: tuple[int]) -> None:
        with connection() as conn, conn:
            conn.execute(UPDATE, key)

    return Ops(read, join, insert, update)


class Sqlite3PerThread(System):
    name = "sqlite3"
    how = (
        "stdlib sqlite3, one persistent connection per thread; conn.execute(...).fetchone(); "
        "writes: with conn: conn.execute(...) (implicit deferred BEGIN)"
    )
    package = "sqlite3"

    def thread_ops(self) -> Ops:
        return _connection_ops(stdlib_connect(self.path))


class _Checkout(System):
    """Checks a connection out for each operation through ``self.connection()``: a context
    manager (the sqlite3 systems), or with ``dbapi_pool`` a pool's DB-API connection, which
    ``close()`` gives back (``open`` sets ``self.connection`` to the pool's checkout)."""

    checkout = True
    dbapi_pool = False
    connection: Callable[[], Any]

    def thread_ops(self) -> Ops:
        return (_dbapi_pool_ops if self.dbapi_pool else _checkout_ops)(self.connection)

    def checkout_loop(self) -> Callable[[int], None]:
        return (_dbapi_checkout if self.dbapi_pool else _checkout_loop)(self.connection)


class Sqlite3OpenClose(_Checkout):
    name = "sqlite3-open-close"
    how = "stdlib sqlite3, a new connection (and its pragmas) for every operation"
    package = "sqlite3"

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = stdlib_connect(self.path)
        try:
            yield conn
        finally:
            conn.close()


class Sqlite3QueuePool(_Checkout):
    name = "sqlite3-queue"
    how = (
        f"hand-made pool: {POOL_SIZE} stdlib connections (check_same_thread=False) in a "
        "queue.Queue, get/put through a context manager; reads and writes share it"
    )
    package = "sqlite3"

    def open(self, path: str) -> None:
        self.conns = [stdlib_connect(path, check_same_thread=False) for _ in range(POOL_SIZE)]
        self.queue: queue.Queue[sqlite3.Connection] = queue.Queue()
        for conn in self.conns:
            self.queue.put(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.queue.get()
        try:
            yield conn
        finally:
            self.queue.put(conn)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _dbapi_pool_ops(connect: Callable[[], Any]) -> Ops:
    """Ops over a DB-API pool whose ``connect()`` returns a proxy with cursor/commit/rollback/
    close (``close`` returns it to the pool)."""

    def read(key: tuple[int]) -> object:
        conn = connect()
        try:
            cur = conn.cursor()
            cur.execute(SELECT, key)
            return cur.fetchone()
        finally:
            conn.close()

    def join(params: tuple[int, int]) -> object:
        conn = connect()
        try:
            cur = conn.cursor()
            cur.execute(JOIN, params)
            return cur.fetchall()
        finally:
            conn.close()

    def write(sql: str, params: tuple[Any, ...]) -> None:
        conn = connect()
        try:
            conn.cursor().execute(sql, params)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    return Ops(read, join, lambda row: write(INSERT, row), lambda key: write(UPDATE, key))


def _dbapi_checkout(connect: Callable[[], Any]) -> Callable[[int], None]:
    def loop(n: int) -> None:
        for _ in range(n):
            connect().close()

    return loop


class SQLAlchemyQueuePool(_Checkout):
    name = "sqlalchemy"
    how = (
        f"SQLAlchemy QueuePool(pool_size={POOL_SIZE}, max_overflow=0) over raw sqlite3 "
        "connections (no engine, no ORM): pool.connect(), cursor, commit, close"
    )
    package = "SQLAlchemy"
    dbapi_pool = True
    requires = ("sqlalchemy",)

    def open(self, path: str) -> None:
        from sqlalchemy.pool import QueuePool

        def creator() -> Any:
            return stdlib_connect(path, check_same_thread=False)

        self.pool = QueuePool(creator, pool_size=POOL_SIZE, max_overflow=0, timeout=30)
        self.connection = self.pool.connect

    def close(self) -> None:
        self.pool.dispose()


class DBUtilsPooledDB(_Checkout):
    name = "dbutils"
    how = (
        f"DBUtils PooledDB(sqlite3, maxconnections={POOL_SIZE}, blocking=True), pragmas as "
        "setsession: pool.connection(), cursor, commit, close"
    )
    package = "DBUtils"
    dbapi_pool = True
    requires = ("dbutils",)

    def open(self, path: str) -> None:
        from dbutils.pooled_db import PooledDB

        sizes = ("mincached", "maxcached", "maxconnections")
        self.pool = PooledDB(
            sqlite3,
            **dict.fromkeys(sizes, POOL_SIZE),
            blocking=True,
            setsession=connection_pragmas(),
            database=path,
            timeout=BUSY_TIMEOUT,
            check_same_thread=False,
        )
        self.connection = self.pool.connection

    def close(self) -> None:
        self.pool.close()


class ApswPerThread(System):
    name = "apsw"
    how = (
        "apsw, one persistent connection per thread (busy timeout 5 s); "
        "conn.execute(...).fetchone(); writes: with conn: conn.execute(...)"
    )
    package = "apsw"
    requires = ("apsw",)
    # apsw wheels link their own SQLite. Two copies of SQLite in one process must never open
    # the same file: POSIX locks belong to the process, and one copy closing its descriptor
    # drops the other's locks ("file is not a database" after a few rounds, seen here).
    private_database = True

    def keeper_connect(self, path: str) -> Any:
        import apsw

        conn = apsw.Connection(path)
        conn.setbusytimeout(int(BUSY_TIMEOUT * 1000))
        return conn

    @property
    def errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        import apsw

        return (apsw.BusyError, apsw.LockedError)

    def thread_ops(self) -> Ops:
        import apsw

        conn = apsw.Connection(self.path)
        conn.setbusytimeout(int(BUSY_TIMEOUT * 1000))
        for statement in connection_pragmas():
            conn.execute(statement).fetchall()
        return _connection_ops(conn)


# -- asyncio systems ------------------------------------------------------------------------------


async def _aiosqlite_connect(path: str) -> Any:
    import aiosqlite

    db = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT)
    await db.executescript(";".join(connection_pragmas()))
    return db


class FastpoolAsync(_FastpoolDatabase):
    name = "fastpool-async"
    kind = "async"
    how = (
        f"fastpool.AsyncPool(path, readers={POOL_SIZE}); await apool.fetchone(...); "
        "writes: async with apool.writer() as w: await w.execute(...)"
    )
    checkout = True
    errors = (fastpool.OperationalError,)
    package = "fastpool"

    def missing(self) -> str | None:
        if not hasattr(fastpool, "AsyncPool"):
            return "this fastpool has no AsyncPool yet"
        return None

    async def aopen(self, path: str) -> None:
        self.stack = contextlib.AsyncExitStack()
        pool = fastpool.AsyncPool(path, readers=POOL_SIZE, pragmas=dict(PRAGMAS))
        self.apool = await self.stack.enter_async_context(pool)

    async def async_ops(self) -> AsyncOps:
        fetchone, writer = self.apool.fetchone, self.apool.writer

        async def read(key: tuple[int]) -> object:
            return await fetchone(SELECT, key)

        async def insert(row: tuple[str, str, float]) -> None:
            async with writer() as w:
                await w.execute(INSERT, row)

        return AsyncOps(read, insert)

    def async_checkout_loop(self) -> Callable[[int], Awaitable[None]]:
        return _async_checkout_loop(self.apool.reader)

    async def aclose(self) -> None:
        await self.stack.aclose()


class AiosqliteShared(System):
    name = "aiosqlite"
    kind = "async"
    how = (
        "aiosqlite, one connection shared by all tasks (its own thread); "
        "await db.execute_fetchall(...); write transactions serialized by an asyncio.Lock"
    )
    package = "aiosqlite"
    requires = ("aiosqlite",)

    async def aopen(self, path: str) -> None:
        self.db = await _aiosqlite_connect(path)
        self.lock = asyncio.Lock()

    async def async_ops(self) -> AsyncOps:
        db, lock = self.db, self.lock

        async def read(key: tuple[int]) -> object:
            rows = await db.execute_fetchall(SELECT, key)
            return rows[0] if rows else None

        async def insert(row: tuple[str, str, float]) -> None:
            # One connection is one transaction: without the lock, one task's COMMIT would
            # commit another task's half-done transaction.
            async with lock:
                try:
                    await db.execute(INSERT, row)
                    await db.commit()
                except BaseException:
                    await db.rollback()
                    raise

        return AsyncOps(read, insert)

    async def aclose(self) -> None:
        await self.db.close()


class AiosqlitePerOp(System):
    name = "aiosqlite-per-op"
    kind = "async"
    how = "aiosqlite, a new connection (its own thread, its pragmas) for every operation"
    checkout = True
    package = "aiosqlite"
    requires = ("aiosqlite",)

    async def async_ops(self) -> AsyncOps:
        path = self.path

        async def read(key: tuple[int]) -> object:
            db = await _aiosqlite_connect(path)
            try:
                rows = await db.execute_fetchall(SELECT, key)
                return rows[0] if rows else None
            finally:
                await db.close()

        async def insert(row: tuple[str, str, float]) -> None:
            db = await _aiosqlite_connect(path)
            try:
                await db.execute(INSERT, row)
                await db.commit()
            finally:
                await db.close()

        return AsyncOps(read, insert)

    def async_checkout_loop(self) -> Callable[[int], Awaitable[None]]:
        path = self.path

        async def loop(n: int) -> None:
            for _ in range(n):
                db = await _aiosqlite_connect(path)
                await db.close()

        return loop


class Aiosqlitepool(System):
    name = "aiosqlitepool"
    kind = "async"
    how = (
        f"aiosqlitepool SQLiteConnectionPool(pool_size={AIOSQLITEPOOL_SIZE}) of aiosqlite "
        "connections: async with pool.connection() as db: await db.execute_fetchall(...)"
    )
    checkout = True
    package = "aiosqlitepool"
    requires = ("aiosqlite", "aiosqlitepool")

    async def aopen(self, path: str) -> None:
        from aiosqlitepool import SQLiteConnectionPool

        self.pool = SQLiteConnectionPool(
            lambda: _aiosqlite_connect(path), pool_size=AIOSQLITEPOOL_SIZE
        )

    async def async_ops(self) -> AsyncOps:
        connection = self.pool.connection

        async def read(key: tuple[int]) -> object:
            async with connection() as db:
                rows = await db.execute_fetchall(SELECT, key)
                return rows[0] if rows else None

        async def insert(row: tuple[str, str, float]) -> None:
            async with connection() as db:
                await db.execute(INSERT, row)
                await db.commit()

        return AsyncOps(read, insert)

    def async_checkout_loop(self) -> Callable[[int], Awaitable[None]]:
        return _async_checkout_loop(self.pool.connection)

    async def aclose(self) -> None:
        await self.pool.close()


#: Every system, in the order of the report's columns.
SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (
        FastpoolSync,
        FastpoolLease,
        Sqlite3PerThread,
        Sqlite3OpenClose,
        Sqlite3QueuePool,
        SQLAlchemyQueuePool,
        DBUtilsPooledDB,
        ApswPerThread,
        FastpoolAsync,
        AiosqliteShared,
        AiosqlitePerOp,
        Aiosqlitepool,
    )
}
