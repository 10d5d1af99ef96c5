"""The constructors and type objects of ``fastpool.dbapi`` (PEP 249) and the default date and
datetime adapters and converters of the stdlib ``sqlite3`` module."""

from __future__ import annotations

import datetime
import sys
import time
import warnings
from typing import Any

from fastpool._core import register_adapter, register_converter

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "DBAPITypeObject",
    "Date",
    "DateFromTicks",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
]

# -- constructors and the default adapters and converters, as in the stdlib.

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = memoryview


def DateFromTicks(ticks: float) -> datetime.date:
    """The local date at ``ticks`` seconds since the epoch."""
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    """The local time of day at ``ticks`` seconds since the epoch."""
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    """The local date and time at ``ticks`` seconds since the epoch."""
    return Timestamp(*time.localtime(ticks)[:6])


def _deprecated_default(what: str) -> None:
    # Python 3.12 deprecated the default adapters and converters; warn where it does.
    if sys.version_info >= (3, 12):
        warnings.warn(
            f"The default {what} is deprecated as of Python 3.12; see the sqlite3 "
            f"documentation for suggested replacement recipes",
            DeprecationWarning,
            stacklevel=3,
        )


def _adapt_date(value: datetime.date) -> str:
    _deprecated_default("date adapter")
    return value.isoformat()


def _adapt_datetime(value: datetime.datetime) -> str:
    _deprecated_default("datetime adapter")
    return value.isoformat(" ")


def _convert_date(value: bytes) -> datetime.date:
    _deprecated_default("date converter")
    year, month, day = (int(part) for part in value.split(b"-"))
    return datetime.date(year, month, day)


def _convert_timestamp(value: bytes) -> datetime.datetime:
    _deprecated_default("timestamp converter")
    day_part, _, time_part = value.partition(b" ")
    year, month, day = (int(part) for part in day_part.split(b"-"))
    clock, _, fraction = time_part.partition(b".")
    hours, minutes, seconds = (int(part) for part in clock.split(b":"))
    micro = int(fraction.decode().ljust(6, "0")[:6]) if fraction else 0
    return datetime.datetime(year, month, day, hours, minutes, seconds, micro)


def register_defaults() -> None:
    """Register the default adapters (date, datetime) and converters (date, timestamp)."""
    register_adapter(datetime.date, _adapt_date)
    register_adapter(datetime.datetime, _adapt_datetime)
    register_converter("date", _convert_date)
    register_converter("timestamp", _convert_timestamp)


# -- type objects (PEP 249; a fastpool addition: the stdlib has none). A column's declared
#    type compares equal to them by SQLite's type affinity rules.


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
