"""Cursor semantics: description, rowcount, lastrowid, fetching, iteration, staleness."""

from __future__ import annotations

import pytest

import fastpool
from fastpool import errors


def test_description_names_the_columns(table):
    cur = table.execute("SELECT id, name AS who, score * 2 FROM t")
    assert cur.description == (
        ("id", "INTEGER", None, None, None, None, None),
        ("who", "TEXT", None, None, None, None, None),
        ("score * 2", None, None, None, None, None, None),  # an expression has no type
    )


def test_description_of_a_query_without_rows(table):
    cur = table.execute("SELECT id, name FROM t WHERE id < 0")
    assert [d[0] for d in cur.description] == ["id", "name"]
    assert cur.fetchone() is None


def test_description_is_none_for_statements_without_columns(table):
    assert table.execute("UPDATE t SET score = 0 WHERE id = 1").description is None
    assert table.execute("CREATE TABLE u(x)").description is None


def test_rowcount(table):
    assert table.execute("INSERT INTO t(name) VALUES ('d')").rowcount == 1
    assert table.execute("INSERT INTO t(name) SELECT name || '2' FROM t").rowcount == 4
    assert table.execute("UPDATE t SET score = 1 WHERE id <= 3").rowcount == 3
    assert table.execute("UPDATE t SET score = 1 WHERE id < 0").rowcount == 0
    assert table.execute("DELETE FROM t WHERE name LIKE '%2'").rowcount == 4
    assert table.execute("REPLACE INTO t(id, name) VALUES (1, 'a')").rowcount == 1
    assert (
        table.execute("WITH ids(i) AS (VALUES (2), (3)) DELETE FROM t WHERE id IN ids").rowcount
        == 2
    )
    assert table.execute("  /* leading comment */ -- and another\n delete from t").rowcount == 2


def test_rowcount_is_minus_one_for_queries(table):
    table.execute("DELETE FROM t WHERE id = 1")  # a DML count that must not leak into the next
    assert table.execute("SELECT * FROM t").rowcount == -1
    assert table.execute("SELECT * FROM t WHERE id < 0").rowcount == -1


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE u(x)",
        "CREATE INDEX t_score ON t(score)",
        "PRAGMA user_version = 5",
        "BEGIN",
        "ANALYZE",
    ],
)
def test_rowcount_is_minus_one_for_non_dml(table, sql):
    # sqlite3_changes() still holds the count of the last DML (3 here): it must not show.
    assert table.execute("UPDATE t SET score = 0").rowcount == 3
    assert table.execute(sql).rowcount == -1


def test_lastrowid(table):
    cur = table.execute("INSERT INTO t(name) VALUES ('d')")
    assert cur.lastrowid == 4
    cur = table.execute("INSERT INTO t(id, name) VALUES (100, 'e')")
    assert cur.lastrowid == 100
    assert table.fetchone("SELECT last_insert_rowid()") == (100,)


def test_executemany(table):
    cur = table.executemany("INSERT INTO t(name, score) VALUES (?, ?)", [("x", 1.0), ("y", 2.0)])
    assert cur.rowcount == 2
    assert cur.lastrowid == 5
    assert cur.description is None
    cur = table.executemany(
        "UPDATE t SET score = :s WHERE name = :n", [{"s": 9, "n": "x"}, {"s": 9, "n": "nope"}]
    )
    assert cur.rowcount == 1
    # Any iterable of parameter sets, including a generator; an empty one changes nothing.
    cur = table.executemany("DELETE FROM t WHERE id = ?", ((i,) for i in (1, 2, 99)))
    assert cur.rowcount == 2
    assert table.executemany("DELETE FROM t WHERE id = ?", []).rowcount == 0
    assert table.fetchall("SELECT name, score FROM t ORDER BY id") == [
        ("c", 3.5),
        ("x", 9.0),
        ("y", 2.0),
    ]


def test_executemany_with_a_select_is_a_programming_error(table):
    with pytest.raises(errors.ProgrammingError, match="executemany"):
        table.executemany("SELECT * FROM t WHERE id = ?", [(1,), (2,)])


def test_executemany_with_returning_is_a_programming_error(table):
    with pytest.raises(errors.ProgrammingError, match="RETURNING"):
        table.executemany("INSERT INTO t(name) VALUES (?) RETURNING id", [("z",)])
    assert table.fetchone("SELECT count(*) FROM t WHERE name = 'z'") == (1,)


def test_executemany_stops_at_the_failing_row(table):
    with pytest.raises(errors.IntegrityError):
        table.executemany("INSERT INTO t(name) VALUES (?)", [("p",), ("a",), ("q",)])
    # Autocommit: rows before the failure are in, the rest never ran.
    assert table.fetchall("SELECT name FROM t WHERE name IN ('p', 'q')") == [("p",)]


def test_executemany_rejects_a_single_parameter_set(table):
    with pytest.raises(TypeError, match="iterable of parameter sets"):
        table.executemany("INSERT INTO t(name) VALUES (?)", "abc")
    with pytest.raises(TypeError, match="iterable of parameter sets"):
        table.executemany("INSERT INTO t(name) VALUES (:n)", {"n": 1})


def test_fetchone_and_exhaustion(table):
    cur = table.execute("SELECT id FROM t ORDER BY id")
    assert cur.fetchone() == (1,)
    assert cur.fetchone() == (2,)
    assert cur.fetchone() == (3,)
    assert cur.fetchone() is None
    assert cur.fetchone() is None
    assert cur.fetchall() == []


def test_fetchmany_sizes(conn):
    conn.executescript("CREATE TABLE n(i)")
    conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(10)])
    cur = conn.execute("SELECT i FROM n ORDER BY i")
    assert cur.arraysize == 1
    assert cur.fetchmany() == [(0,)]
    assert cur.fetchmany(3) == [(1,), (2,), (3,)]
    assert cur.fetchmany(0) == []
    cur.arraysize = 4
    assert cur.fetchmany() == [(4,), (5,), (6,), (7,)]
    assert cur.fetchmany(5) == [(8,), (9,)]
    assert cur.fetchmany(5) == []
    with pytest.raises(ValueError):
        cur.fetchmany(-1)


def test_fetchall_after_partial_fetch(table):
    cur = table.execute("SELECT name FROM t ORDER BY id")
    assert cur.fetchone() == ("a",)
    assert cur.fetchall() == [("b",), ("c",)]


def test_iteration(table):
    cur = table.execute("SELECT id, name FROM t ORDER BY id")
    assert iter(cur) is cur
    assert list(cur) == [(1, "a"), (2, "b"), (3, "c")]
    assert list(cur) == []
    assert [row[0] for row in table.execute("SELECT id FROM t ORDER BY id DESC")] == [3, 2, 1]


def test_connection_fetch_helpers(table):
    assert table.fetchone("SELECT name FROM t WHERE id = ?", (2,)) == ("b",)
    assert table.fetchone("SELECT name FROM t WHERE id = ?", (99,)) is None
    assert table.fetchall("SELECT id FROM t WHERE id < ? ORDER BY id", (3,)) == [(1,), (2,)]
    assert table.fetchall("SELECT id FROM t WHERE id < 0") == []
    # fetchone of a multi-row query returns the first row and leaves nothing pending.
    assert table.fetchone("SELECT id FROM t ORDER BY id") == (1,)
    table.executescript("DROP TABLE t")  # would fail if a statement still read t


def test_fetchone_and_fetchall_can_write(table):
    assert table.fetchone("INSERT INTO t(name) VALUES ('r') RETURNING id, name") == (4, "r")
    assert table.fetchall("DELETE FROM t WHERE id > 2 RETURNING name") in (
        [("c",), ("r",)],
        [("r",), ("c",)],
    )
    assert table.fetchone("UPDATE t SET score = 0") is None
    assert table.fetchone("SELECT count(*) FROM t WHERE score = 0") == (2,)


def test_dml_runs_when_execute_returns(table, open_conn):
    table.execute("INSERT INTO t(name) VALUES ('now')")  # cursor dropped without fetching
    other = open_conn()
    assert other.fetchone("SELECT count(*) FROM t WHERE name = 'now'") == (1,)


def test_two_live_cursors_over_the_same_sql(conn):
    conn.executescript("CREATE TABLE n(i)")
    conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(6)])
    sql = "SELECT i FROM n WHERE i >= ? ORDER BY i"
    size = conn.cache_stats()["size"]
    first = conn.execute(sql, (0,))
    second = conn.execute(sql, (3,))  # the cached statement is in use: this one is fresh
    assert first.fetchone() == (0,)
    assert second.fetchone() == (3,)
    assert first.fetchone() == (1,)
    assert second.fetchall() == [(4,), (5,)]
    assert first.fetchall() == [(2,), (3,), (4,), (5,)]
    # A third, after both finished, reuses the cached statement.
    hits = conn.cache_stats()["hits"]
    assert conn.fetchall(sql, (5,)) == [(5,)]
    assert conn.cache_stats()["hits"] == hits + 1
    assert conn.cache_stats()["size"] == size + 1  # the fresh one was not cached


def test_nested_iteration_over_the_same_sql(conn):
    conn.executescript("CREATE TABLE n(i)")
    conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(3)])
    sql = "SELECT i FROM n ORDER BY i"
    pairs = [(a, b) for (a,) in conn.execute(sql) for (b,) in conn.execute(sql)]
    assert pairs == [(a, b) for a in range(3) for b in range(3)]


def test_cursor_stale_after_close(table):
    cur = table.execute("SELECT id FROM t")
    assert cur.fetchone() == (1,)
    table.close()
    for use in (cur.fetchone, cur.fetchall, lambda: cur.fetchmany(2), lambda: next(cur)):
        with pytest.raises(errors.InterfaceError, match="no longer usable"):
            use()


def test_cursor_stale_after_reset_even_when_exhausted(table):
    cur = table.execute("SELECT id FROM t WHERE id = 1")
    assert cur.fetchall() == [(1,)]
    table.reset()
    with pytest.raises(errors.InterfaceError):
        cur.fetchone()


def test_cursor_close_releases_the_statement(table):
    sql = "SELECT id FROM t ORDER BY id"
    cur = table.execute(sql)
    assert cur.fetchone() == (1,)
    cur.close()
    cur.close()  # idempotent
    assert cur.fetchone() is None  # the remaining rows were discarded
    hits = table.cache_stats()["hits"]
    assert table.fetchall(sql) == [(1,), (2,), (3,)]  # reset on release: starts at the top
    assert table.cache_stats()["hits"] == hits + 1


def test_cursor_context_manager(table):
    sql = "SELECT id FROM t ORDER BY id"
    with table.execute(sql) as cur:
        assert cur.fetchone() == (1,)
    assert cur.fetchone() is None
    # The statement was given back; DROP TABLE would fail with SQLITE_LOCKED otherwise.
    table.executescript("DROP TABLE t")


def test_unfinished_cursor_holds_its_statement(table):
    cur = table.execute("SELECT id FROM t")
    assert cur.fetchone() == (1,)
    with pytest.raises(errors.OperationalError, match="locked"):
        table.executescript("DROP TABLE t")
    del cur  # dropping the cursor releases the statement
    table.executescript("DROP TABLE t")


def test_cursor_connection_attribute(conn):
    assert conn.execute("SELECT 1").connection is conn


def test_failing_step_leaves_the_cursor_finished(table):
    with pytest.raises(errors.IntegrityError):
        table.execute("INSERT INTO t(name) VALUES ('a')")
    # The failed statement was reset and is reusable with good values.
    assert table.execute("INSERT INTO t(name) VALUES (?)", ("fresh",)).rowcount == 1


def test_error_while_fetching(conn):
    conn.create_function("inv", 1, lambda x: 1 // (x - 3))
    cur = conn.execute("SELECT inv(i) FROM (SELECT 1 AS i UNION ALL SELECT 2 UNION ALL SELECT 3)")
    with pytest.raises(errors.OperationalError) as info:
        cur.fetchall()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert cur.fetchone() is None  # the cursor is finished after the error
    assert conn.fetchone("SELECT 1") == (1,)


def test_returning_through_execute(table):
    cur = table.execute("INSERT INTO t(name) VALUES ('r1'), ('r2') RETURNING id, name")
    assert [d[0] for d in cur.description] == ["id", "name"]
    assert cur.fetchall() == [(4, "r1"), (5, "r2")]
    assert table.fetchone("SELECT count(*) FROM t") == (5,)


def test_cursor_cannot_be_created_directly():
    with pytest.raises(TypeError):
        fastpool.Cursor()  # type: ignore[call-arg]
