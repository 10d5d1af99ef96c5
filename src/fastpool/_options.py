"""Validation and defaults for the pool's arguments, done once when a pool is made.

The pools' shared constructor (``PoolFacade.__init__`` in _facade.py) calls ``pool_options``; the
Cython core trusts its result.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

# What a pragma may be set to (checked by _pragma_value).
PragmaValue: TypeAlias = str | int | float | bool

#: Pragmas every connection gets unless the caller overrides them.
DEFAULT_PRAGMAS: dict[str, PragmaValue] = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": True,
    "journal_size_limit": 64 * 1024 * 1024,
}

DEFAULT_BUSY_TIMEOUT = 5.0
#: The reader slot ring holds at most 2**24 slots (csrc/fp_ring.h).
MAX_READERS = 1 << 24
# A bound on fairness longer than this is a mistake (an hour: passed over for ever, in effect).
MAX_FIFO_AFTER = 3600.0
DEFAULT_AUTOCHECKPOINT = 1000

# Pragmas that only the writer may run: they change the database file, not the connection.
_WRITER_ONLY_PRAGMAS = frozenset(
    {"journal_mode", "journal_size_limit", "page_size", "auto_vacuum", "user_version",
     "application_id", "wal_checkpoint", "optimize", "incremental_vacuum"})


@dataclass(frozen=True)
class PoolOptions:
    """The validated arguments of a pool (``PoolFacade.__init__`` documents their meaning)."""

    path: str
    readers: int
    writer_pragmas: dict[str, PragmaValue]
    reader_pragmas: dict[str, PragmaValue]
    statement_cache_size: int
    acquisition_timeout: float | None
    on_connect: Callable[[Any], object] | None
    row_factory: type | None
    debug: bool
    max_lifetime: float | None
    idle_timeout: float | None
    min_readers: int
    busy_timeout: float
    autocheckpoint: int
    memory: bool
    writer_lock: bool = True
    defensive: bool = True
    fifo_after: float = 0.001
    group_commit: bool | None = None  # None: when each commit fsyncs (WriterGate.open)

    @property
    def fifo_after_ns(self) -> int:
        """``fifo_after`` in nanoseconds, as the slot dispenser takes it (0: strict FIFO)."""
        return round(self.fifo_after * 1e9)


def _number(name: str, value: object, *, allow_none: bool = False, minimum: float = 0.0,
            strictly_positive: bool = False, unit: str = "seconds") -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = f"a number of {unit} or None" if allow_none else f"a number of {unit}"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number, not NaN")
    if strictly_positive and value <= 0:
        raise ValueError(f"{name} must be > 0, not {value}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, not {value}")
    return float(value)


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
    return value


def _pragma_value(name: str, value: object) -> PragmaValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"pragma {name!r}: value must be str, int, float or bool, "
                    f"not {type(value).__name__}")


def _pragmas(pragmas: object) -> tuple[dict[str, PragmaValue], float, int]:
    if pragmas is None:
        pragmas = {}
    if not isinstance(pragmas, Mapping):
        raise TypeError(f"pragmas must be a dict of name to value, not {type(pragmas).__name__}")
    merged: dict[str, PragmaValue] = dict(DEFAULT_PRAGMAS)
    busy_timeout = DEFAULT_BUSY_TIMEOUT
    autocheckpoint = DEFAULT_AUTOCHECKPOINT
    for name, value in pragmas.items():
        if not isinstance(name, str):
            raise TypeError(f"pragma names must be str, not {type(name).__name__}")
        key = name.strip().lower()
        if not key.replace("_", "a").isalnum() or not key.isascii():
            raise ValueError(f"pragma name {name!r} is not a valid identifier")
        # These two are run by fastpool's own handlers, which drop the GIL while they wait.
        if key == "busy_timeout":
            ms = _number("pragma busy_timeout", value, unit="milliseconds")
            assert ms is not None
            busy_timeout = ms / 1000.0
        elif key == "wal_autocheckpoint":
            autocheckpoint = _count("pragma wal_autocheckpoint (pages)", value, 0)
        else:
            merged[key] = _pragma_value(key, value)
    return merged, busy_timeout, autocheckpoint


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def _group_commit(value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"group_commit must be True, False or None (on when commits fsync), "
                        f"not {type(value).__name__}")
    return value


def _path(path: object) -> str:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    elif isinstance(path, os.PathLike):
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    if not path or "\x00" in path:
        raise ValueError("path must be a non-empty file path without NUL characters "
                         "(use ':memory:' for an in-memory database)")
    return path


@dataclass(frozen=True)
class ConnectOptions:
    """The arguments of ``fastpool.connect``, checked and with the defaults filled in."""

    path: str
    pragmas: dict[str, PragmaValue]
    busy_timeout: float
    autocheckpoint: int
    defensive: bool = True


def connect_options(path: object, pragmas: object, defensive: object = True) -> ConnectOptions:
    """Check ``fastpool.connect``'s path and pragmas; the same defaults as the pool's writer."""
    path = _path(path)
    merged, busy_timeout, autocheckpoint = _pragmas(pragmas)
    if path == ":memory:":
        merged.pop("journal_mode", None)    # a private in-memory database has no WAL
    return ConnectOptions(path, merged, busy_timeout, autocheckpoint,
                          _flag("defensive", defensive))


def pool_options(
    path: object,
    readers: object = 4,
    pragmas: object = None,
    statement_cache_size: object = 128,
    acquisition_timeout: object = 30.0,
    on_connect: Any = None,  # Any: callable() narrowing of an object confuses stubtest
    row_factory: object = None,
    debug: object = False,
    max_lifetime: object = None,
    idle_timeout: object = None,
    min_readers: object = None,
    writer_lock: object = True,
    defensive: object = True,
    fifo_after: object = 0.001,
    group_commit: object = None,
) -> PoolOptions:
    """Check every pool argument and return them normalised, or raise TypeError/ValueError."""
    path = _path(path)
    memory = path == ":memory:"
    if memory:
        # One shared in-memory database that every connection of this pool sees.
        path = f"file:/fastpool-{uuid.uuid4().hex}?vfs=memdb"
    elif path.startswith("file:") and "mode=memory" in path.partition("?")[2]:
        # A named in-memory database ("file:name?mode=memory&cache=shared"): SQLite shares
        # it between connections only through the shared cache, which wheels' SQLite leaves
        # out; memdb shares it by name in every build, with every pool of that name.
        memory = True
        name = path[5:].partition("?")[0].lstrip("/")
        path = f"file:/fastpool-named-{name}?vfs=memdb"

    n_readers = _count("readers", readers, 1)
    if n_readers > MAX_READERS:
        raise ValueError(f"readers must be <= {MAX_READERS}, not {n_readers}")
    cache = _count("statement_cache_size", statement_cache_size, 0)
    timeout = _number("acquisition_timeout", acquisition_timeout, allow_none=True)
    lifetime = _number("max_lifetime", max_lifetime, allow_none=True, strictly_positive=True)
    idle = _number("idle_timeout", idle_timeout, allow_none=True, strictly_positive=True)
    fifo = _number("fifo_after", fifo_after) or 0.0
    if fifo > MAX_FIFO_AFTER:
        raise ValueError(f"fifo_after must be <= {MAX_FIFO_AFTER:g} seconds (a bound on how "
                         f"long a waiter may be passed over), not {fifo}")
    keep = n_readers if min_readers is None else _count("min_readers", min_readers, 0)
    if keep > n_readers:
        raise ValueError(f"min_readers ({keep}) must not exceed readers ({n_readers})")
    if on_connect is not None and not callable(on_connect):
        raise TypeError(f"on_connect must be a callable taking a connection, "
                        f"not {type(on_connect).__name__}")
    # row_factory is checked by the core, which owns the Row type.
    debug = _flag("debug", debug)
    writer_lock = _flag("writer_lock", writer_lock)
    defensive = _flag("defensive", defensive)

    writer_pragmas, busy_timeout, autocheckpoint = _pragmas(pragmas)
    locking = writer_pragmas.get("locking_mode")
    if isinstance(locking, str) and locking.strip().lower() == "exclusive":
        # SQLite keeps an exclusive connection's lock until it closes: the pool's other
        # connections would wait for it forever (the first write, or the first read, sticks).
        raise ValueError(
            "pragma locking_mode='exclusive' would wedge the pool: the first of its "
            "connections to touch the file never lets go of its lock, and every other "
            "connection waits for it until busy_timeout, each time. Leave locking_mode "
            "'normal' (the default); for one connection that keeps the file to itself use "
            "fastpool.connect()")
    if memory:
        writer_pragmas.pop("journal_mode", None)  # memdb has no WAL; it keeps its own journal
    reader_pragmas = {k: v for k, v in writer_pragmas.items() if k not in _WRITER_ONLY_PRAGMAS}

    return PoolOptions(
        path=path,
        readers=n_readers,
        writer_pragmas=writer_pragmas,
        reader_pragmas=reader_pragmas,
        statement_cache_size=cache,
        acquisition_timeout=timeout,
        on_connect=on_connect,
        row_factory=row_factory,  # type: ignore[arg-type]  # checked by the core
        debug=debug,
        max_lifetime=lifetime,
        idle_timeout=idle,
        min_readers=keep,
        busy_timeout=busy_timeout,
        autocheckpoint=autocheckpoint,
        memory=memory,
        writer_lock=writer_lock and not memory,
        defensive=defensive,
        fifo_after=fifo,
        group_commit=_group_commit(group_commit),
    )


__all__ = ["DEFAULT_PRAGMAS", "ConnectOptions", "PoolOptions", "connect_options", "pool_options"]
