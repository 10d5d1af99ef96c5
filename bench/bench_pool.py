"""The pool (issue 3), each workload beside the stdlib baselines.

Contestants (see ``_workloads.py``):

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
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from _workloads import (
    BACKENDS,
    ROWS,
    SIDE_BY_SIDE,
    ThreadedRound,
    ThreadStats,
    batch_summary,
    insert_loop,
    interleaved,
    live_database,
    mix_loop,
    mix_plan,
    point_keys,
    read_loop,
    rounds_for,
    row_values,
    run_rounds,
    scale_factor,
    scaled,
    summarize,
    timed,
)

import fastpool

CHECKOUT_BATCH = 1000
CHECKOUT_SIDE_BY_SIDE_ROUNDS = 300
READS_PER_ROUND = 40_000  # split evenly over the threads
INSERTS_PER_WRITER = 250
WRITER_THREADS = 8
MIX_THREADS = 16
MIX_OPS_PER_THREAD = 1_000
MIX_WRITE_FRACTION = 0.10
ROUNDS = 5

READ_BACKENDS = ["fastpool", "sqlite3", "queue"]
WRITE_BACKENDS = ["fastpool", "fastpool-oneshot", "sqlite3", "queue"]
INITIAL_SCORE = sum(row_values(i)[2] for i in range(1, ROWS + 1))


# -- workloads ------------------------------------------------------------------------------------


@dataclass
class Workload:
    """One multi-threaded workload: how many threads, what each thread does, who competes,
    and how to check the database afterwards."""

    key: str  # summary key prefix, e.g. "reads4"
    group: str  # pytest-benchmark group of the per-contestant tests
    threads: int
    per_thread: int  # operations per thread at full scale
    backends: list[str]
    loop: Callable[..., ThreadStats]
    make_data: Callable[[int, int], object]  # (thread index, operations) -> work list
    check: Callable[[str, dict], None] = lambda path, summary: None

    def data(self, benchmark) -> dict[int, object]:
        count = scaled(self.per_thread, scale_factor(benchmark), minimum=20)
        return {i: self.make_data(i, count) for i in range(self.threads)}


def _check_inserts(path: str, summary: dict) -> None:
    count, _ = _count_and_scores(path)
    assert count == ROWS + summary["commits"], "every counted commit must be in the table"


def _check_updates(path: str, summary: dict) -> None:
    count, scores = _count_and_scores(path)
    assert count == ROWS
    assert scores == pytest.approx(INITIAL_SCORE + summary["commits"]), (
        "every counted UPDATE commit must have added 1 to one score"
    )


def _reads(threads: int) -> Workload:
    return Workload(
        key=f"reads{threads}",
        group=f"point reads, {threads} thread(s) (per round: {READS_PER_ROUND:,} reads)",
        threads=threads,
        per_thread=READS_PER_ROUND // threads,
        backends=READ_BACKENDS,
        loop=read_loop,
        make_data=lambda i, n: point_keys(n, seed=1000 + i),
    )


WORKLOADS = {
    w.key: w
    for w in [
        _reads(1),
        _reads(4),
        _reads(16),
        Workload(
            key=f"writers{WRITER_THREADS}",
            group=f"{WRITER_THREADS} writer threads, single-row INSERT transactions",
            threads=WRITER_THREADS,
            per_thread=INSERTS_PER_WRITER,
            backends=WRITE_BACKENDS,
            loop=insert_loop,
            make_data=lambda i, n: [row_values(100_000 * (i + 1) + j) for j in range(n)],
            check=_check_inserts,
        ),
        Workload(
            key=f"mix{MIX_THREADS}",
            group=f"{MIX_THREADS} threads, 90% point reads / 10% UPDATE transactions",
            threads=MIX_THREADS,
            per_thread=MIX_OPS_PER_THREAD,
            backends=WRITE_BACKENDS,
            loop=mix_loop,
            make_data=lambda i, n: mix_plan(n, MIX_WRITE_FRACTION, seed=2000 + i),
            check=_check_updates,
        ),
    ]
}


def _round(workload: Workload, backend, data: dict[int, object]) -> ThreadedRound:
    def prepare(index: int):
        ops = backend.thread_ops()
        return (lambda: workload.loop(ops, data[index], backend.errors)), ops.close

    return ThreadedRound(workload.threads, prepare)


def _count_and_scores(path: str) -> tuple[int, float]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*), total(score) FROM users").fetchone()
    finally:
        conn.close()


def pool_counters(backend) -> dict:
    """fastpool's own view of the run: how many checkouts had to wait, and for how long."""
    pool = getattr(backend, "pool", None)
    if pool is None:
        return {}
    stats = pool.stats()
    return {
        "pool_checkouts": stats["checkouts"],
        "pool_waits": stats["waits"],
        "pool_wait_time_s": round(stats["wait_time"], 3),
    }


def _finish(workload: Workload, name: str, backend, path: str, results, data) -> dict:
    """Summarize one contestant's rounds, close it, and check the database it left."""
    summary = summarize(results) | pool_counters(backend)
    backend.close()
    ops = sum(len(d) for d in data.values()) * len(results)
    assert summary["ops_per_round"] * len(results) == ops
    assert summary["commits"] + summary["locked_errors"] == sum(len(r.write_ns) for r in results)
    if name.startswith("fastpool"):
        assert summary["locked_errors"] == 0, "fastpool must never report 'database is locked'"
    workload.check(path, summary)
    return summary


def _per_contestant_params():
    return [
        pytest.param(key, name, id=f"{key}-{name}")
        for key, w in WORKLOADS.items()
        for name in w.backends
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
    queue_pool = BACKENDS["queue"](db_path)
    reader = pool.reader
    connection = queue_pool.connection
    get, put = queue_pool.queue.get, queue_pool.queue.put
    lock = threading.Lock()
    loop = range(CHECKOUT_BATCH)

    def fastpool_reader():
        for _ in loop:
            with reader():
                pass

    def fastpool_reader_close():
        for _ in loop:
            reader().close()

    def queue_contextmanager():
        for _ in loop:
            with connection():
                pass

    def queue_get_put():
        for _ in loop:
            put(get())

    def with_lock():
        for _ in loop:
            with lock:
                pass

    class Nothing:
        def __enter__(self) -> None:
            pass

        def __exit__(self, *exc: object) -> None:
            pass

    nothing = Nothing()

    def with_nothing():
        for _ in loop:
            with nothing:
                pass

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
    benchmark.group = workload.group
    data = workload.data(benchmark)
    with live_database(tmp_path / "bench.db") as path:
        backend = BACKENDS[name](path)
        try:
            results = run_rounds(
                benchmark,
                rounds_for(benchmark, ROUNDS),
                lambda: _round(workload, backend, data),
            )
            summary = _finish(workload, name, backend, path, results, data)
        finally:
            backend.close()
    record_result(f"{workload.key}/{name}", summary)


# -- threaded workloads, all contestants side by side ----------------------------------------------


@pytest.mark.benchmark(group="side by side (contestants interleaved, round by round)")
@pytest.mark.parametrize("workload_key", list(WORKLOADS))
def test_threads_side_by_side(benchmark, record_result, tmp_path, workload_key):
    """Every round runs each contestant once (order rotated), each on its own database."""
    workload = WORKLOADS[workload_key]
    data = workload.data(benchmark)
    with contextlib.ExitStack() as stack:
        paths, backends = {}, {}
        for name in workload.backends:
            paths[name] = stack.enter_context(live_database(tmp_path / f"{name}.db"))
            backends[name] = BACKENDS[name](paths[name])
            stack.callback(backends[name].close)
        results = interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {
                name: (lambda b=backend: _round(workload, b, data).go())
                for name, backend in backends.items()
            },
        )
        for name, backend in backends.items():
            summary = _finish(workload, name, backend, paths[name], results[name], data)
            record_result(f"{SIDE_BY_SIDE}/{workload.key}/{name}", summary)
