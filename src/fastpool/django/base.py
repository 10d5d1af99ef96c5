"""``DatabaseWrapper`` for ``"ENGINE": "fastpool.django"``: Django's SQLite backend on
``fastpool.dbapi`` connections from a process-wide pool (docs/django.md).

Everything Django's own SQLite backend does stays (features, operations, introspection, the
schema editor, SQL functions); what changes is the connection under it:

- it is a ``fastpool.dbapi`` connection, so an ``atomic()`` block's ``BEGIN`` is ``BEGIN
  IMMEDIATE`` and waits in the process's FIFO queue of writers of that file (asleep, without
  the GIL) instead of failing with "database is locked" when it reads and then writes;
- it comes from a pool of such connections, one per database and process, and goes back to
  it when Django closes it;
- it opens with production pragmas (WAL, ``synchronous=normal``, ``journal_size_limit``,
  ``mmap_size``), and queries keep the GIL while SQLite runs briefly.
"""

from __future__ import annotations

import datetime
import decimal
import weakref
from collections.abc import Iterable, Mapping
from itertools import tee
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base as stock
from django.db.backends.sqlite3._functions import register as register_functions
from django.utils.asyncio import async_unsafe
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from fastpool import dbapi
from fastpool.django.client import DatabaseClient
from fastpool.django.creation import DatabaseCreation
from fastpool.django.pool import ConnectionPool, pool_for

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_PRAGMAS", "CursorWrapper", "DatabaseWrapper"]

#: Pragmas every pooled connection opens with; OPTIONS["pragmas"] adds to or overrides them.
DEFAULT_PRAGMAS: dict[str, object] = {
    "journal_mode": "wal",  # readers never wait for the writer, nor it for them
    "synchronous": "normal",  # in WAL: durable across crashes of the process, fsync per checkpoint
    "journal_size_limit": 64 * 1024 * 1024,  # the -wal file shrinks back after a burst
    "mmap_size": 128 * 1024 * 1024,  # reads copy less; the file's first 128 MiB
}

# The converters and adapters Django registers on the stdlib module, on fastpool's (they are
# module-wide registries there too; the functions are Django's own).
for _decltype, _convert in (
    ("bool", b"1".__eq__),
    ("date", stock.decoder(parse_date)),
    ("time", stock.decoder(parse_time)),
    ("datetime", stock.decoder(parse_datetime)),
    ("timestamp", stock.decoder(parse_datetime)),
):
    dbapi.register_converter(_decltype, _convert)
dbapi.register_adapter(decimal.Decimal, str)
dbapi.register_adapter(datetime.date, stock.adapt_date)
dbapi.register_adapter(datetime.datetime, stock.adapt_datetime)


class CursorWrapper(dbapi.Cursor):
    """A ``fastpool.dbapi`` cursor taking Django's ``%s`` and ``%(name)s`` placeholders."""

    def execute(self, sql: str, parameters: Any = None, /) -> Self:
        """Run ``sql`` with Django's placeholders converted to SQLite's."""
        if parameters is None:
            return super().execute(sql)
        names = list(parameters) if isinstance(parameters, Mapping) else None
        return super().execute(_convert_query(sql, names), parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        """Run ``sql`` once per parameter set, placeholders converted as in ``execute``."""
        peek, seq_of_parameters = tee(iter(seq_of_parameters))
        first = next(peek, None)
        names = list(first) if first and isinstance(first, Mapping) else None
        return super().executemany(_convert_query(sql, names), seq_of_parameters)


# Converted SQL by (Django's SQL, placeholder names): an ORM runs the same few hundred
# statements over and over, so the regular expression runs once per statement text.
_CONVERTED: dict[tuple[str, tuple[str, ...] | None], str] = {}
_CONVERTED_MAX = 2048


def _convert_query(sql: str, names: list[str] | None) -> str:
    key = (sql, None if names is None else tuple(names))
    converted = _CONVERTED.get(key)
    if converted is None:
        # Django's stock cursor holds the conversion; it uses nothing of its cursor but the
        # text.
        converted = stock.SQLiteCursorWrapper.convert_query(None, sql, param_names=names)
        if len(_CONVERTED) >= _CONVERTED_MAX:
            _CONVERTED.clear()  # statements built from data (IN lists of any length)
        _CONVERTED[key] = converted
    return converted


class DatabaseWrapper(stock.DatabaseWrapper):  # type: ignore[misc]  # Django ships no types
    """Django's SQLite ``DatabaseWrapper`` whose connections are pooled ``fastpool.dbapi``
    connections (module docstring; settings in docs/django.md)."""

    Database = dbapi
    client_class = DatabaseClient
    creation_class = DatabaseCreation

    pool: ConnectionPool | None = None
    cursors: weakref.WeakSet[CursorWrapper]
    max_idle = 8
    max_lifetime: float | None = None

    def get_connection_params(self) -> dict[str, Any]:
        """The stock backend's parameters, plus the pool's options and pragma defaults.

        OPTIONS: ``pragmas`` (merged over ``DEFAULT_PRAGMAS``), ``max_idle`` (connections kept
        open between uses, default 8), ``max_lifetime`` (seconds; default None, for ever),
        ``timeout`` (seconds a writer waits for its turn, and for other processes' locks:
        5), ``transaction_mode`` (default: None, which is ``IMMEDIATE`` here), ``init_command``
        and any other ``fastpool.dbapi.connect()`` keyword.
        """
        params: dict[str, Any] = super().get_connection_params()
        self.max_idle = _count(params.pop("max_idle", 8), "max_idle")
        self.max_lifetime = _seconds(params.pop("max_lifetime", None), "max_lifetime")
        pragmas = params.pop("pragmas", None) or {}
        if not isinstance(pragmas, dict):
            raise ImproperlyConfigured("OPTIONS['pragmas'] must be a dict of name to value")
        defaults = dict(DEFAULT_PRAGMAS)
        if self.is_in_memory_db():
            del defaults["journal_mode"], defaults["mmap_size"]  # memory has neither
        params["pragmas"] = {**defaults, **pragmas}
        params["database"] = str(params["database"])
        return params

    @async_unsafe  # type: ignore[untyped-decorator]  # Django ships no types
    def get_new_connection(self, conn_params: dict[str, Any]) -> dbapi.Connection:
        """A connection from this database's pool, with Django's per-connection settings."""
        self.pool = pool_for(
            conn_params,
            max_idle=self.max_idle,
            max_lifetime=self.max_lifetime,
            prepare=register_functions,
        )
        conn = self.pool.take()
        self.cursors = weakref.WeakSet()
        try:
            # Reset what a previous user may have changed (disable_constraint_checking), as
            # a new stock connection would start.
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA legacy_alter_table = OFF")
            for command in self.init_commands:
                if command := command.strip():
                    conn.execute(command)
        except BaseException:
            conn.close()  # a failing init_command: the connection is in an unknown state
            raise
        return conn

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        """A cursor taking Django's placeholders."""
        cursor: CursorWrapper = self.connection.cursor(factory=CursorWrapper)
        self.cursors.add(cursor)
        return cursor

    def _close(self) -> None:
        # Back to the pool instead of closed. Closed inside an atomic block, it is really
        # closed: Django keeps the wrapper's reference until the block exits.
        conn = self.connection
        if conn is None:
            return
        with self.wrap_database_errors:
            if self.in_atomic_block or self.pool is None:
                conn.close()
                return
            # A cursor left unfinished (a half-read .iterator()) keeps its statement, and so a
            # read snapshot, open: the next user of the connection would see old data.
            for cursor in list(self.cursors):
                try:
                    cursor.close()
                except dbapi.Error:
                    pass  # closed underneath: give_back() closes the connection for good
            self.pool.give_back(conn)

    def is_usable(self) -> bool:
        """Whether the connection still answers (``CONN_HEALTH_CHECKS`` asks this)."""
        try:
            self.connection.execute("SELECT 1").fetchone()
        except dbapi.Error:
            return False
        return True


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be an int >= 0, not {value!r}")
    return value


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be seconds > 0 or None, not {value!r}")
    return float(value)
