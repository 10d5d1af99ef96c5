"""Group commit: 8 threads of one-shot single-row inserts, side by side.

- ``fastpool``: ``pool.execute(INSERT, row)``, ``group_commit=True`` (the default turns it on
  only where commits fsync: here with synchronous=full): writes that find the writer busy run
  together, one COMMIT (one fsync) for all of them;
- ``fastpool-alone``: the same with ``group_commit=False``, each write its own transaction;
- ``sqlite3``: the stdlib with a connection per thread, ``with conn: conn.execute(INSERT)``
  (the busy handler sorts out who writes);
- ``fastpool-1-thread``: the same inserts from one thread: with synchronous=normal the most a
  GIL-bound writer can do when its commits keep the GIL (the floor, see docs/transactions.md),
  with synchronous=full the time of one commit and its fsync;
- ``fastpool-free-commits`` (where /dev/shm is a tmpfs; the same in both runs): grouped
  inserts whose commits cost nothing, on a tmpfs (where fsync is free) with synchronous=full
  (so each COMMIT drops the GIL and the others queue meanwhile: groups form). The most group
  commit can do on this machine when each caller waits for another thread to commit its
  write: every write still costs its caller a wake-up and a turn of the GIL. With
  synchronous=full the summary puts the two together: a group of eight costs about one
  commit alone plus eight writes at this rate.

Once with ``synchronous=normal`` (WAL: no fsync per commit) and once with ``synchronous=full``
(an fsync per commit). Every round checks that each contestant's table holds exactly the rows
it was acknowledged (none lost, none twice). Each contestant has a file of its own.

A round ends when the last thread has written its share, so it must be long enough that one
thread's busy-handler sleep (the stdlib's: up to 100 ms) does not set its length: with
``synchronous=full`` and 60 writes a thread the stdlib measured 3,499 commits/s, with 180
7,331 and with 600 10,212 (fastpool grouped: 45,137, 45,564, 32,659). Hence 600.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _suite import SIDE_BY_SIDE, interleaved, rounds_for, scale_factor, scaled

import fastpool

THREADS = 8
TMPFS = "/dev/shm"
PER_THREAD = {"normal": 2500, "full": 600}
ROUNDS = 5
INSERT = "INSERT INTO t(thread, k, name) VALUES (?, ?, 'someone@example.com')"
SCHEMA = "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, thread INT, k INT, name TEXT)"

pytestmark = pytest.mark.benchmark(group="group commit: 8 threads of one-shot inserts")


def run_threads(write: Callable[[int, int], None], threads: int, per_thread: int) -> float:
    """``write(thread, k)`` for k in range(per_thread) on each thread; commits per second."""
    start = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        start.wait()
        for k in range(per_thread):
            write(i, k)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - began)


class Contestant:
    """One way of writing, on a database file of its own."""

    def __init__(self, directory: Path, name: str, synchronous: str, threads: int) -> None:
        self.scratch: tempfile.TemporaryDirectory[str] | None = None
        if name == "fastpool-free-commits":
            self.scratch = tempfile.TemporaryDirectory(dir=TMPFS)
            directory, synchronous = Path(self.scratch.name), "full"
        self.path = str(directory / f"{name}.db")
        self.name, self.synchronous, self.threads = name, synchronous, threads
        self.pool: fastpool.Pool | None = None
        self.local = threading.local()
        self.opened: list[sqlite3.Connection] = []
        self.lock = threading.Lock()
        if name.startswith("fastpool"):
            self.pool = fastpool.Pool(
                self.path,
                readers=1,
                pragmas={"synchronous": synchronous},
                group_commit=name != "fastpool-alone",  # on even where the default is off
            )
            self.pool.execute(SCHEMA)
        else:
            with self.connection() as conn:
                conn.execute(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=wal")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self.local.conn = conn
            with self.lock:
                self.opened.append(conn)
        return conn

    def write(self, thread: int, k: int) -> None:
        if self.pool is not None:
            self.pool.execute(INSERT, (thread, k))
        else:
            conn = self.connection()
            with conn:
                conn.execute(INSERT, (thread, k))

    def round(self, per_thread: int) -> float:
        rate = run_threads(self.write, self.threads, per_thread)
        self.check(per_thread)
        return rate

    def check(self, per_thread: int) -> None:
        # Every acknowledged write is there once: each thread's k run 0..per_thread-1 per round.
        if self.pool is not None:
            rows = self.pool.fetchall("SELECT thread, k, count(*) FROM t GROUP BY thread, k")
        else:
            rows = (
                self.connection()
                .execute("SELECT thread, k, count(*) FROM t GROUP BY thread, k")
                .fetchall()
            )
        rounds_so_far = {n for _, _, n in rows}
        assert len(rounds_so_far) == 1, f"{self.name}: rows lost or written twice"
        assert len(rows) == self.threads * per_thread, f"{self.name}: rows lost"

    def close(self) -> dict[str, int]:
        stats = {}
        if self.pool is not None:
            s = self.pool.stats()
            stats = {"group_commits": s["group_commits"], "grouped_writes": s["grouped_writes"]}
            self.pool.close()
        for conn in self.opened:
            conn.close()
        if self.scratch is not None:
            self.scratch.cleanup()
        return stats


def on_tmpfs(path: str) -> bool:
    """Whether ``path`` is a writable tmpfs mount (Linux: /proc/mounts says so)."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            found = any(fields[1:3] == [path, "tmpfs"] for fields in map(str.split, mounts))
    except OSError:
        return False
    return found and os.access(path, os.W_OK)


@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_one_shot_inserts_8_threads_side_by_side(benchmark, record_result, tmp_path, synchronous):
    per_thread = scaled(PER_THREAD[synchronous], scale_factor(benchmark))
    names = ["fastpool", "fastpool-alone", "sqlite3"]
    contestants = {n: Contestant(tmp_path, n, synchronous, THREADS) for n in names}
    contestants["fastpool-1-thread"] = Contestant(tmp_path, "fastpool-1-thread", synchronous, 1)
    if on_tmpfs(TMPFS):
        contestants["fastpool-free-commits"] = Contestant(
            tmp_path, "fastpool-free-commits", synchronous, THREADS
        )
    counts = {n: per_thread * (THREADS if c.threads == 1 else 1) for n, c in contestants.items()}
    try:
        rates = interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {n: (lambda c=c, n=n: c.round(counts[n])) for n, c in contestants.items()},
        )
    finally:
        stats = {n: c.close() for n, c in contestants.items()}
    for name, values in rates.items():
        record_result(
            f"{SIDE_BY_SIDE}/group_commit_{synchronous}/{name}",
            {
                "threads": contestants[name].threads,
                "commits_per_s": round(statistics.median(values)),
                "commits_per_s_rounds": [round(v) for v in values],
                **stats[name],
            },
        )
