"""AsyncPool writers: another process holding the writer never blocks the event loop, and a
transaction SQLite rolled back by itself is never half committed.

With ``writer_lock=True`` (the default) a writer that finds the cross-process lock taken
waits for it on a worker thread; the loop serves other tasks meanwhile, and the write goes
through as soon as the other process lets go. A real second process holds the lock.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

import fastpool

HOLD_SECONDS = 1.0

HOLDER = textwrap.dedent(
    """
    import sys, time, fastpool
    with fastpool.Pool(sys.argv[1], readers=1) as pool:
        with pool.writer() as w:
            w.execute("INSERT INTO t(v) VALUES ('other process')")
            print("holding", flush=True)
            time.sleep(float(sys.argv[2]))
    """
)


def hold_writer_elsewhere(db) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(HOLD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.mark.parametrize("how", ["lease", "one-shot"])
def test_waiting_for_another_processes_writer_never_blocks_the_loop(tmp_path, how):
    db = tmp_path / "shared.db"
    with fastpool.Pool(db, readers=1) as setup:
        setup.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")

    async def main() -> tuple[float, float, int]:
        async with fastpool.AsyncPool(db, readers=2) as apool:
            gaps: list[float] = []
            reads = 0
            stop = False

            async def heartbeat() -> None:
                nonlocal reads
                last = time.perf_counter()
                while not stop:
                    await asyncio.sleep(0.01)
                    # Readers keep working beside the other process's open transaction.
                    await apool.fetchone("SELECT count(*) FROM t")
                    reads += 1
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            beat = asyncio.create_task(heartbeat())
            proc = hold_writer_elsewhere(db)
            try:
                started = time.perf_counter()
                if how == "lease":
                    async with apool.writer() as w:
                        await w.execute("INSERT INTO t(v) VALUES ('this process')")
                else:
                    await apool.execute("INSERT INTO t(v) VALUES ('this process')")
                waited = time.perf_counter() - started
            finally:
                stop = True
                await beat
                assert proc.wait(30) == 0
            stats = apool.stats()
            assert stats["readers_in_use"] == 0 and not stats["writer_busy"], stats
            rows = await apool.fetchall("SELECT v FROM t ORDER BY id")
            assert rows == [("other process",), ("this process",)]
            return waited, max(gaps), reads

    waited, worst_gap, reads = asyncio.run(main())
    # The write really waited for the other process (so the loop had something to block on)...
    assert waited > HOLD_SECONDS * 0.5, f"the write did not wait ({waited:.3f} s)"
    # ... and the loop kept serving: about one heartbeat per 10 ms all along. A loop blocked
    # on the lock would show one gap as long as the other process's transaction.
    assert reads > HOLD_SECONDS * 0.5 / 0.02, f"only {reads} heartbeats in {waited:.2f} s"
    assert worst_gap < HOLD_SECONDS * 0.5, f"the loop stalled for {worst_gap * 1000:.0f} ms"


def test_async_writer_block_never_commits_half_a_transaction_sqlite_rolled_back(tmp_path):
    """As with Pool.writer(): after SQLite rolled the whole transaction back by itself
    (INSERT OR ROLLBACK), later statements and the block's end raise SQLITE_ABORT_ROLLBACK
    instead of committing the second half on its own."""

    async def main() -> None:
        async with fastpool.AsyncPool(tmp_path / "half.db", readers=1) as apool:
            await apool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
            await apool.execute("CREATE TABLE u(k INTEGER UNIQUE)")
            await apool.execute("INSERT INTO u VALUES (1)")
            with pytest.raises(fastpool.OperationalError) as info:
                async with apool.writer() as w:
                    await w.execute("INSERT INTO t(v) VALUES ('first half')")
                    with pytest.raises(fastpool.DatabaseError):
                        await w.execute("INSERT OR ROLLBACK INTO u VALUES (1)")
                    with pytest.raises(fastpool.OperationalError) as later:
                        await w.execute("INSERT INTO t(v) VALUES ('second half')")
                    assert later.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
            assert info.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
            assert await apool.fetchall("SELECT v FROM t") == []
            async with apool.writer() as w:  # healthy again: the next block starts clean
                await w.execute("INSERT INTO t(v) VALUES ('next')")
            assert await apool.fetchall("SELECT v FROM t") == [("next",)]

    asyncio.run(main())
