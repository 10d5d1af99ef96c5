"""The exception hierarchy (PEP 249 names) and the one table that maps SQLite result codes to it.

Every error raised by SQLite carries ``sqlite_errorcode`` (the extended result code) and
``sqlite_errorname`` (for example ``"SQLITE_CONSTRAINT_UNIQUE"``); SQLite's own message is kept.
"""

from __future__ import annotations

# In the order the classes are defined below: each before its subclasses.
__all__ = [
    "Warning",
    "Error",
    "InterfaceError",
    "SQLiteCopyError",
    "DatabaseError",
    "OperationalError",
    "BusyError",
    "DiskFullError",
    "IntegrityError",
    "ProgrammingError",
    "DataError",
    "InternalError",
    "NotSupportedError",
    "ReplicaReadOnlyError",
    "PoolError",
    "PoolTimeout",
    "PoolClosed",
    "error_for_code",
    "sqlite_errorname",
]


class Warning(Exception):
    """Important warnings, such as data truncation (PEP 249)."""


class Error(Exception):
    """Base class of every fastpool error.

    ``sqlite_errorcode`` and ``sqlite_errorname`` are set when SQLite reported the error,
    and are ``None`` otherwise.
    """

    sqlite_errorcode: int | None = None
    sqlite_errorname: str | None = None


class InterfaceError(Error):
    """The API was misused: a closed connection, a lease used after return, or from two threads."""


class SQLiteCopyError(InterfaceError):
    """A second copy of the SQLite library in this process would share a file with fastpool's.

    POSIX file locks belong to the process, so when one copy closes the file, the other
    copy's locks vanish: readers see a malformed database, or the process dies of SIGBUS.
    Raised by ``sqlite3.connect()`` (the stdlib's copy) on a file that fastpool holds, and by
    fastpool on a file that the stdlib's copy holds. The fix: ``fastpool.install_as_sqlite3()``
    before anything imports ``sqlite3``, so the process has one SQLite (docs/sqlite-build.md).
    """


class DatabaseError(Error):
    """An error reported by the database."""


class OperationalError(DatabaseError):
    """The database could not do the operation: I/O, locking, a missing file, an interrupt."""


class BusyError(OperationalError):
    """SQLite's lock stayed busy past ``busy_timeout`` (another process holds the write lock)."""


class DiskFullError(OperationalError):
    """The database or the disk is full (``SQLITE_FULL``): the statement was rolled back.

    Free disk space (or raise ``PRAGMA max_page_count``) and retry; the pool stays usable.
    """


class IntegrityError(DatabaseError):
    """A constraint failed: UNIQUE, NOT NULL, CHECK, FOREIGN KEY, ..."""


class ProgrammingError(DatabaseError):
    """The SQL or its parameters are wrong: syntax, parameter count, more than one statement."""


class DataError(DatabaseError):
    """A value could not be stored or read: too big, or not valid text."""


class InternalError(DatabaseError):
    """SQLite's internal state is inconsistent."""


class NotSupportedError(DatabaseError):
    """The operation is not supported by this SQLite build or by the pool."""


class ReplicaReadOnlyError(NotSupportedError):
    """A write on a ``ReplicaPool``: a Litestream replica is read-only; write on the primary."""


class PoolError(Error):
    """Base class of errors raised by the pool itself."""


class PoolTimeout(PoolError):
    """No connection became free within ``acquisition_timeout``."""


class PoolClosed(PoolError):
    """The pool was closed; it hands out no more connections."""


# Primary result codes, in code order (SQLITE_OK = 0 ... SQLITE_WARNING = 28).
_PRIMARY = (
    "OK ERROR INTERNAL PERM ABORT BUSY LOCKED NOMEM READONLY INTERRUPT IOERR CORRUPT NOTFOUND "
    "FULL CANTOPEN PROTOCOL EMPTY SCHEMA TOOBIG CONSTRAINT MISMATCH MISUSE NOLFS AUTH FORMAT "
    "RANGE NOTADB NOTICE WARNING"
).split()

# Extended codes: primary | (n << 8) for n = 1, 2, ...; "-" marks an unused n.
_EXTENDED = {
    "OK": "LOAD_PERMANENTLY SYMLINK",
    "ERROR": "MISSING_COLLSEQ RETRY SNAPSHOT",
    "IOERR": (
        "READ SHORT_READ WRITE FSYNC DIR_FSYNC TRUNCATE FSTAT UNLOCK RDLOCK DELETE BLOCKED NOMEM "
        "ACCESS CHECKRESERVEDLOCK LOCK CLOSE DIR_CLOSE SHMOPEN SHMSIZE SHMLOCK SHMMAP SEEK "
        "DELETE_NOENT MMAP GETTEMPPATH CONVPATH VNODE AUTH BEGIN_ATOMIC COMMIT_ATOMIC "
        "ROLLBACK_ATOMIC DATA CORRUPTFS"
    ),
    "LOCKED": "SHAREDCACHE VTAB",
    "BUSY": "RECOVERY SNAPSHOT TIMEOUT",
    "CANTOPEN": "NOTEMPDIR ISDIR FULLPATH CONVPATH DIRTYWAL SYMLINK",
    "CORRUPT": "VTAB SEQUENCE INDEX",
    "READONLY": "RECOVERY CANTLOCK ROLLBACK DBMOVED CANTINIT DIRECTORY",
    "ABORT": "- ROLLBACK",
    "CONSTRAINT": (
        "CHECK COMMITHOOK FOREIGNKEY FUNCTION NOTNULL PRIMARYKEY TRIGGER UNIQUE VTAB ROWID "
        "PINNED DATATYPE"
    ),
    "NOTICE": "RECOVER_WAL RECOVER_ROLLBACK",
    "WARNING": "AUTOINDEX",
    "AUTH": "USER",
}

_NAMES: dict[int, str] = {code: f"SQLITE_{name}" for code, name in enumerate(_PRIMARY)}
for _primary, _suffixes in _EXTENDED.items():
    _base = _PRIMARY.index(_primary)
    for _n, _suffix in enumerate(_suffixes.split(), start=1):
        if _suffix != "-":
            _NAMES[_base | (_n << 8)] = f"SQLITE_{_primary}_{_suffix}"
_NAMES[100] = "SQLITE_ROW"
_NAMES[101] = "SQLITE_DONE"

# Which class each primary code raises. Unlisted codes raise DatabaseError.
_CLASSES: dict[int, type[Error]] = {
    1: OperationalError,  # ERROR: SQL errors, missing tables; the sqlite3 module agrees
    2: InternalError,
    3: OperationalError,  # PERM
    4: OperationalError,  # ABORT
    5: BusyError,
    6: BusyError,  # LOCKED: a table lock held by this process
    7: OperationalError,  # NOMEM
    8: OperationalError,  # READONLY
    9: OperationalError,  # INTERRUPT
    10: OperationalError,  # IOERR
    11: DatabaseError,  # CORRUPT
    12: InternalError,  # NOTFOUND
    13: DiskFullError,  # FULL
    14: OperationalError,  # CANTOPEN
    15: OperationalError,  # PROTOCOL
    16: InternalError,  # EMPTY
    17: OperationalError,  # SCHEMA
    18: DataError,  # TOOBIG
    19: IntegrityError,  # CONSTRAINT
    20: IntegrityError,  # MISMATCH
    21: InterfaceError,  # MISUSE  (not a DatabaseError: it is our or the caller's bug)
    22: NotSupportedError,  # NOLFS
    23: DatabaseError,  # AUTH
    24: InternalError,  # FORMAT
    25: ProgrammingError,  # RANGE: bind index out of range
    26: DatabaseError,  # NOTADB
}


def sqlite_errorname(code: int) -> str:
    """Return the symbolic name of an SQLite result code, e.g. ``"SQLITE_BUSY_SNAPSHOT"``."""
    name = _NAMES.get(code)
    if name is None:
        primary = _NAMES.get(code & 0xFF, f"SQLITE_UNKNOWN_{code & 0xFF}")
        name = f"{primary}_EXTENDED_{code >> 8}" if code > 0xFF else primary
    return name


def error_for_code(code: int, message: str) -> Error:
    """Build the exception for an SQLite result code, with SQLite's message and the code's name."""
    cls: type[Error] = _CLASSES.get(code & 0xFF, DatabaseError)
    exc = cls(message)
    exc.sqlite_errorcode = code
    exc.sqlite_errorname = sqlite_errorname(code)
    return exc
