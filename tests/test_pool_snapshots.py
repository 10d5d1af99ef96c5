"""Reads keep their reader's snapshot while nothing commits (_snapshot.pxi): one-shots, and
each statement of a reader lease.

Each test names what a kept snapshot must never do: show a stale row, outlive a commit, hold
the log when idle (in a lease held across other work too), stick to a connection an ATTACH
uses, break a lease's own transaction, or outlive close().
"""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from processes import in_child

import fastpool
import fastpool.dbapi


def counter_pool(make_pool, **kwargs):
    pool = make_pool(**kwargs)
    pool.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER)")
    pool.execute("INSERT INTO c VALUES (1, 0)")
    return pool


def committer(db, n):
    """A process that commits n = 1..n to c, printing each value once its COMMIT returned
    and then waiting for a line on its stdin."""
    code = textwrap.dedent("""
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1], isolation_level=None)
        for i in range(1, int(sys.argv[2]) + 1):
            db.execute("UPDATE c SET n = ? WHERE id = 1", (i,))
            print(i, flush=True)
            sys.stdin.readline()
        """)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(db), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_one_shots_reuse_the_snapshot_while_nothing_commits(make_pool):
    pool = counter_pool(make_pool, readers=1)
    for _ in range(100):
        assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (0,)
    # The first one-shots check the connection and begin the snapshot; the rest reuse it.
    assert pool.stats()["snapshot_reuses"] >= 97


def test_a_commit_in_another_process_is_seen_by_the_next_one_shot(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=1)
    pool.fetchall("SELECT n FROM c")  # checks the reader: it may keep snapshots
    # Each one-shot made after reading the child's line must see its commit.
    child = committer(tmp_path / "pool.db", 300)
    try:
        for i in range(1, 301):
            assert int(child.stdout.readline()) == i
            assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (i,)
            assert pool.fetchall("SELECT n FROM c") == [(i,)]  # the same snapshot
            child.stdin.write("\n")
            child.stdin.flush()
    finally:
        child.stdin.close()
        assert child.wait(60) == 0
    # Each fetchall reuses the snapshot its fetchone began, unless the pool's sweeper thread
    # (50 ms after a snapshot is kept) took the idle reader in between and ended it: under
    # AddressSanitizer one of 300 did.
    assert pool.stats()["snapshot_reuses"] >= 295


def test_the_pools_own_writes_are_seen_by_the_next_one_shot(make_pool):
    pool = counter_pool(make_pool, readers=1)
    for i in range(1, 201):
        assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (i - 1,)
        if i % 2:
            pool.execute("UPDATE c SET n = ? WHERE id = 1", (i,))
        else:
            with pool.writer() as w:
                w.execute("UPDATE c SET n = ? WHERE id = 1", (i,))
        assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (i,)


@pytest.mark.parametrize("form", ["one-shot", "lease"])
def test_threads_never_read_older_than_the_last_commit_they_saw_return(make_pool, form):
    # A writer publishes each value after its commit returned; a reader that saw value k
    # published before its read began must read k or newer. In leases, each reader thread
    # holds one for a run of statements and pauses in it now and then, and the writer pauses
    # past the sweeper's 50 ms: sweeps end kept snapshots between the statements of leases
    # in use (with the GIL off, while their holders run).
    pool = counter_pool(make_pool, readers=3)
    published = [0]
    stop = threading.Event()
    stale = []

    def writer():
        for i in range(1, 3001):
            pool.execute("UPDATE c SET n = ? WHERE id = 1", (i,))
            published[0] = i
            if form == "lease" and i % 100 == 0:
                time.sleep(0.06)
        stop.set()

    def check(read):
        seen = published[0]
        (n,) = read("SELECT n FROM c WHERE id = 1")
        if n < seen:
            stale.append((seen, n))

    def reader():
        while not stop.is_set():
            if form == "one-shot":
                check(pool.fetchone)
                continue
            with pool.reader() as r:
                for k in range(20):
                    check(r.fetchone)
                    if k == 10:
                        time.sleep(0.001)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not stale, stale[:5]
    assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (3000,)


def test_a_lease_after_one_shots_sees_every_commit(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=1)
    keep_snapshots(pool, 1)
    other = fastpool.dbapi.connect(tmp_path / "pool.db", isolation_level=None)
    other.execute("UPDATE c SET n = 1")
    with pool.reader() as r:
        assert r.fetchone("SELECT n FROM c") == (1,)
        other.execute("UPDATE c SET n = 2")
        assert r.fetchone("SELECT n FROM c") == (2,)  # statement by statement, as before
    other.close()


def test_a_leases_statements_reuse_the_snapshot_while_nothing_commits(make_pool):
    pool = counter_pool(make_pool, readers=1)
    for _ in range(10):
        with pool.reader() as r:
            for _ in range(10):
                assert r.fetchone("SELECT n FROM c WHERE id = 1") == (0,)
    # The first statement checks the connection and begins the snapshot; the rest reuse it,
    # across leases too.
    assert pool.stats()["snapshot_reuses"] >= 97


def test_a_lease_sees_another_processs_commit_at_its_next_statement(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=1)
    child = committer(tmp_path / "pool.db", 200)
    try:
        with pool.reader() as r:
            assert r.fetchone("SELECT n FROM c WHERE id = 1") == (0,)
            for i in range(1, 201):
                assert int(child.stdout.readline()) == i
                assert r.fetchone("SELECT n FROM c WHERE id = 1") == (i,)
                cur = r.execute("SELECT n FROM c")
                assert cur.fetchall() == [(i,)]
                child.stdin.write("\n")
                child.stdin.flush()
    finally:
        child.stdin.close()
        assert child.wait(60) == 0


def test_a_lease_transaction_reads_one_snapshot_then_the_newest(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=1)
    other = fastpool.dbapi.connect(tmp_path / "pool.db", isolation_level=None)
    with pool.reader() as r:
        assert r.fetchone("SELECT n FROM c") == (0,)
        other.execute("UPDATE c SET n = 1")
        with r.transaction():
            # BEGIN sees the commit that returned before it, and nothing after.
            assert r.fetchone("SELECT n FROM c") == (1,)
            other.execute("UPDATE c SET n = 2")
            assert r.fetchone("SELECT n FROM c") == (1,)
        assert r.fetchone("SELECT n FROM c") == (2,)
    other.close()


def test_an_idle_lease_does_not_hold_the_log(make_pool, tmp_path, until):
    # A lease held across other work (an HTTP call, a slow render) keeps no snapshot in the
    # log for long: the sweeper thread ends it between the lease's statements.
    pool = counter_pool(make_pool, readers=1)
    other = fastpool.dbapi.connect(tmp_path / "pool.db", isolation_level=None, timeout=0)
    other.execute("PRAGMA synchronous = off")
    with pool.reader() as r:
        assert r.fetchone("SELECT n FROM c") == (0,)
        other.execute("UPDATE c SET n = 1")

        def truncated():
            return other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() == (0, 0, 0)

        until(truncated, timeout=10, what="the idle lease's snapshot to end")
        assert os.path.getsize(tmp_path / "pool.db-wal") == 0
        assert r.fetchone("SELECT n FROM c") == (1,)
        assert pool.stats()["readers_in_use"] == 1
    other.close()


def keep_snapshots(pool, readers):
    # Every reader checked, then keeping one (the ring hands the readers out in turn).
    for _ in range(3 * readers):
        pool.fetchone("SELECT n FROM c")
    assert pool.stats()["snapshot_reuses"] >= readers


def test_an_idle_pool_does_not_hold_another_processs_log(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=2)
    other = fastpool.dbapi.connect(tmp_path / "pool.db", isolation_level=None, timeout=0)
    other.execute("PRAGMA synchronous = off")
    # Kept snapshots are in the log, so a TRUNCATE right after cannot finish. Right after:
    # within the sweeper's 50 ms, which a loaded machine may overrun now and then, so
    # seeing it once in a few tries is enough.
    blocked = 0
    for i in range(20):
        keep_snapshots(pool, 2)
        other.execute("UPDATE c SET n = ?", (i,))
        blocked += other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    assert blocked > 0
    # ... and the pool's sweeper thread ends them once idle (SNAPSHOT_IDLE_NS, 50 ms).
    keep_snapshots(pool, 2)
    time.sleep(0.3)
    assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() == (0, 0, 0)
    assert os.path.getsize(tmp_path / "pool.db-wal") == 0
    other.close()


def test_a_checkpoint_ends_idle_readers_snapshots_first(make_pool, tmp_path):
    # No busy wait: the TRUNCATE must find the readers out of the log at once, not after
    # the sweeper thread's 50 ms.
    pool = counter_pool(make_pool, readers=2, pragmas={"busy_timeout": 0})
    keep_snapshots(pool, 2)
    assert pool.checkpoint("truncate") == (0, 0)
    assert os.path.getsize(tmp_path / "pool.db-wal") == 0


def wal_sequence(wal) -> int:
    """The WAL header's checkpoint sequence number: it goes up each time the log rewinds."""
    with open(wal, "rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


def test_a_writer_rewinds_a_caught_up_log_past_idle_readers_snapshots(make_pool, tmp_path):
    # Readers keep snapshots on read marks in the log; once a checkpoint has copied all of
    # it, the writer's checkout ends them, so that its commit rewinds the log instead of
    # appending to it. (The sweeper thread would end them too, 50 ms later: every try here
    # runs well within that on a quiet machine.)
    pool = counter_pool(make_pool, readers=2)
    other = fastpool.dbapi.connect(tmp_path / "pool.db", isolation_level=None, timeout=0)
    wal = tmp_path / "pool.db-wal"
    rewound = 0
    for i in range(20):
        pool.execute("UPDATE c SET n = ?", (i,))
        keep_snapshots(pool, 2)
        busy, log, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, copied) == (0, log), "the readers' marks allow a full copy"
        before = wal_sequence(wal)
        with pool.writer() as w:
            w.execute("UPDATE c SET n = n + 1")
        rewound += wal_sequence(wal) > before
    other.close()
    assert rewound == 20


def test_an_attached_database_turns_snapshots_off_on_that_reader(make_pool, tmp_path):
    aux = fastpool.dbapi.connect(tmp_path / "aux.db", isolation_level=None)
    aux.execute("PRAGMA journal_mode = wal")
    aux.execute("CREATE TABLE a (n INTEGER)")
    aux.execute("INSERT INTO a VALUES (0)")
    pool = counter_pool(make_pool, readers=1)
    keep_snapshots(pool, 1)  # on main
    with pool.reader() as r:
        r.execute(f"ATTACH DATABASE '{tmp_path / 'aux.db'}' AS aux")
    for i in range(1, 50):
        aux.execute("UPDATE a SET n = ?", (i,))  # commits main's header never shows
        assert pool.fetchone("SELECT n FROM aux.a") == (i,)
    aux.close()


def test_a_rollback_journal_pool_keeps_no_snapshot(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=2, pragmas={"journal_mode": "delete"})
    for i in range(50):
        assert pool.fetchone("SELECT n FROM c") == (i,)
        pool.execute("UPDATE c SET n = n + 1")  # a kept SHARED lock would make this fail
    assert pool.stats()["snapshot_reuses"] == 0
    assert not os.path.exists(tmp_path / "pool.db-shm")


def test_close_ends_kept_snapshots_and_the_log_goes(make_pool, tmp_path):
    pool = counter_pool(make_pool, readers=2)
    keep_snapshots(pool, 2)
    pool.close()
    # The last connection to close checkpoints and deletes the log: only if no statement
    # (a kept snapshot's included) was left to keep the handle open as a zombie.
    assert not os.path.exists(tmp_path / "pool.db-wal")


def test_async_one_shots_reuse_and_stay_fresh(tmp_path):
    async def main():
        async with fastpool.AsyncPool(tmp_path / "a.db", readers=1) as pool:
            await pool.execute("CREATE TABLE c (n INTEGER)")
            await pool.execute("INSERT INTO c VALUES (0)")
            other = fastpool.dbapi.connect(tmp_path / "a.db", isolation_level=None)
            for i in range(1, 101):
                assert await pool.fetchone("SELECT n FROM c") == (i - 1,)
                assert await pool.fetchone("SELECT n FROM c") == (i - 1,)
                other.execute("UPDATE c SET n = ?", (i,))
            other.close()
            return pool.stats()["snapshot_reuses"]

    assert asyncio.run(main()) >= 90


def test_a_forked_child_reads_fresh_and_the_parent_sees_its_commits(make_pool):
    pool = counter_pool(make_pool, readers=2)
    keep_snapshots(pool, 2)

    def child():
        for i in range(1, 51):
            pool.execute("UPDATE c SET n = ?", (i,))
            assert pool.fetchone("SELECT n FROM c") == (i,)
            assert pool.fetchone("SELECT n FROM c") == (i,)
        assert pool.stats()["snapshot_reuses"] > 0

    assert in_child(child) == 0
    assert pool.fetchone("SELECT n FROM c") == (50,)
    assert pool.fetchone("SELECT n FROM c") == (50,)


def sweeper_threads():
    return [t for t in threading.enumerate() if t.name == "fastpool-snapshot-sweeper"]


def test_the_sweeper_is_a_daemon_thread_that_ends_with_close(make_pool, until):
    before = set(sweeper_threads())
    pool = counter_pool(make_pool, readers=2)
    mine = [t for t in sweeper_threads() if t not in before]
    assert len(mine) == 1 and mine[0].daemon, "one daemon sweeper per pool"
    keep_snapshots(pool, 2)
    pool.close()
    until(lambda: not mine[0].is_alive(), what="the sweeper thread to end")


def test_a_pool_without_wal_starts_no_sweeper(make_pool):
    before = set(sweeper_threads())
    make_pool(readers=2, pragmas={"journal_mode": "delete"})
    assert set(sweeper_threads()) == before
