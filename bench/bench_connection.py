"""Connection core: single-thread point select by primary key.

One row of four columns by ``id``, the statement cached, keys from a fixed-seed sequence;
``fastpool.Connection.fetchone(sql, key)`` against stdlib ``conn.execute(sql, key).fetchone()``
on the same database file with the same pragmas (journal_mode=wal, synchronous=normal).

Each benchmark call looks up ``BATCH`` keys, so per-call timer overhead is negligible; the
reported ``ns_per_op`` / ``ops_per_s`` are per lookup. ``test_point_select_side_by_side`` runs
both contestants in every round (order rotated), which a noisy machine cannot bias; the
acceptance check uses it.
"""

from __future__ import annotations

import sqlite3

import pytest
from _suite import SIDE_BY_SIDE, batch_summary, interleaved, rounds_for, timed

import fastpool
from fastpool._bench.data import PRAGMAS, SELECT, point_keys, point_lookups, stdlib_connect

BATCH = 1000
SIDE_BY_SIDE_ROUNDS = 200

pytestmark = pytest.mark.benchmark(group="point select, 1 thread (per call: 1000 lookups)")


@pytest.fixture(scope="module")
def keys():
    return point_keys(BATCH)


def _record(benchmark, record_result, key):
    if benchmark.stats is not None:
        median = benchmark.stats.stats.median
        metrics = {
            "ops_per_call": BATCH,
            "ns_per_op": round(median / BATCH * 1e9, 1),
            "ops_per_s": round(BATCH / median),
        }
    else:
        metrics = {"ops_per_call": BATCH}
    record_result(key, metrics)


def test_point_select_fastpool(benchmark, record_result, db_path, keys):
    conn = fastpool.Connection(db_path, pragmas=PRAGMAS)
    fetchone = conn.fetchone

    def lookups():
        row = None
        for key in keys:
            row = fetchone(SELECT, key)
        return row

    try:
        last = benchmark(lookups)
        assert last is not None and last[0] == keys[-1][0] and len(last) == 4
        assert conn.cache_stats()["misses"] == 1, "the statement must come from the cache"
    finally:
        conn.close()
    _record(benchmark, record_result, "point_select/fastpool")


def test_point_select_sqlite3(benchmark, record_result, db_path, keys):
    conn = stdlib_connect(db_path)
    lookups = point_lookups(conn.execute, keys)
    try:
        last = benchmark(lookups)
        assert last is not None and last[0] == keys[-1][0] and len(last) == 4
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    finally:
        conn.close()
    _record(benchmark, record_result, "point_select/sqlite3")


@pytest.mark.benchmark(group="side by side (contestants interleaved, round by round)")
def test_point_select_side_by_side(benchmark, record_result, db_path, keys):
    """Both contestants in every round, order rotated: the numbers the acceptance check uses."""
    fp = fastpool.Connection(db_path, pragmas=PRAGMAS)
    sq = stdlib_connect(db_path)
    fp_fetchone, sq_execute = fp.fetchone, sq.execute

    def fastpool_lookups():
        for key in keys:
            fp_fetchone(SELECT, key)

    def sqlite3_lookups():
        for key in keys:
            sq_execute(SELECT, key).fetchone()

    try:
        durations = interleaved(
            benchmark,
            rounds_for(benchmark, SIDE_BY_SIDE_ROUNDS),
            {"fastpool": timed(fastpool_lookups), "sqlite3": timed(sqlite3_lookups)},
        )
    finally:
        fp.close()
        sq.close()
    for name, values in durations.items():
        record_result(f"{SIDE_BY_SIDE}/point_select/{name}", batch_summary(values, BATCH))


def test_same_pragmas(db_path):
    """Guard: the fastpool connection runs with the pragmas the stdlib one gets."""
    conn = fastpool.Connection(db_path, pragmas=PRAGMAS)
    try:
        assert conn.fetchone("PRAGMA journal_mode") == ("wal",)
        assert conn.fetchone("PRAGMA synchronous") == (1,)
    finally:
        conn.close()
    std = sqlite3.connect(":memory:")
    std_options = tuple(row[0] for row in std.execute("PRAGMA compile_options"))
    std.close()
    if fastpool.sqlite_compile_options() != std_options:
        # A bundled, tuned SQLite (a wheel, or FASTPOOL_SQLITE_AMALGAMATION): the side-by-side
        # numbers then also compare two SQLite builds. Say so instead of failing.
        print(
            f"\nnote: fastpool runs its bundled SQLite {fastpool.sqlite_version()}, the "
            f"stdlib SQLite {sqlite3.sqlite_version}; side-by-side numbers compare builds too"
        )
        return
    assert sqlite3.sqlite_version == fastpool.sqlite_version(), (
        "fastpool and the stdlib link different SQLite libraries; the comparison would not "
        "be like for like"
    )
