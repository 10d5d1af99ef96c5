"""fastpool: a fast, safe SQLite connection pool for threaded and asyncio Python services."""

from fastpool import errors as _errors
from fastpool._core import (
    Connection,
    Cursor,
    Lease,
    Row,
    Transaction,
    sqlite_compile_options,
    sqlite_version,
)
from fastpool.dbapi import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    apilevel,
    connect,
    install_as_sqlite3,
    paramstyle,
    threadsafety,
)
from fastpool.errors import *  # noqa: F403  (every name in errors.__all__, re-exported below)
from fastpool.pool import Pool
from fastpool.pool_async import AsyncCursor, AsyncLease, AsyncPool

__version__ = "0.1.0"

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "AsyncCursor",
    "AsyncLease",
    "AsyncPool",
    "Binary",
    "Connection",
    "Cursor",
    "Date",
    "DateFromTicks",
    "Lease",
    "Pool",
    "Row",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Transaction",
    "__version__",
    "apilevel",
    "connect",
    "install_as_sqlite3",
    "paramstyle",
    "sqlite_compile_options",
    "sqlite_version",
    "threadsafety",
]
# The exception classes (and sqlite_errorname, error_for_code): one list, in errors.py.
__all__ += _errors.__all__
