"""What a type checker infers from fastpool's public API.

Checked by `python -m mypy --strict src/fastpool tests/typing_examples.py` (in .ci/run): every
assert_type below must hold exactly, so a stub that drifts (a method returning Any where it
returned a Lease, a lost overload, a property turned method) fails the check. The same code
also runs, in tests/test_typing_examples.py, so the examples stay true at runtime too.
"""

from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING, Any, Literal

import fastpool
from fastpool import Cursor, Lease, Pool, Row, Transaction, dbapi

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:

    def assert_type(value: object, _type: object) -> object:
        return value


Description = tuple[tuple[str, str | None, None, None, None, None, None], ...]


def pool_examples(directory: str) -> None:
    path = os.path.join(directory, "typing.db")
    with Pool(path, readers=2, pragmas={"cache_size": -4000}) as pool:
        assert_type(pool, Pool)
        assert_type(pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)"), Cursor)
        assert_type(pool.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")]), Cursor)
        assert_type(pool.fetchone("SELECT name FROM t WHERE id = ?", (1,)), Any)
        assert_type(pool.fetchall("SELECT id FROM t WHERE id < :n", {"n": 10}), list[Any])
        assert_type(pool.stats(), dict[str, Any])
        assert_type(pool.checkpoint("passive"), tuple[int, int])
        assert_type(pool.closed, bool)

        with pool.reader() as reader:
            assert_type(reader, Lease)
            assert_type(reader.fetchone("SELECT 1"), Any)
            assert_type(reader.fetchall("SELECT 1"), list[Any])
            assert_type(reader.kind, Literal["reader", "writer", "writer savepoint"])
            assert_type(reader.in_transaction, bool)
            assert_type(reader.closed, bool)
            cur = reader.execute("SELECT id, name FROM t ORDER BY id")
            assert_type(cur, Cursor)
            assert_type(cur.description, Description | None)
            assert_type(cur.fetchone(), Any)
            assert_type(cur.fetchmany(1), list[Any])
            assert_type(cur.fetchall(), list[Any])
            assert_type(cur.rowcount, int)
            for row in reader.execute("SELECT id FROM t"):
                assert_type(row, Any)

        with pool.writer() as writer:
            assert_type(writer, Lease)
            assert_type(writer.execute("INSERT INTO t(name) VALUES (?)", ("c",)), Cursor)
            assert_type(writer.cursor(), Cursor)
            assert_type(writer.execute("SELECT 1").lastrowid, int)
            with writer.transaction() as inner:  # a savepoint inside the writer's transaction
                assert_type(writer.transaction(), Transaction)
                assert_type(inner, Lease)
            assert_type(writer.commit(), None)

    rows = Pool(path, readers=1, row_factory=Row)
    try:
        row = rows.fetchone("SELECT id, name FROM t WHERE id = ?", (1,))
        assert isinstance(row, Row)
        assert_type(row.keys(), list[str])
        assert_type(len(row), int)
        assert_type(row["name"], Any)
        assert_type("a" in row, bool)
    finally:
        rows.close(timeout=None)


def dbapi_examples(directory: str) -> None:
    conn = fastpool.connect(os.path.join(directory, "dbapi.db"), pragmas={"foreign_keys": True})
    assert_type(conn, dbapi.Connection)
    cur = conn.cursor()
    assert_type(cur, dbapi.Cursor)
    assert_type(cur.execute("CREATE TABLE d(x)"), dbapi.Cursor)
    assert_type(cur.executemany("INSERT INTO d VALUES (?)", [(1,), (None,)]), dbapi.Cursor)
    assert_type(cur.arraysize, int)
    assert_type(conn.commit(), None)
    assert_type(conn.in_transaction, bool)
    assert_type(conn.Error, type[Exception])  # PEP 249's exceptions as attributes
    assert_type(fastpool.Binary(b"\x00"), memoryview)
    assert_type(fastpool.Date(2026, 12, 1), datetime.date)
    assert_type(conn.isolation_level, str | None)
    assert_type(dbapi.complete_statement("SELECT 1;"), bool)
    assert_type(fastpool.apilevel, str)
    assert_type(fastpool.paramstyle, str)
    assert_type(fastpool.threadsafety, int)
    conn.close()


def error_examples(directory: str) -> None:
    with Pool(os.path.join(directory, "errors.db"), readers=1) as pool:
        pool.execute("CREATE TABLE u(x UNIQUE)")
        pool.execute("INSERT INTO u VALUES (1)")
        try:
            pool.execute("INSERT INTO u VALUES (1)")
        except fastpool.IntegrityError as exc:
            assert_type(exc, fastpool.IntegrityError)
            assert_type(exc.sqlite_errorcode, int | None)
            assert_type(exc.sqlite_errorname, str | None)
            assert exc.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
        else:
            raise AssertionError("a duplicate passed a UNIQUE constraint")
    timeout: type[fastpool.PoolError] = fastpool.PoolTimeout
    closed: type[fastpool.Error] = fastpool.PoolClosed
    busy: type[fastpool.OperationalError] = fastpool.BusyError
    assert issubclass(timeout, fastpool.PoolError)
    assert issubclass(closed, fastpool.Error) and issubclass(busy, fastpool.DatabaseError)


def module_examples() -> None:
    assert_type(fastpool.sqlite_version(), str)
    assert_type(fastpool.sqlite_compile_options(), tuple[str, ...])
    assert_type(fastpool.__version__, str)


def run_all(directory: str) -> None:
    pool_examples(directory)
    dbapi_examples(directory)
    error_examples(directory)
    module_examples()
