"""The workloads: who runs each one (threads, asyncio tasks, a checkout loop), what every
worker does on which seeded data, and how the database is checked after the writes.

The runner (``python -m fastpool bench``) runs every one; bench/bench_pool.py runs the
threaded ones with fixed operation counts. How a round runs is ``rounds``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .data import ROWS, initial_scores, insert_rows, join_ranges, mix_plan, point_keys
from .systems import System

#: Items in each worker's seeded work list (cycled through when a round outlasts it).
WORK_ITEMS = 4096
MIX_WRITE_FRACTION = 0.10
_BASELINES = {"threads": "sqlite3", "async": "aiosqlite", "checkout": "sqlite3-queue"}


@dataclass(frozen=True)
class Workload:
    """One workload: who runs it (threads, tasks, or a single-thread checkout loop), what each
    worker does, and which system the ratios are computed against."""

    key: str
    title: str
    what: str
    workers: int
    op: str  # "read" | "join" | "insert" | "mix" | "checkout"
    unit: str
    kind: str = "threads"  # "threads" | "async" | "checkout"

    @property
    def baseline(self) -> str:
        """The system the ratios are computed against: what people use today for this kind."""
        return _BASELINES[self.kind]

    @property
    def metric(self) -> str:
        """``commits_per_s`` for the insert workloads (a commit is the unit), else ``ops_per_s``."""
        return "commits_per_s" if self.op == "insert" else "ops_per_s"

    def systems(self, available: Sequence[System]) -> list[System]:
        """The systems, among ``available``, that can run this workload."""
        if self.kind == "checkout":
            return [s for s in available if s.checkout]
        return [s for s in available if s.kind == self.kind]

    def work(self, worker: int, rows: int = ROWS, items: int = WORK_ITEMS) -> list[Any]:
        """Worker ``worker``'s seeded list of ``items`` operation arguments (``rows``: users
        in the database)."""
        seed = 1000 * (zlib.crc32(self.key.encode()) % 1000 + 1) + worker
        if self.op == "read":
            return point_keys(items, seed=seed, rows=rows)
        if self.op == "join":
            return join_ranges(items, seed=seed, rows=rows)
        if self.op == "insert":
            return insert_rows(items, worker)
        if self.op == "mix":
            return mix_plan(items, MIX_WRITE_FRACTION, seed=seed, rows=rows)
        return []

    @property
    def writes(self) -> bool:
        return self.op in {"insert", "mix"}


def _reads(threads: int) -> Workload:
    return Workload(
        key=f"reads{threads}",
        title=f"point select by primary key, {threads} thread{'s' if threads > 1 else ''}",
        what="SELECT id, name, email, score FROM users WHERE id = ? (one row, 4 columns)",
        workers=threads,
        op="read",
        unit="reads/s",
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
            unit="checkouts/s",
        ),
        _reads(1),
        _reads(2),  # with reads1: how reads scale with the cores (free-threaded builds)
        _reads(4),
        _reads(16),
        _reads(64),
        Workload(
            key="join4",
            title="heavier read: join + GROUP BY over 3,000 rows, 4 threads",
            what="users JOIN orders over 600 users (3,000 joined rows), GROUP BY into 64 "
            "groups, fetchall",
            workers=4,
            op="join",
            unit="queries/s",
        ),
        Workload(
            key="writers1",
            title="single-row write transactions, 1 thread",
            what="each operation is one transaction: INSERT INTO users ... ; COMMIT (with "
            "writers8: one writer's ceiling, which 8 threads on one writer connection cannot "
            "pass while the GIL serialises them)",
            workers=1,
            op="insert",
            unit="commits/s",
        ),
        Workload(
            key="writers8",
            title="single-row write transactions, 8 threads",
            what="each operation is one transaction: INSERT INTO users ... ; COMMIT",
            workers=8,
            op="insert",
            unit="commits/s",
        ),
        Workload(
            key="mix16",
            title="90% point reads / 10% write transactions, 16 threads",
            what="90% point selects, 10% single-row UPDATE transactions, seeded order",
            workers=16,
            op="mix",
            unit="ops/s",
        ),
        Workload(
            key="async_reads100",
            title="async point selects, 100 tasks",
            what="100 asyncio tasks on one event loop, each awaiting point selects",
            kind="async",
            workers=100,
            op="read",
            unit="reads/s",
        ),
        Workload(
            key="async_writes50",
            title="async write transactions, 50 tasks",
            what="50 asyncio tasks, each awaiting single-row INSERT transactions",
            kind="async",
            workers=50,
            op="insert",
            unit="commits/s",
        ),
    ]
}


def check_writes(
    op: str, commits: int, count: int, scores: float, rows: int = ROWS
) -> tuple[bool, str]:
    """After a write workload: is every counted commit in the table, and nothing else?
    ``count`` and ``scores``: the table's ``count(*)`` and ``total(score)`` (``Keeper``)."""
    if op == "insert":
        return count == rows + commits, f"{count - rows} rows inserted, {commits} commits counted"
    grew = scores - initial_scores(rows)
    good = count == rows and math.isclose(grew, commits, abs_tol=1e-6)
    return good, f"scores grew by {grew:.0f}, {commits} commits counted"
