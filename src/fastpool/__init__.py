"""fastpool: a fast, safe SQLite connection pool for threaded and asyncio Python services."""

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
from fastpool.errors import *  # the whole hierarchy, named in __all__ below
from fastpool.pool import Pool
from fastpool.pool_async import AsyncCursor, AsyncLease, AsyncPool
from fastpool.replica import AsyncReplicaPool, ReplicaPool, litestream_position

# The package's version, and its only source: pyproject.toml reads it from here (setuptools'
# attr:, without importing the package), so the installed metadata always matches.
__version__ = "0.1.0"

# Grouped by what they are, PEP 249's names in PEP 249's order.
__all__ = [
    # pools and what they lend
    "Pool",
    "AsyncPool",
    "ReplicaPool",
    "AsyncReplicaPool",
    "litestream_position",
    "Lease",
    "AsyncLease",
    "AsyncCursor",
    "Transaction",
    # connections, cursors and rows (PEP 249's through connect())
    "connect",
    "Connection",
    "Cursor",
    "Row",
    "install_as_sqlite3",
    # PEP 249 module globals, constructors and type objects
    "apilevel",
    "threadsafety",
    "paramstyle",
    "Date",
    "Time",
    "Timestamp",
    "DateFromTicks",
    "TimeFromTicks",
    "TimestampFromTicks",
    "Binary",
    "STRING",
    "BINARY",
    "NUMBER",
    "DATETIME",
    "ROWID",
    # PEP 249's exceptions, then fastpool's own
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "ReplicaReadOnlyError",
    "BusyError",
    "DiskFullError",
    "SQLiteCopyError",
    "PoolError",
    "PoolTimeout",
    "PoolClosed",
    # the SQLite library and this package
    "sqlite_version",
    "sqlite_compile_options",
    "__version__",
]
