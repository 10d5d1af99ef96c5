"""How one round of one system is run and timed: the one thread runner, used by the runner
(``suite``) and by the pytest-benchmark suites in ``bench/``.

Every worker (thread or task) is prepared first (its connections opened, its work list
built), all are released together, and each runs its list of operations, timing every one
with ``time.perf_counter_ns``: either once through the list, or (with a ``duration``)
cycling through it until the deadline, so that a slow system costs a run no more time than a
fast one. A round's wall time ends when the last worker finished its last operation. The
timer costs every system the same ~0.1 µs per operation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data import is_locked, percentile
from .systems import Ops, System

#: A deadline no round reaches: run through the work list once.
_NEVER = 2**63


@dataclass
class WorkerStats:
    """What one worker did: latencies in nanoseconds (every write attempt is timed, failed
    ones too), lock errors, and so the commits."""

    read_ns: list[int] = field(default_factory=list)
    write_ns: list[int] = field(default_factory=list)
    locked: int = 0
    started: int = 0
    finished: int = 0

    @property
    def commits(self) -> int:
        """Write attempts that did not fail with 'database is locked' (any other error ends
        the round)."""
        return len(self.write_ns) - self.locked

    def lock_error(self, exc: BaseException) -> None:
        """A write failed: count 'database is locked' (not retried), raise anything else."""
        if not is_locked(exc):
            raise exc
        self.locked += 1


def run_ops(
    op: str,
    ops: Ops,
    items: Sequence[Any],
    errors: tuple[type[BaseException], ...],
    deadline: int | None = None,
) -> WorkerStats:
    """Run ``op`` ("read", "join", "insert" or "mix") over ``items``, timing each operation:
    each item once, or with a ``deadline`` (``perf_counter_ns``) cycling through them until
    then. A 'database is locked' error is counted (``locked``), the operation not retried."""
    clock = time.perf_counter_ns
    stats = WorkerStats(started=clock())
    reads, writes = stats.read_ns.append, stats.write_ns.append
    read = ops.join if op == "join" else ops.read
    write: Callable[[Any], object] = ops.update if op == "mix" else ops.insert
    n, i = len(items), 0
    # Past the last item: back to the first while a deadline runs, else stop.
    wrap, end = (0, deadline) if deadline is not None else (n, _NEVER)
    while True:
        started = clock()
        # i == 0 only before the first operation (and once per wrap-around): every worker
        # does at least one operation, even when it wakes up after the deadline.
        if i == n or (started >= end and i):
            break
        item = items[i]
        i = i + 1 if i + 1 < n else wrap
        if op == "mix":
            is_write, item = item
        else:
            is_write = op == "insert"
        if not is_write:
            read(item)
            reads(clock() - started)
            continue
        try:
            write(item)
        except errors as exc:
            stats.lock_error(exc)
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
    """``run_ops`` for one asyncio task ("read" or "insert"), until ``deadline``."""
    stats = WorkerStats()
    clock = time.perf_counter_ns
    reads, writes = stats.read_ns.append, stats.write_ns.append
    n, i = len(items), 0
    while True:
        started = clock()
        if started >= deadline and i:  # as in run_ops
            break
        item = items[i]
        i = i + 1 if i + 1 < n else 0
        if op == "read":
            await read(item)
            reads(clock() - started)
            continue
        try:
            await insert(item)
        except errors as exc:
            stats.lock_error(exc)
        writes(clock() - started)
    stats.finished = clock()
    return stats


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
    """One thread per work list, each prepared (its ``Ops`` made, in that thread) before a
    start barrier; ``go()`` releases them together, waits for all and summarizes the round.

    Constructing it starts the threads, so a caller can keep that out of the timed part
    (pytest-benchmark's ``pedantic`` setup) and time ``go()`` alone."""

    def __init__(
        self, system: System, op: str, work: Sequence[Sequence[Any]], timeout: float = 240.0
    ) -> None:
        self.system, self.op, self.work, self.timeout = system, op, work, timeout
        self.deadline: int | None = None
        self.barrier = threading.Barrier(len(work) + 1)
        self.results: list[WorkerStats | None] = [None] * len(work)
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._body, args=(i,), daemon=True, name=f"bench-{i}")
            for i in range(len(work))
        ]
        for t in self.threads:
            t.start()

    def _body(self, index: int) -> None:
        ops: Ops | None = None
        try:
            ops = self.system.thread_ops()
            self.barrier.wait()
            self.results[index] = run_ops(
                self.op, ops, self.work[index], self.system.errors, self.deadline
            )
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            self.errors.append(exc)
            self.barrier.abort()
        finally:
            if ops is not None:
                ops.close()

    def go(self, duration: float | None = None) -> dict[str, float]:
        """Release the threads: for ``duration`` seconds from now (the runner), or each
        through its work list once (None; the wall time then starts at the release)."""
        started = time.perf_counter_ns()
        if duration is not None:
            self.deadline = started + int(duration * 1e9)
        try:
            self.barrier.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            pass
        limit = time.monotonic() + (duration or 0.0) + self.timeout
        for t in self.threads:
            t.join(max(0.0, limit - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            raise RuntimeError(
                f"{self.system.name}: worker threads still running after {self.timeout} s"
            )
        if self.errors:
            raise self.errors[0]
        stats = [s for s in self.results if s is not None]
        if duration is None:
            # From the release: the first worker's start (this thread may wake up later).
            started = min(s.started for s in stats)
        return summarize_round(started, stats)


async def async_round(
    system: System, op: str, work: list[list[Any]], duration: float
) -> dict[str, float]:
    """Run one timed round of an asyncio workload (inside the benchmark's event loop)."""
    ops = await system.async_ops()
    gate = asyncio.Event()
    box = [0]

    async def worker(index: int) -> WorkerStats:
        await gate.wait()
        return await _async_loop(op, ops.read, ops.insert, work[index], box[0], system.errors)

    tasks = [asyncio.ensure_future(worker(i)) for i in range(len(work))]
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
