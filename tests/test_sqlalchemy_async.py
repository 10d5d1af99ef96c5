"""sqlite+fastpool_async: AsyncSession/AsyncEngine on fastpool's AsyncPool (docs/sqlalchemy.md).

Real database files, a real event loop, real task cancellation.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import GREENLET_UNUSABLE

if GREENLET_UNUSABLE:
    pytest.skip(GREENLET_UNUSABLE, allow_module_level=True)

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy_models import Base, Book, Counter

import fastpool
from fastpool.sqlalchemy import FastpoolAsyncDialect, readonly


async def make_engine(path) -> AsyncEngine:
    eng = create_async_engine(f"sqlite+fastpool_async:///{path}")
    async with eng.begin() as c:
        await c.run_sync(Base.metadata.create_all)
    async with AsyncSession(eng) as s, s.begin():
        s.add(Counter(id=1, value=0))
    return eng


def writer_busy(eng: AsyncEngine) -> bool:
    return bool(eng.sync_engine.pool.stats()["writer_busy"])


def test_the_async_engine_runs_on_an_asyncpool(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            assert isinstance(eng.dialect, FastpoolAsyncDialect)
            assert isinstance(eng.sync_engine.pool.fastpool, fastpool.AsyncPool)
            async with AsyncSession(eng) as s:
                assert (await s.get(Counter, 1)).value == 0
        finally:
            await eng.dispose()
        assert eng.sync_engine.pool._fastpool is None

    asyncio.run(main())


def test_50_tasks_of_20_orm_read_modify_writes_keep_every_increment(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        make = async_sessionmaker(eng)

        async def work(t: int) -> None:
            for i in range(20):
                async with make() as s:
                    c = await s.get(Counter, 1)
                    assert c is not None
                    c.value += 1
                    s.add(Book(title=f"{t}-{i}"))
                    await s.commit()

        try:
            results = await asyncio.gather(*(work(t) for t in range(50)), return_exceptions=True)
            assert [r for r in results if r is not None] == []
            async with make() as s:
                assert (await s.get(Counter, 1)).value == 1000
                assert await s.scalar(sa.select(sa.func.count()).select_from(Book)) == 1000
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_cancelling_a_task_inside_a_session_gives_the_writer_back(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        make = async_sessionmaker(eng)
        holding = asyncio.Event()
        never = asyncio.Event()

        async def holder() -> None:
            async with make() as s:
                (await s.get(Counter, 1)).value = 99  # the writer is this session's now
                await s.flush()
                holding.set()
                await never.wait()

        async def waiter() -> None:
            async with make() as s:
                await s.get(Counter, 1)  # queues for the writer

        try:
            h = asyncio.create_task(holder())
            await holding.wait()
            assert writer_busy(eng)
            w = asyncio.create_task(waiter())
            while eng.sync_engine.pool.stats()["waiting_writers"] == 0:
                await asyncio.sleep(0)  # let the waiter reach the queue
            w.cancel()  # cancelled while queued for the writer
            h.cancel()  # cancelled while holding it, mid-transaction
            for t in (h, w):
                with pytest.raises(asyncio.CancelledError):
                    await t
            assert not writer_busy(eng)
            async with make() as s:
                c = await s.get(Counter, 1)
                assert c.value == 0  # the holder's flushed change was rolled back
                c.value += 1
                await s.commit()
            assert not writer_busy(eng)
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_async_readonly_sessions_use_readers_and_errors_are_wrapped(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            async with AsyncSession(readonly(eng)) as s:
                assert (await s.get(Counter, 1)).value == 0
                stats = eng.sync_engine.pool.stats()
                assert stats["readers_in_use"] == 1 and not stats["writer_busy"]
            async with AsyncSession(eng) as s:
                s.add_all([Book(title="x"), Book(title="x")])
                with pytest.raises(exc.IntegrityError):
                    await s.commit()
            assert not writer_busy(eng)
            async with eng.connect() as c:
                c = await c.execution_options(isolation_level="AUTOCOMMIT")
                await c.execute(sa.text("UPDATE counter SET value = 3"))
                assert not writer_busy(eng)
            async with AsyncSession(eng) as s:
                async with s.begin():
                    nested = await s.begin_nested()
                    (await s.get(Counter, 1)).value = 10
                    await nested.rollback()
                assert (await s.get(Counter, 1)).value == 3
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_async_connection_stream_returns_every_row(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            async with AsyncSession(eng) as s, s.begin():
                s.add_all([Book(title=f"b{i}") for i in range(5)])
            async with eng.connect() as c:
                result = await c.stream(sa.select(Book.title).order_by(Book.id))
                assert [t async for (t,) in result] == [f"b{i}" for i in range(5)]
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_dispose_of_the_sync_engine_after_the_loop_ended_closes_the_pool(tmp_path):
    async def use() -> AsyncEngine:
        eng = await make_engine(tmp_path / "a.db")
        async with AsyncSession(eng) as s:
            assert (await s.get(Counter, 1)).value == 0
        return eng

    eng = asyncio.run(use())
    pool = eng.sync_engine.pool.fastpool
    eng.sync_engine.dispose()  # plain code, no loop: the pool closes on a loop of its own
    assert pool.closed


SLOW = (
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 1e12) "
    "SELECT count(*) FROM r"
)


def test_cancelling_a_statement_running_off_the_loop_gives_its_connection_back(tmp_path):
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")

        async def slow() -> None:
            async with AsyncSession(readonly(eng)) as s:
                await s.execute(sa.text(SLOW))  # outruns the inline budget: a worker runs it

        try:
            handed = eng.sync_engine.pool.stats()["worker_calls"]
            t = asyncio.create_task(slow())
            # The task runs inline until its statement outruns the budget and is handed to a
            # worker (counted in worker_calls as it is handed over); then it awaits the worker.
            # (Waiting for readers_in_use instead could cancel before the statement began.)
            while eng.sync_engine.pool.stats()["worker_calls"] == handed:
                await asyncio.sleep(0)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            stats = eng.sync_engine.pool.stats()
            assert stats["readers_in_use"] == 0 and stats["budget_interrupts"] >= 1
            async with AsyncSession(readonly(eng)) as s:
                assert (await s.get(Counter, 1)).value == 0
        finally:
            await eng.dispose()

    asyncio.run(main())


# Inside one of SQLAlchemy's greenlets only the first statement goes over its greenlet bridge;
# the others run inline and await only what must be awaited. These tests run many statements
# inside one greenlet (run_sync) and inside many (one AsyncConnection.execute each).


def test_every_execute_of_a_transaction_awaits_as_sqlalchemy_requires(tmp_path):
    # AsyncConnection.execute raises AwaitRequired when its greenlet awaited nothing.
    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            async with eng.begin() as c:
                for n in range(1, 6):
                    await c.execute(sa.text("UPDATE counter SET value = value + 1"))
                    assert (await c.execute(sa.text("SELECT value FROM counter"))).scalar() == n
            async with readonly(eng).connect() as c:
                for _ in range(3):
                    assert (await c.execute(sa.text("SELECT value FROM counter"))).scalar() == 5
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_a_long_read_after_the_first_statement_of_a_greenlet_runs_on_a_worker(tmp_path):
    # Over the inline budget: interrupted, then run again on a worker thread and awaited.
    long_count = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
        "SELECT count(*) FROM n"
    )

    def statements(conn: sa.Connection) -> list[int]:
        first = conn.execute(sa.text("SELECT value FROM counter")).scalar()
        return [first, conn.execute(sa.text(long_count)).scalar()]

    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            before = eng.sync_engine.pool.stats()["worker_calls"]
            async with readonly(eng).connect() as c:
                assert await c.run_sync(statements) == [0, 300000]
            assert eng.sync_engine.pool.stats()["worker_calls"] > before
        finally:
            await eng.dispose()

    asyncio.run(main())


def test_other_tasks_run_while_one_greenlet_runs_many_inline_statements(tmp_path):
    # Inline statements never suspend; the pauses the pool asks for (every 2 ms of inline
    # work) still reach the loop, so a task ticking beside 3,000 statements run in one
    # greenlet, after its first, runs meanwhile.
    ticks = 0
    seen: list[int] = []

    def statements(conn: sa.Connection) -> int:
        total = conn.execute(sa.text("SELECT value + 1 FROM counter")).scalar()
        seen.append(ticks)
        for _ in range(2999):
            total += conn.execute(sa.text("SELECT value + 1 FROM counter")).scalar()
        seen.append(ticks)
        return total

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> None:
        eng = await make_engine(tmp_path / "a.db")
        try:
            stop = asyncio.Event()
            tick_task = asyncio.create_task(ticker(stop))
            async with readonly(eng).connect() as c:
                assert await c.run_sync(statements) == 3000
            stop.set()
            await tick_task
            assert seen[1] - seen[0] >= 3, seen
        finally:
            await eng.dispose()

    asyncio.run(main())
