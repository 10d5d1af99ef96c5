"""The pool, each workload beside the stdlib baselines.

Contestants (``fastpool._bench.systems``, the systems of ``python -m fastpool bench``):

- ``fastpool``: ``fastpool.Pool(path, readers=4)``; reads are ``pool.fetchone``, writes are
  ``with pool.writer() as w: w.execute(...)`` (BEGIN IMMEDIATE ... COMMIT, FIFO hand-over);
- ``fastpool-oneshot`` (write benchmarks only): the same pool, writes as one-shot
  ``pool.execute(sql, params)`` (a transaction of its own, no Python code while the writer is
  held);
- ``sqlite3``: one stdlib connection per thread, busy timeout 5 s, writes the naive way
  (``with conn: conn.execute(...)``: an implicit deferred BEGIN, COMMIT on exit);
- ``queue``: 4 stdlib connections (check_same_thread=False) in a ``queue.Queue``, checked out
  through a context manager, writes as above.

Multi-threaded benchmarks run a fixed list of operations per thread, released together by a
barrier; each operation is timed (``time.perf_counter_ns``). pytest-benchmark times each round
(``benchmark.pedantic``); ops/s, commits/s, lock errors and latency p50/p99/p99.9 (median over
rounds) are in ``extra_info`` and in the summary printed at the end of the run.

Every workload runs twice: once per contestant (``test_checkout_*``, ``test_point_reads``,
``test_writers``, ``test_mix``: pytest-benchmark's usual one-row-per-contestant tables), and
once with all contestants interleaved round by round (``test_*_side_by_side``), which is what
the acceptance check reads: on a small shared machine, tests that run seconds apart can see
very different machines.

With ``--benchmark-disable`` every count is cut to 1% and one round runs: the suite then only
proves that it still works.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from _suite import (
    SIDE_BY_SIDE,
    batch_summary,
    interleaved,
    rounds_for,
    run_rounds,
    scale_factor,
    scaled,
    summarize,
    timed,
)

import fastpool
from fastpool._bench.data import INSERT, UPDATE, Keeper, live_database
from fastpool._bench.rounds import ThreadedRound
from fastpool._bench.systems import (
    FastpoolSync,
    Ops,
    Sqlite3PerThread,
    Sqlite3QueuePool,
    System,
    _checkout_loop,
)
from fastpool._bench.workloads import WORKLOADS as RUNNER_WORKLOADS
from fastpool._bench.workloads import Workload, check_writes

CHECKOUT_BATCH = 1000
CHECKOUT_SIDE_BY_SIDE_ROUNDS = 300
READS_PER_ROUND = 40_000  # split evenly over the threads
ROUNDS = 5


class FastpoolOneShot(FastpoolSync):
    """fastpool.Pool with one-shot writes: ``pool.execute(sql, params)`` is checkout, statement
    (its own transaction) and return in one call, with no Python code while the writer is
    held. Reads as FastpoolSync."""

    def thread_ops(self) -> Ops:
        ops = super().thread_ops()
        execute = self.pool.execute
        ops.insert = lambda row: execute(INSERT, row)
        ops.update = lambda key: execute(UPDATE, key)
        return ops


CONTESTANTS: dict[str, type[System]] = {
    "fastpool": FastpoolSync,
    "fastpool-oneshot": FastpoolOneShot,
    "sqlite3": Sqlite3PerThread,
    "queue": Sqlite3QueuePool,
}
READ_CONTESTANTS = ["fastpool", "sqlite3", "queue"]
WRITE_CONTESTANTS = ["fastpool", "fastpool-oneshot", "sqlite3", "queue"]

#: The runner's threaded workloads this suite runs: operations per thread at full scale, and
#: the pytest-benchmark group of the one-contestant-per-test benchmarks.
PER_THREAD = {"reads1": 40_000, "reads4": 10_000, "reads16": 2_500, "writers8": 250, "mix16": 1_000}
GROUPS = {
    **{
        f"reads{n}": f"point reads, {n} thread(s) (per round: {READS_PER_ROUND:,} reads)"
        for n in (1, 4, 16)
    },
    "writers8": "8 writer threads, single-row INSERT transactions",
    "mix16": "16 threads, 90% point reads / 10% UPDATE transactions",
}
WORKLOADS: dict[str, Workload] = {key: RUNNER_WORKLOADS[key] for key in PER_THREAD}


def open_contestant(name: str, path: str) -> System:
    system = CONTESTANTS[name]()
    system.open(path)
    return system


def contestants(workload: Workload) -> list[str]:
    return WRITE_CONTESTANTS if workload.writes else READ_CONTESTANTS


def work_lists(workload: Workload, benchmark: Any) -> list[list[Any]]:
    """Every thread's seeded work list, at the run's scale."""
    count = scaled(PER_THREAD[workload.key], scale_factor(benchmark), minimum=20)
    return [workload.work(i, items=count) for i in range(workload.workers)]


def pool_counters(system: System) -> dict[str, Any]:
    """fastpool's own view of the run: how many checkouts had to wait, and for how long."""
    pool = getattr(system, "pool", None)
    if not isinstance(pool, fastpool.Pool):
        return {}
    stats = pool.stats()
    return {
        "pool_checkouts": stats["checkouts"],
        "pool_waits": stats["waits"],
        "pool_wait_time_s": round(stats["wait_time"], 3),
    }


def _finish(
    workload: Workload,
    name: str,
    system: System,
    path: str,
    results: list[dict[str, float]],
    work: list[list[Any]],
) -> dict[str, Any]:
    """Summarize one contestant's rounds, close it, and check the database it left."""
    summary = summarize(results, workload.workers) | pool_counters(system)
    system.close()
    assert summary["ops_per_round"] * len(results) == sum(len(w) for w in work) * len(results)
    writes = sum(map(len, work)) if workload.op == "insert" else 0
    if workload.op == "mix":
        writes = sum(is_write for w in work for is_write, _ in w)
    assert summary["commits"] + summary["locked_errors"] == writes * len(results)
    if name.startswith("fastpool"):
        assert summary["locked_errors"] == 0, "fastpool must never report 'database is locked'"
    if workload.writes:
        with Keeper(path) as keeper:
            ok, detail = check_writes(workload.op, summary["commits"], *keeper.count_and_scores())
        assert ok, f"every counted commit must be in the table: {detail}"
    return summary


def _per_contestant_params() -> list[Any]:
    return [
        pytest.param(key, name, id=f"{key}-{name}")
        for key, w in WORKLOADS.items()
        for name in contestants(w)
    ]


# -- checkout + return, no query -----------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path):
    """A fresh database per benchmark (writes of one contestant never slow another's reads),
    in the state of a database in service (see ``live_database``)."""
    with live_database(tmp_path / "bench.db") as path:
        yield path


@pytest.fixture
def checkouts(db_path):
    """The checkout+return loops, 1000 per call: fastpool (``with pool.reader()``, and
    ``pool.reader().close()`` without the ``with`` protocol), the queue pool, the bare queue,
    and three references: ``with threading.Lock()`` (the cheapest ``with`` on a C object, no
    allocation), ``with`` on a Python object whose ``__enter__``/``__exit__`` do nothing (the
    floor for any context manager) and the empty loop they all pay."""
    pool = fastpool.Pool(db_path, readers=4)
    queue_pool = open_contestant("queue", db_path)
    assert isinstance(queue_pool, Sqlite3QueuePool)
    reader = pool.reader
    connection = queue_pool.connection
    get, put = queue_pool.queue.get, queue_pool.queue.put
    lock = threading.Lock()
    loop = range(CHECKOUT_BATCH)

    # `with checkout(): pass`, the loop the comparison suite times (bench/compare.py).
    fastpool_reader = functools.partial(_checkout_loop(reader), CHECKOUT_BATCH)
    queue_contextmanager = functools.partial(_checkout_loop(connection), CHECKOUT_BATCH)

    def fastpool_reader_close():
        for _ in loop:
            reader().close()

    def queue_get_put():
        for _ in loop:
            put(get())

    def with_each(manager: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in loop:
                with manager:
                    pass

        return run

    class Nothing:
        def __enter__(self) -> None:
            pass

        def __exit__(self, *exc: object) -> None:
            pass

    with_lock = with_each(lock)
    with_nothing = with_each(Nothing())

    def empty_loop():
        for _ in loop:
            pass

    try:
        yield {
            "fastpool": fastpool_reader,
            "fastpool-close": fastpool_reader_close,
            "queue-contextmanager": queue_contextmanager,
            "queue-get-put": queue_get_put,
            "with-lock": with_lock,
            "with-nothing": with_nothing,
            "empty-loop": empty_loop,
        }
        stats = pool.stats()
        assert stats["readers_in_use"] == 0 and stats["waits"] == 0
        assert queue_pool.queue.qsize() == len(queue_pool.conns)
    finally:
        pool.close()
        queue_pool.close()


@pytest.mark.benchmark(group="checkout+return, no query (per call: 1000)")
@pytest.mark.parametrize(
    "name",
    [
        "fastpool",
        "fastpool-close",
        "queue-contextmanager",
        "queue-get-put",
        "with-lock",
        "with-nothing",
        "empty-loop",
    ],
)
def test_checkout(benchmark, record_result, checkouts, name):
    benchmark(checkouts[name])
    metrics = {"ops_per_call": CHECKOUT_BATCH}
    if benchmark.stats is not None:
        median = benchmark.stats.stats.median
        metrics |= {
            "ns_per_op": round(median / CHECKOUT_BATCH * 1e9, 1),
            "ops_per_s": round(CHECKOUT_BATCH / median),
        }
    record_result(f"checkout/{name}", metrics)


@pytest.mark.benchmark(group="side by side (contestants interleaved, round by round)")
def test_checkout_side_by_side(benchmark, record_result, checkouts):
    durations = interleaved(
        benchmark,
        rounds_for(benchmark, CHECKOUT_SIDE_BY_SIDE_ROUNDS),
        {name: timed(fn) for name, fn in checkouts.items()},
    )
    for name, values in durations.items():
        record_result(f"{SIDE_BY_SIDE}/checkout/{name}", batch_summary(values, CHECKOUT_BATCH))


# -- threaded workloads, one contestant per test ------------------------------------------------


@pytest.mark.parametrize(("workload_key", "name"), _per_contestant_params())
def test_threads(benchmark, record_result, tmp_path, workload_key, name):
    """Point reads from 1/4/16 threads, 8 writer threads, the 16-thread 90/10 mix."""
    workload = WORKLOADS[workload_key]
    benchmark.group = GROUPS[workload_key]
    work = work_lists(workload, benchmark)
    with live_database(tmp_path / "bench.db") as path:
        system = open_contestant(name, path)
        try:
            results = run_rounds(
                benchmark,
                rounds_for(benchmark, ROUNDS),
                lambda: ThreadedRound(system, workload.op, work),
            )
            summary = _finish(workload, name, system, path, results, work)
        finally:
            system.close()
    record_result(f"{workload.key}/{name}", summary)


# -- threaded workloads, all contestants side by side ----------------------------------------------


@pytest.mark.benchmark(group="side by side (contestants interleaved, round by round)")
@pytest.mark.parametrize("workload_key", list(WORKLOADS))
def test_threads_side_by_side(benchmark, record_result, tmp_path, workload_key):
    """Every round runs each contestant once (order rotated), each on its own database."""
    workload = WORKLOADS[workload_key]
    work = work_lists(workload, benchmark)
    with contextlib.ExitStack() as stack:
        paths, systems = {}, {}
        for name in contestants(workload):
            paths[name] = stack.enter_context(live_database(tmp_path / f"{name}.db"))
            systems[name] = open_contestant(name, paths[name])
            stack.callback(systems[name].close)
        results = interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {
                name: (lambda s=system: ThreadedRound(s, workload.op, work).go())
                for name, system in systems.items()
            },
        )
        for name, system in systems.items():
            summary = _finish(workload, name, system, paths[name], results[name], work)
            record_result(f"{SIDE_BY_SIDE}/{workload.key}/{name}", summary)
