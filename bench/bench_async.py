"""fastpool.AsyncPool beside today's asyncio options (issue 4).

Workloads (one database file per run, WAL, 10,000 rows):

- ``select``: 100 concurrent tasks doing point selects by primary key;
- ``insert``: 50 concurrent tasks doing single-row insert transactions;
- ``social``: 100 concurrent tasks serving a social app's page, four statements each: the user
  by primary key, the user's 10 latest posts, a post's 20 first comments joined with their
  authors, and a like (an insert that ignores repeats) written in its own transaction.

Contestants:

- ``fastpool``: ``fastpool.AsyncPool(path, readers=4)``; selects are ``await
  apool.fetchone(...)``, inserts ``async with apool.writer() as w: await w.execute(...)``;
- ``aiosqlite``: one aiosqlite connection shared by every task (selects with
  ``execute_fetchall``; inserts serialised by an asyncio.Lock, since one connection cannot hold
  two transactions);
- ``aiosqlitepool``: ``aiosqlitepool.SQLiteConnectionPool`` (pool_size 10) over aiosqlite
  connections; inserts the usual way (``execute`` then ``commit``), busy timeout 5 s, errors
  counted;
- ``sync``: fastpool's blocking ``pool.fetchone`` in one thread, no event loop (selects only):
  the yardstick the async facade is measured against;
- ``sqlite3-loop``: one stdlib connection called *blocking* from the tasks on the loop (selects
  and the social page): the ceiling of running SQLite on the loop's thread with no engine at all.

Two ways to run it:

- ``python bench/bench_async.py [--rounds 3] [--loop uvloop]``: all contestants side by side in
  one process, interleaved round by round (on a small shared machine, runs seconds apart can see
  different machines); prints the median ops/s (commits/s), the ratios and the acceptance check.
- ``python -m pytest bench/bench_async.py``: pytest-benchmark tables, one row per contestant;
  ``--benchmark-disable`` runs each once at 1% of the size (CI: proves the suite still works).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

try:  # run as a script from a checkout
    import fastpool
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    import fastpool

import aiosqlite
from aiosqlitepool import SQLiteConnectionPool

ROWS = 10_000
SELECT_TASKS = 100
INSERT_TASKS = 50
SELECT = "SELECT v FROM kv WHERE id = ?"
INSERT = "INSERT INTO log(task, n, pad) VALUES (?, ?, ?)"
PAD = "x" * 100

# Operations per task per round, by contestant: slow contestants do fewer, so a round takes
# about the same time for each (throughput is what is compared).
SELECTS_PER_TASK = {
    "fastpool": 400,
    "aiosqlite": 60,
    "aiosqlitepool": 10,
    "sync": 400,
    "sqlite3-loop": 400,
}
INSERTS_PER_TASK = {"fastpool": 60, "aiosqlite": 10, "aiosqlitepool": 4}
PAGES_PER_TASK = {"fastpool": 150, "aiosqlite": 25, "sqlite3-loop": 150}

# The social page: users, posts (POSTS_PER_USER each), comments (COMMENTS_PER_POST each), likes.
POSTS_PER_USER = 4
COMMENTS_PER_POST = 3
PAGE_USER = "SELECT id, name, email, bio FROM users WHERE id = ?"
PAGE_POSTS = "SELECT id, title, created FROM posts WHERE user_id = ? ORDER BY created DESC LIMIT 10"
PAGE_COMMENTS = (
    "SELECT c.id, c.body, u.name FROM comments AS c JOIN users AS u ON u.id = c.user_id "
    "WHERE c.post_id = ? ORDER BY c.id LIMIT 20"
)
PAGE_LIKE = "INSERT INTO likes(post_id, user_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
SOCIAL_SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, bio TEXT)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INT, title TEXT, body TEXT, created INT)",
    "CREATE INDEX posts_user ON posts(user_id, created)",
    "CREATE TABLE comments(id INTEGER PRIMARY KEY, post_id INT, user_id INT, body TEXT)",
    "CREATE INDEX comments_post ON comments(post_id)",
    "CREATE TABLE likes(post_id INT, user_id INT, at INT, PRIMARY KEY(post_id, user_id))",
]


def make_database(path: Path) -> None:
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)")
        pool.executemany("INSERT INTO kv VALUES (?, ?)", [(i, f"value {i}") for i in range(ROWS)])
        pool.execute("CREATE TABLE log(id INTEGER PRIMARY KEY, task INT, n INT, pad TEXT)")
        for statement in SOCIAL_SCHEMA:
            pool.execute(statement)
        users = range(ROWS)
        posts = range(ROWS * POSTS_PER_USER)
        pool.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?)",
            [(u, f"user {u}", f"user{u}@example.com", PAD) for u in users],
        )
        pool.executemany(
            "INSERT INTO posts VALUES (?, ?, ?, ?, ?)",
            [(p, p % ROWS, f"post {p}", PAD, p) for p in posts],
        )
        pool.executemany(
            "INSERT INTO comments(post_id, user_id, body) VALUES (?, ?, ?)",
            [(p, (p * 7 + c) % ROWS, PAD) for p in posts for c in range(COMMENTS_PER_POST)],
        )


def keys(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(ROWS) for _ in range(n)]


async def open_aiosqlite(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, timeout=5.0)
    await conn.execute("PRAGMA journal_mode=wal")
    await conn.execute("PRAGMA synchronous=normal")
    return conn


# -- one round of each workload per contestant: returns (operations, seconds, errors) --------


async def timed_gather(coros: Iterable[Coroutine[Any, Any, None]]) -> float:
    """Run the tasks concurrently; return the seconds they took."""
    started = time.perf_counter()
    await asyncio.gather(*coros)
    return time.perf_counter() - started


async def select_round(name: str, path: Path, scale: float) -> tuple[int, float, int]:
    per_task = max(1, int(SELECTS_PER_TASK[name] * scale))
    plans = [keys(per_task, t) for t in range(SELECT_TASKS)]
    total = per_task * SELECT_TASKS
    if name == "fastpool":
        async with fastpool.AsyncPool(path, readers=4) as apool:
            await apool.fetchone(SELECT, (0,))  # open and warm

            async def task(plan: list[int]) -> None:
                for k in plan:
                    await apool.fetchone(SELECT, (k,))

            return total, await timed_gather(task(p) for p in plans), 0
    if name == "aiosqlite":
        conn = await open_aiosqlite(path)
        try:
            await conn.execute_fetchall(SELECT, (0,))

            async def task(plan: list[int]) -> None:
                for k in plan:
                    await conn.execute_fetchall(SELECT, (k,))

            return total, await timed_gather(task(p) for p in plans), 0
        finally:
            await conn.close()
    if name == "aiosqlitepool":
        pool = SQLiteConnectionPool(lambda: open_aiosqlite(path), pool_size=10)
        try:

            async def task(plan: list[int]) -> None:
                for k in plan:
                    async with pool.connection() as conn:
                        await conn.execute_fetchall(SELECT, (k,))

            return total, await timed_gather(task(p) for p in plans), 0
        finally:
            await pool.close()
    if name == "sqlite3-loop":
        db = open_sqlite3(path)
        try:

            async def task(plan: list[int]) -> None:
                for k in plan:
                    db.execute(SELECT, (k,)).fetchone()

            return total, await timed_gather(task(p) for p in plans), 0
        finally:
            db.close()
    raise ValueError(name)


def open_sqlite3(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=5.0)
    db.execute("PRAGMA synchronous=normal")
    return db


async def social_round(name: str, path: Path, scale: float) -> tuple[int, float, int]:
    """SELECT_TASKS tasks serving pages (4 statements each); operations are statements."""
    per_task = max(1, int(PAGES_PER_TASK[name] * scale))
    plans = [
        list(zip(keys(per_task, t), keys(per_task, t + 1000), strict=True))
        for t in range(SELECT_TASKS)
    ]
    async with contextlib.AsyncExitStack() as stack:
        page = await social_page(name, path, stack)

        async def task(plan: list[tuple[int, int]]) -> None:
            for n, (u, k) in enumerate(plan):
                await page(u, k * POSTS_PER_USER, n)

        # Untimed warm-up, as in the select round: connections opened, statements prepared.
        await asyncio.gather(*(page(t, t * POSTS_PER_USER, -1) for t in range(8)))
        return 4 * per_task * SELECT_TASKS, await timed_gather(task(p) for p in plans), 0


async def social_page(
    name: str, path: Path, stack: contextlib.AsyncExitStack
) -> Callable[[int, int, int], Awaitable[None]]:
    """The contestant's page for user ``u``, post ``p`` (its like is stamped ``n``)."""
    if name == "fastpool":
        apool = await stack.enter_async_context(fastpool.AsyncPool(path, readers=4))
        fetchone, fetchall, execute = apool.fetchone, apool.fetchall, apool.execute

        async def page(u: int, p: int, n: int) -> None:
            await fetchone(PAGE_USER, (u,))
            await fetchall(PAGE_POSTS, (u,))
            await fetchall(PAGE_COMMENTS, (p,))
            await execute(PAGE_LIKE, (p, u, n))

        return page
    if name == "aiosqlite":
        conn = await open_aiosqlite(path)
        stack.push_async_callback(conn.close)
        lock = asyncio.Lock()

        async def apage(u: int, p: int, n: int) -> None:
            await conn.execute_fetchall(PAGE_USER, (u,))
            await conn.execute_fetchall(PAGE_POSTS, (u,))
            await conn.execute_fetchall(PAGE_COMMENTS, (p,))
            async with lock:
                await conn.execute(PAGE_LIKE, (p, u, n))
                await conn.commit()

        return apage
    if name == "sqlite3-loop":
        db = open_sqlite3(path)
        stack.callback(db.close)

        async def spage(u: int, p: int, n: int) -> None:
            db.execute(PAGE_USER, (u,)).fetchone()
            db.execute(PAGE_POSTS, (u,)).fetchall()
            db.execute(PAGE_COMMENTS, (p,)).fetchall()
            with db:
                db.execute(PAGE_LIKE, (p, u, n))

        return spage
    raise ValueError(name)


def sync_select_round(path: Path, scale: float) -> tuple[int, float, int]:
    per_task = max(1, int(SELECTS_PER_TASK["sync"] * scale))
    plan = [k for t in range(SELECT_TASKS) for k in keys(per_task, t)]
    with fastpool.Pool(path, readers=4) as pool:
        fetchone = pool.fetchone
        fetchone(SELECT, (0,))
        started = time.perf_counter()
        for k in plan:
            fetchone(SELECT, (k,))
        return len(plan), time.perf_counter() - started, 0


async def insert_tasks(
    insert: Callable[[int, int], Awaitable[None]], per_task: int, failure: type[Exception]
) -> tuple[int, float, int]:
    """INSERT_TASKS tasks, each calling ``insert(task, n)`` per_task times; a ``failure`` is
    counted as an error. Returns (operations, seconds, errors)."""
    errors = 0

    async def task(t: int) -> None:
        nonlocal errors
        for n in range(per_task):
            try:
                await insert(t, n)
            except failure:
                errors += 1

    seconds = await timed_gather(task(t) for t in range(INSERT_TASKS))
    return per_task * INSERT_TASKS, seconds, errors


async def insert_round(name: str, path: Path, scale: float) -> tuple[int, float, int]:
    per_task = max(1, int(INSERTS_PER_TASK[name] * scale))
    if name == "fastpool":
        async with fastpool.AsyncPool(path, readers=4) as apool:

            async def insert(t: int, n: int) -> None:
                async with apool.writer() as w:
                    await w.execute(INSERT, (t, n, PAD))

            return await insert_tasks(insert, per_task, fastpool.Error)
    if name == "aiosqlite":
        conn = await open_aiosqlite(path)
        lock = asyncio.Lock()
        try:

            async def insert(t: int, n: int) -> None:
                async with lock:
                    await conn.execute(INSERT, (t, n, PAD))
                    await conn.commit()

            return await insert_tasks(insert, per_task, Exception)
        finally:
            await conn.close()
    if name == "aiosqlitepool":
        pool = SQLiteConnectionPool(lambda: open_aiosqlite(path), pool_size=10)
        try:

            async def insert(t: int, n: int) -> None:
                async with pool.connection() as conn:
                    await conn.execute(INSERT, (t, n, PAD))
                    await conn.commit()

            return await insert_tasks(insert, per_task, Exception)
        finally:
            await pool.close()
    raise ValueError(name)


def run_on(loop_kind: str, coro: Coroutine[Any, Any, Any]) -> Any:
    # asyncio.run / uvloop.run rather than asyncio.Runner, which Python 3.10 lacks.
    if loop_kind == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def one(
    workload: str, name: str, path: Path, scale: float, loop_kind: str
) -> tuple[int, float, int]:
    if workload == "select" and name == "sync":
        return sync_select_round(path, scale)
    if workload == "select":
        return run_on(loop_kind, select_round(name, path, scale))  # type: ignore[no-any-return]
    if workload == "social":
        return run_on(loop_kind, social_round(name, path, scale))  # type: ignore[no-any-return]
    return run_on(loop_kind, insert_round(name, path, scale))  # type: ignore[no-any-return]


# -- the side-by-side runner -------------------------------------------------------------------

SELECT_CONTESTANTS = ["fastpool", "aiosqlite", "aiosqlitepool", "sync", "sqlite3-loop"]
INSERT_CONTESTANTS = ["fastpool", "aiosqlite", "aiosqlitepool"]
SOCIAL_CONTESTANTS = ["fastpool", "aiosqlite", "sqlite3-loop"]
CONTESTANTS = {
    "select": SELECT_CONTESTANTS,
    "insert": INSERT_CONTESTANTS,
    "social": SOCIAL_CONTESTANTS,
}


def side_by_side(rounds: int, loop_kind: str, scale: float = 1.0) -> dict[str, Any]:
    results: dict[str, dict[str, list[float]]] = {w: {} for w in CONTESTANTS}
    errors: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_async.db"
        make_database(path)
        for r in range(rounds):
            for workload, names in CONTESTANTS.items():
                order = names if r % 2 == 0 else list(reversed(names))
                for name in order:
                    ops, seconds, errs = one(workload, name, path, scale, loop_kind)
                    results[workload].setdefault(name, []).append(ops / seconds)
                    errors[f"{workload}/{name}"] = errors.get(f"{workload}/{name}", 0) + errs
    medians = {w: {n: statistics.median(v) for n, v in d.items()} for w, d in results.items()}
    return {"rounds": results, "medians": medians, "errors": errors}


def acceptance(report: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    sel, ins = report["medians"]["select"], report["medians"]["insert"]
    soc = report["medians"]["social"]
    checks = [
        ("select: fastpool / shared aiosqlite", sel["fastpool"] / sel["aiosqlite"], 2.0),
        ("select: fastpool / aiosqlitepool", sel["fastpool"] / sel["aiosqlitepool"], 20.0),
        ("select: fastpool / sync pool.fetchone", sel["fastpool"] / sel["sync"], 0.5),
        ("select: fastpool / sqlite3 on the loop", sel["fastpool"] / sel["sqlite3-loop"], 0.8),
        ("insert: fastpool / aiosqlitepool", ins["fastpool"] / ins["aiosqlitepool"], 10.0),
        ("social: fastpool / shared aiosqlite", soc["fastpool"] / soc["aiosqlite"], 3.0),
    ]
    out = [(what, ratio, need, ratio >= need) for what, ratio, need in checks]
    errs = report["errors"].get("insert/fastpool", 0)
    out.append(("insert: fastpool errors", float(errs), 0.0, errs == 0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--scale", type=float, default=1.0, help="operations per round, factor")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    report = side_by_side(args.rounds, args.loop, args.scale)
    print(
        f"fastpool {fastpool.__version__}, SQLite {fastpool.sqlite_version()}, "
        f"Python {sys.version.split()[0]}, loop {args.loop}, {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs"
    )
    for workload, unit, tasks in (
        ("select", "ops/s", SELECT_TASKS),
        ("insert", "commits/s", INSERT_TASKS),
        ("social", "statements/s", SELECT_TASKS),
    ):
        print(f"\n{workload} ({tasks} tasks): median {unit} (rounds)")
        for name, value in report["medians"][workload].items():
            rounds = ", ".join(f"{v:,.0f}" for v in report["rounds"][workload][name])
            errs = report["errors"][f"{workload}/{name}"]
            print(f"  {name:14} {value:12,.0f}   ({rounds})  errors {errs}")
    print("\nAcceptance:")
    ok = True
    for what, ratio, need, passed in acceptance(report):
        ok &= passed
        if what.endswith("errors"):
            print(f"  {what:40} {ratio:8.0f}   need  0   {'PASS' if passed else 'FAIL'}")
        else:
            print(f"  {what:40} {ratio:8.2f}x  need {need:g}x  {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


# -- pytest-benchmark suite ----------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the runner above needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="module")
    def bench_db(tmp_path_factory: Any) -> Path:
        path = tmp_path_factory.mktemp("bench_async") / "bench_async.db"
        make_database(path)
        return path

    def _bench(benchmark: Any, workload: str, name: str, path: Path) -> None:
        scale = 0.01 if benchmark.disabled else 1.0
        results: list[tuple[int, float, int]] = []

        def round_() -> None:
            results.append(one(workload, name, path, scale, "asyncio"))

        benchmark.pedantic(round_, rounds=1 if benchmark.disabled else 3, iterations=1)
        rates = [ops / s for ops, s, _ in results]
        benchmark.extra_info["ops_per_s"] = statistics.median(rates)
        benchmark.extra_info["errors"] = sum(e for _, _, e in results)
        if workload == "insert" and name == "fastpool":
            assert benchmark.extra_info["errors"] == 0

    @pytest.mark.parametrize("name", SELECT_CONTESTANTS)
    def test_point_selects_100_tasks(benchmark: Any, bench_db: Path, name: str) -> None:
        _bench(benchmark, "select", name, bench_db)

    @pytest.mark.parametrize("name", INSERT_CONTESTANTS)
    def test_insert_transactions_50_tasks(benchmark: Any, bench_db: Path, name: str) -> None:
        _bench(benchmark, "insert", name, bench_db)

    @pytest.mark.parametrize("name", SOCIAL_CONTESTANTS)
    def test_social_pages_100_tasks(benchmark: Any, bench_db: Path, name: str) -> None:
        _bench(benchmark, "social", name, bench_db)

    def test_side_by_side_runs(benchmark: Any) -> None:
        # The runner itself, tiny, so CI notices when it breaks.
        scale = 0.01 if benchmark.disabled else 0.2
        report = benchmark.pedantic(
            lambda: side_by_side(1, "asyncio", scale), rounds=1, iterations=1
        )
        assert set(report["medians"]["select"]) == set(SELECT_CONTESTANTS)
        assert report["errors"]["insert/fastpool"] == 0


if __name__ == "__main__":
    sys.exit(main())
