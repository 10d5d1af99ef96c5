"""The workloads, and how one round of one system is run and timed.

A round lasts a fixed time (``duration``) rather than a fixed number of operations, so a slow
system costs the run no more time than a fast one: every worker (thread or task) is prepared
first (connections opened, work lists built), all are released together, each runs its
seeded list of operations (cycling through it) until the deadline, timing every operation
with ``time.perf_counter_ns``; the round's wall time runs from the release to the moment the
last worker finished its last operation. The timer costs every system the same ~0.1 µs per
operation.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data import ROWS, insert_rows, is_locked, join_ranges, mix_plan, percentile, point_keys
from .systems import Ops, System

#: Items in each worker's seeded work list (cycled through when a round outlasts it).
WORK_ITEMS = 4096
MIX_WRITE_FRACTION = 0.10


@dataclass(frozen=True)
class Workload:
    """One workload: who runs it (threads, tasks, or a single-thread checkout loop), what each
    worker does, and which system the ratios are computed against."""

    key: str
    title: str
    what: str
    kind: str  # "threads" | "async" | "checkout"
    workers: int
    op: str  # "read" | "join" | "insert" | "mix" | "checkout"
    metric: str  # "ops_per_s" | "commits_per_s"
    unit: str
    baseline: str

    def systems(self, available: Sequence[System]) -> list[System]:
        """The systems, among ``available``, that can run this workload."""
        if self.kind == "checkout":
            return [s for s in available if s.checkout]
        return [s for s in available if s.kind == self.kind]

    def work(self, worker: int, rows: int = ROWS) -> list[Any]:
        """Worker ``worker``'s seeded list of operation arguments (``rows``: users in the
        database)."""
        seed = 1000 * (zlib.crc32(self.key.encode()) % 1000 + 1) + worker
        if self.op == "read":
            return point_keys(WORK_ITEMS, seed=seed, rows=rows)
        if self.op == "join":
            return join_ranges(WORK_ITEMS, seed=seed, rows=rows)
        if self.op == "insert":
            return insert_rows(WORK_ITEMS, worker)
        if self.op == "mix":
            return mix_plan(WORK_ITEMS, MIX_WRITE_FRACTION, seed=seed, rows=rows)
        return []

    @property
    def writes(self) -> bool:
        return self.op in {"insert", "mix"}


def _reads(threads: int) -> Workload:
    return Workload(
        key=f"reads{threads}",
        title=f"point select by primary key, {threads} thread{'s' if threads > 1 else ''}",
        what="SELECT id, name, email, score FROM users WHERE id = ? (one row, 4 columns)",
        kind="threads",
        workers=threads,
        op="read",
        metric="ops_per_s",
        unit="reads/s",
        baseline="sqlite3",
    )


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in [
        Workload(
            key="checkout",
            title="checkout+return, no query, 1 thread",
            what="take a connection from the pool and give it back, nothing else "
            "(open+close for the per-operation systems)",
            kind="checkout",
            workers=1,
            op="checkout",
            metric="ops_per_s",
            unit="checkouts/s",
            baseline="sqlite3-queue",
        ),
        _reads(1),
        _reads(4),
        _reads(16),
        Workload(
            key="join4",
            title="heavier read: join + GROUP BY over 3,000 rows, 4 threads",
            what="users JOIN orders over 600 users (3,000 joined rows), GROUP BY into 64 "
            "groups, fetchall",
            kind="threads",
            workers=4,
            op="join",
            metric="ops_per_s",
            unit="queries/s",
            baseline="sqlite3",
        ),
        Workload(
            key="writers8",
            title="single-row write transactions, 8 threads",
            what="each operation is one transaction: INSERT INTO users ... ; COMMIT",
            kind="threads",
            workers=8,
            op="insert",
            metric="commits_per_s",
            unit="commits/s",
            baseline="sqlite3",
        ),
        Workload(
            key="mix16",
            title="90% point reads / 10% write transactions, 16 threads",
            what="90% point selects, 10% single-row UPDATE transactions, seeded order",
            kind="threads",
            workers=16,
            op="mix",
            metric="ops_per_s",
            unit="ops/s",
            baseline="sqlite3",
        ),
        Workload(
            key="async_reads100",
            title="async point selects, 100 tasks",
            what="100 asyncio tasks on one event loop, each awaiting point selects",
            kind="async",
            workers=100,
            op="read",
            metric="ops_per_s",
            unit="reads/s",
            baseline="aiosqlite",
        ),
        Workload(
            key="async_writes50",
            title="async write transactions, 50 tasks",
            what="50 asyncio tasks, each awaiting single-row INSERT transactions",
            kind="async",
            workers=50,
            op="insert",
            metric="commits_per_s",
            unit="commits/s",
            baseline="aiosqlite",
        ),
    ]
}


# -- what one worker does ------------------------------------------------------------------------


@dataclass
class WorkerStats:
    """What one worker did: latencies in nanoseconds, commits, lock errors."""

    read_ns: list[int] = field(default_factory=list)
    write_ns: list[int] = field(default_factory=list)
    commits: int = 0
    locked: int = 0
    finished: int = 0


def _loop(
    op: str, ops: Ops, items: list[Any], deadline: int, errors: tuple[type[BaseException], ...]
) -> WorkerStats:
    stats = WorkerStats()
    clock = time.perf_counter_ns
    reads, writes = stats.read_ns.append, stats.write_ns.append
    read = ops.join if op == "join" else ops.read
    n, i = len(items), 0
    while True:
        started = clock()
        # i == 0 only before the first operation (and once per wrap-around): every worker
        # does at least one operation, even when it wakes up after the deadline.
        if started >= deadline and i:
            break
        item = items[i]
        i = i + 1 if i + 1 < n else 0
        if op in ("read", "join"):
            read(item)
            reads(clock() - started)
            continue
        if op == "mix":
            is_write, item = item
            if not is_write:
                read(item)
                reads(clock() - started)
                continue
            write: Callable[[Any], object] = ops.update
        else:
            write = ops.insert
        try:
            write(item)
            stats.commits += 1
        except errors as exc:
            if not is_locked(exc):
                raise
            stats.locked += 1
        writes(clock() - started)
    stats.finished = clock()
    return stats


async def _async_loop(
    op: str,
    read: Callable[[Any], Awaitable[object]],
    insert: Callable[[Any], Awaitable[object]],
    items: list[Any],
    deadline: int,
    errors: tuple[type[BaseException], ...],
) -> WorkerStats:
    stats = WorkerStats()
    clock = time.perf_counter_ns
    reads, writes = stats.read_ns.append, stats.write_ns.append
    n, i = len(items), 0
    while True:
        started = clock()
        # i == 0 only before the first operation (and once per wrap-around): every worker
        # does at least one operation, even when it wakes up after the deadline.
        if started >= deadline and i:
            break
        item = items[i]
        i = i + 1 if i + 1 < n else 0
        if op == "read":
            await read(item)
            reads(clock() - started)
            continue
        try:
            await insert(item)
            stats.commits += 1
        except errors as exc:
            if not is_locked(exc):
                raise
            stats.locked += 1
        writes(clock() - started)
    stats.finished = clock()
    return stats


# -- one round -------------------------------------------------------------------------------------


def summarize_round(started: int, stats: Sequence[WorkerStats]) -> dict[str, float]:
    """One round's numbers: throughput over the round's wall time, latency percentiles in
    microseconds (over every operation of every worker), commits and lock errors."""
    wall = (max(s.finished for s in stats) - started) / 1e9
    read_ns = [x for s in stats for x in s.read_ns]
    write_ns = [x for s in stats for x in s.write_ns]
    ops = len(read_ns) + len(write_ns)
    commits = sum(s.commits for s in stats)
    out: dict[str, float] = {
        "wall_s": wall,
        "ops": ops,
        "ops_per_s": ops / wall if wall > 0 else float("nan"),
        "commits": commits,
        "commits_per_s": commits / wall if wall > 0 else float("nan"),
        "errors": sum(s.locked for s in stats),
    }
    for kind, values in (("read", read_ns), ("write", write_ns)):
        if not values:
            continue
        values.sort()
        for q, label in ((0.5, "p50"), (0.99, "p99"), (0.999, "p999")):
            out[f"{kind}_{label}_us"] = percentile(values, q) / 1e3
        out[f"{kind}_max_us"] = values[-1] / 1e3
    return out


class ThreadedRound:
    """``workers`` threads, each prepared (its ``Ops`` made, in that thread) before a start
    barrier; ``go()`` sets the deadline, releases them together and waits for all."""

    def __init__(self, system: System, workload: Workload, work: list[list[Any]]) -> None:
        self.system, self.workload, self.work = system, workload, work
        self.deadline = 0
        self.barrier = threading.Barrier(workload.workers + 1)
        self.results: list[WorkerStats | None] = [None] * workload.workers
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._body, args=(i,), daemon=True, name=f"bench-{i}")
            for i in range(workload.workers)
        ]
        for t in self.threads:
            t.start()

    def _body(self, index: int) -> None:
        ops: Ops | None = None
        try:
            ops = self.system.thread_ops()
            self.barrier.wait()
            self.results[index] = _loop(
                self.workload.op, ops, self.work[index], self.deadline, self.system.errors
            )
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            self.errors.append(exc)
            self.barrier.abort()
        finally:
            if ops is not None:
                ops.close()

    def go(self, duration: float, timeout: float = 120.0) -> dict[str, float]:
        started = time.perf_counter_ns()
        self.deadline = started + int(duration * 1e9)
        try:
            self.barrier.wait(timeout=timeout)
        except threading.BrokenBarrierError:
            pass
        limit = time.monotonic() + duration + timeout
        for t in self.threads:
            t.join(max(0.0, limit - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            raise RuntimeError(
                f"{self.system.name}: worker threads still running after {timeout} s"
            )
        if self.errors:
            raise self.errors[0]
        return summarize_round(started, [s for s in self.results if s is not None])


def thread_round(
    system: System, workload: Workload, work: list[list[Any]], duration: float
) -> dict[str, float]:
    """Run one timed round of a threaded workload."""
    return ThreadedRound(system, workload, work).go(duration)


async def async_round(
    system: System, workload: Workload, work: list[list[Any]], duration: float
) -> dict[str, float]:
    """Run one timed round of an asyncio workload (inside the benchmark's event loop)."""
    ops = await system.async_ops()
    gate = asyncio.Event()
    box = [0]

    async def worker(index: int) -> WorkerStats:
        await gate.wait()
        return await _async_loop(
            workload.op, ops.read, ops.insert, work[index], box[0], system.errors
        )

    tasks = [asyncio.ensure_future(worker(i)) for i in range(workload.workers)]
    await asyncio.sleep(0)  # every task is now waiting at the gate
    started = time.perf_counter_ns()
    box[0] = started + int(duration * 1e9)
    gate.set()
    try:
        stats = await asyncio.gather(*tasks)
    except BaseException:
        # One task failed: stop the others before the next system's turn begins.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return summarize_round(started, stats)


def _timed_batches(run: Callable[[int], Any], duration: float) -> tuple[int, int]:
    """Call ``run(n)`` with growing batches until ``duration`` has passed: (count, ns)."""
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(duration * 1e9)
    count, batch = 0, 16
    while clock() < deadline:
        run(batch)
        count += batch
        batch = min(batch * 2, 1024)
    return count, clock() - started


def checkout_round(
    system: System, duration: float, loop: asyncio.AbstractEventLoop
) -> dict[str, float]:
    """Run one timed round of checkout+return (sync, or async inside ``loop``)."""
    if system.kind == "async":
        alooped = system.async_checkout_loop()

        def run(n: int) -> None:
            loop.run_until_complete(alooped(n))

    else:
        run = system.checkout_loop()  # type: ignore[assignment]
    count, ns = _timed_batches(run, duration)
    return {
        "wall_s": ns / 1e9,
        "ops": count,
        "ops_per_s": count / (ns / 1e9),
        "ns_per_op": ns / count,
        "loop_ns_per_op": _empty_loop_ns(),
        "errors": 0,
    }


def _empty_loop_ns(n: int = 100_000) -> float:
    """What ``for _ in range(n): pass`` costs per iteration, right now (the checkout loops
    pay it too; the acceptance line subtracts it)."""
    started = time.perf_counter_ns()
    for _ in range(n):
        pass
    return (time.perf_counter_ns() - started) / n
