"""Connection: opening, pragmas, closing, transactions, interrupt, reset and user functions."""

from __future__ import annotations

import gc
import os
import pathlib
import re
import threading

import pytest

import fastpool
from fastpool import errors

# -- opening ---------------------------------------------------------------------------------


def test_open_read_write_creates_the_file(db_path):
    conn = fastpool.Connection(db_path)
    try:
        assert not conn.closed
        assert not conn.readonly
        assert conn.path == str(db_path)
        conn.executescript("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (?)", (42,))
        assert conn.fetchone("SELECT x FROM t") == (42,)
    finally:
        conn.close()
    assert db_path.is_file()
    # The data is in the file: a new connection sees it.
    again = fastpool.Connection(db_path)
    try:
        assert again.fetchall("SELECT x FROM t") == [(42,)]
    finally:
        again.close()


@pytest.mark.parametrize("kind", ["str", "pathlib", "bytes"])
def test_path_may_be_str_pathlike_or_bytes(tmp_path, kind):
    path = tmp_path / "kinds.db"
    arg = {"str": str(path), "pathlib": pathlib.Path(path), "bytes": os.fsencode(path)}[kind]
    conn = fastpool.Connection(arg)
    try:
        assert conn.path == str(path)
        assert conn.fetchone("SELECT 1") == (1,)
    finally:
        conn.close()
    assert path.is_file()


def test_open_readonly_reads_but_does_not_write(db_path, open_conn):
    writer = open_conn()
    writer.executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    reader = open_conn(readonly=True, pragmas={})
    assert reader.readonly
    assert reader.fetchall("SELECT x FROM t") == [(1,)]
    with pytest.raises(errors.OperationalError, match="readonly") as info:
        reader.execute("INSERT INTO t VALUES (2)")
    assert info.value.sqlite_errorname.startswith("SQLITE_READONLY")
    with pytest.raises(errors.OperationalError):
        reader.executescript("CREATE TABLE u(y)")
    # A failed write leaves the reader usable, and sees the writer's later commits (WAL).
    writer.execute("INSERT INTO t VALUES (3)")
    assert reader.fetchall("SELECT x FROM t ORDER BY x") == [(1,), (3,)]


def test_readonly_does_not_create_a_missing_file(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(errors.OperationalError, match=re.escape(str(path))):
        fastpool.Connection(path, readonly=True)
    assert not path.exists()


def test_open_file_uri(db_path, open_conn):
    conn = open_conn(f"file:{db_path}?mode=rwc")
    conn.executescript("CREATE TABLE t(x); INSERT INTO t VALUES ('via uri')")
    assert db_path.is_file()
    # URI parameters are honoured: mode=ro opens read-only even without readonly=True.
    ro = open_conn(f"file:{db_path}?mode=ro", pragmas={})
    assert ro.fetchone("SELECT x FROM t") == ("via uri",)
    with pytest.raises(errors.OperationalError, match="readonly"):
        ro.execute("DELETE FROM t")


def test_memory_database(open_conn):
    conn = open_conn(":memory:", pragmas={})
    conn.executescript("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.fetchall("SELECT x FROM t") == [(1,)]


def test_missing_directory_names_the_path(tmp_path):
    path = tmp_path / "no-such-dir" / "x.db"
    with pytest.raises(errors.OperationalError, match=re.escape(str(path))) as info:
        fastpool.Connection(path)
    assert "does not exist" in str(info.value)
    assert info.value.sqlite_errorname.startswith("SQLITE_CANTOPEN")
    assert not path.parent.exists()


def test_path_that_is_a_directory(tmp_path):
    with pytest.raises(errors.OperationalError, match=re.escape(str(tmp_path))):
        fastpool.Connection(tmp_path)


def test_not_a_database_is_a_fatal_database_error(tmp_path, open_conn):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is certainly not an SQLite database file" * 100)
    conn = open_conn(path, pragmas={})
    assert not conn.fatal
    with pytest.raises(errors.DatabaseError) as info:
        conn.fetchone("SELECT * FROM sqlite_master")
    assert info.value.sqlite_errorname == "SQLITE_NOTADB"
    assert conn.fatal  # the pool discards such a connection instead of reusing it


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"statement_cache_size": -1}, ValueError, "statement_cache_size"),
        ({"busy_timeout": -1.0}, ValueError, "busy_timeout"),
        ({"autocheckpoint": -5}, ValueError, "autocheckpoint"),
        ({"row_factory": dict}, TypeError, "row_factory"),
        ({"pragmas": [("journal_mode", "wal")]}, TypeError, "pragmas"),
    ],
)
def test_bad_options(db_path, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastpool.Connection(db_path, **kwargs)


def test_nul_in_path(tmp_path):
    with pytest.raises(ValueError, match="NUL"):
        fastpool.Connection(str(tmp_path / "a\x00b.db"))


# -- pragmas ---------------------------------------------------------------------------------


def test_pragmas_are_applied(open_conn):
    conn = open_conn(
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": True,
            "user_version": 7,
            "cache_size": -4096,
            "busy_timeout": 1234,
        }
    )
    assert conn.fetchone("PRAGMA journal_mode") == ("wal",)
    assert conn.fetchone("PRAGMA synchronous") == (1,)  # NORMAL
    assert conn.fetchone("PRAGMA foreign_keys") == (1,)
    assert conn.fetchone("PRAGMA user_version") == (7,)
    assert conn.fetchone("PRAGMA cache_size") == (-4096,)
    # An explicit busy_timeout pragma installs SQLite's own handler with that value.
    assert conn.fetchone("PRAGMA busy_timeout") == (1234,)


def test_pragma_values_are_quoted_safely(open_conn):
    # A str value is an SQL string literal, never spliced in as SQL.
    conn = open_conn(pragmas={"journal_mode": "wal'; DROP TABLE x; --"})
    # SQLite ignores an unknown journal mode and keeps the current one.
    assert conn.fetchone("PRAGMA journal_mode") in {("delete",), ("wal",)}


@pytest.mark.parametrize("name", ["foo bar", "user_version; DROP TABLE t", "", "journal-mode", "é"])
def test_bad_pragma_name_is_a_value_error(db_path, name):
    with pytest.raises(ValueError, match="pragma name"):
        fastpool.Connection(db_path, pragmas={name: 1})


def test_bad_pragma_value(db_path):
    with pytest.raises(TypeError, match="user_version"):
        fastpool.Connection(db_path, pragmas={"user_version": [1]})
    with pytest.raises(ValueError, match="NUL"):
        fastpool.Connection(db_path, pragmas={"journal_mode": "wal\x00"})


def test_failing_pragma_raises_and_leaves_no_open_connection(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database" * 200)
    with pytest.raises(errors.DatabaseError) as info:
        fastpool.Connection(path, pragmas={"journal_mode": "wal"})
    assert info.value.sqlite_errorname == "SQLITE_NOTADB"


# -- closing ---------------------------------------------------------------------------------


def test_close_is_idempotent(conn):
    conn.fetchone("SELECT 1")
    conn.close()
    assert conn.closed
    conn.close()
    assert conn.closed
    assert "closed" in repr(conn)


def test_close_finalizes_cached_and_active_statements(conn):
    conn.fetchone("SELECT 1")
    cur = conn.execute("SELECT 1 UNION ALL SELECT 2")  # holds a statement with a row pending
    conn.close()
    with pytest.raises(errors.InterfaceError, match="no longer usable"):
        cur.fetchone()
    cur.close()  # closing a stale cursor is harmless
    del cur


# Calls that use a connection, by name; the tests below each take the ones they need.
CONNECTION_USES = {
    "fetchone": lambda c: c.fetchone("SELECT 1"),
    "fetchall": lambda c: c.fetchall("SELECT 1"),
    "execute": lambda c: c.execute("SELECT 1"),
    "executemany": lambda c: c.executemany("INSERT INTO t VALUES (?)", [(1,)]),
    "executescript": lambda c: c.executescript("SELECT 1"),
    "create_function": lambda c: c.create_function("g", 0, lambda: 1),
    "reset": lambda c: c.reset(),
    "close": lambda c: c.close(),
    "in_transaction": lambda c: c.in_transaction,
    "total_changes": lambda c: c.total_changes,
}
# The ones that run SQL or change the connection's state.
STATEMENT_USES = [
    "fetchone",
    "fetchall",
    "execute",
    "executemany",
    "executescript",
    "create_function",
    "reset",
]


@pytest.mark.parametrize("use", [*STATEMENT_USES, "in_transaction", "total_changes"])
def test_use_after_close_is_an_interface_error(conn, use):
    conn.close()
    with pytest.raises(errors.InterfaceError, match="closed"):
        CONNECTION_USES[use](conn)


def test_interrupt_after_close_is_harmless(conn):
    conn.close()
    conn.interrupt()


# -- transactions and counters ---------------------------------------------------------------


def test_autocommit_and_explicit_transactions(table, open_conn):
    other = open_conn()
    assert not table.in_transaction
    table.execute("INSERT INTO t(name) VALUES ('autocommitted')")
    assert other.fetchone("SELECT count(*) FROM t WHERE name = 'autocommitted'") == (1,)

    table.executescript("BEGIN IMMEDIATE")
    assert table.in_transaction
    table.execute("INSERT INTO t(name) VALUES ('pending')")
    assert other.fetchone("SELECT count(*) FROM t WHERE name = 'pending'") == (0,)
    table.executescript("COMMIT")
    assert not table.in_transaction
    assert other.fetchone("SELECT count(*) FROM t WHERE name = 'pending'") == (1,)

    table.execute("BEGIN")
    assert table.in_transaction
    table.execute("DELETE FROM t")
    table.execute("ROLLBACK")
    assert not table.in_transaction
    assert table.fetchone("SELECT count(*) FROM t") == (5,)


def test_total_changes(conn):
    assert conn.total_changes == 0
    conn.executescript("CREATE TABLE t(x)")
    assert conn.total_changes == 0
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    assert conn.total_changes == 5
    conn.execute("UPDATE t SET x = x + 1 WHERE x < 2")
    assert conn.total_changes == 7
    conn.fetchall("SELECT * FROM t")
    assert conn.total_changes == 7


def test_executescript_runs_every_statement(conn):
    conn.executescript(
        """
        -- a comment first
        CREATE TABLE a(x);
        CREATE TABLE b(y);
        INSERT INTO a VALUES (1), (2);
        INSERT INTO b SELECT x * 10 FROM a;
        SELECT * FROM a;   /* rows are discarded */
        """
    )
    assert conn.fetchall("SELECT y FROM b ORDER BY y") == [(10,), (20,)]
    conn.executescript("")  # nothing to run
    conn.executescript("  -- only a comment\n")


def test_executescript_stops_at_the_first_error(conn):
    conn.executescript("CREATE TABLE t(x)")
    with pytest.raises(errors.OperationalError, match="syntax error"):
        conn.executescript("INSERT INTO t VALUES (1); SELEC 2; INSERT INTO t VALUES (3)")
    # Autocommit: the statement before the error took effect, the one after never ran.
    assert conn.fetchall("SELECT x FROM t") == [(1,)]


def test_executescript_input_errors(conn):
    with pytest.raises(errors.ProgrammingError, match="NUL"):
        conn.executescript("SELECT 1;\x00SELECT 2")
    with pytest.raises(errors.ProgrammingError, match="surrogate"):
        conn.executescript("SELECT '\udc80'")
    with pytest.raises(TypeError):
        conn.executescript(b"SELECT 1")  # type: ignore[arg-type]


def test_transaction_control_scripts_fail_and_recover_like_any_script(table):
    # BEGIN, COMMIT and ROLLBACK run from statements prepared once: an error leaves each
    # ready for its next use.
    table.executescript("BEGIN")
    with pytest.raises(errors.OperationalError, match="within a transaction"):
        table.executescript("BEGIN")
    assert table.in_transaction
    table.execute("DELETE FROM t")
    table.executescript("ROLLBACK")
    assert not table.in_transaction
    for sql in ("COMMIT", "ROLLBACK"):
        with pytest.raises(errors.OperationalError, match="no transaction is active"):
            table.executescript(sql)
    table.executescript("BEGIN")
    table.execute("DELETE FROM t WHERE id = 1")
    table.executescript("COMMIT")
    assert not table.in_transaction
    assert table.fetchone("SELECT count(*) FROM t") == (2,)


def test_reset_rolls_back_and_reports_an_open_transaction(table):
    assert table.reset() is False
    table.executescript("BEGIN")
    table.execute("DELETE FROM t")
    assert table.reset() is True
    assert not table.in_transaction
    assert table.fetchone("SELECT count(*) FROM t") == (3,)


def test_reset_makes_cursors_stale_and_frees_their_statements(table):
    sql = "SELECT id FROM t ORDER BY id"
    cur = table.execute(sql)
    assert cur.fetchone() == (1,)
    table.reset()
    with pytest.raises(errors.InterfaceError, match="no longer usable"):
        cur.fetchone()
    with pytest.raises(errors.InterfaceError):
        list(cur)
    # The statement went back to the cache, reset: reusing the SQL starts from the top.
    hits = table.cache_stats()["hits"]
    assert table.fetchall(sql) == [(1,), (2,), (3,)]
    assert table.cache_stats()["hits"] == hits + 1


def test_reset_releases_the_read_snapshot(table, open_conn):
    # An unfinished cursor pins a WAL snapshot; after reset() the connection sees new data.
    reader = open_conn()
    cur = reader.execute("SELECT id FROM t")
    assert cur.fetchone() == (1,)
    table.execute("INSERT INTO t(name) VALUES ('new')")
    reader.reset()
    assert reader.fetchone("SELECT count(*) FROM t") == (4,)


# -- interrupt -------------------------------------------------------------------------------


def test_interrupt_from_another_thread_stops_a_long_query(conn, endless_query):
    with endless_query(conn) as query:
        pass  # __exit__ interrupts it
    assert isinstance(query.error, errors.OperationalError)
    assert query.error.sqlite_errorname == "SQLITE_INTERRUPT"
    assert "interrupt" in str(query.error)
    assert not conn.fatal
    # The connection keeps working, and the interrupted statement can run again.
    assert conn.fetchone("SELECT 40 + 2") == (42,)
    assert not conn.in_transaction


def test_interrupt_when_idle_does_not_poison_the_next_call(conn):
    conn.interrupt()
    assert conn.fetchone("SELECT 1") == (1,)


# -- create_function -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "sqltype"),
    [
        (None, "null"),
        (7, "integer"),
        (-(2**63), "integer"),
        (True, "integer"),  # bool is an int: stored as 1
        (2.5, "real"),
        ("héllo 🌍", "text"),
        ("", "text"),
        (b"\x00\xff", "blob"),
        (bytearray(b"ba"), "blob"),
        (memoryview(b"mv"), "blob"),
        (b"", "blob"),
    ],
)
def test_function_results_of_each_type(conn, result, sqltype):
    conn.create_function("f", 0, lambda: result)
    value, kind = conn.fetchone("SELECT f(), typeof(f())")
    assert kind == sqltype
    if isinstance(result, (bytearray, memoryview)):
        expected = bytes(result)
    elif isinstance(result, bool):
        expected = int(result)
    else:
        expected = result
    assert value == expected
    assert type(value) is type(expected)


def test_function_arguments_arrive_as_python_values(conn):
    seen = []

    def capture(*args):
        seen.append(args)
        return len(args)

    conn.create_function("capture", -1, capture)
    assert conn.fetchone("SELECT capture(NULL, 1, 1.5, 'é', x'00ff', ?)", (2**62,)) == (6,)
    assert seen == [(None, 1, 1.5, "é", b"\x00\xff", 2**62)]


def test_function_with_fixed_arity(conn):
    conn.create_function("double", 1, lambda x: x * 2, deterministic=True)
    assert conn.fetchone("SELECT double(21)") == (42,)
    with pytest.raises(errors.OperationalError, match="wrong number of arguments"):
        conn.fetchone("SELECT double(1, 2)")
    # A deterministic function may be used in an index expression.
    conn.executescript("CREATE TABLE t(x); CREATE INDEX t_double ON t(double(x))")


def test_function_that_raises(conn):
    original = ZeroDivisionError("division by zero")

    def boom():
        raise original

    conn.create_function("boom", 0, boom)
    with pytest.raises(errors.OperationalError, match="ZeroDivisionError") as info:
        conn.fetchone("SELECT boom()")
    assert info.value.__cause__ is original
    with pytest.raises(errors.OperationalError) as info:
        conn.execute("SELECT 1 UNION ALL SELECT boom()").fetchall()
    assert info.value.__cause__ is original
    # The next error is not blamed on the old exception.
    with pytest.raises(errors.OperationalError) as info:
        conn.fetchone("SELECT * FROM missing_table")
    assert info.value.__cause__ is None
    assert conn.fetchone("SELECT 1") == (1,)


def test_function_returning_an_unsupported_type(conn):
    conn.create_function("bad", 0, lambda: object())
    with pytest.raises(errors.OperationalError, match="unsupported type") as info:
        conn.fetchone("SELECT bad()")
    assert isinstance(info.value.__cause__, TypeError)
    conn.create_function("huge", 0, lambda: 2**64)
    with pytest.raises(errors.OperationalError) as info:
        conn.fetchone("SELECT huge()")
    assert isinstance(info.value.__cause__, OverflowError)


def test_function_bad_registration(conn):
    with pytest.raises(TypeError, match="callable"):
        conn.create_function("f", 0, 42)
    with pytest.raises(ValueError, match="nargs"):
        conn.create_function("f", 200, len)
    with pytest.raises(ValueError, match="name"):
        conn.create_function("", 0, len)


def test_function_can_be_replaced(conn):
    conn.create_function("f", 0, lambda: 1)
    assert conn.fetchone("SELECT f()") == (1,)
    conn.create_function("f", 0, lambda: 2)
    assert conn.fetchone("SELECT f()") == (2,)


def test_function_keeps_its_callable_alive(conn):
    def make():
        local = [5]
        return lambda: local[0]

    conn.create_function("f", 0, make())
    gc.collect()
    assert conn.fetchone("SELECT f()") == (5,)


@pytest.mark.parametrize("reenter", [*STATEMENT_USES, "close"])
def test_function_calling_back_into_its_connection(conn, reenter):
    conn.executescript("CREATE TABLE t(x)")
    caught = []

    def callback():
        try:
            CONNECTION_USES[reenter](conn)
        except errors.InterfaceError as exc:
            caught.append(exc)
            raise
        return 1

    conn.create_function("callback", 0, callback)
    with pytest.raises(errors.OperationalError) as info:
        conn.fetchall("SELECT callback() FROM (SELECT 1 UNION ALL SELECT 2)")
    assert len(caught) == 1
    assert info.value.__cause__ is caught[0]
    assert "running" in str(caught[0])  # says a call is running on the connection
    # Nothing was torn down under the running statement, and the connection still works.
    assert not conn.closed
    assert conn.fetchone("SELECT 1 + 1") == (2,)
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    assert conn.fetchall("SELECT x FROM t") == [(1,), (2,)]


def test_function_using_a_cursor_of_its_own_connection(conn):
    cur = conn.execute("SELECT 1 UNION ALL SELECT 2")
    errors_seen = []

    def callback(how):
        try:
            if how == "fetch":
                cur.fetchone()
            elif how == "close":
                cur.close()
            else:
                cur.__exit__(None, None, None)
        except errors.InterfaceError as exc:
            errors_seen.append(exc)
            raise
        return 1

    conn.create_function("callback", 1, callback)
    for how in ("fetch", "close", "exit"):
        with pytest.raises(errors.OperationalError):
            conn.fetchone("SELECT callback(?)", (how,))
    assert len(errors_seen) == 3
    # The cursor was left intact: it still yields both of its rows.
    assert cur.fetchall() == [(1,), (2,)]


def test_function_may_use_another_connection(conn, open_conn):
    other = open_conn()
    other.executescript("CREATE TABLE lookup(k, v); INSERT INTO lookup VALUES (1, 'one')")
    conn.create_function(
        "lookup", 1, lambda k: other.fetchone("SELECT v FROM lookup WHERE k = ?", (k,))[0]
    )
    assert conn.fetchone("SELECT lookup(1)") == ("one",)


def test_close_from_another_thread_during_a_call(conn, endless_query):
    # Closing under a running step would free memory SQLite is using: it is refused.
    with endless_query(conn):
        with pytest.raises(errors.InterfaceError, match="running"):
            conn.close()
        assert not conn.closed
    conn.close()
    assert conn.closed


def test_connection_repr(conn, db_path):
    assert repr(conn) == f"<fastpool.Connection {str(db_path)!r} read-write>"


def test_many_connections_to_one_file(open_conn):
    conns = [open_conn() for _ in range(8)]
    conns[0].executescript("CREATE TABLE t(x)")
    for i, c in enumerate(conns):
        c.execute("INSERT INTO t VALUES (?)", (i,))
    assert conns[-1].fetchone("SELECT count(*), sum(x) FROM t") == (8, 28)


def test_connections_in_threads_each_their_own(tmp_path):
    path = tmp_path / "threads.db"
    setup = fastpool.Connection(path, pragmas={"journal_mode": "wal"})
    setup.executescript("CREATE TABLE t(x)")
    setup.close()
    failures = []

    def work(n):
        try:
            c = fastpool.Connection(path, busy_timeout=10.0)
            try:
                for i in range(50):
                    c.execute("INSERT INTO t VALUES (?)", (n * 1000 + i,))
                    assert c.fetchone("SELECT x FROM t WHERE x = ?", (n * 1000 + i,)) == (
                        n * 1000 + i,
                    )
            finally:
                c.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    check = fastpool.Connection(path)
    try:
        assert check.fetchone("SELECT count(*) FROM t") == (200,)
    finally:
        check.close()
