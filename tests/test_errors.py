"""The exception hierarchy, the result-code table, and the errors real SQLite failures raise."""

from __future__ import annotations

import sqlite3
import threading

import pytest

import fastpool
from fastpool import errors

# -- hierarchy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (errors.Error, Exception),
        (errors.Warning, Exception),
        (errors.InterfaceError, errors.Error),
        (errors.SQLiteCopyError, errors.InterfaceError),
        (errors.DatabaseError, errors.Error),
        (errors.OperationalError, errors.DatabaseError),
        (errors.BusyError, errors.OperationalError),
        (errors.DiskFullError, errors.OperationalError),
        (errors.IntegrityError, errors.DatabaseError),
        (errors.ProgrammingError, errors.DatabaseError),
        (errors.DataError, errors.DatabaseError),
        (errors.InternalError, errors.DatabaseError),
        (errors.NotSupportedError, errors.DatabaseError),
        (errors.PoolError, errors.Error),
        (errors.PoolTimeout, errors.PoolError),
        (errors.PoolClosed, errors.PoolError),
    ],
)
def test_hierarchy(cls, parent):
    assert issubclass(cls, parent)
    assert getattr(fastpool, cls.__name__) is cls


def test_interface_and_pool_errors_are_not_database_errors():
    assert not issubclass(errors.InterfaceError, errors.DatabaseError)
    assert not issubclass(errors.PoolError, errors.DatabaseError)
    assert not issubclass(errors.Warning, errors.Error)


def test_errors_not_from_sqlite_have_no_code(conn):
    with pytest.raises(errors.ProgrammingError) as info:
        conn.execute("SELECT 1; SELECT 2")
    assert info.value.sqlite_errorcode is None
    assert info.value.sqlite_errorname is None
    assert errors.Error().sqlite_errorcode is None


# -- the code table --------------------------------------------------------------------------

# Values from sqlite3.h.
KNOWN_CODES = {
    0: "SQLITE_OK",
    1: "SQLITE_ERROR",
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    8: "SQLITE_READONLY",
    9: "SQLITE_INTERRUPT",
    11: "SQLITE_CORRUPT",
    14: "SQLITE_CANTOPEN",
    19: "SQLITE_CONSTRAINT",
    21: "SQLITE_MISUSE",
    26: "SQLITE_NOTADB",
    28: "SQLITE_WARNING",
    100: "SQLITE_ROW",
    101: "SQLITE_DONE",
    1 | (3 << 8): "SQLITE_ERROR_SNAPSHOT",
    5 | (2 << 8): "SQLITE_BUSY_SNAPSHOT",
    5 | (3 << 8): "SQLITE_BUSY_TIMEOUT",
    6 | (1 << 8): "SQLITE_LOCKED_SHAREDCACHE",
    8 | (4 << 8): "SQLITE_READONLY_DBMOVED",
    4 | (2 << 8): "SQLITE_ABORT_ROLLBACK",
    10 | (21 << 8): "SQLITE_IOERR_SHMMAP",
    10 | (23 << 8): "SQLITE_IOERR_DELETE_NOENT",
    10 | (33 << 8): "SQLITE_IOERR_CORRUPTFS",
    11 | (3 << 8): "SQLITE_CORRUPT_INDEX",
    14 | (2 << 8): "SQLITE_CANTOPEN_ISDIR",
    19 | (1 << 8): "SQLITE_CONSTRAINT_CHECK",
    19 | (3 << 8): "SQLITE_CONSTRAINT_FOREIGNKEY",
    19 | (5 << 8): "SQLITE_CONSTRAINT_NOTNULL",
    19 | (6 << 8): "SQLITE_CONSTRAINT_PRIMARYKEY",
    19 | (8 << 8): "SQLITE_CONSTRAINT_UNIQUE",
    19 | (12 << 8): "SQLITE_CONSTRAINT_DATATYPE",
    27 | (1 << 8): "SQLITE_NOTICE_RECOVER_WAL",
    28 | (1 << 8): "SQLITE_WARNING_AUTOINDEX",
}


@pytest.mark.parametrize(("code", "name"), sorted(KNOWN_CODES.items()))
def test_sqlite_errorname_of_known_codes(code, name):
    assert errors.sqlite_errorname(code) == name


def test_sqlite_errorname_agrees_with_the_stdlib_constants():
    # Python 3.11+ exports SQLite's result codes from the sqlite3 module: an independent
    # source for every name both know. Older Pythons export none; KNOWN_CODES covers those.
    checked = 0
    for code in range(0, 40 << 8):
        name = errors.sqlite_errorname(code)
        if "UNKNOWN" in name or "EXTENDED" in name:
            continue
        stdlib_code = getattr(sqlite3, name, None)
        if stdlib_code is not None and name not in ("SQLITE_OK",):
            assert stdlib_code == code, name
            checked += 1
    assert checked > 50 or not hasattr(sqlite3, "SQLITE_CONSTRAINT_UNIQUE")


def test_sqlite_errorname_of_unknown_codes():
    assert errors.sqlite_errorname(99) == "SQLITE_UNKNOWN_99"
    # An extended code this table does not know yet still names its primary code.
    assert errors.sqlite_errorname(19 | (60 << 8)) == "SQLITE_CONSTRAINT_EXTENDED_60"


PRIMARY_CLASSES = {
    1: errors.OperationalError,  # ERROR (SQL error, missing table)
    2: errors.InternalError,  # INTERNAL
    3: errors.OperationalError,  # PERM
    4: errors.OperationalError,  # ABORT
    5: errors.BusyError,  # BUSY
    6: errors.BusyError,  # LOCKED
    7: errors.OperationalError,  # NOMEM
    8: errors.OperationalError,  # READONLY
    9: errors.OperationalError,  # INTERRUPT
    10: errors.OperationalError,  # IOERR
    11: errors.DatabaseError,  # CORRUPT
    13: errors.DiskFullError,  # FULL (an OperationalError)
    14: errors.OperationalError,  # CANTOPEN
    15: errors.OperationalError,  # PROTOCOL
    17: errors.OperationalError,  # SCHEMA
    18: errors.DataError,  # TOOBIG
    19: errors.IntegrityError,  # CONSTRAINT
    20: errors.IntegrityError,  # MISMATCH
    21: errors.InterfaceError,  # MISUSE
    22: errors.NotSupportedError,  # NOLFS
    23: errors.DatabaseError,  # AUTH
    25: errors.ProgrammingError,  # RANGE
    26: errors.DatabaseError,  # NOTADB
}


@pytest.mark.parametrize(("code", "cls"), sorted(PRIMARY_CLASSES.items(), key=lambda kv: kv[0]))
def test_error_class_of_primary_codes(code, cls):
    exc = errors.error_for_code(code, "the message")
    assert type(exc) is cls
    assert str(exc) == "the message"
    assert exc.sqlite_errorcode == code
    assert exc.sqlite_errorname == errors.sqlite_errorname(code)


@pytest.mark.parametrize("primary", sorted(PRIMARY_CLASSES))
def test_extended_codes_take_their_primary_class(primary):
    extended = primary | (2 << 8)
    exc = errors.error_for_code(extended, "m")
    assert type(exc) is PRIMARY_CLASSES[primary]
    assert exc.sqlite_errorcode == extended


def test_every_code_gives_an_error():
    for code in range(1, 30):
        exc = errors.error_for_code(code, "m")
        assert isinstance(exc, errors.Error)
        assert exc.sqlite_errorname.startswith("SQLITE_")


# -- real SQLite errors ----------------------------------------------------------------------


@pytest.fixture
def schema(open_conn):
    conn = open_conn(pragmas={"journal_mode": "wal", "foreign_keys": True})
    conn.executescript(
        """
        CREATE TABLE parent(id INTEGER PRIMARY KEY, code TEXT UNIQUE NOT NULL,
                            n INTEGER CHECK (n >= 0));
        CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
        CREATE TABLE strict_t(x INTEGER) STRICT;
        INSERT INTO parent VALUES (1, 'one', 1);
        """
    )
    return conn


@pytest.mark.parametrize(
    ("sql", "name", "message"),
    [
        (
            "INSERT INTO parent VALUES (2, 'one', 1)",
            "SQLITE_CONSTRAINT_UNIQUE",
            "UNIQUE constraint failed: parent.code",
        ),
        (
            "INSERT INTO parent VALUES (1, 'two', 1)",
            "SQLITE_CONSTRAINT_PRIMARYKEY",
            "UNIQUE constraint failed: parent.id",
        ),
        (
            "INSERT INTO parent VALUES (2, NULL, 1)",
            "SQLITE_CONSTRAINT_NOTNULL",
            "NOT NULL constraint failed: parent.code",
        ),
        (
            "INSERT INTO parent VALUES (2, 'two', -1)",
            "SQLITE_CONSTRAINT_CHECK",
            "CHECK constraint failed",
        ),
        (
            "INSERT INTO child VALUES (1, 99)",
            "SQLITE_CONSTRAINT_FOREIGNKEY",
            "FOREIGN KEY constraint failed",
        ),
        (
            "INSERT INTO strict_t VALUES ('text')",
            "SQLITE_CONSTRAINT_DATATYPE",
            "cannot store TEXT value",
        ),
        (
            "INSERT INTO parent(id, code) VALUES ('abc', 'x')",
            "SQLITE_MISMATCH",
            "datatype mismatch",
        ),
    ],
)
def test_constraint_violations_are_integrity_errors(schema, sql, name, message):
    with pytest.raises(errors.IntegrityError, match=message) as info:
        schema.execute(sql)
    assert info.value.sqlite_errorname == name
    assert errors.sqlite_errorname(info.value.sqlite_errorcode) == name
    # Same through the other entry points.
    with pytest.raises(errors.IntegrityError):
        schema.fetchone(sql)
    with pytest.raises(errors.IntegrityError):
        schema.executescript(sql)


def test_unique_violation_codes(schema):
    with pytest.raises(errors.IntegrityError) as info:
        schema.execute("INSERT INTO parent(code) VALUES (?)", ("one",))
    assert info.value.sqlite_errorcode == 2067
    assert info.value.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    with pytest.raises(errors.IntegrityError) as info:
        schema.execute("INSERT INTO parent(id, code) VALUES (?, ?)", (1, "new"))
    assert info.value.sqlite_errorcode == 1555
    assert info.value.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", 'near "SELEC": syntax error'),
        ("SELECT * FROM no_such_table", "no such table: no_such_table"),
        ("SELECT no_such_column FROM parent", "no such column: no_such_column"),
        ("SELECT no_such_function(1)", "no such function: no_such_function"),
        ("INSERT INTO parent VALUES (1)", "3 columns but 1 values"),
    ],
)
def test_sql_errors_are_operational_errors(schema, sql, message):
    with pytest.raises(errors.OperationalError, match=message) as info:
        schema.execute(sql)
    assert info.value.sqlite_errorcode == 1
    assert info.value.sqlite_errorname == "SQLITE_ERROR"
    assert not schema.fatal


def test_busy_error(db_path, open_conn):
    holder = open_conn()
    holder.executescript("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
    for timeout in (0.0, 0.05):
        waiter = open_conn(busy_timeout=timeout)
        with pytest.raises(errors.BusyError, match="locked") as info:
            waiter.executescript("BEGIN IMMEDIATE")
        assert info.value.sqlite_errorname.startswith("SQLITE_BUSY")
        assert isinstance(info.value, errors.OperationalError)
        assert not waiter.in_transaction
    holder.executescript("COMMIT")
    waiter.executescript("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT")
    assert waiter.fetchall("SELECT x FROM t ORDER BY x") == [(1,), (2,)]


def test_busy_waiter_succeeds_when_the_lock_is_freed(open_conn):
    # The busy handler sleeps without the GIL, so the thread that commits can run meanwhile.
    holder = open_conn()
    holder.executescript("CREATE TABLE t(x); BEGIN IMMEDIATE")
    waiter = open_conn(busy_timeout=30.0)
    released = threading.Timer(0.1, lambda: holder.executescript("COMMIT"))
    released.start()
    try:
        waiter.executescript("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT")
    finally:
        released.join()
    assert holder.fetchall("SELECT x FROM t") == [(1,)]


def test_sqlite_message_is_kept(schema):
    with pytest.raises(errors.OperationalError) as info:
        schema.fetchone("SELECT * FROM missing_table")
    assert str(info.value) == "no such table: missing_table"
