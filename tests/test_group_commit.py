"""Group commit: one-shot writes that wait for the writer run together in one transaction,
and each caller observes what it would have observed alone.

The deterministic tests hold the writer with a lease, queue one-shot writes from threads
until ``pool.stats()["writes_queued"]`` says they are all waiting, then let the writer go:
the first of them leads and runs the rest with its own (``group_commits`` counts it).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import wait_until
from gil_switches import endless_switch_interval, needs_a_gil, start_waiting_thread

import fastpool


@pytest.fixture
def pool(tmp_path):
    p = fastpool.Pool(str(tmp_path / "g.db"), readers=2, group_commit=True)
    p.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    yield p
    p.close()


def queued_behind_a_lease(
    pool, calls: list[Callable[[], Any]], queued: int | None = None, where: str = "writes_queued"
):
    """Run ``calls`` on threads while a writer lease is held; once ``queued`` of them (all but
    the leader, who waits for the writer itself) wait (``pool.stats()[where]``), end the lease.
    Returns each call's result or exception, in order."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    want = len(calls) - 1 if queued is None else queued
    with pool.writer():
        for th in threads:
            th.start()
        wait_until(lambda: pool.stats()[where] >= want, what=f"{want} calls wait ({where})")
    for th in threads:
        th.join(30)
        assert not th.is_alive()
    return outcomes


def values(pool) -> list[str]:
    return [r[0] for r in pool.fetchall("SELECT v FROM t ORDER BY v")]


def test_writes_that_wait_for_the_writer_commit_together(pool):
    before = pool.stats()
    calls = [lambda i=i: pool.execute("INSERT INTO t(v) VALUES (?)", (f"v{i}",)) for i in range(6)]
    outcomes = queued_behind_a_lease(pool, calls)
    assert all(isinstance(c, fastpool.Cursor) for c in outcomes), outcomes
    assert values(pool) == [f"v{i}" for i in range(6)]
    after = pool.stats()
    assert after["group_commits"] - before["group_commits"] == 1
    assert after["grouped_writes"] - before["grouped_writes"] == 6


def test_each_caller_gets_its_own_rowcount_lastrowid_and_returning_rows(pool):
    pool.executemany("INSERT INTO t(v) VALUES (?)", [("a",), ("b",), ("c",)])
    calls = [
        lambda: pool.execute("INSERT INTO t(v) VALUES ('x')"),
        lambda: pool.execute("UPDATE t SET v = v || '!' WHERE v IN ('a', 'b')"),
        lambda: pool.execute("DELETE FROM t WHERE v = 'c' RETURNING id, v"),
        lambda: pool.execute("INSERT INTO t(v) VALUES ('y')"),
    ]
    x, update, delete, y = queued_behind_a_lease(pool, calls)
    rows = dict(pool.fetchall("SELECT v, id FROM t"))
    assert x.lastrowid == rows["x"] and y.lastrowid == rows["y"]
    assert (x.rowcount, update.rowcount, y.rowcount) == (1, 2, 1)
    assert delete.fetchall() == [(3, "c")]
    assert sorted(rows) == ["a!", "b!", "x", "y"]


def test_a_failing_statement_fails_alone(pool):
    pool.execute("INSERT INTO t(v) VALUES ('taken')")
    calls = [
        lambda: pool.execute("INSERT INTO t(v) VALUES ('one')"),
        lambda: pool.execute("INSERT INTO t(v) VALUES ('taken')"),
        lambda: pool.execute("INSERT INTO t(v) VALUES ('two')"),
    ]
    one, dup, two = queued_behind_a_lease(pool, calls)
    assert isinstance(dup, fastpool.IntegrityError) and "UNIQUE" in str(dup)
    assert isinstance(one, fastpool.Cursor) and isinstance(two, fastpool.Cursor)
    assert values(pool) == ["one", "taken", "two"]


def test_a_statement_that_rolls_back_the_transaction_takes_nobody_with_it(pool):
    # ON CONFLICT ROLLBACK ends the whole transaction: the others run again without it.
    pool.execute("INSERT INTO t(v) VALUES ('taken')")
    calls = [
        lambda: pool.execute("INSERT INTO t(v) VALUES ('one')"),
        lambda: pool.execute("INSERT OR ROLLBACK INTO t(v) VALUES ('taken')"),
        lambda: pool.execute("INSERT INTO t(v) VALUES ('two')"),
    ]
    one, spoiler, two = queued_behind_a_lease(pool, calls)
    assert isinstance(spoiler, fastpool.IntegrityError)
    assert isinstance(one, fastpool.Cursor) and isinstance(two, fastpool.Cursor)
    assert values(pool) == ["one", "taken", "two"]


def test_a_deferred_foreign_key_left_violated_fails_that_caller_only(pool):
    pool.execute("CREATE TABLE parent(id INTEGER PRIMARY KEY)")
    pool.execute(
        "CREATE TABLE child(id INTEGER PRIMARY KEY, "
        "p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    calls = [
        lambda: pool.execute("INSERT INTO parent VALUES (1)"),
        lambda: pool.execute("INSERT INTO child VALUES (1, 99)"),  # no parent 99
        lambda: pool.execute("INSERT INTO child VALUES (2, 1)"),
    ]
    parent, orphan, child = queued_behind_a_lease(pool, calls)
    assert isinstance(orphan, fastpool.IntegrityError) and "FOREIGN KEY" in str(orphan)
    assert isinstance(parent, fastpool.Cursor) and isinstance(child, fastpool.Cursor)
    assert pool.fetchall("SELECT id, p FROM child") == [(2, 1)]
    assert pool.fetchall("PRAGMA foreign_key_check") == []


def test_executemany_in_a_group_is_all_or_nothing(pool):
    calls = [
        lambda: pool.executemany("INSERT INTO t(v) VALUES (?)", [("m1",), ("m2",), ("m1",)]),
        lambda: pool.executemany("INSERT INTO t(v) VALUES (?)", [("n1",), ("n2",)]),
        lambda: pool.execute("INSERT INTO t(v) VALUES ('solo')"),
    ]
    bad, good, solo = queued_behind_a_lease(pool, calls)
    assert isinstance(bad, fastpool.IntegrityError)
    assert good.rowcount == 2 and solo.rowcount == 1
    assert values(pool) == ["n1", "n2", "solo"]


def test_statements_other_than_dml_are_never_grouped(pool):
    before = pool.stats()["group_commits"]
    calls = [lambda i=i: pool.execute(f"CREATE TABLE other{i}(x)") for i in range(3)]
    outcomes = queued_behind_a_lease(pool, calls, queued=3, where="waiting_writers")
    assert all(isinstance(c, fastpool.Cursor) for c in outcomes), outcomes
    assert pool.stats()["group_commits"] == before
    assert pool.stats()["grouped_writes"] == 0


@pytest.mark.parametrize(
    "pragmas, grouped",
    [
        ({}, False),  # WAL + synchronous=normal: commits do not fsync
        ({"synchronous": "full"}, True),
        ({"synchronous": "extra"}, True),
        ({"journal_mode": "delete", "synchronous": "normal"}, True),
    ],
)
def test_by_default_writes_group_when_commits_fsync(tmp_path, pragmas, grouped):
    with fastpool.Pool(str(tmp_path / "auto.db"), pragmas=pragmas) as p:
        p.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
        calls = [lambda i=i: p.execute("INSERT INTO t(v) VALUES (?)", (str(i),)) for i in range(4)]
        where = "writes_queued" if grouped else "waiting_writers"
        outcomes = queued_behind_a_lease(p, calls, queued=3 if grouped else 4, where=where)
        assert all(isinstance(c, fastpool.Cursor) for c in outcomes), outcomes
        assert p.stats()["group_commits"] == (1 if grouped else 0)
        assert p.fetchone("SELECT count(*) FROM t") == (4,)


def test_group_commit_off_runs_each_write_alone(tmp_path):
    with fastpool.Pool(str(tmp_path / "off.db"), group_commit=False) as p:
        p.execute("CREATE TABLE t(v)")

        def write(i: int) -> None:
            for k in range(50):
                p.execute("INSERT INTO t VALUES (?)", (i * 100 + k,))

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        with p.writer():
            for th in threads:
                th.start()
            wait_until(lambda: p.stats()["waiting_writers"] >= 4, what="4 writers wait")
        for th in threads:
            th.join()
        assert p.fetchone("SELECT count(*) FROM t")[0] == 200
        assert p.stats()["group_commits"] == 0 and p.stats()["writes_queued"] == 0
    with pytest.raises(TypeError, match="group_commit must be True, False or None"):
        fastpool.Pool(str(tmp_path / "bad.db"), group_commit="yes")


def test_a_queued_write_that_times_out_never_runs(tmp_path):
    with fastpool.Pool(str(tmp_path / "to.db"), acquisition_timeout=0.2, group_commit=True) as p:
        p.execute("CREATE TABLE t(v)")
        errors: list[BaseException] = []

        def write(v: str) -> None:
            try:
                p.execute("INSERT INTO t VALUES (?)", (v,))
            except fastpool.PoolTimeout as exc:
                errors.append(exc)

        with p.writer():
            threads = [threading.Thread(target=write, args=(f"late{i}",)) for i in range(3)]
            for th in threads:
                th.start()
            wait_until(lambda: p.stats()["writes_queued"] + len(errors) >= 2, what="writes queue")
            for th in threads:
                th.join(30)
        assert len(errors) == 3
        assert p.fetchall("SELECT v FROM t") == []
        assert p.stats()["writes_queued"] == 0
        p.execute("INSERT INTO t VALUES ('after')")  # the queue still works
        assert p.fetchall("SELECT v FROM t") == [("after",)]


def test_close_wakes_every_queued_write(tmp_path):
    p = fastpool.Pool(str(tmp_path / "close.db"), group_commit=True)
    p.execute("CREATE TABLE t(v)")
    outcomes: list[BaseException | None] = []

    def write() -> None:
        try:
            p.execute("INSERT INTO t VALUES (1)")
            outcomes.append(None)
        except fastpool.PoolClosed as exc:
            outcomes.append(exc)

    lease = p.writer().__enter__()
    threads = [threading.Thread(target=write) for _ in range(4)]
    for th in threads:
        th.start()
    wait_until(lambda: p.stats()["writes_queued"] >= 3, what="3 writes queue")
    closer = threading.Thread(target=p.close, kwargs={"timeout": 5})
    closer.start()
    wait_until(lambda: p.closed, what="close() has begun (it then waits for the lease)")
    lease.__exit__(None, None, None)
    closer.join(30)
    for th in threads:
        th.join(30)
        assert not th.is_alive()
    assert len(outcomes) == 4
    assert all(isinstance(o, fastpool.PoolClosed) or o is None for o in outcomes)


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_writes_from_many_threads_are_each_committed_once(tmp_path, synchronous):
    # A one-shot COMMIT drops the GIL once writes come from several threads (with
    # synchronous=normal too, where it does not fsync), so the other threads queue their
    # writes meanwhile and the next leader takes them all. Each thread writes in rounds of 40
    # until a group has formed (on a loaded machine a thread woken during a short COMMIT may
    # come too late for it), at most CAP rounds.
    path = str(tmp_path / "many.db")
    rounds = [0] * 8
    with fastpool.Pool(path, pragmas={"synchronous": synchronous}, group_commit=True) as p:
        p.execute("CREATE TABLE t(thread INTEGER, k INTEGER)")
        start = threading.Barrier(8)

        def write(i: int) -> None:
            start.wait()
            while rounds[i] < 100 and (rounds[i] == 0 or not p.stats()["group_commits"]):
                for k in range(rounds[i] * 40, (rounds[i] + 1) * 40):
                    p.execute("INSERT INTO t VALUES (?, ?)", (i, k))
                rounds[i] += 1

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        rows = p.fetchall("SELECT thread, k FROM t")
        assert sorted(rows) == [(i, k) for i in range(8) for k in range(rounds[i] * 40)]
        assert p.stats()["group_commits"] > 0, f"no group in {sum(rounds) * 40} writes"


@needs_a_gil
def test_a_lone_writing_thread_keeps_the_gil_through_its_commits(tmp_path):
    # With synchronous=normal a COMMIT costs microseconds: handing the GIL to a thread that
    # runs Python would make each write wait for it to come back (up to the switch interval).
    with fastpool.Pool(str(tmp_path / "lone.db"), group_commit=True) as p:
        p.execute("CREATE TABLE t(v)")
        other_ran = threading.Event()
        thread, go = start_waiting_thread(other_ran.set)
        with endless_switch_interval():
            go.set()
            for k in range(200):
                p.execute("INSERT INTO t VALUES (?)", (k,))
            ran_meanwhile = other_ran.is_set()
        thread.join()
        assert not ran_meanwhile
        assert p.fetchone("SELECT count(*) FROM t") == (200,)


CHILD = r"""
import os, sys, threading, fastpool
path, first = sys.argv[1], int(sys.argv[2])
pool = fastpool.Pool(path, readers=1, pragmas={"synchronous": "full"})
pool.execute("CREATE TABLE IF NOT EXISTS g(thread INTEGER, k INTEGER, pad BLOB)")
os.write(1, b"ready\n")

def write(thread):
    k = 0
    while True:
        pool.execute("INSERT INTO g VALUES (?, ?, randomblob(200))", (thread, k))
        os.write(1, b"%d %d\n" % (thread, k))      # acknowledged: its COMMIT returned
        k += 1

for t in range(first, first + 8):
    threading.Thread(target=write, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_never_loses_or_duplicates_a_grouped_write(tmp_path):
    path = str(tmp_path / "crash.db")
    rng = random.Random(19)
    acked: set[tuple[int, int]] = set()
    for run in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, path, str(run * 8)], stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        for line in out.splitlines():
            thread, k = map(int, line.split())
            acked.add((thread, k))
    with fastpool.Pool(path, readers=1) as p:
        rows = p.fetchall("SELECT thread, k FROM g")
        assert len(rows) == len(set(rows)), "a write was committed twice"
        missing = acked - set(rows)
        assert not missing, f"{len(missing)} acknowledged writes lost"
        per_thread: dict[int, list[int]] = {}
        for thread, k in rows:
            per_thread.setdefault(thread, []).append(k)
        for ks in per_thread.values():  # each thread's writes are a prefix: 0, 1, ... n
            assert sorted(ks) == list(range(len(ks)))
        assert p.fetchone("PRAGMA integrity_check") == ("ok",)
    assert len(acked) > 100


def test_async_pool_refuses_group_commit_instead_of_ignoring_it(tmp_path):
    with pytest.raises(fastpool.NotSupportedError, match="AsyncPool does not group writes"):
        fastpool.AsyncPool(str(tmp_path / "a.db"), group_commit=True)

    async def open_and_close() -> None:
        await fastpool.AsyncPool(str(tmp_path / "b.db"), group_commit=False).close()

    asyncio.run(open_and_close())
