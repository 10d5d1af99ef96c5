"""Pool connections over their life: leaked leases, broken connections, recycling, fork."""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import time

import pytest
from processes import in_child

import fastpool
from fastpool import errors

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"

# Forking a process that has threads is deprecated on 3.12+; these tests fork on purpose, with
# no thread of theirs running.
pytestmark = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


# -- leaked leases -----------------------------------------------------------------------------


def test_leaked_reader_warns_and_its_slot_is_free_again(make_pool):
    pool = make_pool(readers=1, acquisition_timeout=1)
    pool.execute(SCHEMA)
    with pytest.warns(ResourceWarning, match="reader lease was never returned") as record:
        lease = pool.reader()
        lease.fetchone("SELECT 1")
        del lease
    message = str(record[0].message)
    assert "with pool.reader() as conn:" in message and "debug=True" in message
    st = pool.stats()
    assert st["readers_idle"] == 1 and st["readers_in_use"] == 0
    with pool.reader() as r:  # the pool's only reader, lent again
        assert r.fetchone("SELECT count(*) FROM t") == (0,)


def leak_a_reader_here(pool):
    lease = pool.reader()
    lease.execute("SELECT 1 UNION ALL SELECT 2").fetchone()  # a half-read cursor too
    return None  # dropped without close()


def test_leak_warning_in_debug_mode_says_where(make_pool):
    pool = make_pool(readers=1, debug=True)
    with pytest.warns(ResourceWarning) as record:
        leak_a_reader_here(pool)
    message = str(record[0].message)
    assert "checked out by thread 'MainThread'" in message
    assert "leak_a_reader_here" in message and "test_pool_lifecycle.py" in message
    assert pool.stats()["readers_idle"] == 1
    assert pool.holders == {}
    # The half-read cursor was reset: no snapshot is pinned.
    pool.execute("CREATE TABLE x(a)")
    assert pool.checkpoint("truncate") == (0, 0)


def test_leaked_writer_rolls_back_and_frees_the_writer(make_pool):
    pool = make_pool(acquisition_timeout=1)
    pool.execute(SCHEMA)
    with pytest.warns(ResourceWarning, match="writer lease was never returned"):
        w = pool.writer()
        w.execute("INSERT INTO t(v) VALUES ('never committed')")
        del w
    assert not pool.stats()["writer_busy"]
    with pool.writer() as w:
        assert w.kind == "writer"  # a real checkout, not a savepoint of the leaked one
        w.execute("INSERT INTO t(v) VALUES ('committed')")
    assert pool.fetchall("SELECT v FROM t") == [("committed",)]


def test_lease_leaked_in_a_reference_cycle_is_returned_by_the_collector(make_pool):
    pool = make_pool(readers=1, acquisition_timeout=1)

    class Holder:
        pass

    holder = Holder()
    holder.self = holder
    holder.lease = pool.reader()
    del holder
    with pytest.warns(ResourceWarning, match="never returned"):
        gc.collect()
    assert pool.stats()["readers_idle"] == 1


# -- broken connections are discarded --------------------------------------------------------


def test_reader_closed_underneath_a_lease_is_discarded(make_pool):
    seen = []
    pool = make_pool(readers=1, on_connect=seen.append, acquisition_timeout=1)
    pool.execute(SCHEMA)
    with pool.reader() as r:
        seen[1].close()  # the reader's connection, closed behind the pool's back
        with pytest.raises(errors.InterfaceError, match="closed underneath"):
            r.fetchone("SELECT 1")
    st = pool.stats()
    assert st["discarded"] == 1 and st["readers_idle"] == 1
    assert pool.fetchone("SELECT count(*) FROM t") == (0,)  # a fresh reader
    assert len(seen) == 3 and seen[2].readonly and not seen[2].closed
    # The same through close() instead of the with block.
    r = pool.reader()
    seen[2].close()
    r.close()
    r.close()
    assert pool.stats()["discarded"] == 2
    assert pool.fetchone("SELECT 1") == (1,)


def test_idle_reader_closed_underneath_is_replaced_at_checkout(make_pool):
    seen = []
    pool = make_pool(readers=1, on_connect=seen.append)
    seen[1].close()
    assert pool.fetchone("SELECT 1") == (1,)  # no error for the next user
    assert pool.stats()["discarded"] == 1
    with pool.reader() as r:
        assert r.fetchone("SELECT 2") == (2,)


def test_writer_closed_underneath_a_lease_loses_its_transaction_loudly(make_pool):
    seen = []
    pool = make_pool(on_connect=seen.append)
    pool.execute(SCHEMA)
    with pytest.raises(errors.InterfaceError, match="transaction is lost"), pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('lost')")
        seen[0].close()
    st = pool.stats()
    assert st["discarded"] == 1 and not st["writer_busy"]
    pool.execute("INSERT INTO t(v) VALUES ('kept')")  # a fresh writer
    assert pool.fetchall("SELECT v FROM t") == [("kept",)]
    assert not seen[-1].readonly and not seen[-1].closed
    # An idle writer closed underneath is replaced at checkout.
    seen[-1].close()
    pool.execute("INSERT INTO t(v) VALUES ('again')")
    assert pool.fetchone("SELECT count(*) FROM t") == (2,)


def test_corrupt_pages_discard_the_reader_and_the_pool_keeps_working(make_pool, tmp_path):
    path = tmp_path / "pool.db"
    pool = make_pool(readers=1, pragmas={"busy_timeout": 200})
    pool.execute(SCHEMA)
    pool.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 500,) for _ in range(2000)])
    assert pool.checkpoint("truncate") == (0, 0)  # every page is in the main file now
    good = path.read_bytes()
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"\xa5" * (4096 * 50), 4096 * 10)  # garbage over table pages
        with pytest.raises(errors.DatabaseError) as info:
            pool.fetchall("SELECT v FROM t")
        assert info.value.sqlite_errorname.startswith("SQLITE_CORRUPT")
        assert pool.stats()["discarded"] == 1
        os.pwrite(fd, good, 0)
    finally:
        os.close(fd)
    assert len(pool.fetchall("SELECT v FROM t")) == 2000  # a fresh reader on the good file
    pool.execute("INSERT INTO t(v) VALUES ('after')")
    assert pool.fetchone("SELECT count(*) FROM t") == (2001,)
    assert pool.stats()["discarded"] == 1


# -- recycling -------------------------------------------------------------------------------


def test_max_lifetime_replaces_connections(make_pool):
    opened = []
    pool = make_pool(readers=1, max_lifetime=0.2, on_connect=opened.append)
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('kept')")
    assert pool.fetchone("SELECT v FROM t") == ("kept",)
    assert len(opened) == 2  # young connections are reused
    time.sleep(0.25)
    # Returned after their lifetime: closed, then replaced.
    assert pool.fetchone("SELECT v FROM t") == ("kept",)
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('more')")
    assert pool.fetchone("SELECT count(*) FROM t") == (2,)
    assert len(opened) == 4
    assert opened[0].closed and opened[1].closed
    assert not opened[2].closed and not opened[3].closed
    assert pool.stats()["discarded"] == 0  # recycling is not discarding


def test_idle_readers_beyond_min_readers_are_closed(make_pool):
    opened = []
    pool = make_pool(readers=4, min_readers=1, idle_timeout=0.2, on_connect=opened.append)
    assert pool.stats()["readers_open"] == 1  # only min_readers at first
    leases = [pool.reader() for _ in range(4)]
    assert pool.stats()["readers_open"] == 4
    for lease in leases:
        lease.close()
    assert pool.stats()["readers_open"] == 4
    time.sleep(0.3)
    assert pool.fetchone("SELECT 1") == (1,)  # a returning caller runs the idle sweep
    st = pool.stats()
    assert st["readers_open"] == 1 and st["readers_idle"] == 4
    assert sum(1 for c in opened if c.readonly and not c.closed) == 1
    # Closed readers come back on demand.
    before = len(opened)
    leases = [pool.reader() for _ in range(4)]
    assert pool.stats()["readers_open"] == 4 and len(opened) == before + 3
    for lease in leases:
        assert lease.fetchone("SELECT 1") == (1,)
        lease.close()


def test_min_readers_zero_opens_readers_lazily(make_pool):
    opened = []
    pool = make_pool(readers=2, min_readers=0, on_connect=opened.append)
    assert pool.stats()["readers_open"] == 0 and len(opened) == 1
    assert pool.fetchone("SELECT 1") == (1,)
    assert pool.stats()["readers_open"] == 1


# -- fork ------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child_and_the_parent_is_unaffected(make_pool, tmp_path):
    pool = make_pool(readers=2)
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('parent before')")
    assert pool.fetchone("SELECT count(*) FROM t") == (1,)

    def child():
        assert pool.fetchone("SELECT v FROM t") == ("parent before",)
        pool.execute("INSERT INTO t(v) VALUES ('child one-shot')")
        with pool.writer() as w:
            w.execute("INSERT INTO t(v) VALUES ('child lease')")
        with pool.reader() as r, r.transaction():
            assert r.fetchone("SELECT count(*) FROM t") == (3,)
        assert pool.stats()["readers_in_use"] == 0
        pool.close()  # closes the child's connections only

    assert in_child(child) == 0
    assert pool.fetchall("SELECT v FROM t ORDER BY id") == [
        ("parent before",),
        ("child one-shot",),
        ("child lease",),
    ]
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('parent after')")
    leases = [pool.reader(), pool.reader()]  # both parent readers still work
    for lease in leases:
        assert lease.fetchone("SELECT count(*) FROM t") == (4,)
        lease.close()
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
    assert (tmp_path / "pool.db-wal").exists()  # the child did not tear down the parent's WAL


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_leases_and_cursors_from_before_fork_are_dead_in_the_child(make_pool):
    pool = make_pool(readers=2, acquisition_timeout=5, pragmas={"busy_timeout": 300})
    pool.execute(SCHEMA)
    pool.executemany("INSERT INTO t(v) VALUES (?)", [("committed",)] * 3)
    reader = pool.reader()
    cur = reader.execute("SELECT v FROM t")
    assert cur.fetchone() == ("committed",)
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('uncommitted at fork')")

        def child():
            for call in (
                lambda: w.fetchone("SELECT 1"),
                lambda: w.execute("INSERT INTO t(v) VALUES ('child')"),
                w.commit,
                lambda: reader.fetchone("SELECT 1"),
            ):  # a parent's lease is dead in the child
                with pytest.raises(errors.InterfaceError, match=re.escape("before os.fork()")):
                    call()
            with pytest.raises(errors.InterfaceError):  # and so is a parent's cursor
                cur.fetchone()
            # Leaving the parent's blocks in the child must neither COMMIT nor ROLLBACK them.
            w.__exit__(None, None, None)
            reader.close()
            # The child's copy of the parent's write transaction can only be retired once
            # the parent's transaction is over, and here the parent waits for the child: the
            # child is told so within busy_timeout (tests/test_fork.py has the child that
            # goes on once the parent commits).
            started = time.monotonic()
            with pytest.raises(
                errors.BusyError, match="forked while its parent was inside a write transaction"
            ):
                pool.fetchone("SELECT count(*) FROM t")
            assert time.monotonic() - started < 3

        assert in_child(child) == 0
        # The parent's transaction is still its own, open and uncommitted.
        assert w.in_transaction
        assert pool.fetchone("SELECT count(*) FROM t") == (3,)
        w.execute("INSERT INTO t(v) VALUES ('parent')")
    assert cur.fetchone() == ("committed",)  # the parent's cursor still reads its snapshot
    reader.close()
    assert pool.fetchone("SELECT count(*) FROM t") == (5,)
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)


def _mp_child(pool, n):
    for i in range(n):
        pool.execute("INSERT INTO t(v) VALUES (?)", (f"{os.getpid()}-{i}",))
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES (?)", (f"{os.getpid()}-lease",))
    mine = pool.fetchone("SELECT count(*) FROM t WHERE v LIKE ?", (f"{os.getpid()}-%",))
    if mine != (n + 1,):
        raise SystemExit(3)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_multiprocessing_fork_children_share_the_database(make_pool):
    pool = make_pool(readers=2)
    pool.execute(SCHEMA)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_mp_child, args=(pool, 50)) for _ in range(3)]
    for p in procs:
        p.start()
    for i in range(50):  # the parent writes at the same time
        pool.execute("INSERT INTO t(v) VALUES (?)", (f"parent-{i}",))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert pool.fetchone("SELECT count(*) FROM t") == (3 * 51 + 50,)
    for p in procs:
        assert pool.fetchone("SELECT count(*) FROM t WHERE v LIKE ?", (f"{p.pid}-%",)) == (51,)
    with pool.writer() as w:
        assert w.fetchone("PRAGMA integrity_check") == ("ok",)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_memory_pool_in_a_forked_child_is_a_copy(make_pool):
    pool = make_pool(":memory:", readers=1)
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('before fork')")

    def child():
        assert pool.fetchone("SELECT v FROM t") == ("before fork",)
        pool.execute("INSERT INTO t(v) VALUES ('child only')")
        assert pool.fetchone("SELECT count(*) FROM t") == (2,)

    assert in_child(child) == 0
    assert pool.fetchall("SELECT v FROM t") == [("before fork",)]


def test_pool_garbage_collected_without_close_warns(tmp_path):
    pool = fastpool.Pool(tmp_path / "gc.db", readers=1)
    conns = []
    pool2 = fastpool.Pool(tmp_path / "gc.db", readers=1, on_connect=conns.append)
    with pytest.warns(ResourceWarning, match="without close"):
        del pool2
        gc.collect()
    assert all(c.closed for c in conns)
    pool.close()


def test_a_discarded_connection_is_logged_on_the_fastpool_logger(make_pool, caplog):
    seen = []
    pool = make_pool(readers=1, on_connect=seen.append)
    seen[1].close()  # the idle reader, closed behind the pool's back
    with caplog.at_level("WARNING", logger="fastpool"):
        assert pool.fetchone("SELECT 1") == (1,)
    records = [r for r in caplog.records if r.name == "fastpool"]
    assert len(records) == 1 and records[0].levelname == "WARNING"
    assert "discarded a broken read-only connection" in records[0].getMessage()
    assert repr(seen[1].path) in records[0].getMessage()
