"""Waiting for Litestream's rewind holds the writer slot, never the thread that returned it.

Litestream here is its footprint on the file, from another process: the `_litestream_seq`
table and a read transaction that never ends (so the pool's own RESTART always fails), and,
on request, the TRUNCATE checkpoint with which Litestream rewinds the log. The real binary's
runs are in test_litestream.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import warnings

import fastpool

LIMIT = 1024 * 4096  # journal_size_limit: the pool's least Litestream bound (1024 pages)

FOOTPRINT = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN")
db.execute("SELECT count(*) FROM t").fetchone()
print("reading", flush=True)
sys.stdin.readline()              # then rewind the log as Litestream does
db.execute("COMMIT")
print(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone(), flush=True)
sys.stdin.readline()
"""


def start_footprint(db) -> subprocess.Popen[str]:
    """The file with Litestream's table, and the other process holding its read open."""
    with fastpool.Pool(db, 1) as pool:
        pool.execute("CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)")
        pool.execute("CREATE TABLE t (body BLOB)")
    proc = subprocess.Popen(
        [sys.executable, "-c", FOOTPRINT, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "reading\n"
    return proc


def test_the_event_loop_runs_while_the_writers_wait_for_litestream(tmp_path):
    db = tmp_path / "primary.db"
    footprint = start_footprint(db)

    async def main() -> dict:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        apool = fastpool.AsyncPool(db, 1, pragmas={"journal_size_limit": LIMIT})
        tick_task = asyncio.create_task(ticker())
        try:
            # Fill the log until a return of the writer hands its slot over for the wait.
            for _ in range(10_000):
                began = time.monotonic()
                await apool.execute("INSERT INTO t VALUES (randomblob(4000))")
                returned_after = time.monotonic() - began
                if apool.stats()["litestream_waits"]:
                    break
            stats = apool.stats()
            assert stats["litestream"] and stats["litestream_waits"] == 1, stats
            assert stats["writer_busy"]  # held by the checkpointer thread, waiting
            # The next writer queues (awaiting, not blocking the loop) until the rewind.
            ticks_before = ticks
            write = asyncio.create_task(apool.execute("INSERT INTO t VALUES (1)"))
            await asyncio.sleep(0.5)
            assert not write.done()
            assert ticks - ticks_before >= 20  # the loop ran meanwhile (5 ms ticks)
            footprint.stdin.write("\n")  # Litestream's TRUNCATE rewinds the log
            footprint.stdin.flush()
            await asyncio.wait_for(write, 10)
            return {"returned_after": returned_after, **apool.stats()}
        finally:
            tick_task.cancel()
            await apool.close()

    try:
        out = asyncio.run(main())
    finally:
        footprint.stdin.write("\n")
        footprint.stdin.flush()
        footprint.wait(30)
    assert footprint.returncode == 0
    assert out["litestream_wait_timeouts"] == 0, out  # the rewind ended the wait
    assert out["returned_after"] < 1.0, out  # the wait is 5 s at most: it was not this call


def test_closing_the_pool_ends_a_wait_for_litestream_and_gets_the_slot_back(tmp_path):
    db = tmp_path / "primary.db"
    footprint = start_footprint(db)
    try:
        pool = fastpool.Pool(db, 1, pragmas={"journal_size_limit": LIMIT})
        for _ in range(10_000):
            pool.execute("INSERT INTO t VALUES (randomblob(4000))")
            if pool.stats()["litestream_waits"]:
                break
        assert pool.stats()["writer_busy"]
        # The checkpointer stops waiting and gives the writer back, for close() to collect
        # (a lease still out after the timeout would be a ResourceWarning, here an error).
        began = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            pool.close(timeout=30)
        assert time.monotonic() - began < 5.0  # before the wait's own 5 s were up
        stats = pool.stats()
        assert stats["closed"] and stats["litestream_wait_timeouts"] == 0, stats
    finally:
        footprint.stdin.write("\n\n")
        footprint.stdin.flush()
        footprint.wait(30)
