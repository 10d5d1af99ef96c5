"""fastpool.dbapi against the stdlib sqlite3 module, the same code on both.

- point select: ``conn.execute(SELECT, key).fetchone()``, one row of four columns by ``id``;
- fetchall: ``conn.execute(SELECT_1000).fetchall()``, 1,000 rows of four columns;
- read-modify-write: 8 threads, each with its own ``connect()``, each doing ``BEGIN; SELECT n;
  UPDATE n + 1; COMMIT`` on one hot row. Errors and lost updates are counted, not hidden: the
  stdlib's deferred ``BEGIN`` makes the UPDATE fail with "database is locked" whenever another
  thread wrote since its SELECT; fastpool.dbapi begins ``IMMEDIATE`` and queues writers FIFO.

Both contestants run with the same pragmas (``PRAGMAS``: WAL, synchronous=normal) on the same
file, side by side: every round runs each contestant once, order rotated. A fastpool built with
its own SQLite (a wheel) gets an identical database of its own (``fastpool_db_path``): two
SQLite libraries must not open one file in one process. Each result names the SQLite it ran.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from _suite import SIDE_BY_SIDE, batch_summary, interleaved, rounds_for, scale_factor, scaled, timed

import fastpool.dbapi
from fastpool._bench.data import PRAGMAS, point_keys, point_lookups, stdlib_connect

BATCH = 1000
ROUNDS = 100
SELECT_1000 = "SELECT id, name, email, score FROM users WHERE id <= 1000"
RMW_THREADS = 8
RMW_PER_THREAD = 200

pytestmark = pytest.mark.benchmark(group="fastpool.dbapi vs sqlite3 (same code, side by side)")


def fastpool_connect(path: str, **kwargs: object) -> fastpool.dbapi.Connection:
    pragmas = {name: value for name, value in PRAGMAS.items() if name != "busy_timeout"}
    return fastpool.dbapi.connect(path, pragmas=pragmas, **kwargs)


def side_by_side(benchmark, record_result, paths, key, make_run, ops_per_call):
    """Run ``make_run(conn)()`` on a fastpool.dbapi and a sqlite3 connection, interleaved; the
    two must return the same rows. ``paths``: the (fastpool, sqlite3) databases. Records
    ``side-by-side/<key>/<contestant>``."""
    fp, sq = fastpool_connect(paths[0]), stdlib_connect(paths[1])
    try:
        assert make_run(fp)() == make_run(sq)()
        durations = interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {"fastpool.dbapi": timed(make_run(fp)), "sqlite3": timed(make_run(sq))},
        )
    finally:
        fp.close()
        sq.close()
    libraries = {"fastpool.dbapi": fastpool.dbapi.sqlite_version, "sqlite3": sqlite3.sqlite_version}
    for name, values in durations.items():
        summary = {**batch_summary(values, ops_per_call), "sqlite": libraries[name]}
        record_result(f"{SIDE_BY_SIDE}/{key}/{name}", summary)


def test_point_select_side_by_side(benchmark, record_result, fastpool_db_path, db_path):
    keys = point_keys(BATCH)

    def lookups(conn):
        return point_lookups(conn.execute, keys)

    paths = (fastpool_db_path, db_path)
    side_by_side(benchmark, record_result, paths, "dbapi_point_select", lookups, BATCH)


def test_fetchall_1000_rows_side_by_side(benchmark, record_result, fastpool_db_path, db_path):
    def fetch(conn):
        return lambda: conn.execute(SELECT_1000).fetchall()

    # One "op" is one fetchall of 1,000 rows.
    paths = (fastpool_db_path, db_path)
    side_by_side(benchmark, record_result, paths, "dbapi_fetchall_1000", fetch, 1)


def read_modify_write(open_connection, path: str, per_thread: int) -> dict[str, float]:
    """8 threads, own connections, BEGIN; SELECT; UPDATE; COMMIT on one row: the counts."""
    setup = open_connection(path)
    setup.execute("CREATE TABLE IF NOT EXISTS hot(id INTEGER PRIMARY KEY, n INTEGER)")
    setup.execute("INSERT OR REPLACE INTO hot VALUES (1, 0)")
    setup.commit()
    errors = [0] * RMW_THREADS
    done = [0] * RMW_THREADS
    start = threading.Barrier(RMW_THREADS + 1)

    def worker(i: int) -> None:
        conn = open_connection(path, check_same_thread=False)
        start.wait()
        try:
            for _ in range(per_thread):
                try:
                    conn.execute("BEGIN")
                    (n,) = conn.execute("SELECT n FROM hot WHERE id = 1").fetchone()
                    conn.execute("UPDATE hot SET n = ? WHERE id = 1", (n + 1,))
                    conn.commit()
                    done[i] += 1
                except (sqlite3.OperationalError, fastpool.dbapi.OperationalError):
                    errors[i] += 1
                    conn.rollback()
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(RMW_THREADS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    (final,) = setup.execute("SELECT n FROM hot WHERE id = 1").fetchone()
    setup.close()
    committed = sum(done)
    return {
        "transactions": RMW_THREADS * per_thread,
        "committed": committed,
        "errors": sum(errors),
        "lost_updates": committed - final,
        "commits_per_s": round(committed / elapsed),
    }


def test_read_modify_write_8_threads(benchmark, record_result, fastpool_db_path, db_path):
    per_thread = scaled(RMW_PER_THREAD, scale_factor(benchmark))
    results: dict[str, dict[str, float]] = {}

    def both() -> None:
        results["fastpool.dbapi"] = read_modify_write(
            fastpool_connect, fastpool_db_path, per_thread
        )
        results["sqlite3"] = read_modify_write(_stdlib_connect, db_path, per_thread)

    benchmark.pedantic(both, rounds=1, iterations=1, warmup_rounds=0)
    ours = results["fastpool.dbapi"]
    assert ours["errors"] == 0 and ours["lost_updates"] == 0, ours
    for name, counts in results.items():
        record_result(f"dbapi_rmw_8_threads/{name}", counts)


def _stdlib_connect(path: str, check_same_thread: bool = True) -> sqlite3.Connection:
    return stdlib_connect(path, check_same_thread=check_same_thread)
