"""Chaos: 2,000 tasks mix reads and money transfers under random cancellations and timeouts.

Transfers move money between accounts inside writer transactions that await in the middle
(so cancellations land inside open transactions), some through statements slow enough to run
on a worker thread (so cancellations interrupt running SQLite statements). Readers check that
every snapshot sums to the same total. Afterwards every slot is idle, no transaction is open,
nothing is left in flight, and the sum of all balances is unchanged.
"""

from __future__ import annotations

import asyncio
import random

import pytest

import fastpool

ACCOUNTS = 40
START = 1_000
TASKS = 2_000

# Slow enough (a few ms) to outrun the inline budget: runs on a worker thread.
SLOW_TOTAL = (
    "SELECT (SELECT sum(balance) FROM accounts), "
    "(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?) "
    "SELECT count(*) FROM r)"
)
SLOW_CREDIT = (
    "UPDATE accounts SET balance = balance + ? + 0 * (WITH RECURSIVE r(i) AS "
    "(SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?) SELECT count(*) FROM r) WHERE id = ?"
)


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request):
    """asyncio.run or uvloop.run (a fresh loop of that kind; both work on Python 3.10)."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def test_chaos(tmp_path, run_loop):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    total = ACCOUNTS * START

    async def main():
        apool = fastpool.AsyncPool(tmp_path / "chaos.db", readers=3, acquisition_timeout=5.0)
        async with apool.writer() as w:
            await w.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER)")
            await w.executemany(
                "INSERT INTO accounts VALUES (?, ?)", [(i, START) for i in range(ACCOUNTS)]
            )
            # Teach the engine that SLOW_CREDIT is slow (a write is never interrupted inline,
            # so its first run finishes on the loop; from then on it runs on a worker).
            await w.execute(SLOW_CREDIT, (0, 50_000, 0))
        outcomes = {"ok": 0, "cancelled": 0, "timeout": 0, "pool_timeout": 0}
        bad_totals: list[object] = []

        async def read(kind):
            if kind == 0:
                row = await apool.fetchone("SELECT sum(balance) FROM accounts")
                if row != (total,):
                    bad_totals.append(row)
            elif kind == 1:
                row = await apool.fetchone(SLOW_TOTAL, (rng.randrange(5_000, 30_000),))
                if row[0] != total:
                    bad_totals.append(row)
            else:
                async with apool.reader() as conn:
                    rows = await conn.fetchall("SELECT balance FROM accounts")
                    await asyncio.sleep(rng.random() * 0.002)
                    cur = await conn.execute("SELECT sum(balance) FROM accounts")
                    if sum(r[0] for r in rows) != total or await cur.fetchone() != (total,):
                        bad_totals.append(rows)

        async def endless(kind):
            # Only a cancellation ends these: on a reader, or in the middle of a transfer.
            if kind == 0:
                await apool.fetchone(SLOW_TOTAL, (10**12,))
                return
            a, b = rng.sample(range(ACCOUNTS), 2)
            async with apool.writer() as w:
                await w.execute("UPDATE accounts SET balance = balance - 7 WHERE id = ?", (a,))
                await w.execute(SLOW_CREDIT, (7, 10**12, b))

        async def transfer(kind):
            a, b = rng.sample(range(ACCOUNTS), 2)
            amount = rng.randrange(1, 50)
            async with apool.writer() as w:
                await w.execute(
                    "UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a)
                )
                if kind == 0:
                    await asyncio.sleep(rng.random() * 0.001)  # cancelled mid-transaction
                if kind == 1:  # 1 in 4 transfers
                    await w.execute(SLOW_CREDIT, (amount, rng.randrange(2_000, 8_000), b))
                else:
                    await w.execute(
                        "UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b)
                    )

        async def one(i):
            job = read(rng.randrange(3)) if rng.random() < 0.6 else transfer(rng.randrange(4))
            style = rng.randrange(4)
            limit = rng.random() * 0.03
            if i % 50 == 25:
                job.close()
                job = endless(rng.randrange(2))
                style = rng.randrange(2)
                limit = 0.05 + rng.random() * 0.1
            try:
                if style == 0 or not hasattr(asyncio, "timeout"):  # 3.10: no asyncio.timeout
                    await asyncio.wait_for(job, limit)
                elif style == 1:
                    async with asyncio.timeout(limit):
                        await job
                else:
                    await job
                outcomes["ok"] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
                raise
            except (TimeoutError, asyncio.TimeoutError):  # distinct before Python 3.11
                outcomes["timeout"] += 1
            except fastpool.PoolTimeout:
                outcomes["pool_timeout"] += 1

        # Tasks start in waves, and a canceller hits random ones (waiting, running or done)
        # while everything runs.
        tasks: list[asyncio.Task[None]] = []
        for i in range(TASKS):
            tasks.append(asyncio.create_task(one(i)))
            if i % 40 == 39:
                await asyncio.sleep(0.01 + rng.random() * 0.02)
                for _ in range(6):
                    rng.choice(tasks[-80:]).cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        unexpected = [
            r for r in results if r is not None and not isinstance(r, asyncio.CancelledError)
        ]
        assert not unexpected, (seed, unexpected[:5])
        assert not bad_totals, (seed, bad_totals[:5])

        # Chaos cancels running statements only when a timeout happens to land on one. Make
        # sure each run also cancels two that are surely running on a worker: an endless read,
        # and an endless write inside a transfer (which must roll back).
        apool._engine.learn_slow(SLOW_CREDIT)  # it is: a write is never interrupted inline
        for kind in (0, 1):
            calls = apool.stats()["worker_calls"]
            task = asyncio.create_task(endless(kind))
            while apool.stats()["worker_calls"] == calls:  # until it runs on a worker
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)
            interrupts = apool.stats()["cancel_interrupts"]
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert apool.stats()["cancel_interrupts"] == interrupts + 1

        s = apool.stats()
        assert s["readers_idle"] == 3 and s["readers_in_use"] == 0, (seed, s)
        assert not s["writer_busy"] and s["waiting_writers"] == s["waiting_readers"] == 0, s
        assert not apool._engine.busy()
        assert s["worker_calls"] > 0 and s["cancel_interrupts"] >= 2, (seed, s)
        print(
            f"seed={seed} {outcomes} worker_calls={s['worker_calls']} "
            f"cancel_interrupts={s['cancel_interrupts']} timeouts={s['timeouts']}"
        )
        assert outcomes["ok"] > 0 and outcomes["timeout"] + outcomes["cancelled"] > 0, outcomes
        async with apool.writer_no_transaction() as w:
            assert not w.in_transaction
            assert await w.fetchone("SELECT sum(balance) FROM accounts") == (total,)
        for _ in range(3):
            async with apool.reader() as r:
                assert not r.in_transaction
        assert await apool.fetchone("SELECT sum(balance) FROM accounts") == (total,), seed
        await apool.close()

    run_loop(main())
    with fastpool.Pool(tmp_path / "chaos.db", readers=1) as pool:
        assert pool.fetchone("SELECT sum(balance), count(*) FROM accounts") == (total, ACCOUNTS)
