"""An event loop closed while its tasks hold AsyncPool leases or wait for one (issue 12, item 5).

Each test runs a real loop (asyncio's or uvloop's) in this thread, lets a task check out a
lease (or queue for one) and block on a future that never completes, then closes the loop
without cancelling the task: what happens when a thread's loop is torn down, or after
``run_until_complete`` of another coroutine. A fresh loop on the same AsyncPool must then get
the writer and a reader within the acquisition timeout, with a ResourceWarning naming the
lease, and the abandoned writer's transaction rolled back. Real files, no mocks.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

import fastpool

# Counts to the parameter in pure SQL: long enough to outrun the inline budget and move to
# a worker thread.
COUNT_TO = (
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?) "
    "SELECT sum(i) FROM r"
)
# A safety bound: a leaked connection makes the next checkout fail with PoolTimeout after
# this long instead of hanging the test.
TIMEOUT = 5.0


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop  # in the test extras: a missing uvloop fails these tests, never skips

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


def run_on(kind: str) -> Callable[[Awaitable[Any]], Any]:
    if kind == "uvloop":
        import uvloop

        return uvloop.run  # type: ignore[no-any-return]
    return asyncio.run  # type: ignore[return-value]


@pytest.fixture(params=["asyncio", "uvloop"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def apool(tmp_path, kind):
    pool = fastpool.AsyncPool(tmp_path / "teardown.db", 1, acquisition_timeout=TIMEOUT)
    run_on(kind)(pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
    yield pool
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        run_on(kind)(pool.close(timeout=TIMEOUT))


def abandon(
    kind: str, bodies: list[Callable[[asyncio.Future[None]], Coroutine[Any, Any, None]]]
) -> list[asyncio.Task[None]]:
    """Start each body as a task on a new loop, run until every one has said it is in place
    (set its future), then close the loop with the tasks still pending: never cancelled."""
    loop = new_loop(kind)
    tasks = []
    for body in bodies:
        ready: asyncio.Future[None] = loop.create_future()
        tasks.append(loop.create_task(body(ready)))
        loop.run_until_complete(ready)
    loop.close()
    return tasks


async def forever() -> None:
    await asyncio.get_running_loop().create_future()


# What a holder runs inside its lease by default: the writer's leaves a transaction open.
HOLDER_STATEMENT = {
    "writer": "INSERT INTO t(v) VALUES ('never committed')",
    "reader": "SELECT count(*) FROM t",
}


def hold(
    apool: fastpool.AsyncPool,
    role: str,
    sql: str = "",
    params: tuple = (),
    *,
    ready_while_running: bool = False,
):
    """A task body that takes a ``role`` lease, runs ``sql`` (default: ``HOLDER_STATEMENT``) in
    it and waits forever without returning the lease. It says it is ready once the statement
    ran, or with ``ready_while_running`` just before it, so that the loop can close while the
    statement still runs."""

    async def body(ready: asyncio.Future[None]) -> None:
        async with apool.writer() if role == "writer" else apool.reader() as conn:
            if ready_while_running:
                ready.set_result(None)
            run = conn.execute if role == "writer" else conn.fetchone
            await run(sql or HOLDER_STATEMENT[role], params)
            if not ready_while_running:
                ready.set_result(None)
            await forever()

    return body


async def writer_and_reader_work(apool: fastpool.AsyncPool) -> None:
    async with apool.writer() as conn:
        await conn.execute("INSERT INTO t(v) VALUES ('after')")
    async with apool.reader() as conn:
        assert await conn.fetchall("SELECT v FROM t") == [("after",)]  # nothing half-committed
    assert await apool.execute("INSERT INTO t(v) VALUES ('one-shot')")
    assert await apool.fetchone("SELECT count(*) FROM t") == (2,)
    s = apool.stats()
    assert not s["writer_busy"] and s["readers_in_use"] == 0, s


def leak_warnings(caught: list[warnings.WarningMessage], what: str) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning)
        and f"{what} lease was never returned" in str(w.message)
    ]


@pytest.mark.parametrize("keep_task", [False, True], ids=["task-collected", "task-kept"])
@pytest.mark.parametrize("what", ["writer", "reader"])
def test_lease_held_by_a_task_of_a_closed_loop_comes_back(apool, kind, what, keep_task):
    # task-collected: nothing refers to the task any more; task-kept: the application still
    # holds the task object (its loop is closed, so it can never run again).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks = abandon(kind, [hold(apool, what)])
        if not keep_task:
            del tasks
        gc.collect()
        run_on(kind)(writer_and_reader_work(apool))
        gc.collect()
    assert len(leak_warnings(caught, what)) == 1, [str(w.message) for w in caught]


def test_the_warning_says_where_the_lease_was_checked_out(tmp_path, kind):
    pool = fastpool.AsyncPool(tmp_path / "debug.db", 1, acquisition_timeout=TIMEOUT, debug=True)
    run_on(kind)(pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        abandon(kind, [hold(pool, "writer")])
        gc.collect()
        run_on(kind)(writer_and_reader_work(pool))
        run_on(kind)(pool.close())
    (message,) = leak_warnings(caught, "writer")
    assert "event loop" in message and "checked out by" in message
    assert "async with apool.writer() if role" in message  # the line of the checkout


@pytest.mark.parametrize("keep_task", [False, True], ids=["task-collected", "task-kept"])
def test_waiters_of_a_closed_loop_are_never_handed_the_connection(apool, kind, keep_task):
    got: list[str] = []

    def wait_for(what: str):
        async def body(ready: asyncio.Future[None]) -> None:
            lease = apool.writer() if what == "writer" else apool.reader()
            ready.set_result(None)  # set now: the checkout below queues behind the holder
            async with lease:
                got.append(what)  # a dead loop never runs this, but a hand-off would leak
                await forever()

        return body

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks = abandon(
            kind,
            [hold(apool, "writer"), hold(apool, "reader"), wait_for("writer"), wait_for("reader")],
        )
        assert apool.stats()["waiting_writers"] == 1 and apool.stats()["waiting_readers"] == 1
        if not keep_task:
            del tasks
        gc.collect()
        for _ in range(2):  # the second round: the first one's leases came back as well
            run_on(kind)(writer_and_reader_work(apool))
            run_on(kind)(apool.execute("DELETE FROM t"))
        s = apool.stats()
        assert s["waiting_writers"] == 0 and s["waiting_readers"] == 0, s
        gc.collect()
    assert got == []
    assert len(leak_warnings(caught, "writer")) == 1
    assert len(leak_warnings(caught, "reader")) == 1


@pytest.mark.parametrize("keep_task", [False, True], ids=["task-collected", "task-kept"])
def test_loop_closed_while_a_lease_statement_runs_on_a_worker(apool, kind, keep_task):
    # The reader's long query outruns the inline budget and moves to a worker thread; the
    # loop is closed while it runs there. The connection comes back once the statement ends
    # (not before: the worker is still using it).
    body = hold(apool, "reader", COUNT_TO, (3_000_000,), ready_while_running=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks = abandon(kind, [body])
        assert apool.stats()["readers_in_use"] == 1
        if not keep_task:
            del tasks
        gc.collect()
        run_on(kind)(writer_and_reader_work(apool))
        gc.collect()
    assert len(leak_warnings(caught, "reader")) == 1


def test_writer_of_a_task_destroyed_on_a_live_loop_comes_back(apool, kind):
    # The loop keeps running, but the task holding the writer (inside a savepoint) awaits a
    # future nobody else refers to, and nothing refers to the task: the collector destroys
    # it ("Task was destroyed but it is pending!"). The pool must not keep it alive.
    async def hold_in_savepoint(ready: asyncio.Future[None]) -> None:
        async with apool.writer() as conn:
            await conn.execute("INSERT INTO t(v) VALUES ('never committed')")
            async with apool.writer() as inner:
                assert inner.kind == "writer savepoint"
                ready.set_result(None)
                await forever()

    async def main() -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().create_task(
            hold_in_savepoint(ready)
        )  # not kept: only weakly tracked
        await ready
        gc.collect()
        await writer_and_reader_work(apool)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_on(kind)(main())
    (message,) = leak_warnings(caught, "writer")
    assert "task was destroyed" in message and "rolled back" in message


def test_loop_closed_while_a_writer_statement_runs_on_a_worker(apool, kind):
    # A write that outran the budget once goes to a worker from then on. The loop closes
    # while it runs there; once it ends, the writer comes back with that transaction rolled
    # back, never committed.
    bulk = (
        "INSERT INTO t(v) SELECT 'bulk' FROM (WITH RECURSIVE r(i) AS "
        "(SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?) SELECT i FROM r)"
    )
    run_on(kind)(apool.execute(bulk, (100_000,)))  # inline, slow: learned
    run_on(kind)(apool.execute("DELETE FROM t"))

    body = hold(apool, "writer", bulk, (1_000_000,), ready_while_running=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        abandon(kind, [body])
        assert apool.stats()["writer_busy"] and apool.stats()["worker_calls"] >= 1
        gc.collect()
        run_on(kind)(writer_and_reader_work(apool))
        gc.collect()
    assert len(leak_warnings(caught, "writer")) == 1
