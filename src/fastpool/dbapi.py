"""PEP 249 (DB-API 2.0) and a drop-in for the stdlib ``sqlite3`` module.

``import fastpool.dbapi as sqlite3`` gives the ``sqlite3`` module's whole surface on
fastpool's Cython core: ``connect()`` with every stdlib keyword, ``Connection``, ``Cursor``,
``Row``, ``Blob``, ``PrepareProtocol``, the exception classes, the ``SQLITE_*`` and
``PARSE_*`` constants, adapters and converters (with the default date/datetime ones, and the
deprecation warnings the running Python gives for them), ``complete_statement`` and
``enable_callback_tracebacks``.

Where it departs from the stdlib (docs/migrating.md says more): a transaction that the
default mode opens before INSERT/UPDATE/DELETE/REPLACE, and a written bare ``BEGIN``, begin
``IMMEDIATE`` (take the write lock up front, so a transaction that read first can never fail
at once with "database is locked" when it writes); ``connect(..., immediate=False)`` gives the
stdlib's deferred ``BEGIN``. Outside a transaction a read holds no snapshot, as in the stdlib.
``connect()`` follows the stdlib's defaults (the file's journal mode, ``foreign_keys`` off);
``pragmas=`` asks for others (for example ``{"journal_mode": "wal"}``).
"""

# ruff: noqa: F405  (names in __all__ come from the star imports below)
from __future__ import annotations

import collections.abc
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from fastpool import _core
from fastpool._core import (
    Blob,
    PrepareProtocol,
    adapt,
    complete_statement,
    enable_callback_tracebacks,
    register_adapter,
    register_converter,
)
from fastpool._core import DBAPIConnection as Connection
from fastpool._core import DBAPICursor as Cursor
from fastpool._core import DBAPIRow as Row
from fastpool._core import sqlite_version as _sqlite_version
from fastpool._dbapi_dump import iterdump as _iterdump
from fastpool._dbapi_types import *  # noqa: F403  (constructors, type objects)
from fastpool._dbapi_types import register_defaults
from fastpool._sqlite_constants import *  # noqa: F403
from fastpool.errors import *  # noqa: F403  (the PEP 249 exception classes)

__all__ = [
    "BINARY",
    "DATETIME",
    "LEGACY_TRANSACTION_CONTROL",
    "NUMBER",
    "PARSE_COLNAMES",
    "PARSE_DECLTYPES",
    "ROWID",
    "SQLITE_ABORT",
    "SQLITE_ABORT_ROLLBACK",
    "SQLITE_ALTER_TABLE",
    "SQLITE_ANALYZE",
    "SQLITE_ATTACH",
    "SQLITE_AUTH",
    "SQLITE_AUTH_USER",
    "SQLITE_BUSY",
    "SQLITE_BUSY_RECOVERY",
    "SQLITE_BUSY_SNAPSHOT",
    "SQLITE_BUSY_TIMEOUT",
    "SQLITE_CANTOPEN",
    "SQLITE_CANTOPEN_CONVPATH",
    "SQLITE_CANTOPEN_DIRTYWAL",
    "SQLITE_CANTOPEN_FULLPATH",
    "SQLITE_CANTOPEN_ISDIR",
    "SQLITE_CANTOPEN_NOTEMPDIR",
    "SQLITE_CANTOPEN_SYMLINK",
    "SQLITE_CONSTRAINT",
    "SQLITE_CONSTRAINT_CHECK",
    "SQLITE_CONSTRAINT_COMMITHOOK",
    "SQLITE_CONSTRAINT_FOREIGNKEY",
    "SQLITE_CONSTRAINT_FUNCTION",
    "SQLITE_CONSTRAINT_NOTNULL",
    "SQLITE_CONSTRAINT_PINNED",
    "SQLITE_CONSTRAINT_PRIMARYKEY",
    "SQLITE_CONSTRAINT_ROWID",
    "SQLITE_CONSTRAINT_TRIGGER",
    "SQLITE_CONSTRAINT_UNIQUE",
    "SQLITE_CONSTRAINT_VTAB",
    "SQLITE_CORRUPT",
    "SQLITE_CORRUPT_INDEX",
    "SQLITE_CORRUPT_SEQUENCE",
    "SQLITE_CORRUPT_VTAB",
    "SQLITE_CREATE_INDEX",
    "SQLITE_CREATE_TABLE",
    "SQLITE_CREATE_TEMP_INDEX",
    "SQLITE_CREATE_TEMP_TABLE",
    "SQLITE_CREATE_TEMP_TRIGGER",
    "SQLITE_CREATE_TEMP_VIEW",
    "SQLITE_CREATE_TRIGGER",
    "SQLITE_CREATE_VIEW",
    "SQLITE_CREATE_VTABLE",
    "SQLITE_DBCONFIG_DEFENSIVE",
    "SQLITE_DBCONFIG_DQS_DDL",
    "SQLITE_DBCONFIG_DQS_DML",
    "SQLITE_DBCONFIG_ENABLE_FKEY",
    "SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER",
    "SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION",
    "SQLITE_DBCONFIG_ENABLE_QPSG",
    "SQLITE_DBCONFIG_ENABLE_TRIGGER",
    "SQLITE_DBCONFIG_ENABLE_VIEW",
    "SQLITE_DBCONFIG_LEGACY_ALTER_TABLE",
    "SQLITE_DBCONFIG_LEGACY_FILE_FORMAT",
    "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE",
    "SQLITE_DBCONFIG_RESET_DATABASE",
    "SQLITE_DBCONFIG_TRIGGER_EQP",
    "SQLITE_DBCONFIG_TRUSTED_SCHEMA",
    "SQLITE_DBCONFIG_WRITABLE_SCHEMA",
    "SQLITE_DELETE",
    "SQLITE_DENY",
    "SQLITE_DETACH",
    "SQLITE_DONE",
    "SQLITE_DROP_INDEX",
    "SQLITE_DROP_TABLE",
    "SQLITE_DROP_TEMP_INDEX",
    "SQLITE_DROP_TEMP_TABLE",
    "SQLITE_DROP_TEMP_TRIGGER",
    "SQLITE_DROP_TEMP_VIEW",
    "SQLITE_DROP_TRIGGER",
    "SQLITE_DROP_VIEW",
    "SQLITE_DROP_VTABLE",
    "SQLITE_EMPTY",
    "SQLITE_ERROR",
    "SQLITE_ERROR_MISSING_COLLSEQ",
    "SQLITE_ERROR_RETRY",
    "SQLITE_ERROR_SNAPSHOT",
    "SQLITE_FORMAT",
    "SQLITE_FULL",
    "SQLITE_FUNCTION",
    "SQLITE_IGNORE",
    "SQLITE_INSERT",
    "SQLITE_INTERNAL",
    "SQLITE_INTERRUPT",
    "SQLITE_IOERR",
    "SQLITE_IOERR_ACCESS",
    "SQLITE_IOERR_AUTH",
    "SQLITE_IOERR_BEGIN_ATOMIC",
    "SQLITE_IOERR_BLOCKED",
    "SQLITE_IOERR_CHECKRESERVEDLOCK",
    "SQLITE_IOERR_CLOSE",
    "SQLITE_IOERR_COMMIT_ATOMIC",
    "SQLITE_IOERR_CONVPATH",
    "SQLITE_IOERR_CORRUPTFS",
    "SQLITE_IOERR_DATA",
    "SQLITE_IOERR_DELETE",
    "SQLITE_IOERR_DELETE_NOENT",
    "SQLITE_IOERR_DIR_CLOSE",
    "SQLITE_IOERR_DIR_FSYNC",
    "SQLITE_IOERR_FSTAT",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_IOERR_GETTEMPPATH",
    "SQLITE_IOERR_LOCK",
    "SQLITE_IOERR_MMAP",
    "SQLITE_IOERR_NOMEM",
    "SQLITE_IOERR_RDLOCK",
    "SQLITE_IOERR_READ",
    "SQLITE_IOERR_ROLLBACK_ATOMIC",
    "SQLITE_IOERR_SEEK",
    "SQLITE_IOERR_SHMLOCK",
    "SQLITE_IOERR_SHMMAP",
    "SQLITE_IOERR_SHMOPEN",
    "SQLITE_IOERR_SHMSIZE",
    "SQLITE_IOERR_SHORT_READ",
    "SQLITE_IOERR_TRUNCATE",
    "SQLITE_IOERR_UNLOCK",
    "SQLITE_IOERR_VNODE",
    "SQLITE_IOERR_WRITE",
    "SQLITE_LIMIT_ATTACHED",
    "SQLITE_LIMIT_COLUMN",
    "SQLITE_LIMIT_COMPOUND_SELECT",
    "SQLITE_LIMIT_EXPR_DEPTH",
    "SQLITE_LIMIT_FUNCTION_ARG",
    "SQLITE_LIMIT_LENGTH",
    "SQLITE_LIMIT_LIKE_PATTERN_LENGTH",
    "SQLITE_LIMIT_SQL_LENGTH",
    "SQLITE_LIMIT_TRIGGER_DEPTH",
    "SQLITE_LIMIT_VARIABLE_NUMBER",
    "SQLITE_LIMIT_VDBE_OP",
    "SQLITE_LIMIT_WORKER_THREADS",
    "SQLITE_LOCKED",
    "SQLITE_LOCKED_SHAREDCACHE",
    "SQLITE_LOCKED_VTAB",
    "SQLITE_MISMATCH",
    "SQLITE_MISUSE",
    "SQLITE_NOLFS",
    "SQLITE_NOMEM",
    "SQLITE_NOTADB",
    "SQLITE_NOTFOUND",
    "SQLITE_NOTICE",
    "SQLITE_NOTICE_RECOVER_ROLLBACK",
    "SQLITE_NOTICE_RECOVER_WAL",
    "SQLITE_OK",
    "SQLITE_OK_LOAD_PERMANENTLY",
    "SQLITE_OK_SYMLINK",
    "SQLITE_PERM",
    "SQLITE_PRAGMA",
    "SQLITE_PROTOCOL",
    "SQLITE_RANGE",
    "SQLITE_READ",
    "SQLITE_READONLY",
    "SQLITE_READONLY_CANTINIT",
    "SQLITE_READONLY_CANTLOCK",
    "SQLITE_READONLY_DBMOVED",
    "SQLITE_READONLY_DIRECTORY",
    "SQLITE_READONLY_RECOVERY",
    "SQLITE_READONLY_ROLLBACK",
    "SQLITE_RECURSIVE",
    "SQLITE_REINDEX",
    "SQLITE_ROW",
    "SQLITE_SAVEPOINT",
    "SQLITE_SCHEMA",
    "SQLITE_SELECT",
    "SQLITE_TOOBIG",
    "SQLITE_TRANSACTION",
    "SQLITE_UPDATE",
    "SQLITE_WARNING",
    "SQLITE_WARNING_AUTOINDEX",
    "STRING",
    "Binary",
    "Blob",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "PrepareProtocol",
    "ProgrammingError",
    "Row",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "adapt",
    "adapters",
    "apilevel",
    "complete_statement",
    "connect",
    "converters",
    "enable_callback_tracebacks",
    "install_as_sqlite3",
    "paramstyle",
    "register_adapter",
    "register_converter",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
]

apilevel = "2.0"
#: Threads may share the module, not connections (each thread opens its own).
threadsafety = 1
#: ``?`` placeholders with a sequence; ``:name`` placeholders with a dict work too.
paramstyle = "qmark"
#: The SQLite library fastpool runs on, as in the stdlib ``sqlite3`` module.
sqlite_version: str = _sqlite_version()
sqlite_version_info: tuple[int, int, int] = tuple(  # type: ignore[assignment]
    int(part) for part in sqlite_version.split(".")[:3]
)
#: ``detect_types`` flags: convert by declared column type / by ``"name [type]"`` alias.
PARSE_DECLTYPES = 1
PARSE_COLNAMES = 2
#: ``autocommit=`` value for the pre-3.12 transaction handling (``isolation_level``).
LEGACY_TRANSACTION_CONTROL = -1
#: The adapter and converter registries (the very dicts the core consults).
adapters: dict[tuple[type, type], Callable[[Any], Any]] = _core.dbapi_adapters()
converters: dict[str, Callable[[bytes], Any]] = _core.dbapi_converters()

# The pysqlite version the stdlib reports; deprecated from Python 3.12 (module __getattr__).
_VERSION = "2.6.0"
if sys.version_info < (3, 12):
    version = _VERSION
    version_info = (2, 6, 0)


def __getattr__(name: str) -> object:
    if name == "dbapi2":  # the stdlib's sqlite3.dbapi2: the same names
        return sys.modules[__name__]
    if name == "OptimizedUnicode" and sys.version_info < (3, 12):
        warnings.warn(
            "OptimizedUnicode is deprecated and will be removed in Python 3.12; it is an alias "
            "of str",
            DeprecationWarning,
            stacklevel=2,
        )
        return str
    if name in ("version", "version_info"):
        warnings.warn(
            f"{name} is deprecated and will be removed in Python 3.14",
            DeprecationWarning,
            stacklevel=2,
        )
        return _VERSION if name == "version" else (2, 6, 0)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enable_shared_cache(enable: bool) -> None:
    """Deprecated in the stdlib (Python 3.10, gone in 3.12), and a no-op here: fastpool opens
    every connection with a private cache (SQLITE_OPEN_PRIVATECACHE)."""
    warnings.warn(
        "enable_shared_cache() is deprecated (Python 3.10, removed in 3.12) and does nothing "
        "in fastpool.dbapi: its connections always use a private cache",
        DeprecationWarning,
        stacklevel=2,
    )


if sys.version_info < (3, 12):
    __all__ += ["enable_shared_cache"]

_core.set_dump_function(_iterdump)
register_defaults()
collections.abc.Sequence.register(Row)


# connect()'s parameters after ``database`` that may still be given by position (Python
# 3.13 deprecates that, and so does this module when running there).
_POSITIONAL = (
    "timeout",
    "detect_types",
    "isolation_level",
    "check_same_thread",
    "factory",
    "cached_statements",
    "uri",
)


def connect(
    database: str | os.PathLike[str] | bytes,
    *args: Any,
    timeout: float = 5.0,
    detect_types: int = 0,
    isolation_level: str | None = "",
    check_same_thread: bool = True,
    factory: type[Connection] | None = None,
    cached_statements: int = 128,
    uri: bool = False,
    autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
    readonly: bool = False,
    pragmas: dict[str, object] | None = None,
    defensive: bool = True,
    immediate: bool = True,
) -> Connection:
    """Open a connection, as ``sqlite3.connect`` does (every stdlib keyword works).

    Args:
        database: file path, ``file:`` URI (with ``uri=True``), or ``":memory:"``.
        timeout: seconds to wait for another connection's lock.
        detect_types: PARSE_DECLTYPES and/or PARSE_COLNAMES to run converters.
        isolation_level: ``""`` (the default BEGIN), "DEFERRED", "IMMEDIATE", "EXCLUSIVE", or
            None for autocommit (only with the default ``autocommit``).
        check_same_thread: refuse use from a thread other than the opening one.
        factory: a Connection subclass to make.
        cached_statements: prepared statements kept per connection.
        uri: treat ``database`` as a URI.
        autocommit: True, False (PEP 249: always in a transaction), or
            LEGACY_TRANSACTION_CONTROL (the ``isolation_level`` rules).
        readonly: open read-only (fastpool).
        pragmas: pragmas to run on open, e.g. ``{"journal_mode": "wal"}`` (fastpool).
        defensive: SQLite's defensive mode (fastpool: on, so SQL such as ``PRAGMA
            writable_schema`` edits cannot corrupt the file; False allows them).
        immediate: the default BEGIN, implicit or written bare, is ``BEGIN IMMEDIATE``
            (fastpool; False gives the stdlib's deferred BEGIN).
    """
    if args:
        if len(args) > len(_POSITIONAL):
            raise TypeError(
                f"connect() takes at most {len(_POSITIONAL) + 1} positional arguments "
                f"({len(args) + 1} given)"
            )
        if sys.version_info >= (3, 13):
            warnings.warn(
                "Passing more than 1 positional argument to sqlite3.connect() is deprecated. "
                "Parameters 'timeout', 'detect_types', 'isolation_level', "
                "'check_same_thread', 'factory', 'cached_statements' and 'uri' will become "
                "keyword-only parameters in Python 3.15.",
                DeprecationWarning,
                stacklevel=2,
            )
    kwargs: dict[str, Any] = {}
    if autocommit is not LEGACY_TRANSACTION_CONTROL:
        kwargs["autocommit"] = autocommit
    if readonly:
        kwargs["readonly"] = readonly
    if pragmas is not None:
        kwargs["pragmas"] = _checked_pragmas(pragmas)
        if "busy_timeout" in kwargs["pragmas"]:
            # fastpool's own busy handler waits (with the GIL dropped): give it the time.
            if args or timeout != 5.0:
                raise ValueError("give the busy timeout once: timeout= or pragmas['busy_timeout']")
            ms = kwargs["pragmas"].pop("busy_timeout")
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
                raise ValueError(f"pragma busy_timeout must be >= 0 milliseconds, not {ms!r}")
            timeout = ms / 1000
    if defensive is not True:
        if not isinstance(defensive, bool):
            raise TypeError(f"defensive must be True or False, not {type(defensive).__name__}")
        kwargs["defensive"] = defensive
    if immediate is not True:
        kwargs["immediate"] = immediate
    if len(args) >= 5:
        factory = args[4]
    make = Connection if factory is None else factory
    if args:
        # Positional, as given (the factory's own __init__ may take them so).
        return make(database, *args, **kwargs)
    return make(
        database,
        timeout=timeout,
        detect_types=detect_types,
        isolation_level=isolation_level,
        check_same_thread=check_same_thread,
        factory=make,
        cached_statements=cached_statements,
        uri=uri,
        **kwargs,
    )


def main(*argv: str) -> None:
    """The ``sqlite3`` command-line shell on this module: ``main(["db.sqlite", "select 1"])``
    (no arguments: the process's own)."""
    from fastpool._dbapi_cli import main as run

    if len(argv) == 1 and not isinstance(argv[0], str):
        run(list(argv[0]))
    run(list(argv) if argv else None)


def _checked_pragmas(pragmas: object) -> dict[str, object]:
    if not isinstance(pragmas, dict):
        raise TypeError(f"pragmas must be a dict of name to value, not {type(pragmas).__name__}")
    for name in pragmas:
        if not isinstance(name, str):
            raise TypeError(f"pragma names must be str, not {type(name).__name__}")
    return dict(pragmas)


def install_as_sqlite3() -> None:
    """Make ``import sqlite3`` anywhere in this process give this module.

    Call it first thing in the program, before anything imports ``sqlite3``: libraries
    written for the stdlib (migration tools, health checks, ``dbm.sqlite3``) then open their
    files with fastpool's SQLite, so the process has one SQLite library. Two copies must not
    share a file in one process (docs/sqlite-build.md): a wheel of fastpool bundles its own,
    and fastpool refuses the stdlib's copy on a file it holds (``SQLiteCopyError``). Modules
    that imported ``sqlite3`` before the call keep the stdlib's (a RuntimeWarning says so).
    Where this module still differs from the stdlib's: docs/migrating.md.
    """
    this = sys.modules[__name__]
    current = sys.modules.get("sqlite3")
    if current is not None and current is not this:
        warnings.warn(
            "fastpool.install_as_sqlite3(): sqlite3 was already imported; modules that hold it "
            "keep the stdlib's SQLite. Call install_as_sqlite3() before anything imports sqlite3",
            RuntimeWarning,
            stacklevel=2,
        )
    sys.modules["sqlite3"] = this
    sys.modules["sqlite3.dbapi2"] = this
