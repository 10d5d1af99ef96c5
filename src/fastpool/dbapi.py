"""PEP 249 (DB-API 2.0): ``fastpool.connect()``, the module globals, type objects and
constructors.

A connection from ``connect()`` is a ``fastpool.Connection`` in PEP 249 mode: a transaction
opens before the first statement and lasts until ``commit()`` or ``rollback()``. The one
place this departs from the stdlib ``sqlite3`` module: when the statement that opens the
transaction writes, fastpool begins it with ``BEGIN IMMEDIATE`` (sqlite3 uses a deferred
``BEGIN``), which takes the write lock up front, so the transaction cannot fail later with
"database is locked" when its lock would have to be upgraded. (Queries open a deferred
transaction, so a read-only connection never takes the write lock; like Python 3.12's
``autocommit=False``, and unlike sqlite3's default mode, queries are inside the transaction
too, so they all see one snapshot until ``commit()``.)
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import warnings
from typing import Any

from fastpool._core import Connection
from fastpool._core import sqlite_version as _sqlite_version
from fastpool._options import connect_options
from fastpool.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "connect",
    "install_as_sqlite3",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
]

apilevel = "2.0"
#: Threads may share the module, not connections (a pool hands each thread its own).
threadsafety = 1
#: ``?`` placeholders with a sequence; ``:name`` placeholders with a mapping work too.
paramstyle = "qmark"
#: The SQLite library fastpool runs on, as in the stdlib ``sqlite3`` module.
sqlite_version: str = _sqlite_version()
sqlite_version_info: tuple[int, int, int] = tuple(  # type: ignore[assignment]
    int(part) for part in sqlite_version.split(".")[:3]
)


def connect(
    database: str | os.PathLike[str] | bytes,
    *,
    readonly: bool = False,
    pragmas: dict[str, object] | None = None,
    statement_cache_size: int = 128,
    row_factory: type | None = None,
    defensive: bool = True,
    timeout: float | None = None,
) -> Connection:
    """Open one DB-API 2.0 connection (for a pool of them, use ``fastpool.Pool``).

    Args:
        database: file path, ``file:`` URI, or ``":memory:"``.
        readonly: open the database read-only.
        pragmas: merged over the pool's defaults (``journal_mode=wal``,
            ``synchronous=normal``, ``foreign_keys=on``, ``busy_timeout=5000``, ...).
        statement_cache_size: prepared statements kept (0 disables the cache).
        row_factory: None for tuples, or ``fastpool.Row``.
        defensive: SQLite's defensive mode, as for ``fastpool.Pool`` (False turns it off).
        timeout: seconds to wait for another connection's lock, as in ``sqlite3.connect``
            (the same as ``pragmas={"busy_timeout": ms}``; default 5 s).

    ``journal_mode=wal`` that SQLite does not apply (a ``nolock=1`` or ``vfs=`` URI whose VFS
    has no shared memory) raises NotSupportedError.

    Transactions open implicitly before the first statement and end with ``commit()`` or
    ``rollback()``; ``executescript()`` runs its script as written.
    """
    if timeout is not None:
        pragmas = _with_timeout(pragmas, timeout)
    opts = connect_options(database, pragmas, defensive)
    return Connection(
        opts.path,
        readonly=readonly,
        pragmas=opts.pragmas,
        statement_cache_size=statement_cache_size,
        busy_timeout=opts.busy_timeout,
        autocheckpoint=opts.autocheckpoint,
        row_factory=row_factory,
        autocommit=False,
        defensive=opts.defensive,
    )


def _with_timeout(pragmas: dict[str, object] | None, timeout: object) -> dict[str, object]:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not 0 <= timeout <= 2_000_000:
        raise ValueError(f"timeout must be between 0 and 2000000 seconds, not {timeout!r}")
    if pragmas is not None and "busy_timeout" in pragmas:
        raise ValueError("give the busy timeout once: timeout= or pragmas['busy_timeout']")
    return {**(pragmas or {}), "busy_timeout": int(timeout * 1000)}


def install_as_sqlite3() -> None:
    """Make ``import sqlite3`` anywhere in this process give this module.

    Call it first thing in the program, before anything imports ``sqlite3``: libraries
    written for the stdlib (migration tools, health checks, ``dbm.sqlite3``) then open their
    files with fastpool's SQLite, so the process has one SQLite library. Two copies must not
    share a file in one process (docs/sqlite-build.md): a wheel of fastpool bundles its own,
    and fastpool refuses the stdlib's copy on a file it holds (``SQLiteCopyError``). Modules
    that imported ``sqlite3`` before the call keep the stdlib's (a RuntimeWarning says so).
    Where this module still differs from the stdlib's: docs/migrating.md.
    """
    this = sys.modules[__name__]
    current = sys.modules.get("sqlite3")
    if current is not None and current is not this:
        warnings.warn(
            "fastpool.install_as_sqlite3(): sqlite3 was already imported; modules that hold it "
            "keep the stdlib's SQLite. Call install_as_sqlite3() before anything imports sqlite3",
            RuntimeWarning,
            stacklevel=2,
        )
    sys.modules["sqlite3"] = this
    sys.modules["sqlite3.dbapi2"] = this


# -- constructors: SQLite stores dates and times as ISO 8601 text, which its date and time
#    functions read, so that is the value these make.


def Date(year: int, month: int, day: int) -> str:
    """A date value: ``"YYYY-MM-DD"``."""
    return datetime.date(year, month, day).isoformat()


def Time(hour: int, minute: int, second: int) -> str:
    """A time value: ``"HH:MM:SS"``."""
    return datetime.time(hour, minute, second).isoformat()


def Timestamp(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    """A timestamp value: ``"YYYY-MM-DD HH:MM:SS"``."""
    return datetime.datetime(year, month, day, hour, minute, second).isoformat(" ")


def DateFromTicks(ticks: float) -> str:
    """The local date at ``ticks`` seconds since the epoch."""
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> str:
    """The local time of day at ``ticks`` seconds since the epoch."""
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> str:
    """The local date and time at ``ticks`` seconds since the epoch."""
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(data: bytes | bytearray | memoryview) -> bytes:
    """A BLOB value."""
    return bytes(data)


# -- type objects: a cursor's description gives each column's declared type as its
#    type_code, and these compare equal to it by SQLite's type affinity rules.


class DBAPITypeObject:
    """Compares equal to the declared column types of one kind (PEP 249 type object)."""

    def __init__(self, name: str, matches: Any) -> None:
        self._name = name
        self._matches = matches

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        return isinstance(other, str) and bool(self._matches(other.upper()))

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f"fastpool.{self._name}"


def _affinity(decltype: str) -> str:
    # SQLite's rules (https://sqlite.org/datatype3.html, 3.1), in their order.
    if "INT" in decltype:
        return "INTEGER"
    if "CHAR" in decltype or "CLOB" in decltype or "TEXT" in decltype:
        return "TEXT"
    if "BLOB" in decltype or not decltype:
        return "BLOB"
    if "REAL" in decltype or "FLOA" in decltype or "DOUB" in decltype:
        return "REAL"
    return "NUMERIC"


STRING = DBAPITypeObject("STRING", lambda t: _affinity(t) == "TEXT")
BINARY = DBAPITypeObject("BINARY", lambda t: _affinity(t) == "BLOB")
NUMBER = DBAPITypeObject("NUMBER", lambda t: _affinity(t) in ("INTEGER", "REAL", "NUMERIC"))
DATETIME = DBAPITypeObject("DATETIME", lambda t: "DATE" in t or "TIME" in t)
ROWID = DBAPITypeObject("ROWID", lambda t: t == "INTEGER")
