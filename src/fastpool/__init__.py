"""fastpool: a fast, safe SQLite connection pool for threaded and asyncio Python services."""

from fastpool import dbapi as _dbapi
from fastpool._core import (
    Connection,
    Cursor,
    Lease,
    Row,
    Transaction,
    sqlite_compile_options,
    sqlite_version,
)
from fastpool.dbapi import *  # noqa: F403  (PEP 249's names, re-exported below)
from fastpool.errors import *  # noqa: F403  (dbapi's too; imported here for type checkers)
from fastpool.pool import Pool
from fastpool.pool_async import AsyncCursor, AsyncLease, AsyncPool

__version__ = "0.1.0"

__all__ = [
    "AsyncCursor",
    "AsyncLease",
    "AsyncPool",
    "Connection",
    "Cursor",
    "Lease",
    "Pool",
    "Row",
    "Transaction",
    "__version__",
    "sqlite_compile_options",
    "sqlite_version",
]
# PEP 249's names, with the exception classes (and sqlite_errorname, error_for_code) of
# errors.__all__: one list, in dbapi.py.
__all__ += _dbapi.__all__
