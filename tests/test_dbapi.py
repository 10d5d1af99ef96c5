"""PEP 249: fastpool.connect(), implicit transactions, cursors, type objects, constructors.

fastpool.connect() is fastpool.dbapi.connect(), the stdlib sqlite3 module's connect(): the
sqlite3-specific behaviour has its own tests in test_dbapi_sqlite3.py.
"""

from __future__ import annotations

import datetime
import time
import warnings

import pytest

import fastpool
from fastpool import errors

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, name VARCHAR(20), score REAL, data BLOB, at DATE)"


@pytest.fixture
def connect(tmp_path):
    opened = []

    def factory(**kwargs):
        conn = fastpool.connect(tmp_path / "dbapi.db", **kwargs)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()


@pytest.fixture
def db(connect):
    conn = connect()
    conn.cursor().execute(SCHEMA)
    conn.commit()
    return conn


def test_module_globals():
    assert fastpool.apilevel == "2.0"
    assert fastpool.threadsafety == 1
    assert fastpool.paramstyle == "qmark"


# PEP 249's exception hierarchy: each class and its base.
PEP249_BASES = {
    "Warning": Exception,
    "Error": Exception,
    "InterfaceError": "Error",
    "DatabaseError": "Error",
    "DataError": "DatabaseError",
    "OperationalError": "DatabaseError",
    "IntegrityError": "DatabaseError",
    "InternalError": "DatabaseError",
    "ProgrammingError": "DatabaseError",
    "NotSupportedError": "DatabaseError",
}


def test_exceptions_are_module_and_connection_attributes(db):
    for name, base in PEP249_BASES.items():
        cls = getattr(errors, name)
        assert issubclass(cls, base if isinstance(base, type) else getattr(errors, base))
        assert getattr(fastpool, name) is cls
        assert getattr(fastpool.dbapi, name) is cls
        assert getattr(db, name) is cls
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = db.no_such_thing


def test_a_statement_opens_a_transaction_that_commit_ends(db, connect):
    other = connect()
    assert not db.in_transaction
    cur = db.cursor()
    cur.execute("INSERT INTO t(name) VALUES (?)", ("ada",))
    assert db.in_transaction
    assert other.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert not other.in_transaction  # a query opens no transaction (as in sqlite3)
    db.commit()
    assert not db.in_transaction
    assert other.cursor().execute("SELECT name FROM t").fetchall() == [("ada",)]


def test_rollback_discards_writes_and_schema_changes(db):
    cur = db.cursor()
    cur.execute("INSERT INTO t(name) VALUES ('gone')")
    cur.execute("CREATE TABLE u(x)")
    db.rollback()
    assert cur.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(errors.OperationalError, match="no such table: u"):
        cur.execute("SELECT * FROM u")


def test_queries_outside_a_transaction_see_every_commit(db, connect):
    writer = connect()
    reader = db.cursor()
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.cursor().execute("INSERT INTO t(name) VALUES ('later')")
    writer.commit()
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert not db.in_transaction


def test_a_writing_first_statement_takes_the_write_lock_up_front(db, connect):
    # BEGIN IMMEDIATE: a second writer waits (here: busy timeout 50 ms, then BusyError) as
    # soon as the first has run any writing statement, even one that changed no row.
    db.cursor().execute("UPDATE t SET score = 0 WHERE id < 0")
    other = connect(pragmas={"busy_timeout": 50})
    with pytest.raises(errors.BusyError):
        other.cursor().execute("INSERT INTO t(name) VALUES ('blocked')")
    assert not other.in_transaction  # the failed BEGIN left nothing open
    db.commit()
    other.cursor().execute("INSERT INTO t(name) VALUES ('now')")
    other.commit()


def test_transaction_control_statements_run_as_written(db):
    cur = db.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO t(name) VALUES ('explicit')")
    cur.execute("COMMIT")
    assert not db.in_transaction
    db.executescript("BEGIN; INSERT INTO t(name) VALUES ('script'); ROLLBACK;")
    assert not db.in_transaction
    cur.execute("PRAGMA user_version = 7")  # outside a transaction, as SQLite requires
    assert not db.in_transaction
    assert cur.execute("SELECT name FROM t").fetchall() == [("explicit",)]
    db.commit()
    cur.execute("VACUUM")


def test_commit_and_rollback_without_a_transaction_do_nothing(db):
    db.commit()
    db.rollback()
    assert not db.in_transaction


def test_the_pool_connections_stay_in_autocommit_mode(make_pool):
    pool = make_pool(readers=1)
    with pool.reader() as r:
        r.fetchone("SELECT 1")
        assert not r.in_transaction
    assert fastpool.Connection(":memory:").autocommit


def test_cursor_execute_returns_the_cursor_and_can_be_reused(db):
    cur = db.cursor()
    assert cur.arraysize == 1 and cur.rowcount == -1 and cur.description is None
    assert (
        cur.executemany(
            "INSERT INTO t(name, score) VALUES (?, ?)", [("a", 1.0), ("b", 2.0), ("c", 3.0)]
        )
        is cur
    )
    assert cur.rowcount == 3
    assert cur.execute("SELECT name FROM t ORDER BY id") is cur
    assert cur.fetchone() == ("a",)
    cur.arraysize = 2
    assert cur.fetchmany() == [("b",), ("c",)]
    # Reusing it drops the rest of the previous rows.
    cur.execute("SELECT id FROM t ORDER BY id")
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchall() == [(3,)]
    assert cur.rowcount == -1
    cur.setinputsizes([None, 10])
    cur.setoutputsize(1000)
    cur.setoutputsize(1000, 0)
    assert cur.connection is db
    cur.close()


def test_declared_types_compare_equal_to_the_type_objects(db):
    cur = db.cursor().execute("SELECT id, name, score, data, at, 1 + 1 FROM t")
    # As in sqlite3, a description has no type codes; the type objects compare with the
    # declared types (PRAGMA table_info) by SQLite's affinity rules.
    assert [d[1] for d in cur.description] == [None] * 6
    codes = [row[2] for row in db.execute("PRAGMA table_info(t)")] + [None]
    assert codes == ["INTEGER", "VARCHAR(20)", "REAL", "BLOB", "DATE", None]
    assert codes[0] == fastpool.NUMBER and codes[0] == fastpool.ROWID
    assert codes[1] == fastpool.STRING and codes[1] != fastpool.NUMBER
    assert codes[2] == fastpool.NUMBER and codes[2] != fastpool.ROWID
    assert codes[3] == fastpool.BINARY and codes[3] != fastpool.STRING
    assert codes[4] == fastpool.DATETIME
    assert all(codes[5] != t for t in (fastpool.STRING, fastpool.NUMBER, fastpool.BINARY))
    assert fastpool.STRING != fastpool.NUMBER and fastpool.STRING == fastpool.STRING
    assert repr(fastpool.ROWID) == "fastpool.ROWID"


def test_constructors_make_values_sqlite_understands(db):
    # As in sqlite3: the datetime types and memoryview; dates bind as ISO 8601 text.
    ticks = 1_700_000_000.0
    local = time.localtime(ticks)
    assert fastpool.Date(2024, 2, 29) == datetime.date(2024, 2, 29)
    assert fastpool.Time(7, 5, 3) == datetime.time(7, 5, 3)
    assert fastpool.Timestamp(2024, 2, 29, 7, 5, 3) == datetime.datetime(2024, 2, 29, 7, 5, 3)
    assert fastpool.DateFromTicks(ticks) == datetime.date(*local[:3])
    assert fastpool.TimeFromTicks(ticks) == datetime.time(*local[3:6])
    assert fastpool.TimestampFromTicks(ticks) == fastpool.Timestamp(*local[:6])
    assert fastpool.Binary(bytearray(b"\x00\x01")) == b"\x00\x01"
    with pytest.raises(ValueError):
        fastpool.Date(2023, 2, 29)
    cur = db.cursor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: the default adapter
        cur.execute(
            "INSERT INTO t(at, data) VALUES (?, ?)",
            (fastpool.Date(2024, 2, 29), fastpool.Binary(b"\xff")),
        )
    assert cur.execute("SELECT date(at, '+1 day'), data FROM t").fetchone() == (
        "2024-03-01",
        b"\xff",
    )


def test_connect_validates_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="PathLike"):
        fastpool.connect(42)
    with pytest.raises(ValueError, match=r"unknown pragma|not a valid identifier"):
        fastpool.connect(tmp_path / "x.db", pragmas={"no such": 1})
    with pytest.raises(errors.OperationalError, match="missing"):
        fastpool.connect(tmp_path / "missing" / "x.db")


def test_connect_memory_and_readonly(tmp_path):
    mem = fastpool.connect(":memory:")
    mem.cursor().execute("CREATE TABLE m(x)")
    mem.commit()
    mem.close()
    path = tmp_path / "ro.db"
    rw = fastpool.connect(path)
    rw.cursor().execute("CREATE TABLE r(x)")
    rw.commit()
    ro = fastpool.connect(path, readonly=True)
    with pytest.raises(errors.OperationalError, match="readonly"):
        ro.cursor().execute("INSERT INTO r VALUES (1)")
    ro.close()
    rw.close()


def test_lease_cursors_die_with_the_lease(make_pool):
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t(x)")
    with pool.writer() as w:
        cur = w.cursor()
        cur.execute("INSERT INTO t VALUES (1)")
        assert cur.rowcount == 1
    with pytest.raises(errors.InterfaceError):
        cur.execute("SELECT 1")
    with pool.reader() as r:
        cur = r.cursor()
        assert cur.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(errors.InterfaceError):
        cur.fetchall()
    with pytest.raises(errors.InterfaceError):
        r.cursor()


def test_cursor_on_a_closed_connection(connect):
    # ProgrammingError, as the sqlite3 module raises for a closed database.
    conn = connect()
    cur = conn.cursor()
    conn.close()
    with pytest.raises(errors.ProgrammingError, match="closed database"):
        cur.execute("SELECT 1")
    with pytest.raises(errors.ProgrammingError, match="closed database"):
        conn.cursor()
    with pytest.raises(errors.ProgrammingError, match="closed database"):
        conn.commit()
