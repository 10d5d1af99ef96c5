"""How short can a write's wait be in the 16-thread 90/10 mix on this machine? Measured.

A runner script, not a pytest suite: ``python bench/ft_write_tail.py [--rounds N]`` prints a
table. Meant for a free-threaded CPython with the GIL off (``PYTHON_GIL=0``), where issue 17
asks for a write p99 of at most 1 ms in the comparison runner's ``mix16``; it runs on the GIL
build too.

Every mode runs the same load as ``mix16`` for 2 s: 16 threads, each looping on 90 %
``pool.fetchone`` point reads and 10 % writes, on a fresh 10,000-row database and a default
pool (4 readers). Only the writes differ:

- ``fastpool``: ``with pool.writer() as w: w.execute(UPDATE ...)``, the default hand-off
  (``fifo_after=0.001``: barging, a hand-off to a waiter that has waited 1 ms);
- ``fastpool-fifo``: the same with ``fifo_after=0`` (strict FIFO: every returned writer goes
  to the oldest waiter);
- ``lock``: no SQLite write at all; a plain ``threading.Lock`` held for about the CPU time of
  a single-row write transaction (7 us of Python arithmetic). This is the floor: the wait of
  the simplest mutual exclusion Python offers, among the same 16 busy threads on the same
  cores, where a holder the scheduler preempts makes everyone behind it wait its time slice.

Modes alternate round by round; the table gives each round's write p50/p99/p99.9/max and the
writes counted.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time

import fastpool

THREADS = 16
ROWS = 10_000
SECONDS = 2.0
MODES = ("fastpool", "fastpool-fifo", "lock")


def _busy(n: int) -> int:
    # About 7 us of interpreter work at n=150 here: the CPU time of one write transaction.
    total = 0
    for i in range(n):
        total += i
    return total


def _database(directory: str) -> str:
    path = os.path.join(directory, "tail.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, score INTEGER NOT NULL)")
    conn.executemany("INSERT INTO users VALUES (?, 0)", [(i,) for i in range(ROWS)])
    conn.commit()
    conn.close()
    return path


def run(mode: str) -> tuple[int, list[float]]:
    """One 2 s round of the mix in ``mode``: (writes, sorted write latencies in seconds)."""
    with tempfile.TemporaryDirectory() as directory:
        pool = fastpool.Pool(
            _database(directory), fifo_after=0 if mode == "fastpool-fifo" else 0.001
        )
        lock = threading.Lock()
        stop = threading.Event()
        latencies: list[list[float]] = [[] for _ in range(THREADS)]

        def worker(index: int) -> None:
            rng = random.Random(index)
            mine = latencies[index]
            clock = time.perf_counter
            while not stop.is_set():
                if rng.random() < 0.9:
                    pool.fetchone("SELECT score FROM users WHERE id = ?", (rng.randrange(ROWS),))
                    continue
                started = clock()
                if mode == "lock":
                    with lock:
                        _busy(150)
                else:
                    with pool.writer() as w:
                        w.execute(
                            "UPDATE users SET score = score + 1 WHERE id = ?",
                            (rng.randrange(ROWS),),
                        )
                mine.append(clock() - started)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(SECONDS)
        stop.set()
        for thread in threads:
            thread.join()
        pool.close()
    merged = sorted(x for mine in latencies for x in mine)
    return len(merged), merged


def _quantile(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))] * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode (default 2)")
    args = parser.parse_args(argv)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"Python {sys.version.split()[0]}, GIL {'on' if gil else 'off'}, {THREADS} threads, "
        f"{SECONDS:g} s a round\n"
    )
    print("| mode | round | writes | p50 µs | p99 µs | p99.9 µs | max µs |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for round_no in range(1, args.rounds + 1):
        for mode in MODES:
            writes, lat = run(mode)
            print(
                f"| {mode} | {round_no} | {writes:,} | {_quantile(lat, 0.5):,.1f} | "
                f"{_quantile(lat, 0.99):,.0f} | {_quantile(lat, 0.999):,.0f} | "
                f"{lat[-1] * 1e6:,.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
