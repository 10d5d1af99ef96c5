"""The DB-API module object the dialects hand SQLAlchemy (``dialect.dbapi``).

Its exception classes are fastpool's own (``fastpool.errors``), the ones the connections
raise, so SQLAlchemy wraps every error into the matching ``sqlalchemy.exc`` class.
"""

from __future__ import annotations

from typing import Any

from fastpool import dbapi, errors
from fastpool.sqlalchemy._adapter import AdaptedConnection, AsyncAdaptedConnection, await_fn

__all__ = ["DBAPIModule"]


class DBAPIModule:
    """PEP 249's module surface for ``sqlite+fastpool`` (blocking) or its async flavour."""

    apilevel = "2.0"
    threadsafety = 1
    paramstyle = "qmark"
    sqlite_version = dbapi.sqlite_version
    sqlite_version_info = dbapi.sqlite_version_info
    PARSE_DECLTYPES = dbapi.PARSE_DECLTYPES
    PARSE_COLNAMES = dbapi.PARSE_COLNAMES
    # The pool binds bytes; SQLAlchemy wraps LargeBinary values in this.
    Binary = bytes

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def connect(self, database: str, **kwargs: Any) -> AdaptedConnection:
        """A connection whose transactions run on a pool opened with ``kwargs``.

        ``kwargs`` are ``fastpool.Pool``'s keywords (``readers``, ``pragmas``,
        ``on_connect``, ...) plus pysqlite's, which SQLAlchemy may pass (``timeout`` becomes
        ``busy_timeout``; ``check_same_thread`` and ``uri`` do not apply).
        """
        if self.is_async:
            return AsyncAdaptedConnection(database, kwargs, await_fn())
        return AdaptedConnection(database, kwargs)
