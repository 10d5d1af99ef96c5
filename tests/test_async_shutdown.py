"""AsyncPool and interpreter exit, in real child processes: never closing the pool, or exiting
while a worker thread is deep inside a query, must end the process promptly, with a
ResourceWarning where one is due; close() leaves no worker thread behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import fastpool

PACKAGE_ROOT = str(Path(fastpool.__file__).resolve().parent.parent)
EXIT_LIMIT = 60


def run_child(
    code: str, db: Path, loop: str, linger: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    # `linger` (the exit_linger fixture) stretches the child's last exit stage.
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    prelude = linger + (
        "import asyncio, threading, time, fastpool\n"
        f"DB = {str(db)!r}\n"
        "ENDLESS = ('WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r '"
        "'WHERE i < 1e15)'"
        " ' SELECT sum(i) FROM r')\n"
        + (
            "import uvloop\nnew_loop, run = uvloop.new_event_loop, uvloop.run\n"
            if loop == "uvloop"
            else "new_loop, run = asyncio.new_event_loop, asyncio.run\n"
        )
    )
    started = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=EXIT_LIMIT,
        env=env,
    )
    return res, time.monotonic() - started


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request):
    return request.param


def test_a_program_that_never_closes_exits_with_a_warning(tmp_path, loop, exit_linger):
    res, took = run_child(
        """
        async def main():
            apool = fastpool.AsyncPool(DB, 2)
            await apool.execute("CREATE TABLE t(x)")
            await apool.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
            print(await apool.fetchone("SELECT count(*) FROM t"))
            # a worker thread exists too
            print(await apool.fetchone("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                                       " FROM r WHERE i < 2000000) SELECT count(*) FROM r"))
            globals()["kept"] = apool   # never closed, still referenced at exit
        run(main())
        print("done")
    """,
        tmp_path / "never.db",
        loop,
        exit_linger,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["(10,)", "(2000000,)", "done"]
    assert "ResourceWarning" in res.stderr and "still open at interpreter exit" in res.stderr
    assert took < 20


def test_exit_while_a_worker_runs_an_endless_query(tmp_path, loop, exit_linger):
    # The loop is simply abandoned (no cancellation reaches the task): the worker thread is
    # still inside SQLite when the interpreter exits.
    res, took = run_child(
        """
        loop = new_loop()
        apool = fastpool.AsyncPool(DB, 2)
        async def start():
            task = asyncio.ensure_future(apool.fetchone(ENDLESS))
            while apool.stats()["worker_calls"] < 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            return task
        task = loop.run_until_complete(start())
        print("exiting", apool.stats()["readers_in_use"])
    """,
        tmp_path / "endless.db",
        loop,
        exit_linger,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["exiting", "1"]
    assert "ResourceWarning" in res.stderr
    assert took < 20


def test_asyncio_run_cancels_a_running_query_and_exits(tmp_path, loop, exit_linger):
    res, took = run_child(
        """
        async def main():
            apool = fastpool.AsyncPool(DB, 2)
            asyncio.ensure_future(apool.fetchone(ENDLESS))   # left running
            while apool.stats()["worker_calls"] < 1:
                await asyncio.sleep(0.01)
            globals()["kept"] = apool
        run(main())
        print("interrupts", kept.stats()["cancel_interrupts"], kept.stats()["readers_in_use"])
    """,
        tmp_path / "cancelled.db",
        loop,
        exit_linger,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["interrupts", "1", "0"]
    assert took < 20


def test_close_stops_the_worker_threads(tmp_path, loop, exit_linger):
    res, _ = run_child(
        """
        async def main():
            async with fastpool.AsyncPool(DB, 2) as apool:
                await asyncio.gather(*(apool.fetchone(
                    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                    "WHERE i < 1000000) SELECT count(*) FROM r") for _ in range(3)))
                names = [t.name for t in threading.enumerate()]
                print("workers", "fastpool-async-worker" in names)
            deadline = time.monotonic() + 10
            while any(t.name == "fastpool-async-worker" for t in threading.enumerate()):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            print("stopped")
        run(main())
    """,
        tmp_path / "stop.db",
        loop,
        exit_linger,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["workers", "True", "stopped"]
    assert "ResourceWarning" not in res.stderr
