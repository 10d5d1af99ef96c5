"""Concurrency aimed at free-threaded CPython (3.13t with the GIL off), run on every build.

Without a GIL, every check-then-act in the core is a real race unless its synchronisation
rule (docs/ARCHITECTURE.md, "Shared state and its rule") holds. These tests drive those rules
with real threads on real files and assert that nothing is lost or torn: exact counters,
conserved money, consistent snapshots, one winner per connection. On the GIL build they are
ordinary threaded tests.

The transfer stress runs FASTPOOL_FT_STRESS_SECONDS seconds (default 2; CI runs it for 12 s on
the free-threaded interpreter).
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import sysconfig
import threading
import time

import pytest

import fastpool
from fastpool import errors

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
STRESS_SECONDS = float(os.environ.get("FASTPOOL_FT_STRESS_SECONDS", "2"))


def run_threads(n: int, target, *args) -> list[BaseException]:
    """Start n threads on target(i, *args) at once (a barrier); join them; their exceptions."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def body(i):
        barrier.wait()
        try:
            target(i, *args)
        except BaseException as exc:  # reported to the test, which fails on any
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread hung"
    return failures


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="the GIL build has no GIL to keep off")
def test_importing_fastpool_keeps_the_gil_off():
    # In a fresh interpreter without PYTHON_GIL: an extension that does not declare itself
    # free-threading compatible makes the interpreter turn the GIL back on at import.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = (
        "import sys, warnings; warnings.simplefilter('error');"
        "import fastpool, fastpool.dbapi, fastpool.pool_async;"
        "p = fastpool.Pool(':memory:'); p.fetchone('SELECT 1'); p.close();"
        "sys.exit(3 if sys._is_gil_enabled() else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"the GIL was re-enabled (or import failed): {done.stderr}"


def test_many_threads_on_one_pool_lose_no_checkout_and_no_write(make_pool):
    # Every checkout is counted (the counters are C atomics, not GIL-protected +=), every
    # write lands, and every read sees a row.
    pool = make_pool(readers=4)
    pool.execute("CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER)")
    pool.execute("INSERT INTO c VALUES (1, 0)")
    before = pool.stats()["checkouts"]
    threads, rounds = 16, 150

    def work(i):
        for k in range(rounds):
            assert pool.fetchone("SELECT n FROM c WHERE id = 1") is not None
            with pool.reader() as r:
                assert r.fetchone("SELECT count(*) FROM c") == (1,)
            if k % 5 == 0:
                with pool.writer() as w:
                    w.execute("UPDATE c SET n = n + 1 WHERE id = 1")

    assert run_threads(threads, work) == []
    writes = threads * len(range(0, rounds, 5))
    assert pool.fetchone("SELECT n FROM c WHERE id = 1") == (writes,)
    stats = pool.stats()
    # fetchone + reader per round, a writer every fifth, and the final fetchone.
    assert stats["checkouts"] - before == threads * rounds * 2 + writes + 1
    assert stats["readers_in_use"] == 0 and not stats["writer_busy"]


def test_leases_handed_between_threads_work_and_come_back(make_pool):
    # Checked out on one thread, used and returned on another. (A writer lease is taken again
    # only once the other thread returned it: a pool.writer() on the thread that holds the
    # writer would be a savepoint of it.)
    pool = make_pool(readers=2)
    pool.execute("CREATE TABLE t(v INTEGER)")
    handoff: queue.Queue = queue.Queue()
    returned: queue.Queue = queue.Queue()
    results: list[object] = []

    def consumer():
        while (item := handoff.get()) is not None:
            kind, lease = item
            if kind == "reader":
                results.append(lease.fetchone("SELECT count(*) FROM t"))
            else:
                lease.execute("INSERT INTO t VALUES (1)")
                lease.commit()
            lease.close()
            returned.put(kind)

    t = threading.Thread(target=consumer)
    t.start()
    for _ in range(200):
        handoff.put(("writer", pool.writer()))
        handoff.put(("reader", pool.reader()))
        assert returned.get(timeout=30) == "writer"
        assert returned.get(timeout=30) == "reader"
    handoff.put(None)
    t.join(timeout=60)
    assert not t.is_alive()
    assert pool.fetchone("SELECT count(*) FROM t") == (200,)
    assert len(results) == 200
    stats = pool.stats()
    assert stats["readers_in_use"] == 0 and not stats["writer_busy"]


def test_one_lease_used_by_two_threads_at_once_runs_one_call_at_a_time(make_pool):
    # A lease serves one call at a time: the connection's call claim is an atomic exchange,
    # so of two threads calling at once one runs and the other is refused, never both.
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t(v INTEGER)")
    pool.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(200)])
    refused = [0, 0]
    expected = [(v,) for v in range(200)]
    with pool.reader() as lease:

        def use(i):
            for _ in range(300):
                try:
                    assert lease.fetchall("SELECT v FROM t ORDER BY v") == expected
                except errors.InterfaceError as exc:
                    assert "already running a call" in str(exc)
                    refused[i] += 1

        assert run_threads(2, use) == []
    stats = pool.stats()
    assert stats["readers_in_use"] == 0


def test_close_racing_use_ends_cleanly(make_pool):
    # Threads keep using the pool while another closes it: each call either works or raises
    # PoolClosed (or InterfaceError for a lease that close() took back); nothing crashes,
    # and close() gathers every slot.
    pool = make_pool(readers=3)
    pool.execute("CREATE TABLE t(v INTEGER)")
    started = threading.Barrier(9)
    ok = [0] * 8

    def user(i):
        started.wait()
        while True:
            try:
                if i % 3 == 0:
                    with pool.writer() as w:
                        w.execute("INSERT INTO t VALUES (?)", (i,))
                elif i % 3 == 1:
                    with pool.reader() as r:
                        r.fetchall("SELECT count(*) FROM t")
                else:
                    pool.fetchone("SELECT count(*) FROM t")
                ok[i] += 1
            except errors.PoolClosed:
                return
            except errors.InterfaceError as exc:
                assert "closed" in str(exc) or "no longer" in str(exc) or "returned" in str(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    started.wait()
    wait_for = time.monotonic() + 10
    while sum(ok) < 200 and time.monotonic() < wait_for:
        time.sleep(0.001)
    pool.close(timeout=10)
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert pool.closed
    assert sum(ok) >= 200
    with pytest.raises(errors.PoolClosed):
        pool.fetchone("SELECT 1")


def test_async_pools_on_several_loops_at_once(tmp_path):
    # One AsyncPool per event loop, four loops on four threads, one database file.
    path = tmp_path / "a.db"
    with fastpool.Pool(path) as setup:
        setup.execute("CREATE TABLE t(loop INTEGER, k INTEGER)")
    per_loop = 100

    async def main(i):
        async with fastpool.AsyncPool(path, readers=2) as apool:

            async def task(k):
                async with apool.writer() as w:
                    await w.execute("INSERT INTO t VALUES (?, ?)", (i, k))
                row = await apool.fetchone("SELECT count(*) FROM t WHERE loop = ?", (i,))
                assert row[0] >= 1

            await asyncio.gather(*(task(k) for k in range(per_loop)))
            return await apool.fetchone("SELECT count(*) FROM t WHERE loop = ?", (i,))

    counts: dict[int, object] = {}

    def run_loop(i):
        counts[i] = asyncio.run(main(i))

    assert run_threads(4, run_loop) == []
    assert counts == {i: (per_loop,) for i in range(4)}


def test_one_async_pool_moves_from_loop_to_loop(tmp_path):
    # Loops one after another on different threads (one pool per loop at a time): the
    # engine rebinds to each new loop, and every statement lands.
    apool_box: list[fastpool.AsyncPool] = []

    async def first():
        apool_box.append(fastpool.AsyncPool(tmp_path / "m.db"))
        await apool_box[0].execute("CREATE TABLE t(v INTEGER)")

    async def more(i):
        await asyncio.gather(
            *(apool_box[0].execute("INSERT INTO t VALUES (?)", (i,)) for _ in range(20))
        )

    async def last():
        row = await apool_box[0].fetchone("SELECT count(*) FROM t")
        await apool_box[0].close()
        return row

    def in_thread(coro):
        box: list[object] = []
        t = threading.Thread(target=lambda: box.append(asyncio.run(coro)))
        t.start()
        t.join(timeout=60)
        assert not t.is_alive()
        return box[0] if box else None

    in_thread(first())
    for i in range(4):
        in_thread(more(i))
    assert in_thread(last()) == (80,)


ACCOUNTS = 50
OPENING = 1000


def test_transfers_in_writers_and_audits_in_readers_stay_consistent(make_pool):
    # 12 threads: 8 move money between accounts in writer leases, 4 audit in reader
    # transactions. Every audit sees all the money (sum of balances unchanged) and a snapshot
    # in which the transfer counter matches the ledger: a torn snapshot shows a difference.
    pool = make_pool(readers=4)
    with pool.writer() as w:
        w.execute("CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        w.execute("CREATE TABLE ledger(id INTEGER PRIMARY KEY, src, dst, amount)")
        w.execute("CREATE TABLE counter(n INTEGER NOT NULL)")
        w.executemany("INSERT INTO account VALUES (?, ?)", [(i, OPENING) for i in range(ACCOUNTS)])
        w.execute("INSERT INTO counter VALUES (0)")
    total = ACCOUNTS * OPENING
    deadline = time.monotonic() + STRESS_SECONDS
    transfers = [0] * 8
    audits = [0] * 4

    def writer(i):
        import random

        rnd = random.Random(i)
        while time.monotonic() < deadline:
            src, dst = rnd.sample(range(ACCOUNTS), 2)
            amount = rnd.randint(1, 50)
            with pool.writer() as w:
                (balance,) = w.fetchone("SELECT balance FROM account WHERE id = ?", (src,))
                if balance < amount:
                    continue
                w.execute("UPDATE account SET balance = balance - ? WHERE id = ?", (amount, src))
                w.execute("UPDATE account SET balance = balance + ? WHERE id = ?", (amount, dst))
                w.execute(
                    "INSERT INTO ledger(src, dst, amount) VALUES (?, ?, ?)", (src, dst, amount)
                )
                w.execute("UPDATE counter SET n = n + 1")
            transfers[i] += 1

    def auditor(i):
        while time.monotonic() < deadline:
            with pool.reader() as r, r.transaction():
                (money,) = r.fetchone("SELECT sum(balance) FROM account")
                (n,) = r.fetchone("SELECT n FROM counter")
                (logged,) = r.fetchone("SELECT count(*) FROM ledger")
                (negative,) = r.fetchone("SELECT count(*) FROM account WHERE balance < 0")
            assert money == total, f"money not conserved: {money} != {total}"
            assert n == logged, f"torn snapshot: counter {n}, ledger {logged}"
            assert negative == 0
            audits[i] += 1

    def either(i):
        if i < 8:
            writer(i)
        else:
            auditor(i - 8)

    assert run_threads(12, either) == []
    assert sum(transfers) > 0 and all(a > 0 for a in audits), (transfers, audits)
    assert pool.fetchone("SELECT sum(balance) FROM account") == (total,)
    assert pool.fetchone("SELECT n FROM counter") == (sum(transfers),)
    assert pool.fetchone("SELECT count(*) FROM ledger") == (sum(transfers),)


def test_dbapi_connections_and_adapters_from_many_threads(tmp_path):
    # fastpool.dbapi: a connection per thread on one file (the write turn is shared), while
    # another thread registers adapters and converters (module-level registries).
    from fastpool import dbapi

    path = str(tmp_path / "d.db")
    with dbapi.connect(path) as c:
        c.execute("CREATE TABLE t(v INTEGER)")
    c.close()
    stop = threading.Event()

    class Marker:
        pass

    def registrar():
        k = 0
        while not stop.is_set():
            dbapi.register_adapter(Marker, lambda m: 7)
            dbapi.register_converter(f"FT{k % 8}", int)
            k += 1

    def worker(i):
        conn = dbapi.connect(path, timeout=30)
        try:
            for _ in range(40):
                with conn:
                    conn.execute("INSERT INTO t VALUES (?)", (Marker(),))
        finally:
            conn.close()

    r = threading.Thread(target=registrar)
    r.start()
    try:
        assert run_threads(6, worker) == []
    finally:
        stop.set()
        r.join(timeout=30)
    with dbapi.connect(path) as c:
        assert c.execute("SELECT count(*), min(v), max(v) FROM t").fetchone() == (240, 7, 7)
    c.close()
