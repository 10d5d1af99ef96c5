"""SQLAlchemy on fastpool: the ``sqlite+fastpool`` and ``sqlite+fastpool_async`` dialects.

Registered through the ``sqlalchemy.dialects`` entry points (``pip install
fastpool[sqlalchemy]``), so ``create_engine("sqlite+fastpool:///app.db")`` finds them. Write
transactions go to the pool's one writer (``BEGIN IMMEDIATE``, FIFO); a transaction opened
with the execution option ``fastpool_readonly=True`` (see ``readonly()``) runs on a reader.
See docs/sqlalchemy.md.
"""

from __future__ import annotations

from typing import TypeVar

from fastpool.sqlalchemy._pool import FastpoolPool
from fastpool.sqlalchemy.dialect import READONLY, FastpoolAsyncDialect, FastpoolDialect

__all__ = ["READONLY", "FastpoolAsyncDialect", "FastpoolDialect", "FastpoolPool", "readonly"]

_E = TypeVar("_E")


def readonly(engine: _E) -> _E:
    """``engine`` (an ``Engine`` or ``AsyncEngine``) whose transactions run on readers.

    The same pool, with the execution option ``fastpool_readonly=True``: bind a read-only
    ``sessionmaker`` to it. A write in such a transaction fails (``OperationalError``,
    "attempt to write a readonly database").
    """
    return engine.execution_options(**{READONLY: True})  # type: ignore[attr-defined,no-any-return]
