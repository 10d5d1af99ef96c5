"""Workloads shared by the pytest-benchmark suites.

Everything a benchmark needs besides the timing itself lives here, so that
``bench_connection.py``, ``bench_pool.py`` and the comparison runner measure exactly the same
work:

- the database: one table of ``ROWS`` users with four columns (plus the ``orders`` table the
  comparison runner joins), in WAL mode with fastpool's default pragmas, held in the state of
  a database in service (``live_database``); these names are re-exported from
  ``fastpool._bench.data``, the one definition that ``python -m fastpool bench`` uses too;
- the contestants (``FastpoolBackend``, ``FastpoolOneShot``, ``StdlibPerThread``,
  ``StdlibQueuePool``; ``BACKENDS`` by name): each gives every worker thread an ``Ops`` with
  the same operations (point read, single-row insert transaction, single-row update
  transaction, close);
- the thread runner (``ThreadedRound``, ``run_rounds``): N threads prepared up front, released
  together by a barrier, each running a fixed list of operations while timing every one;
- ``interleaved``: contestants side by side, one after the other in every round;
- the summaries (``summarize``, ``batch_summary``) and the acceptance table
  (``acceptance_report``).

Keys, rows and read/write plans all come from fixed seeds, so every contestant gets the same
sequence of operations.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastpool

# -- the database (one definition, shared with the comparison runner) ---------------------------
from fastpool._bench.data import (
    BUSY_TIMEOUT,
    INSERT,
    KEEPER_SCHEMA,
    POOL_SIZE,
    PRAGMAS,
    ROWS,
    SCHEMA,
    SEED,
    SELECT,
    UPDATE,
    is_locked,
    live_database,
    make_database,
    mix_plan,
    percentile,
    point_keys,
    row_values,
    stdlib_connect,
)

__all__ = [
    "BUSY_TIMEOUT",
    "INSERT",
    "KEEPER_SCHEMA",
    "POOL_SIZE",
    "PRAGMAS",
    "ROWS",
    "SCHEMA",
    "SEED",
    "SELECT",
    "UPDATE",
    "is_locked",
    "live_database",
    "make_database",
    "mix_plan",
    "percentile",
    "point_keys",
    "row_values",
    "stdlib_connect",
]


# -- scaling --------------------------------------------------------------------------------------


def scale_factor(benchmark: Any = None) -> float:
    """How much of the full operation counts to run.

    ``FASTPOOL_BENCH_SCALE`` wins when set; otherwise 1.0, or 0.01 when pytest-benchmark is
    disabled (``--benchmark-disable``: the suites only have to run, not to measure).
    """
    env = os.environ.get("FASTPOOL_BENCH_SCALE")
    if env:
        return float(env)
    if benchmark is not None and getattr(benchmark, "disabled", False):
        return 0.01
    return 1.0


def scaled(count: int, factor: float, minimum: int = 10) -> int:
    return max(minimum, int(count * factor))


def rounds_for(benchmark: Any, default: int) -> int:
    env = os.environ.get("FASTPOOL_BENCH_ROUNDS")
    if env:
        return max(1, int(env))
    return 1 if getattr(benchmark, "disabled", False) else default


# -- the contestants ------------------------------------------------------------------------------


@dataclass
class Ops:
    """What one worker thread can do. Each call is one complete operation (one transaction)."""

    read: Callable[[tuple[int]], object]
    insert: Callable[[tuple[str, str, float]], object]
    update: Callable[[tuple[int]], object]
    close: Callable[[], None] = lambda: None


class FastpoolBackend:
    """fastpool.Pool: reads through ``pool.fetchone``, writes through ``pool.writer()``."""

    name = "fastpool"
    errors: tuple[type[BaseException], ...] = (fastpool.OperationalError,)

    def __init__(self, path: str, readers: int = POOL_SIZE) -> None:
        self.pool = fastpool.Pool(path, readers=readers)

    def thread_ops(self) -> Ops:
        fetchone = self.pool.fetchone
        writer = self.pool.writer

        def read(key: tuple[int]) -> object:
            return fetchone(SELECT, key)

        def insert(row: tuple[str, str, float]) -> None:
            with writer() as w:
                w.execute(INSERT, row)

        def update(key: tuple[int]) -> None:
            with writer() as w:
                w.execute(UPDATE, key)

        return Ops(read, insert, update)

    def close(self) -> None:
        self.pool.close()


class FastpoolOneShot(FastpoolBackend):
    """fastpool.Pool with one-shot writes: ``pool.execute(sql, params)`` is checkout, statement
    (its own transaction) and return in one call, with no Python code while the writer is
    held. Reads as FastpoolBackend."""

    name = "fastpool one-shot"

    def thread_ops(self) -> Ops:
        ops = super().thread_ops()
        execute = self.pool.execute

        def insert(row: tuple[str, str, float]) -> None:
            execute(INSERT, row)

        def update(key: tuple[int]) -> None:
            execute(UPDATE, key)

        ops.insert, ops.update = insert, update
        return ops


class StdlibPerThread:
    """One stdlib sqlite3 connection per thread, busy timeout 5 s, ``with conn:`` transactions
    (deferred BEGIN issued implicitly before the INSERT/UPDATE)."""

    name = "sqlite3 per-thread"
    errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: str) -> None:
        self.path = path

    def thread_ops(self) -> Ops:
        conn = stdlib_connect(self.path)
        execute = conn.execute

        def read(key: tuple[int]) -> object:
            return execute(SELECT, key).fetchone()

        def insert(row: tuple[str, str, float]) -> None:
            with conn:
                execute(INSERT, row)

        def update(key: tuple[int]) -> None:
            with conn:
                execute(UPDATE, key)

        return Ops(read, insert, update, conn.close)

    def close(self) -> None:
        pass


class StdlibQueuePool:
    """The hand-made pool: ``POOL_SIZE`` sqlite3 connections (check_same_thread=False) in a
    ``queue.Queue``; a checkout is ``get()``, a return ``put()``, through a context manager."""

    name = "sqlite3 queue.Queue pool"
    errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: str, size: int = POOL_SIZE) -> None:
        self.queue: queue.Queue[sqlite3.Connection] = queue.Queue()
        self.conns = [stdlib_connect(path, check_same_thread=False) for _ in range(size)]
        for conn in self.conns:
            self.queue.put(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.queue.get()
        try:
            yield conn
        finally:
            self.queue.put(conn)

    def thread_ops(self) -> Ops:
        checkout = self.connection

        def read(key: tuple[int]) -> object:
            with checkout() as conn:
                return conn.execute(SELECT, key).fetchone()

        def insert(row: tuple[str, str, float]) -> None:
            with checkout() as conn, conn:
                conn.execute(INSERT, row)

        def update(key: tuple[int]) -> None:
            with checkout() as conn, conn:
                conn.execute(UPDATE, key)

        return Ops(read, insert, update)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


BACKENDS: dict[str, Callable[[str], Any]] = {
    "fastpool": FastpoolBackend,
    "fastpool-oneshot": FastpoolOneShot,
    "sqlite3": StdlibPerThread,
    "queue": StdlibQueuePool,
}


# -- the thread runner ----------------------------------------------------------------------------


@dataclass
class ThreadStats:
    """What one worker thread did: latencies in nanoseconds, commits, lock errors."""

    read_ns: list[int] = field(default_factory=list)
    write_ns: list[int] = field(default_factory=list)
    commits: int = 0
    locked: int = 0
    finished: float = 0.0


def read_loop(
    ops: Ops, keys: Sequence[tuple[int]], errors: tuple[type[BaseException], ...]
) -> ThreadStats:
    stats = ThreadStats()
    append = stats.read_ns.append
    clock = time.perf_counter_ns
    read = ops.read
    for key in keys:
        started = clock()
        read(key)
        append(clock() - started)
    return stats


def _write(
    stats: ThreadStats,
    op: Callable[[Any], object],
    arg: Any,
    errors: tuple[type[BaseException], ...],
) -> None:
    try:
        op(arg)
        stats.commits += 1
    except errors as exc:
        if not is_locked(exc):
            raise
        stats.locked += 1


def insert_loop(
    ops: Ops, rows: Sequence[tuple[str, str, float]], errors: tuple[type[BaseException], ...]
) -> ThreadStats:
    stats = ThreadStats()
    append = stats.write_ns.append
    clock = time.perf_counter_ns
    insert = ops.insert
    for row in rows:
        started = clock()
        _write(stats, insert, row, errors)
        append(clock() - started)
    return stats


def mix_loop(
    ops: Ops, plan: Sequence[tuple[bool, tuple[int]]], errors: tuple[type[BaseException], ...]
) -> ThreadStats:
    stats = ThreadStats()
    read_append = stats.read_ns.append
    write_append = stats.write_ns.append
    clock = time.perf_counter_ns
    read = ops.read
    update = ops.update
    for is_write, key in plan:
        started = clock()
        if is_write:
            _write(stats, update, key, errors)
            write_append(clock() - started)
        else:
            read(key)
            read_append(clock() - started)
    return stats


@dataclass
class RoundResult:
    """One round of a multi-threaded benchmark: all threads, from barrier release to the last
    thread's last operation."""

    threads: int
    wall: float
    ops: int
    read_ns: list[int]
    write_ns: list[int]
    commits: int
    locked: int

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall

    @property
    def commits_per_s(self) -> float:
        return self.commits / self.wall


class ThreadedRound:
    """``threads`` worker threads, each prepared (connection opened, work list built) before a
    start barrier; ``go()`` releases them together and waits for all.

    ``prepare(index)`` runs in worker thread ``index`` and returns ``(run, cleanup)``:
    ``run()`` is the timed work and returns a ThreadStats, ``cleanup()`` runs after the
    thread's finish time is taken (e.g. closing a per-thread connection).
    """

    def __init__(
        self,
        threads: int,
        prepare: Callable[[int], tuple[Callable[[], ThreadStats], Callable[[], None]]],
        timeout: float = 240.0,
    ) -> None:
        self.timeout = timeout
        self.barrier = threading.Barrier(threads + 1)
        self.results: list[ThreadStats | None] = [None] * threads
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(
                target=self._body, args=(i, prepare), daemon=True, name=f"bench-worker-{i}"
            )
            for i in range(threads)
        ]
        for t in self.threads:
            t.start()

    def _body(self, index: int, prepare: Callable[[int], Any]) -> None:
        cleanup: Callable[[], None] | None = None
        try:
            run, cleanup = prepare(index)
            self.barrier.wait()
            stats = run()
            stats.finished = time.perf_counter()
            self.results[index] = stats
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            self.errors.append(exc)
            self.barrier.abort()
        finally:
            if cleanup is not None:
                cleanup()

    def go(self) -> RoundResult:
        try:
            self.barrier.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            pass
        started = time.perf_counter()
        deadline = time.monotonic() + self.timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            raise RuntimeError(f"benchmark threads still running after {self.timeout} s")
        if self.errors:
            raise self.errors[0]
        stats = [s for s in self.results if s is not None]
        assert len(stats) == len(self.threads)
        read_ns = [x for s in stats for x in s.read_ns]
        write_ns = [x for s in stats for x in s.write_ns]
        return RoundResult(
            threads=len(self.threads),
            wall=max(s.finished for s in stats) - started,
            ops=len(read_ns) + len(write_ns),
            read_ns=read_ns,
            write_ns=write_ns,
            commits=sum(s.commits for s in stats),
            locked=sum(s.locked for s in stats),
        )


def run_rounds(
    benchmark: Any, rounds: int, make_round: Callable[[], ThreadedRound]
) -> list[RoundResult]:
    """Time ``rounds`` rounds with ``benchmark.pedantic`` (threads are started in the untimed
    setup and released by the timed target) and return every round's result."""
    results: list[RoundResult] = []

    def setup() -> tuple[tuple[ThreadedRound], dict[str, Any]]:
        return (make_round(),), {}

    def target(rnd: ThreadedRound) -> None:
        results.append(rnd.go())

    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    return results


def interleaved(
    benchmark: Any, rounds: int, contestants: dict[str, Callable[[], Any]]
) -> dict[str, list[Any]]:
    """Side by side: each ``benchmark.pedantic`` round runs every contestant once, in an order
    rotated from round to round, so that all of them see the same machine (a noisy neighbour,
    a frequency change) in equal measure. Returns each contestant's results, round by round."""
    results: dict[str, list[Any]] = {name: [] for name in contestants}
    order = list(contestants)

    def one_round() -> None:
        for name in order:
            results[name].append(contestants[name]())
        order.append(order.pop(0))

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=0, iterations=1)
    return results


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` wrapped to return how long one call took, in seconds."""

    def run() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return run


def batch_summary(durations: Sequence[float], batch: int) -> dict[str, Any]:
    """Per-operation cost from the durations of calls that each ran ``batch`` operations."""
    median = statistics.median(durations)
    return {
        "ops_per_call": batch,
        "rounds": len(durations),
        "ns_per_op": round(median / batch * 1e9, 1),
        "ops_per_s": round(batch / median),
    }


# -- summaries ------------------------------------------------------------------------------------


def summarize(results: Sequence[RoundResult]) -> dict[str, Any]:
    """Medians over rounds: ops/s, commits/s, and read/write latency p50/p99 in microseconds
    (each round's percentile, then the median of those), plus total lock errors."""

    def med(values: list[float]) -> float:
        values = [v for v in values if v == v]
        return statistics.median(values) if values else float("nan")

    out: dict[str, Any] = {
        "threads": results[0].threads,
        "rounds": len(results),
        "ops_per_round": results[0].ops,
        "ops_per_s": med([r.ops_per_s for r in results]),
        "ops_per_s_rounds": [round(r.ops_per_s) for r in results],
        "commits_per_s": med([r.commits_per_s for r in results]),
        "commits": sum(r.commits for r in results),
        "locked_errors": sum(r.locked for r in results),
    }
    for kind in ("read", "write"):
        lists = [getattr(r, f"{kind}_ns") for r in results]
        if not any(lists):
            continue
        for q, label in ((0.5, "p50"), (0.99, "p99"), (0.999, "p999")):
            out[f"{kind}_{label}_us"] = med([percentile(v, q) / 1e3 for v in lists])
        out[f"{kind}_max_us"] = max(max(v) for v in lists if v) / 1e3
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


#: Key prefix of results measured with ``interleaved`` (contestants side by side).
SIDE_BY_SIDE = "side-by-side"


def acceptance_report(results: dict[str, dict[str, Any]]) -> list[str]:
    """The Acceptance items of issues 2 and 3, checked against ``results`` (keys as recorded by
    the suites: ``point_select/fastpool`` etc.; the ``side-by-side/...`` measurement of the same
    key is used when present). Lines for items whose data is missing are left out."""
    lines: list[str] = []

    def get(key: str, metric: str) -> float | None:
        # Prefer the side-by-side (interleaved) measurement when the run has one.
        entry = results.get(f"{SIDE_BY_SIDE}/{key}", results.get(key))
        return None if entry is None else entry.get(metric)

    def line(ok: bool, text: str) -> None:
        lines.append(f"[{'PASS' if ok else 'FAIL'}] {text}")

    if any(key.startswith(SIDE_BY_SIDE) for key in results):
        lines.append("(from the side-by-side tests where they ran: contestants interleaved)")

    fp, sq = get("point_select/fastpool", "ops_per_s"), get("point_select/sqlite3", "ops_per_s")
    if fp and sq:
        line(
            fp / sq >= 1.5,
            f"point select (Connection.fetchone vs sqlite3): {fp:,.0f} vs "
            f"{sq:,.0f} ops/s = {fp / sq:.2f}x (target >= 1.5x)",
        )

    fp = get("checkout/fastpool", "ns_per_op")
    loop = get("checkout/empty-loop", "ns_per_op")
    qcm = get("checkout/queue-contextmanager", "ns_per_op")
    qraw = get("checkout/queue-get-put", "ns_per_op")
    if fp:
        net = f", {fp - loop:.0f} ns without the {loop:.0f} ns loop" if loop else ""
        lock = get("checkout/with-lock", "ns_per_op")
        nothing = get("checkout/with-nothing", "ns_per_op")
        ref = f"; a bare 'with threading.Lock()' costs {lock:.0f} ns here" if lock else ""
        if nothing:
            ref += f", 'with' on an empty Python context manager {nothing:.0f} ns"
        line(fp <= 200, f"checkout+return: {fp:.0f} ns/op{net} (target <= 200 ns{ref})")
        if qcm:
            line(
                qcm / fp >= 10,
                f"checkout+return vs queue.Queue pool (context manager): "
                f"{qcm:.0f} / {fp:.0f} ns = {qcm / fp:.1f}x (target >= 10x)",
            )
        if qraw:
            lines.append(
                f"[info] checkout+return vs a bare queue.get()+put() (no context manager, so "
                f"no pool: nothing is returned on error): {qraw:.0f} / {fp:.0f} ns = "
                f"{qraw / fp:.1f}x"
            )

    # Single-row transactions are one statement each: their idiomatic form is the one-shot
    # pool.execute, which holds the writer only inside one C call. The lease form ('with
    # pool.writer()') is reported beside it. There the writer is held across Python code, so a
    # GIL switch (every 5 ms among busy threads) can pause its holder; the others queue, and
    # strict FIFO hand-off keeps them queued (each hand-off wakes a parked thread) until the
    # queue drains, which under a write-only load may not happen within a round.
    sq_c = get("writers8/sqlite3", "commits_per_s")
    for name, form in (
        ("writers8/fastpool-oneshot", "one-shot pool.execute"),
        ("writers8/fastpool", "'with pool.writer()' leases"),
    ):
        fp_c, locked = get(name, "commits_per_s"), get(name, "locked_errors")
        if not (fp_c and sq_c):
            continue
        line(
            locked == 0,
            f"8 writers ({form}): 'database is locked' errors = {locked} "
            f"(sqlite3 per-thread: {get('writers8/sqlite3', 'locked_errors')})",
        )
        text = (
            f"8 writers ({form}): {fp_c:,.0f} vs {sq_c:,.0f} commits/s = {fp_c / sq_c:.2f}x, "
            f"write p99 {(get(name, 'write_p99_us') or float('nan')) / 1e3:.3f} ms "
            f"({get(name, 'pool_waits')} checkouts waited)"
        )
        if name.endswith("oneshot"):
            line(fp_c / sq_c >= 1.2, text + " (target >= 1.2x)")
        else:
            lines.append("[info] " + text)

    # The mix's single-row updates: the same two forms, as for the 8 writers above.
    one, lease = "mix16/fastpool-oneshot", "mix16/fastpool"
    sw = get("mix16/sqlite3", "write_p99_us")
    fw = get(one, "write_p99_us")
    if fw is not None and sw is not None:
        line(
            fw <= 1000,
            f"16-thread 90/10 mix: write p99 {fw / 1e3:.3f} ms with one-shot pool.execute "
            f"(sqlite3 {sw / 1e3:.3f} ms; target <= 1 ms; {get(one, 'pool_waits')} checkouts "
            f"waited)",
        )
    lw = get(lease, "write_p99_us")
    if lw is not None and sw is not None:
        lines.append(
            f"[info] 16-thread 90/10 mix with 'with pool.writer()' leases: write p99 "
            f"{lw / 1e3:.3f} ms ({sw / lw:.1f}x lower than sqlite3; "
            f"{get(lease, 'pool_waits')} checkouts waited)"
        )
    for name in (one, lease):
        fr, sr = get(name, "read_p99_us"), get("mix16/sqlite3", "read_p99_us")
        if fr is not None and sr is not None:
            line(
                fr <= sr,
                f"16-thread 90/10 mix ({name.split('/')[1]}): read p99 {fr:.1f} us vs sqlite3 "
                f"{sr:.1f} us (target: no worse)",
            )

    fo, so = get("reads4/fastpool", "ops_per_s"), get("reads4/sqlite3", "ops_per_s")
    fp99, sp99 = get("reads4/fastpool", "read_p99_us"), get("reads4/sqlite3", "read_p99_us")
    if fo and so:
        line(
            fo / so >= 3,
            f"4-thread point reads: {fo:,.0f} vs {so:,.0f} ops/s = {fo / so:.2f}x (target >= 3x)",
        )
    if fp99 and sp99:
        line(
            fp99 <= sp99 / 2,
            f"4-thread point reads: p99 {fp99:.1f} us vs {sp99:.1f} us = "
            f"{fp99 / sp99:.2f} of sqlite3's (target <= 0.5)",
        )
    return lines
