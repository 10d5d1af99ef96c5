"""Pool: leases, transactions, savepoints, read-only readers, stats, :memory: and bad input.

Single-threaded behaviour; threads, timeouts and close are in test_pool_concurrency.py, leaks,
recycling and fork in test_pool_lifecycle.py, the WAL bound in test_pool_wal.py.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading

import pytest

import fastpool
from fastpool import errors

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"


@pytest.fixture
def pool(make_pool):
    pool = make_pool(readers=2)
    pool.execute(SCHEMA)
    return pool


def count(pool) -> int:
    return pool.fetchone("SELECT count(*) FROM t")[0]


# -- basics ----------------------------------------------------------------------------------


def test_one_shots_and_leases(pool):
    cur = pool.execute("INSERT INTO t(v) VALUES (?)", ("a",))
    assert cur.rowcount == 1 and cur.lastrowid == 1
    cur = pool.executemany("INSERT INTO t(v) VALUES (?)", [("b",), ("c",)])
    assert cur.rowcount == 2
    assert pool.fetchone("SELECT v FROM t WHERE id = ?", (2,)) == ("b",)
    assert pool.fetchall("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
    # RETURNING rows come back from the one-shot, already fetched.
    cur = pool.execute("INSERT INTO t(v) VALUES ('d') RETURNING id, v")
    assert cur.fetchall() == [(4, "d")]
    with pool.reader() as r:
        assert r.kind == "reader"
        assert r.fetchall("SELECT v FROM t WHERE id < :n ORDER BY id", {"n": 3}) == [
            ("a",),
            ("b",),
        ]
        cur = r.execute("SELECT id FROM t ORDER BY id")
        assert cur.description[0][0] == "id"
        assert [row[0] for row in cur] == [1, 2, 3, 4]
    with pool.writer() as w:
        assert w.kind == "writer" and w.in_transaction
        w.executescript("UPDATE t SET v = upper(v); DELETE FROM t WHERE id = 4")
    assert pool.fetchall("SELECT v FROM t ORDER BY id") == [("A",), ("B",), ("C",)]


def test_row_factory(make_pool):
    pool = make_pool(row_factory=fastpool.Row)
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('x')")
    row = pool.fetchone("SELECT id, v FROM t")
    assert row["v"] == "x" and row[0] == 1


def test_default_pragmas(pool):
    with pool.writer() as w:
        assert w.fetchone("PRAGMA journal_mode") == ("wal",)
        assert w.fetchone("PRAGMA synchronous") == (1,)
        assert w.fetchone("PRAGMA foreign_keys") == (1,)
        assert w.fetchone("PRAGMA journal_size_limit") == (64 * 1024 * 1024,)
    with pool.reader() as r:
        assert r.fetchone("PRAGMA foreign_keys") == (1,)


def test_pragmas_override_the_defaults(make_pool):
    pool = make_pool(pragmas={"synchronous": "full", "cache_size": -1000})
    with pool.writer() as w:
        assert w.fetchone("PRAGMA synchronous") == (2,)
        assert w.fetchone("PRAGMA cache_size") == (-1000,)
    with pool.reader() as r:
        assert r.fetchone("PRAGMA cache_size") == (-1000,)


# -- use after return ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reader", "writer"])
def test_a_lease_is_dead_after_return(pool, kind):
    pool.executemany("INSERT INTO t(v) VALUES (?)", [(str(i),) for i in range(10)])
    with getattr(pool, kind)() as lease:
        cur = lease.execute("SELECT id FROM t ORDER BY id")
        assert cur.fetchone() == (1,)  # half-read
    assert lease.closed and "returned" in repr(lease)
    calls = [
        lambda: lease.fetchone("SELECT 1"),
        lambda: lease.fetchall("SELECT 1"),
        lambda: lease.execute("SELECT 1"),
        lambda: lease.executemany("INSERT INTO t(v) VALUES (?)", [("x",)]),
        lambda: lease.executescript("SELECT 1"),
        lambda: lease.transaction(),
        lambda: lease.commit(),
        lambda: lease.rollback(),
        lambda: lease.interrupt(),
        lambda: lease.in_transaction,
        lambda: lease.__enter__(),
    ]
    for call in calls:
        with pytest.raises(errors.InterfaceError, match=f"pool.{kind}()"):
            call()
    # The cursor it made died with it, even with rows left.
    for call in (cur.fetchone, cur.fetchall, lambda: cur.fetchmany(2), lambda: next(cur)):
        with pytest.raises(errors.InterfaceError, match="returned to the pool"):
            call()
    # Returning again is a no-op, whichever way.
    lease.close()
    lease.close()
    assert lease.__exit__(None, None, None) is False
    st = pool.stats()
    assert st["readers_in_use"] == 0 and not st["writer_busy"]


def test_lease_close_is_idempotent_and_frees_the_slot(make_pool):
    pool = make_pool(readers=1, acquisition_timeout=1)
    lease = pool.reader()
    assert pool.stats()["readers_in_use"] == 1
    lease.close()
    lease.close()
    assert pool.stats()["readers_in_use"] == 0
    with pool.reader() as again:  # the one reader is free again, exactly once
        assert again.fetchone("SELECT 1") == (1,)
        assert pool.stats()["readers_idle"] == 0
    w = pool.writer()
    w.close()
    w.close()
    assert not pool.stats()["writer_busy"]


def test_a_cursor_of_a_one_shot_write_outlives_its_lease(pool):
    cur = pool.execute("INSERT INTO t(v) VALUES ('a'), ('b') RETURNING v")
    with pool.writer():
        pass  # the writer was returned and lent again since
    assert cur.fetchall() == [("a",), ("b",)]


# -- writer transactions ---------------------------------------------------------------------


def test_writer_commits_on_clean_exit_and_rolls_back_on_exception(pool):
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('kept')")
    with pytest.raises(RuntimeError), pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('lost')")
        raise RuntimeError("boom")
    assert pool.fetchall("SELECT v FROM t") == [("kept",)]
    assert not pool.stats()["writer_busy"]
    with pool.writer() as w:
        assert w.in_transaction  # a fresh BEGIN IMMEDIATE, not the rolled-back one


def test_writer_commit_and_rollback_inside_the_lease(pool):
    with pool.writer() as w:
        w.execute("INSERT INTO t(id, v) VALUES (1, 'one')")
        w.commit()
        assert w.in_transaction  # the next transaction has begun
        # Committed for real: a reader sees it while the lease is still out.
        assert pool.fetchone("SELECT v FROM t WHERE id = 1") == ("one",)
        w.execute("INSERT INTO t(id, v) VALUES (2, 'two')")
        w.rollback()
        assert w.in_transaction
        w.execute("INSERT INTO t(id, v) VALUES (3, 'three')")
        assert pool.fetchone("SELECT count(*) FROM t WHERE id = 3") == (0,)  # not yet
    assert pool.fetchall("SELECT id FROM t ORDER BY id") == [(1,), (3,)]


def test_integrity_error_rolls_back_the_whole_block(pool):
    pool.execute("INSERT INTO t(id, v) VALUES (1, 'x')")
    with pytest.raises(errors.IntegrityError), pool.writer() as w:
        w.execute("INSERT INTO t(id, v) VALUES (2, 'y')")
        w.execute("INSERT INTO t(id, v) VALUES (1, 'dup')")
    assert pool.fetchall("SELECT id FROM t") == [(1,)]


def test_nested_writer_is_a_savepoint(pool):
    with pool.writer() as outer:
        outer.execute("INSERT INTO t(v) VALUES ('outer-1')")
        with pytest.raises(ValueError), pool.writer() as inner:
            assert inner.kind == "writer savepoint"
            inner.execute("INSERT INTO t(v) VALUES ('inner-failed')")
            raise ValueError("only the inner part is undone")
        with pool.writer() as inner:
            inner.execute("INSERT INTO t(v) VALUES ('inner-ok')")
            # one-shot execute on the writer's own thread joins its transaction
            pool.execute("INSERT INTO t(v) VALUES ('one-shot')")
        outer.execute("INSERT INTO t(v) VALUES ('outer-2')")
        assert pool.stats()["checkouts"] >= 1
        # Nothing is visible to readers before the outer block commits.
        assert count(pool) == 0
    assert [v for (v,) in pool.fetchall("SELECT v FROM t ORDER BY id")] == [
        "outer-1",
        "inner-ok",
        "one-shot",
        "outer-2",
    ]


def test_outer_failure_undoes_released_savepoints(pool):
    with pytest.raises(KeyError), pool.writer():
        with pool.writer() as inner:
            inner.execute("INSERT INTO t(v) VALUES ('inner')")
        raise KeyError("outer fails")
    assert count(pool) == 0


def test_writer_transaction_is_a_savepoint(pool):
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('a')")
        with pytest.raises(ZeroDivisionError), w.transaction():
            w.execute("INSERT INTO t(v) VALUES ('b')")
            1 / 0  # noqa: B018
        with w.transaction():
            w.execute("INSERT INTO t(v) VALUES ('c')")
    assert pool.fetchall("SELECT v FROM t ORDER BY id") == [("a",), ("c",)]


def test_savepoint_lease_is_dead_after_its_block(pool):
    with pool.writer():
        with pool.writer() as inner:
            pass
        with pytest.raises(errors.InterfaceError):
            inner.execute("INSERT INTO t(v) VALUES ('x')")


def test_closing_a_writer_with_changes_warns_and_rolls_back(pool):
    w = pool.writer()
    w.execute("INSERT INTO t(v) VALUES ('x')")
    with pytest.warns(ResourceWarning, match="uncommitted changes"):
        w.close()
    assert count(pool) == 0
    assert not pool.stats()["writer_busy"]


# -- readers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda r: r.execute("INSERT INTO t(v) VALUES ('x')"),
        lambda r: r.executemany("INSERT INTO t(v) VALUES (?)", [("x",)]),
        lambda r: r.executescript("CREATE TABLE u(x)"),
        lambda r: r.fetchone("UPDATE t SET v = 'y' RETURNING id"),
    ],
)
def test_writing_through_a_reader_says_to_use_the_writer(pool, write):
    pool.execute("INSERT INTO t(v) VALUES ('a')")
    with pool.reader() as r:
        with pytest.raises(errors.OperationalError, match=r"pool\.writer\(\)") as info:
            write(r)
        assert info.value.sqlite_errorname.startswith("SQLITE_READONLY")
        assert r.fetchone("SELECT v FROM t") == ("a",)  # the reader is fine afterwards
    with pytest.raises(errors.OperationalError, match=r"pool\.writer\(\)"):
        pool.fetchone("DELETE FROM t RETURNING id")
    assert pool.fetchall("SELECT v FROM t") == [("a",)]


def test_reader_transaction_is_one_snapshot(pool):
    pool.execute("INSERT INTO t(v) VALUES ('a')")
    with pool.reader() as r:
        with r.transaction():
            assert r.in_transaction
            before = r.fetchone("SELECT count(*) FROM t")[0]
            # Another thread commits meanwhile, on the writer.
            writer = threading.Thread(target=pool.execute, args=("INSERT INTO t(v) VALUES ('b')",))
            writer.start()
            writer.join(10)
            assert pool.fetchone("SELECT count(*) FROM t") == (2,)  # another reader sees it
            assert r.fetchone("SELECT count(*) FROM t")[0] == before == 1
            assert r.fetchall("SELECT v FROM t") == [("a",)]
        assert not r.in_transaction
        assert r.fetchone("SELECT count(*) FROM t") == (2,)


def test_reader_returned_in_a_transaction_is_rolled_back_with_a_warning(make_pool):
    pool = make_pool(readers=1)
    pool.execute(SCHEMA)
    lease = pool.reader()
    lease.execute("BEGIN")
    lease.fetchone("SELECT count(*) FROM t")
    assert lease.in_transaction
    with pytest.warns(ResourceWarning, match="open transaction"):
        lease.close()
    with pool.reader() as r:  # the same, only, reader connection
        assert not r.in_transaction
    # The same through the context manager.
    with pytest.warns(ResourceWarning, match="open transaction"), pool.reader() as r:
        r.executescript("BEGIN")
    with pool.reader() as r:
        assert not r.in_transaction


def test_returning_a_reader_resets_its_cursors_so_no_snapshot_is_pinned(make_pool, tmp_path):
    # A short busy_timeout: the control checkpoint below must fail fast, not in 5 s.
    pool = make_pool(readers=1, pragmas={"busy_timeout": 200})
    pool.execute(SCHEMA)
    pool.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 100,) for _ in range(500)])
    wal = tmp_path / "pool.db-wal"

    lease = pool.reader()
    cur = lease.execute("SELECT v FROM t")
    assert cur.fetchone() is not None  # half-read: its read transaction is open
    pool.executemany("INSERT INTO t(v) VALUES (?)", [("y",) for _ in range(50)])
    # Control: while the cursor pins its snapshot, a TRUNCATE checkpoint cannot finish.
    with pytest.raises(errors.BusyError):
        pool.checkpoint("truncate")

    lease.close()  # returns with the cursor still half-read
    assert pool.checkpoint("truncate") == (0, 0)
    assert wal.stat().st_size == 0
    with pytest.raises(errors.InterfaceError):
        cur.fetchone()
    assert count(pool) == 550


def test_checkpoint_modes(pool, tmp_path):
    pool.executemany("INSERT INTO t(v) VALUES (?)", [(str(i),) for i in range(100)])
    for mode in ("passive", "full", "restart"):
        log, done = pool.checkpoint(mode)
        assert log >= done >= 0
    assert pool.checkpoint() == pool.checkpoint("passive")
    assert pool.checkpoint("truncate") == (0, 0)
    assert (tmp_path / "pool.db-wal").stat().st_size == 0
    with pytest.raises(ValueError, match="checkpoint mode"):
        pool.checkpoint("bogus")
    assert not pool.stats()["writer_busy"]


# -- stats ---------------------------------------------------------------------------------

STATS_KEYS = {
    "readers",
    "readers_open",
    "readers_idle",
    "readers_in_use",
    "writer_busy",
    "waiting_readers",
    "waiting_writers",
    "checkouts",
    "waits",
    "wait_time",
    "timeouts",
    "discarded",
    "statement_cache_hits",
    "statement_cache_misses",
    "statement_cache_evictions",
    "closed",
}


def test_stats_keys_and_gauges(make_pool):
    pool = make_pool(readers=3)
    st = pool.stats()
    assert set(st) >= STATS_KEYS
    assert st["readers"] == 3 and st["readers_open"] == 3 and st["readers_idle"] == 3
    assert st["readers_in_use"] == 0 and st["writer_busy"] is False and st["closed"] is False
    assert st["waiting_readers"] == st["waiting_writers"] == 0
    assert st["checkouts"] == st["waits"] == st["timeouts"] == st["discarded"] == 0
    assert st["wait_time"] == 0.0

    r1, r2, w = pool.reader(), pool.reader(), pool.writer()
    st = pool.stats()
    assert st["readers_in_use"] == 2 and st["readers_idle"] == 1 and st["writer_busy"]
    assert st["checkouts"] == 3
    for lease in (r1, r2, w):
        lease.close()
    st = pool.stats()
    assert st["readers_in_use"] == 0 and not st["writer_busy"]

    pool.fetchone("SELECT 1")
    pool.fetchall("SELECT 1")
    pool.execute("CREATE TABLE x(a)")
    pool.executemany("INSERT INTO x VALUES (?)", [(1,)])
    assert pool.stats()["checkouts"] == 7
    assert "closed" not in repr(pool)
    pool.close()
    assert pool.stats()["closed"] is True and "closed" in repr(pool)


def test_stats_statement_cache_counters(make_pool):
    pool = make_pool(readers=1, statement_cache_size=2)
    base = pool.stats()
    for _ in range(5):
        pool.fetchone("SELECT 1")
    st = pool.stats()
    assert st["statement_cache_misses"] - base["statement_cache_misses"] == 1
    assert st["statement_cache_hits"] - base["statement_cache_hits"] == 4
    assert st["statement_cache_evictions"] == base["statement_cache_evictions"]
    for n in range(2, 6):  # four more statements through a cache of two
        pool.fetchone(f"SELECT {n}")
    st2 = pool.stats()
    assert st2["statement_cache_misses"] - st["statement_cache_misses"] == 4
    assert st2["statement_cache_evictions"] - st["statement_cache_evictions"] == 3
    # Writer statements count too.
    pool.execute("CREATE TABLE x(a)")
    for _ in range(3):
        pool.execute("INSERT INTO x VALUES (1)")
    st3 = pool.stats()
    assert st3["statement_cache_hits"] - st2["statement_cache_hits"] == 2


# -- :memory: --------------------------------------------------------------------------------


def test_memory_pool_is_one_database_for_all_its_connections(make_pool):
    pool = make_pool(":memory:", readers=3)
    pool.execute(SCHEMA)
    with pool.writer() as w:
        w.executemany("INSERT INTO t(v) VALUES (?)", [("a",), ("b",)])
    leases = [pool.reader() for _ in range(3)]  # every reader at once, each its own connection
    try:
        for lease in leases:
            assert lease.fetchall("SELECT v FROM t ORDER BY id") == [("a",), ("b",)]
    finally:
        for lease in leases:
            lease.close()
    pool.execute("INSERT INTO t(v) VALUES ('c')")
    assert count(pool) == 3

    other = make_pool(":memory:", readers=1)
    with pytest.raises(errors.OperationalError, match="no such table"):
        other.fetchone("SELECT count(*) FROM t")
    other.execute("CREATE TABLE t(z)")
    assert other.fetchone("SELECT count(*) FROM t") == (0,)
    assert count(pool) == 3


def test_memory_database_goes_away_with_its_pool(make_pool):
    pool = make_pool(":memory:")
    pool.execute(SCHEMA)
    pool.close()
    again = make_pool(":memory:")
    assert again.fetchone("SELECT count(*) FROM sqlite_master") == (0,)


# -- construction and bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"readers": 0}, ValueError, "readers must be >= 1, not 0"),
        ({"readers": -3}, ValueError, "readers must be >= 1"),
        ({"readers": "4"}, TypeError, "readers must be an int, not str"),
        ({"readers": 2.0}, TypeError, "readers must be an int, not float"),
        ({"readers": True}, TypeError, "readers must be an int, not bool"),
        ({"acquisition_timeout": -1}, ValueError, "acquisition_timeout must be >= 0"),
        ({"acquisition_timeout": float("nan")}, ValueError, "acquisition_timeout .*NaN"),
        ({"acquisition_timeout": "5"}, TypeError, "acquisition_timeout must be a number"),
        ({"statement_cache_size": -1}, ValueError, "statement_cache_size must be >= 0"),
        ({"statement_cache_size": None}, TypeError, "statement_cache_size must be an int"),
        ({"readers": 2, "min_readers": 3}, ValueError, r"min_readers \(3\) must not exceed"),
        ({"min_readers": -1}, ValueError, "min_readers must be >= 0"),
        ({"max_lifetime": 0}, ValueError, "max_lifetime must be > 0"),
        ({"idle_timeout": -5}, ValueError, "idle_timeout must be > 0"),
        ({"fifo_after": -0.001}, ValueError, "fifo_after must be >= 0"),
        ({"fifo_after": float("nan")}, ValueError, "fifo_after must be a number, not NaN"),
        ({"fifo_after": None}, TypeError, "fifo_after must be a number of seconds"),
        ({"fifo_after": 1e9}, ValueError, "fifo_after must be <= 3600 seconds"),
        ({"on_connect": 42}, TypeError, "on_connect must be a callable"),
        ({"debug": 1}, TypeError, "debug must be True or False"),
        ({"row_factory": dict}, TypeError, "row_factory must be None"),
        ({"pragmas": [("journal_mode", "wal")]}, TypeError, "pragmas must be a dict"),
        ({"pragmas": {1: 2}}, TypeError, "pragma names must be str"),
        (
            {"pragmas": {"cache size": 1}},
            ValueError,
            "pragma name 'cache size' is not a valid identifier",
        ),
        ({"pragmas": {"x; DROP TABLE t": 1}}, ValueError, "is not a valid identifier"),
        ({"pragmas": {"no_such_pragma": 1}}, ValueError, "unknown pragma 'no_such_pragma'"),
        ({"pragmas": {"cache_sise": 1}}, ValueError, "did you mean 'cache_size'"),
        ({"pragmas": {"user_version": [1]}}, TypeError, "pragma 'user_version': value must"),
        ({"pragmas": {"busy_timeout": "x"}}, TypeError, "busy_timeout must be a number of milli"),
        ({"pragmas": {"busy_timeout": -1}}, ValueError, "busy_timeout must be >= 0"),
        ({"pragmas": {"wal_autocheckpoint": -1}}, ValueError, "wal_autocheckpoint"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, exc, message):
    path = tmp_path / "bad.db"
    with pytest.raises(exc, match=message):
        fastpool.Pool(path, **kwargs)
    # Rejected before touching the file system.
    assert not path.exists()


@pytest.mark.parametrize("path", [None, 42, "", "a\x00b"])
def test_bad_path_arguments(path):
    with pytest.raises((TypeError, ValueError), match="path"):
        fastpool.Pool(path)


def test_missing_directory_fails_at_construction(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(errors.OperationalError, match="does not exist") as info:
        fastpool.Pool(path)
    assert str(path) in str(info.value)


def test_path_under_a_file_fails_at_construction(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "x.db"
    with pytest.raises(errors.OperationalError) as info:
        fastpool.Pool(path)
    assert str(path) in str(info.value)


def test_directory_as_database_fails_at_construction(tmp_path):
    with pytest.raises(errors.OperationalError, match="is a directory") as info:
        fastpool.Pool(tmp_path)
    assert str(tmp_path) in str(info.value)


# A read-only directory (root included, via chattr) is covered in test_faults.py.


def test_not_a_database_fails_at_construction(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite database" * 200)
    with pytest.raises(errors.DatabaseError, match="not a database"):
        fastpool.Pool(path)


def test_failing_on_connect_fails_at_construction(tmp_path):
    def on_connect(conn):
        raise RuntimeError("no thanks")

    with pytest.raises(RuntimeError, match="no thanks"):
        fastpool.Pool(tmp_path / "x.db", on_connect=on_connect)


def test_on_connect_sees_every_connection(make_pool):
    seen = []
    pool = make_pool(readers=3, on_connect=seen.append)
    assert len(seen) == 4
    assert sorted(c.readonly for c in seen) == [False, True, True, True]
    seen[0].create_function("double", 1, lambda x: 2 * x)
    with pool.writer() as w:
        assert w.fetchone("SELECT double(21)") == (42,)


def test_pool_accepts_str_bytes_and_pathlike(make_pool, tmp_path):
    for path in (str(tmp_path / "s.db"), os.fsencode(tmp_path / "b.db"), tmp_path / "p.db"):
        pool = make_pool(path)
        pool.execute("CREATE TABLE x(a)")
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["b.db", "p.db", "s.db"]


def test_files_written_by_the_pool_are_plain_sqlite(make_pool, tmp_path):
    pool = make_pool()
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('visible')")
    # Closed first: with a wheel, the stdlib's sqlite3 is another SQLite copy, which must
    # not share the file with an open pool (tests/test_sqlite_copies.py).
    pool.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "pool.db")) as other:
        assert other.execute("SELECT v FROM t").fetchall() == [("visible",)]


@pytest.mark.parametrize(
    "kwargs",
    [{"path_suffix": "missing/x.db"}, {"pragmas": {"cache_sise": 1}}, {"readers": 0}],
)
def test_a_failed_construction_leaves_nothing_to_warn_about(tmp_path, recwarn, kwargs):
    path = tmp_path / kwargs.pop("path_suffix", "x.db")
    gc.collect()  # leases other tests left in reference cycles warn when collected: not ours
    recwarn.clear()
    with pytest.raises((ValueError, errors.OperationalError)):
        fastpool.Pool(path, **kwargs)
    gc.collect()
    leaked = [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    assert not leaked
