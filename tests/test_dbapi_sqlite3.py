"""fastpool.dbapi as the stdlib sqlite3 module: the regressions of issue 14, each on real
database files with real threads.

CPython's own test_sqlite3 runs against fastpool.dbapi in scripts/run-cpython-sqlite3-tests.py;
these tests pin what the issue found broken and the semantics fastpool chose on purpose.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
import time
import warnings
import weakref

import pytest

import fastpool
import fastpool.dbapi as sqlite3
from fastpool._core import _write_turn_waiting


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "app.db")


@pytest.fixture
def connect(path):
    opened = []

    def factory(**kwargs):
        conn = sqlite3.connect(path, **kwargs)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()


def test_a_closed_cursor_refuses_to_execute(connect):
    cur = connect().cursor()
    cur.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
        cur.execute("SELECT 42")
    with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
        cur.fetchall()


def test_errors_carry_the_sqlite_error_name(connect):
    # The classes themselves: test_dbapi.py::test_exceptions_are_module_and_connection_attributes
    conn = connect()
    conn.execute("CREATE TABLE u(x UNIQUE)")
    conn.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute("INSERT INTO u VALUES (1)")
    assert caught.value.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"


def test_a_polling_reader_sees_every_commit(connect):
    # Outside a transaction a read holds no snapshot between statements.
    writer, reader = connect(), connect()
    writer.execute("CREATE TABLE t(x)")
    for i in range(1, 6):
        writer.execute("INSERT INTO t VALUES (?)", (i,))
        writer.commit()
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (i,)
        assert not reader.in_transaction


def test_a_reader_does_not_pin_the_wal(connect, path):
    writer = connect(pragmas={"journal_mode": "wal"})
    reader = connect()
    writer.execute("CREATE TABLE t(x)")
    writer.commit()
    for i in range(3000):
        writer.execute("INSERT INTO t VALUES (?)", (i,))
        writer.commit()
        if i % 100 == 0:
            assert reader.execute("SELECT count(*) FROM t").fetchone() == (i + 1,)
    # With the reader's snapshot pinned the log would keep every frame (~37 MB); free, the
    # automatic checkpoint (1000 pages) keeps rewinding it.
    assert os.path.getsize(path + "-wal") < 8 * 1024 * 1024


def test_read_then_write_from_two_connections_never_fails(connect, path):
    # BEGIN; SELECT; UPDATE; COMMIT from 2 threads with their own connections: BEGIN takes
    # the write lock first, so no transaction fails on upgrading a read lock, and no update
    # is lost.
    setup = connect()
    setup.execute("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER)")
    setup.execute("INSERT INTO counter VALUES (1, 0)")
    setup.commit()
    failures = []
    rounds = 200

    def worker():
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            for _ in range(rounds):
                conn.execute("BEGIN")
                (n,) = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()
                conn.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
                conn.commit()
        except Exception as exc:  # the test asserts there are none
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert setup.execute("SELECT n FROM counter").fetchone() == (2 * rounds,)


def test_writers_waiting_for_the_write_lock_are_served_in_arrival_order(connect, path):
    holder = connect()
    holder.execute("CREATE TABLE log(who INTEGER)")
    holder.commit()
    holder.execute("BEGIN")  # BEGIN IMMEDIATE: holds the write lock
    order = []

    def waiter(who):
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        conn.execute("BEGIN")  # waits for its turn
        order.append(who)
        conn.execute("INSERT INTO log VALUES (?)", (who,))
        conn.commit()
        conn.close()

    threads = []
    for who in range(5):
        t = threading.Thread(target=waiter, args=(who,))
        t.start()
        threads.append(t)
        # Queued (its place in line is taken) before the next one starts.
        deadline = time.monotonic() + 30
        while _write_turn_waiting(holder) <= who:
            assert time.monotonic() < deadline, f"writer {who} never queued"
            time.sleep(0.001)
    assert order == []
    holder.commit()
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4]
    assert [r[0] for r in holder.execute("SELECT who FROM log ORDER BY rowid")] == order


def test_a_writer_gets_its_turn_beside_a_thread_that_never_stops_writing(connect, path):
    # The turn is handed on as a pool's writer is: the running thread may take it again
    # while nobody has waited long, but a waiter that has waited fifo_after gets it next.
    # Without that bound the writing thread (which keeps the GIL between its commits) would
    # take the turn back every time, and the other writer would time out.
    setup = connect()
    # WAL, as services run: in the rollback journal (sqlite3's default) a writer that never
    # stops starves *readers* (the stdlib's too: "database is locked" after the timeout).
    setup.execute("PRAGMA journal_mode=wal")
    setup.execute("CREATE TABLE t(who TEXT)")
    setup.commit()
    stop = threading.Event()
    hog_commits = []

    def hog():
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        n = 0
        while not stop.is_set():
            conn.execute("INSERT INTO t VALUES ('hog')")
            conn.commit()
            n += 1
        hog_commits.append(n)
        conn.close()

    thread = threading.Thread(target=hog)
    thread.start()
    try:
        while not hog_commits and setup.execute("SELECT count(*) FROM t").fetchone()[0] < 100:
            time.sleep(0.001)
        other = connect(timeout=10, check_same_thread=False)
        for _ in range(20):
            other.execute("INSERT INTO t VALUES ('other')")
            other.commit()
    finally:
        stop.set()
        thread.join()
    counts = dict(setup.execute("SELECT who, count(*) FROM t GROUP BY who").fetchall())
    assert counts == {"hog": hog_commits[0], "other": 20}
    assert _write_turn_waiting(setup) == 0


def test_the_turn_is_handed_on_like_a_pool_writer():
    from fastpool._core import _TURN_FIFO_AFTER_NS
    from fastpool._options import PoolOptions

    assert _TURN_FIFO_AFTER_NS == round(PoolOptions.fifo_after * 1e9) > 0


def test_eight_writer_threads_lose_no_increment_and_nobody_is_left_waiting(path):
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE hot(n INTEGER)")
    setup.execute("INSERT INTO hot VALUES (0)")
    setup.commit()
    per_thread = 300
    failures = []

    def worker():
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        try:
            for _ in range(per_thread):
                conn.execute("BEGIN")
                (n,) = conn.execute("SELECT n FROM hot").fetchone()
                conn.execute("UPDATE hot SET n = ?", (n + 1,))
                conn.commit()
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert setup.execute("SELECT n FROM hot").fetchone() == (8 * per_thread,)
    assert _write_turn_waiting(setup) == 0
    setup.close()


def test_a_waiting_writer_times_out_with_database_is_locked(connect):
    holder = connect()
    holder.execute("CREATE TABLE t(x)")
    holder.execute("INSERT INTO t VALUES (1)")  # opens the write transaction
    other = connect(timeout=0.05)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        other.execute("INSERT INTO t VALUES (2)")
    assert time.monotonic() - started >= 0.04
    assert not other.in_transaction
    holder.commit()
    other.execute("INSERT INTO t VALUES (2)")
    other.commit()


def test_a_user_function_may_run_statements_on_its_own_connection(connect):
    # SQLite allows it and so does sqlite3: the nested call must leave the outer step's GIL
    # hand-off intact, here while another thread keeps asking for the GIL.
    conn = connect()
    conn.execute("CREATE TABLE t(x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(50)])
    conn.commit()

    def at_most(x):
        return conn.execute("SELECT count(*) FROM t WHERE x <= ?", (x,)).fetchone()[0]

    conn.create_function("at_most", 1, at_most)
    stop = threading.Event()
    spins = []

    def spinner():
        while not stop.is_set():
            spins.append(1)
            del spins[:-1]

    other = threading.Thread(target=spinner)
    other.start()
    try:
        rows = conn.execute(
            "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < 20000) "
            "SELECT at_most(i % 50) FROM r"
        ).fetchall()
    finally:
        stop.set()
        other.join()
    assert len(rows) == 20001 and rows[:3] == [(1,), (2,), (3,)] and rows[-1] == (1,)
    assert spins  # the other thread ran meanwhile
    conn.execute("INSERT INTO t SELECT at_most(10)")  # a write whose function reads
    assert conn.in_transaction
    conn.commit()
    assert conn.execute("SELECT max(rowid), x FROM t").fetchone() == (51, 11)


def test_a_shared_connection_refuses_a_second_thread_during_a_call(connect):
    # check_same_thread=False lets a connection move between threads, one call at a time:
    # the handle has no SQLite mutex, so a second thread mid-call gets InterfaceError.
    conn = connect(check_same_thread=False)
    inside, release = threading.Event(), threading.Event()

    def hold(x):
        inside.set()
        release.wait(10)
        return x

    conn.create_function("hold", 1, hold)
    idle = conn.cursor()
    result = []
    runner = threading.Thread(
        target=lambda: result.append(conn.execute("SELECT hold(7)").fetchone())
    )
    runner.start()
    try:
        assert inside.wait(10)
        for attempt in (
            lambda: conn.execute("SELECT 1"),
            idle.close,
            lambda: conn.create_function("f", 0, int),
            conn.commit,
        ):
            with pytest.raises(sqlite3.InterfaceError, match="another thread"):
                attempt()
        assert conn.in_transaction is False  # reading the state is fine
    finally:
        release.set()
        runner.join()
    assert result == [(7,)]
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_create_table_then_close_without_commit_keeps_the_table(connect, path):
    # As in sqlite3: DDL opens no transaction, so it is not rolled back by close(); an
    # INSERT opens one, which close() rolls back.
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kept(x)")
    conn.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO kept VALUES (1)")
    conn.close()
    again = connect()
    assert again.execute("SELECT count(*) FROM kept").fetchone() == (0,)


@pytest.fixture
def default_adapters():
    """The module's own date/datetime adapters and converters, as after import: importing
    fastpool.django (another test may have) registers Django's over them, as Django does on
    the stdlib's sqlite3. Restored afterwards."""
    from fastpool._dbapi_types import register_defaults

    adapters, converters = dict(sqlite3.adapters), dict(sqlite3.converters)
    register_defaults()
    yield
    sqlite3.adapters.clear()
    sqlite3.adapters.update(adapters)
    sqlite3.converters.clear()
    sqlite3.converters.update(converters)


def test_datetime_values_round_trip(connect, default_adapters):
    conn = connect(detect_types=sqlite3.PARSE_DECLTYPES)
    conn.execute("CREATE TABLE e(d date, ts timestamp)")
    day = datetime.date(2026, 12, 3)
    moment = datetime.datetime(2026, 12, 3, 7, 43, 51, 120000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn.execute("INSERT INTO e VALUES (?, ?)", (day, moment))
        row = conn.execute("SELECT d, ts FROM e").fetchone()
    assert row == (day, moment)
    assert conn.execute("SELECT typeof(d), typeof(ts) FROM e").fetchone() == ("text", "text")
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    # The default adapters and converters warn where the running Python's sqlite3 does.
    assert bool(deprecations) == (sys.version_info >= (3, 12))


def test_connect_follows_the_stdlib_defaults(connect, path):
    conn = connect()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
    assert conn.isolation_level == ""
    wal = connect(pragmas={"journal_mode": "wal", "foreign_keys": True})
    assert wal.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert wal.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_connection_cursor_and_row_can_be_subclassed_and_weakly_referenced(connect, path):
    class MyConnection(sqlite3.Connection):
        pass

    class MyCursor(sqlite3.Cursor):
        pass

    class MyRow(sqlite3.Row):
        pass

    conn = sqlite3.connect(path, factory=MyConnection)
    try:
        assert isinstance(conn, MyConnection)
        cur = conn.cursor(MyCursor)
        assert isinstance(cur, MyCursor)
        cur.row_factory = MyRow
        row = cur.execute("SELECT 1 AS one").fetchone()
        assert isinstance(row, MyRow) and row["ONE"] == 1 and row.keys() == ["one"]
        for obj in (conn, cur):
            assert weakref.ref(obj)() is obj
    finally:
        conn.close()


def test_install_as_sqlite3_gives_this_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "sqlite3", raising=False)
    monkeypatch.delitem(sys.modules, "sqlite3.dbapi2", raising=False)
    fastpool.install_as_sqlite3()
    import sqlite3 as imported

    assert imported is sqlite3
    assert imported.connect is fastpool.connect
