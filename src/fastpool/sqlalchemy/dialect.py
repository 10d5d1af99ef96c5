"""The ``sqlite+fastpool`` and ``sqlite+fastpool_async`` dialects (docs/sqlalchemy.md).

Both are SQLAlchemy's pysqlite dialect (its SQL compilation, types and reflection) with the
DB-API underneath replaced: transactions run on a fastpool pool's leases (``_adapter.py``),
pooled by ``FastpoolPool``. The execution option ``fastpool_readonly=True`` sends the
transaction a statement opens to a reader; everything else goes to the one writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import util
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL

from fastpool import errors
from fastpool.sqlalchemy._module import DBAPIModule
from fastpool.sqlalchemy._pool import FastpoolPool

__all__ = ["READONLY", "FastpoolAsyncDialect", "FastpoolDialect"]

#: The execution option that sends a transaction to a reader.
READONLY = "fastpool_readonly"

# The pool's options a URL's query string may carry, and how to read each.
_URL_OPTIONS: dict[str, Any] = {
    "readers": int,
    "statement_cache_size": int,
    "min_readers": int,
    "acquisition_timeout": float,
    "fifo_after": float,
    "max_lifetime": float,
    "idle_timeout": float,
    "debug": util.asbool,
    "writer_lock": util.asbool,
    "defensive": util.asbool,
}

# Messages of errors that mean the connection under a handle is gone for good.
_GONE = ("this connection is discarded", "the connection is closed", "closed database")


def _nothing(dbapi_connection: Any) -> None:
    """The per-handle set-up: none (see ``FastpoolDialect.on_connect``)."""


class FastpoolDialect(SQLiteDialect_pysqlite):
    """``sqlite+fastpool://``: SQLAlchemy's SQLite dialect on a ``fastpool.Pool``."""

    driver = "fastpool"
    supports_statement_cache = True
    # Pool errors have no PEP 249 class of their own: they arrive as OperationalError.
    dbapi_exception_translation_map = {  # noqa: RUF012 (SQLAlchemy declares it so)
        "PoolTimeout": "OperationalError",
        "PoolClosed": "OperationalError",
        "PoolError": "OperationalError",
    }

    @classmethod
    def import_dbapi(cls) -> Any:
        """The module object whose ``connect`` and exception classes the engine uses."""
        return DBAPIModule(is_async=False)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[FastpoolPool]:
        """Always fastpool's: the pool behind the engine is a fastpool pool."""
        return FastpoolPool

    def create_connect_args(self, url: URL) -> Any:
        """pysqlite's file name and options, plus the pool options in the query string."""
        ours = {k: conv(url.query[k]) for k, conv in _URL_OPTIONS.items() if k in url.query}
        args, opts = super().create_connect_args(url.difference_update_query(list(ours)))
        opts.update(ours)
        return args, opts

    def on_connect(self) -> Callable[[Any], None]:
        """Nothing per handle: ``regexp`` and ``floor`` are registered on each pool connection."""
        return _nothing

    # -- isolation: per handle, not per SQLite connection --------------------------------

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        """``AUTOCOMMIT``: statements outside transactions; otherwise transactions."""
        conn = dbapi_connection
        if level == "AUTOCOMMIT":
            conn.isolation_level = None
        else:
            conn.isolation_level = ""
            conn.level_name = level
        # A pending route belongs to the transaction this change ends.
        conn.readonly_hint = False

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        """The level last set (SQLite transactions are serializable in WAL mode)."""
        if dbapi_connection.isolation_level is None:
            return "AUTOCOMMIT"
        return dbapi_connection.level_name

    # -- routing: the option reaches the handle before the statement that opens a lease --

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        """Run a statement, noting whether its transaction may run on a reader."""
        if context is not None:
            cursor.connection.readonly_hint = bool(context.execution_options.get(READONLY))
        cursor.execute(statement, parameters)

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        """As ``do_execute``, without parameters."""
        if context is not None:
            cursor.connection.readonly_hint = bool(context.execution_options.get(READONLY))
        cursor.execute(statement)

    def do_executemany(
        self, cursor: Any, statement: str, parameters: Any, context: Any = None
    ) -> None:
        """As ``do_execute``, once per parameter set."""
        if context is not None:
            cursor.connection.readonly_hint = bool(context.execution_options.get(READONLY))
        cursor.executemany(statement, parameters)

    # -- broken connections --------------------------------------------------------------

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        """True when the pool is closed or the connection under the handle was discarded."""
        if isinstance(e, errors.PoolClosed):
            return True
        if isinstance(e, (errors.InterfaceError, errors.DatabaseError)):
            message = str(e)
            return any(text in message for text in _GONE)
        return False

    def do_ping(self, dbapi_connection: Any) -> bool:
        """Check the handle and its pool without taking a connection from it."""
        dbapi_connection.ping()
        return True


class _AsyncExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # AsyncConnection.stream() needs one; the rows come buffered, as from any cursor here.
        return self._dbapi_connection.cursor(server_side=True)


class FastpoolAsyncDialect(FastpoolDialect):
    """``sqlite+fastpool_async://``: the same on a ``fastpool.AsyncPool``."""

    driver = "fastpool_async"
    is_async = True
    has_terminate = True
    supports_statement_cache = True
    # For AsyncConnection.stream(); the rows are fetched when the statement runs.
    supports_server_side_cursors = True
    execution_ctx_cls = _AsyncExecutionContext

    @classmethod
    def import_dbapi(cls) -> Any:
        """The async flavour's module object."""
        return DBAPIModule(is_async=True)

    def get_driver_connection(self, connection: Any) -> Any:
        """The AsyncPool behind the handle."""
        return connection.driver_connection

    def do_terminate(self, dbapi_connection: Any) -> None:
        """Give the handle's lease back without awaiting (cancellation, garbage collection)."""
        dbapi_connection.terminate()


dialect = FastpoolDialect
