"""fastpool: a fast, safe SQLite connection pool for threaded and asyncio Python services."""

from fastpool._core import Connection, Cursor, Lease, Row, Transaction, sqlite_version
from fastpool.errors import (
    BusyError,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PoolClosed,
    PoolError,
    PoolTimeout,
    ProgrammingError,
    Warning,
)
from fastpool.pool import Pool

__version__ = "0.1.0"

__all__ = [
    "BusyError",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "Lease",
    "NotSupportedError",
    "OperationalError",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "ProgrammingError",
    "Row",
    "Transaction",
    "Warning",
    "__version__",
    "sqlite_version",
]
