"""SQLAlchemy's ORM on sqlite+fastpool against the built-in drivers, same models and queries.

- ORM point reads: 4 threads, each ``with Session(engine) as s: s.get(Item, key)`` in a loop;
  ``sqlite+fastpool`` through ``readonly(engine)`` (readers), against ``sqlite://`` (pysqlite,
  its QueuePool).
- ORM single-row write transactions: 8 threads, ``c = s.get(Counter, 1); c.value += 1;
  s.commit()``. Errors ("database is locked") and lost updates are counted, not hidden:
  ``sqlite://`` loses increments (a deferred transaction reads, another commits, it writes).
- async ORM reads: 100 tasks, ``async with AsyncSession(engine) as s: await s.get(Item, key)``,
  ``sqlite+fastpool_async`` (readers) against ``sqlite+aiosqlite://``.

Both read benchmarks also run ``orm-ceiling`` (``_orm_ceiling.py``): the same ORM code on a
driver that answers the get without running anything, the most any driver could reach here.

Each contestant has its own copy of the database; every round runs each contestant once,
order rotated (``interleaved``). Numbers: median ops/s over the rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _orm_ceiling import ASYNC_URL as CEILING_ASYNC_URL
from _orm_ceiling import URL as CEILING_URL
from _suite import SIDE_BY_SIDE, interleaved, rounds_for, scale_factor, scaled
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from fastpool.sqlalchemy import readonly

ROWS = 1000
ROUNDS = 5
READS_PER_THREAD = 2000
WRITES_PER_THREAD = 200
READS_PER_TASK = 100

pytestmark = pytest.mark.benchmark(group="SQLAlchemy ORM: sqlite+fastpool vs built-in drivers")


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    score: Mapped[float]


class Counter(Base):
    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


def make_engine(url: str) -> sa.Engine:
    """An engine on a fresh database holding the schema, ROWS items and one counter."""
    eng = sa.create_engine(url)
    with eng.begin() as c:
        if "fastpool" not in url:  # fastpool's pool is in WAL mode already
            c.exec_driver_sql("PRAGMA journal_mode=wal")
        Base.metadata.create_all(c)
        c.execute(
            sa.insert(Item), [{"id": i, "name": f"n{i}", "score": i / 3} for i in range(ROWS)]
        )
        c.execute(sa.insert(Counter), [{"id": 1, "value": 0}])
    return eng


def threaded(n: int, work: Callable[[int], None]) -> float:
    """Run ``work(i)`` on ``n`` threads released together; the seconds until all finished."""
    start = threading.Barrier(n + 1)

    def run(i: int) -> None:
        start.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def medians(durations: dict[str, list[float]], ops: int) -> dict[str, dict[str, Any]]:
    return {
        name: {"ops": ops, "rounds": len(d), "ops_per_s": round(ops / statistics.median(d))}
        for name, d in durations.items()
    }


def test_orm_point_reads_4_threads(benchmark, record_result, tmp_path: Path):
    per_thread = scaled(READS_PER_THREAD, scale_factor(benchmark))
    fp = make_engine(f"sqlite+fastpool:///{tmp_path / 'fp.db'}")
    sq = make_engine(f"sqlite:///{tmp_path / 'sq.db'}")
    ceiling = sa.create_engine(f"{CEILING_URL}:///{tmp_path / 'fp.db'}")
    reader = readonly(fp)

    def reads(engine: Any) -> Callable[[], float]:
        def work(i: int) -> None:
            for k in range(per_thread):
                with Session(engine) as s:
                    assert s.get(Item, (k * 7 + i) % ROWS) is not None

        return lambda: threaded(4, work)

    try:
        durations = interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {
                "sqlite+fastpool": reads(reader),
                "sqlite": reads(sq),
                "orm-ceiling": reads(readonly(ceiling)),
            },
        )
    finally:
        fp.dispose()
        sq.dispose()
        ceiling.dispose()
    for name, result in medians(durations, 4 * per_thread).items():
        record_result(f"{SIDE_BY_SIDE}/orm_get_4_threads/{name}", result)


def writes(engine: sa.Engine, per_thread: int) -> dict[str, Any]:
    """8 threads of ORM read-modify-write transactions on one row: counts and commits/s."""
    done = [0] * 8
    errors = [0] * 8
    with engine.begin() as c:
        c.execute(sa.update(Counter).values(value=0))

    def work(i: int) -> None:
        for _ in range(per_thread):
            with Session(engine) as s:
                try:
                    c = s.get(Counter, 1)
                    assert c is not None
                    c.value += 1
                    s.commit()
                    done[i] += 1
                except sa.exc.OperationalError:
                    errors[i] += 1

    elapsed = threaded(8, work)
    with Session(engine) as s:
        final = s.get(Counter, 1).value  # type: ignore[union-attr]
    return {
        "transactions": 8 * per_thread,
        "committed": sum(done),
        "errors": sum(errors),
        "lost_updates": sum(done) - final,
        "commits_per_s": round(sum(done) / elapsed),
    }


def test_orm_write_transactions_8_threads(benchmark, record_result, tmp_path: Path):
    per_thread = scaled(WRITES_PER_THREAD, scale_factor(benchmark))
    fp = make_engine(f"sqlite+fastpool:///{tmp_path / 'fp.db'}")
    sq = make_engine(f"sqlite:///{tmp_path / 'sq.db'}")
    engines = {"sqlite+fastpool": fp, "sqlite": sq}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}

    def contestant(name: str) -> Callable[[], None]:
        return lambda: runs[name].append(writes(engines[name], per_thread))

    try:
        interleaved(
            benchmark,
            rounds_for(benchmark, ROUNDS),
            {name: contestant(name) for name in engines},
        )
    finally:
        fp.dispose()
        sq.dispose()
    for run in runs["sqlite+fastpool"]:
        assert run["errors"] == 0 and run["lost_updates"] == 0, run
    for name, results in runs.items():
        summary = {
            key: statistics.median(r[key] for r in results)
            for key in ("commits_per_s", "errors", "lost_updates")
        }
        record_result(f"{SIDE_BY_SIDE}/orm_write_8_threads/{name}", summary)


def test_async_orm_reads_100_tasks(benchmark, record_result, tmp_path: Path):
    per_task = scaled(READS_PER_TASK, scale_factor(benchmark))
    for name in ("fp", "aio"):
        make_engine(f"sqlite:///{tmp_path / name}.db").dispose()  # the schema and the rows

    async def reads(engine: Any) -> float:
        async def task(i: int) -> None:
            for k in range(per_task):
                async with AsyncSession(engine) as s:
                    assert await s.get(Item, (k * 7 + i) % ROWS) is not None

        began = time.perf_counter()
        await asyncio.gather(*(task(i) for i in range(100)))
        return time.perf_counter() - began

    async def rounds() -> dict[str, list[float]]:
        fp = create_async_engine(f"sqlite+fastpool_async:///{tmp_path / 'fp.db'}")
        aio = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'aio.db'}")
        ceiling = create_async_engine(f"{CEILING_ASYNC_URL}:///{tmp_path / 'fp.db'}")
        contestants = {
            "sqlite+fastpool_async": readonly(fp),
            "sqlite+aiosqlite": aio,
            "orm-ceiling": readonly(ceiling),
        }
        out: dict[str, list[float]] = {name: [] for name in contestants}
        order = list(contestants)
        try:
            for _ in range(rounds_for(benchmark, ROUNDS)):
                for name in order:
                    out[name].append(await reads(contestants[name]))
                order.append(order.pop(0))
        finally:
            await fp.dispose()
            await aio.dispose()
            await ceiling.dispose()
        return out

    result: dict[str, list[float]] = {}
    benchmark.pedantic(
        lambda: result.update(asyncio.run(rounds())), rounds=1, iterations=1, warmup_rounds=0
    )
    for name, summary in medians(result, 100 * per_task).items():
        record_result(f"{SIDE_BY_SIDE}/async_orm_get_100_tasks/{name}", summary)
