"""The ORM's ceiling: SQLAlchemy dialects whose driver answers the benchmark's query for free.

``sqlite+orm_ceiling://`` and ``sqlite+orm_ceiling_async://`` are fastpool's dialects except
for one statement: ``session.get(Item, key)``'s SELECT gets the row the database holds
(bench_sqlalchemy's ``make_engine`` data) without running anything. SQLAlchemy still does all
of its own work: the session and its transaction, the identity map, the statement's cache key,
the execution context, the result and the object. So what this contestant reaches is what the
ORM alone reaches on this machine: no driver, blocking or async, can go faster, since the ORM's
Python runs holding the GIL (threads) or on the event loop's thread (tasks), whatever the
driver does elsewhere. The benchmarks run it beside the real contestants, in the same rounds,
to show where a target sits against that ceiling.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import registry

from fastpool.sqlalchemy._adapter import (
    AdaptedConnection,
    AdaptedCursor,
    AsyncAdaptedConnection,
    await_fn,
)
from fastpool.sqlalchemy._module import DBAPIModule
from fastpool.sqlalchemy.dialect import FastpoolAsyncDialect, FastpoolDialect

URL = "sqlite+orm_ceiling"
ASYNC_URL = "sqlite+orm_ceiling_async"

# The statement session.get(Item, key) compiles to on SQLite, and its columns.
_GET = "SELECT item.id, item.name, item.score \nFROM item \nWHERE item.id = ?"
_DESCRIPTION = tuple((name, None, None, None, None, None, None) for name in ("id", "name", "score"))


class _FreeGet:
    # Answers _GET as the benchmark's database would, running nothing; the rest as usual.
    def _run(self, cur: AdaptedCursor, sql: str, params: Any, many: bool) -> None:
        if sql == _GET:
            key = params[0]
            cur._take(_DESCRIPTION, [(key, f"n{key}", key / 3)], -1, 0)
            return
        super()._run(cur, sql, params, many)  # type: ignore[misc]


class CeilingConnection(_FreeGet, AdaptedConnection):
    pass


class CeilingAsyncConnection(_FreeGet, AsyncAdaptedConnection):
    pass


class _CeilingModule(DBAPIModule):
    def connect(self, database: str, **kwargs: Any) -> AdaptedConnection:
        if self.is_async:
            return CeilingAsyncConnection(database, kwargs, await_fn())
        return CeilingConnection(database, kwargs)


class _CeilingDriver:
    is_async: bool

    @classmethod
    def import_dbapi(cls) -> Any:
        return _CeilingModule(is_async=cls.is_async)


# SQLAlchemy reads supports_statement_cache from each dialect class's own attributes.
class CeilingDialect(_CeilingDriver, FastpoolDialect):
    driver = "orm_ceiling"
    supports_statement_cache = True


class CeilingAsyncDialect(_CeilingDriver, FastpoolAsyncDialect):
    driver = "orm_ceiling_async"
    supports_statement_cache = True


registry.register("sqlite.orm_ceiling", __name__, "CeilingDialect")
registry.register("sqlite.orm_ceiling_async", __name__, "CeilingAsyncDialect")
