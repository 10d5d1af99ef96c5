"""The demo behind ``python -m fastpool``.

On a temporary database it writes rows, reads them back by key, then runs many reader and
writer threads at once, each step side by side with the stdlib sqlite3 module doing the same
work, and prints what happened and how fast.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable

import fastpool

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL)"
)
SELECT = "SELECT id, name, email, score FROM users WHERE id = ?"
INSERT = "INSERT INTO users (name, email, score) VALUES (?, ?, ?)"
UPDATE = "UPDATE users SET score = score + 1 WHERE id = ?"


def _row(i: int) -> tuple[str, str, float]:
    return (f"user{i}", f"user{i}@example.com", i * 0.5)


def _stdlib_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    return conn


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def single_thread(directory: str, rows: int) -> None:
    print(f"\n1) one thread: insert {rows:,} rows in one transaction, then read each back by key")
    keys = list(range(1, rows + 1))
    random.Random(7).shuffle(keys)

    with fastpool.Pool(os.path.join(directory, "fastpool.db"), readers=1) as pool:
        pool.execute(SCHEMA)
        started = time.perf_counter()
        pool.executemany(INSERT, [_row(i) for i in range(rows)])
        fp_insert = time.perf_counter() - started
        fetchone = pool.fetchone
        started = time.perf_counter()
        for key in keys:
            fetchone(SELECT, (key,))
        fp_read = time.perf_counter() - started
        assert pool.fetchone("SELECT count(*) FROM users") == (rows,)

    conn = _stdlib_connect(os.path.join(directory, "stdlib.db"))
    conn.execute(SCHEMA)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(INSERT, [_row(i) for i in range(rows)])
    conn.execute("COMMIT")
    sq_insert = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        conn.execute(SELECT, (key,)).fetchone()
    sq_read = time.perf_counter() - started
    conn.close()

    print(f"   {'':28}{'fastpool':>14}{'sqlite3':>14}{'fastpool is':>14}")
    print(
        f"   {'inserts':28}{_rate(rows, fp_insert):>14}{_rate(rows, sq_insert):>14}"
        f"{sq_insert / fp_insert:>12.2f}x"
    )
    print(
        f"   {'point selects by key':28}{_rate(rows, fp_read):>14}{_rate(rows, sq_read):>14}"
        f"{sq_read / fp_read:>12.2f}x"
    )


def _run_threads(n: int, work: Callable[[int], None]) -> float:
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:  # reported below, never silently lost
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def many_threads(directory: str, rows: int, threads: int, ops: int) -> None:
    writers = max(1, threads // 8)
    readers = threads - writers
    print(
        f"\n2) {readers} reader threads and {writers} writer threads at once on one database, "
        f"{ops:,} operations each (writers: one single-row UPDATE transaction per operation)"
    )
    results: dict[str, tuple[float, list[float], list[float], int]] = {}
    for name in ("fastpool", "sqlite3"):
        path = os.path.join(directory, f"mixed-{name}.db")
        setup = _stdlib_connect(path)
        setup.execute(SCHEMA)
        setup.execute("BEGIN")
        setup.executemany(INSERT, [_row(i) for i in range(rows)])
        setup.execute("COMMIT")
        setup.close()
        read_lat: list[float] = []
        write_lat: list[float] = []
        locked = [0]

        def timed_ops(
            index: int, read: Callable[[int], object], write: Callable[[int], object]
        ) -> None:
            """One thread's operations (all writes if index < writers, else all reads), by
            random key, each one's latency recorded."""
            rng = random.Random(index)
            clock = time.perf_counter
            for _ in range(ops):
                key = rng.randrange(1, rows + 1)
                started = clock()
                if index < writers:
                    write(key)
                    write_lat.append(clock() - started)
                else:
                    read(key)
                    read_lat.append(clock() - started)

        if name == "fastpool":
            pool = fastpool.Pool(path, readers=4)

            def fastpool_write(key: int, pool: fastpool.Pool = pool) -> None:
                with pool.writer() as w:
                    w.execute(UPDATE, (key,))

            def fastpool_work(index: int, pool: fastpool.Pool = pool) -> None:
                timed_ops(index, lambda key: pool.fetchone(SELECT, (key,)), fastpool_write)
        else:
            local = threading.local()

            def sqlite3_work(index: int) -> None:
                conn = local.conn = _stdlib_connect(path)

                def write(key: int) -> None:
                    try:
                        conn.execute("BEGIN")
                        conn.execute(UPDATE, (key,))
                        conn.execute("COMMIT")
                    except sqlite3.OperationalError:
                        locked[0] += 1
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")

                timed_ops(index, lambda key: conn.execute(SELECT, (key,)).fetchone(), write)
                conn.close()

        seconds = _run_threads(threads, fastpool_work if name == "fastpool" else sqlite3_work)
        if name == "fastpool":
            pool.close()
        results[name] = (seconds, read_lat, write_lat, locked[0])

    print(f"   {'':28}{'fastpool':>14}{'sqlite3':>14}")
    fp, sq = results["fastpool"], results["sqlite3"]
    total = threads * ops
    print(f"   {'total operations':28}{_rate(total, fp[0]):>14}{_rate(total, sq[0]):>14}")
    for label, fp_lat, sq_lat in (("read", fp[1], sq[1]), ("write", fp[2], sq[2])):
        for q in (0.5, 0.99):
            print(
                f"   {f'{label} latency p{int(q * 100)} (ms)':28}"
                f"{_pct(fp_lat, q):>14.3f}{_pct(sq_lat, q):>14.3f}"
            )
    print(f"   {'`database is locked` errors':28}{fp[3]:>14}{sq[3]:>14}")
    print("   (sqlite3: one connection per thread, busy_timeout 5 s, BEGIN (deferred) per write)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastpool", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fastpool {fastpool.__version__}")
    parser.add_argument("--rows", type=int, default=20_000, help="rows to write and read back")
    parser.add_argument("--threads", type=int, default=16, help="threads in the mixed run")
    parser.add_argument("--ops", type=int, default=2_000, help="operations per thread")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.threads < 2 or args.ops < 1:
        parser.error("--rows and --ops must be >= 1 and --threads >= 2")
    print(
        f"fastpool {fastpool.__version__} on SQLite {fastpool.sqlite_version()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPU(s)"
    )
    with tempfile.TemporaryDirectory(prefix="fastpool-demo-") as directory:
        print(f"temporary database directory: {directory}")
        single_thread(directory, args.rows)
        many_threads(directory, min(args.rows, 10_000), args.threads, args.ops)
    print("\ndone; the temporary databases were removed")
    return 0
