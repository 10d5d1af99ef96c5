"""How fast any driver could make SQLAlchemy's ORM ``session.get``: instructions under callgrind.

A runner script, not a pytest suite: ``python bench/orm_floor_sqlalchemy.py`` prints tables
(needs valgrind). The workload is bench_sqlalchemy.py's (its models, ``make_engine`` and
loop): ``with Session(engine) as s: s.get(Item, key)``, a fresh session per get, on
``sqlite://`` (pysqlite) and ``readonly(sqlite+fastpool://)``; and ``async with
AsyncSession(engine) as s: await s.get(Item, key)``, one task, on ``sqlite+aiosqlite://``
and ``readonly(sqlite+fastpool_async://)``.

Method. Each contestant runs in a child ``python`` under ``valgrind --tool=callgrind``
(``PYTHONHASHSEED=0``, gc disabled, ``--warmup`` gets first to fill SQLAlchemy's caches),
with N gets and with none: the difference over N is one get, start-up cancelled out.

- *plain* children, nothing changed, give the total per get.
- *split* children wrap every place where SQLAlchemy hands control to the driver so that the
  driver's work runs inside ``operator.call`` (C: ``_operator_call`` in libpython); its
  inclusive cost is the driver's share: its C code, SQLite, and the interpreter running the
  driver's Python (fastpool's adapter and pool; SQLAlchemy's adapter for aiosqlite). An entry
  point called from inside another is not counted again (a depth flag). The entry points:
  the dialect's ``do_execute``, ``do_rollback``, ``do_commit``; the DB-API connection's
  ``cursor``, ``commit``, ``rollback``; the cursor's ``execute``, ``fetch*``, ``close``
  (pysqlite's ``description`` too, a C getter); fastpool's pool's ``_do_get`` and
  ``_do_return_conn`` (pysqlite has SQLAlchemy's QueuePool). pysqlite's C types are wrapped
  through subclasses (``connect(factory=...)``). The wrappers' own Python runs outside
  ``operator.call``; the call into a wrapped method counts as the driver's (generous to it).

Async: ``AsyncPool`` gets an inline budget no statement reaches (under valgrind's slowdown
its 200 µs budget would send statements to a worker thread, which they never do at full
speed). Callgrind's call tree does not follow the greenlet switch inside each driver call, so
the split misses what runs after it (the loop, aiosqlite's thread hand-off) and its "best
reachable" is no bound; the totals stand (docs/sqlalchemy.md bounds the async ratio in time,
with bench_sqlalchemy.py's orm-ceiling contestant).

Cross-check needing no wrappers: the self cost of libsqlite3, ``_sqlite3``, ``fastpool/*.so``.

Best reachable = built-in total / (fastpool total - fastpool's driver share): the ORM on a
driver that costs nothing. The ORM's Python holds the GIL, so threads add no throughput beyond
one core's worth of it: the single-thread count bounds the 4-thread ratio. ``--threads`` (no
valgrind) times bench_sqlalchemy's loop on 1 and on 4 threads to show it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SYNC = ("sqlite", "sqlite+fastpool")
ASYNC = ("sqlite+aiosqlite", "sqlite+fastpool_async")
_depth = [0]
_calls: dict[str, int] = {}


def _wrap(name: str, fn: Any) -> Any:
    """``fn`` whose outermost call runs inside ``operator.call`` (counted as the driver's)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _depth[0]:
            return fn(*args, **kwargs)
        _calls[name] = _calls.get(name, 0) + 1
        _depth[0] = 1
        try:
            return operator.call(fn, *args, **kwargs)
        finally:
            _depth[0] = 0

    return wrapper


def _pysqlite_factory() -> type:
    import sqlite3

    def wrapped(cls: type, names: str) -> dict[str, Any]:
        return {n: _wrap(f"{cls.__name__}.{n}", getattr(cls, n)) for n in names.split()}

    desc = _wrap("Cursor.description", sqlite3.Cursor.description.__get__)
    ns = wrapped(sqlite3.Cursor, "execute fetchone fetchmany fetchall close")
    cursor_cls = type("Cursor", (sqlite3.Cursor,), {**ns, "description": property(desc)})
    ns = wrapped(sqlite3.Connection, "commit rollback cursor")
    cursor = ns["cursor"]
    ns["cursor"] = lambda self, factory=cursor_cls: cursor(self, factory)
    return type("Connection", (sqlite3.Connection,), ns)


def _wrap_adapters() -> None:
    """Wrap the DB-API adapters' methods: fastpool's, and SQLAlchemy's for aiosqlite."""
    from sqlalchemy.connectors import asyncio as sa_async
    from sqlalchemy.dialects.sqlite import aiosqlite as sa_aio

    from fastpool.sqlalchemy import _adapter

    for cls in (
        _adapter.AdaptedConnection,
        _adapter.AdaptedCursor,
        sa_aio.AsyncAdapt_aiosqlite_connection,
        sa_async.AsyncAdapt_dbapi_connection,
        sa_async.AsyncAdapt_dbapi_cursor,
    ):
        for name in "cursor commit rollback execute fetchone fetchmany fetchall close".split():
            if name in vars(cls):
                setattr(cls, name, _wrap(f"{cls.__name__}.{name}", vars(cls)[name]))


def _wrap_engine(engine: Any) -> None:
    """Wrap the dialect's and (fastpool) the pool's entry points, on these instances."""
    dialect, pool = engine.dialect, engine.pool
    for name in ("do_execute", "do_execute_no_params", "do_rollback", "do_commit"):
        setattr(dialect, name, _wrap(f"dialect.{name}", getattr(dialect, name)))
    if type(pool).__module__.startswith("fastpool"):
        for name in ("_do_get", "_do_return_conn"):
            setattr(pool, name, _wrap(f"pool.{name}", getattr(pool, name)))


def _full_speed_budget() -> None:
    # AsyncPool runs a statement inline when it ends within ~200 µs of real time. Under
    # valgrind everything runs ~50x slower, so most statements would overrun it and go to a
    # worker thread, which they never do at full speed: the engine gets a budget no
    # statement here reaches, so the count is of the path that really runs.
    import fastpool.pool_async
    from fastpool._core import AsyncEngine

    fastpool.pool_async.AsyncEngine = lambda core: AsyncEngine(core, 1.0)  # type: ignore[assignment,misc]


def child(name: str, db: str, count: int, warmup: int, split: bool) -> None:
    """Run ``warmup`` then ``count`` gets on contestant ``name`` (inside valgrind)."""
    gc.disable()
    from bench_sqlalchemy import ROWS, Item
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import Session

    from fastpool.sqlalchemy import readonly

    if split:
        _wrap_adapters()
    if name == "sqlite+fastpool_async":
        _full_speed_budget()
    url = f"{name}:///{db}"
    if name in SYNC:
        pysqlite = {"factory": _pysqlite_factory()} if split and name == "sqlite" else {}
        engine: Any = create_engine(url, connect_args=pysqlite)
    else:
        engine = create_async_engine(url)
    if split:
        _wrap_engine(engine if name in SYNC else engine.sync_engine)
    target = readonly(engine) if "fastpool" in name else engine

    def gets(n: int) -> None:
        for k in range(n):
            with Session(target) as s:
                assert s.get(Item, (k * 7) % ROWS) is not None

    async def agets(n: int) -> None:
        for k in range(n):
            async with AsyncSession(target) as s:
                assert await s.get(Item, (k * 7) % ROWS) is not None

    if name in SYNC:
        gets(warmup)
        _calls.clear()
        gets(count)
        engine.dispose()
    else:

        async def run() -> None:
            await agets(warmup)
            _calls.clear()
            await agets(count)
            await engine.dispose()

        asyncio.run(run())
    if count:
        per_get = ", ".join(f"{k} {v / count:g}" for k, v in sorted(_calls.items()))
        print(f"calls per get: {per_get}", file=sys.stderr)


def callgrind(args: argparse.Namespace, name: str, count: int, split: bool) -> dict:
    """One child under callgrind: total, ``_operator_call`` inclusive, self cost by object."""
    db = Path(args.tmp) / f"{name.replace('+', '_')}.db"
    out = Path(args.tmp) / f"cg.{name.replace('+', '_')}.{count}.{int(split)}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    cmd += [__file__, "--child", name, "--db", str(db), "--count", str(count)]
    cmd += ["--warmup", str(args.warmup)] + (["--split"] if split else [])
    env = dict(os.environ, PYTHONHASHSEED="0")
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{name} failed:\n{run.stderr[-3000:]}")
    calls = [line for line in run.stderr.splitlines() if line.startswith("calls per get")]
    result: dict[str, Any] = {"calls": calls[0] if calls else ""}
    for inclusive in ("yes", "no"):
        ann = ["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100", str(out)]
        for line in subprocess.check_output(ann, text=True).splitlines():
            m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.*)$", line)
            if not m:
                continue
            ir, what = int(m.group(1).replace(",", "")), m.group(2)
            if what.startswith("PROGRAM TOTALS"):
                result["total"] = ir
            elif inclusive == "yes" and what.split(" [")[0].endswith(":_operator_call"):
                result["driver"] = result.get("driver", 0) + ir
            elif inclusive == "no" and re.search(r"\[.*(libsqlite3|_sqlite3|fastpool/).*\]$", what):
                result["objects"] = result.get("objects", 0) + ir
    return result


def measure(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per-get instructions of each contestant: total, driver share, driver objects' self."""
    keys = [(name, n, split) for name in names for n in (args.n, 0) for split in (False, True)]
    with ThreadPoolExecutor(max_workers=2) as ex:  # callgrind counts: the load changes nothing
        jobs = {k: ex.submit(callgrind, args, *k) for k in keys}
    r = {k: job.result() for k, job in jobs.items()}

    def per_get(name: str, split: bool, field: str) -> float:
        return (r[name, args.n, split].get(field, 0) - r[name, 0, split].get(field, 0)) / args.n

    fields = (("total", False), ("driver", True), ("objects", False))
    return {
        name: {f: per_get(name, split, f) for f, split in fields}
        | {"calls": r[name, args.n, True]["calls"]}
        for name in names
    }


def report(title: str, n: int, builtin: str, fastpool: str, res: dict) -> None:
    print(f"\n{title}: instructions per get (callgrind, N={n} minus N=0)")
    print("| contestant | total | driver + SQLite | rest (ORM) | driver .so self |")
    print("|---|--:|--:|--:|--:|")
    for name in (builtin, fastpool):
        r = res[name]
        share = r["driver"] / r["total"]
        print(
            f"| {name} | {r['total']:,.0f} | {r['driver']:,.0f} ({share:.1%}) | "
            f"{r['total'] - r['driver']:,.0f} | {r['objects']:,.0f} |"
        )
    b, f = res[builtin], res[fastpool]
    best = b["total"] / (f["total"] - f["driver"])
    print(f"\nbuilt-in / fastpool instructions: {b['total'] / f['total']:.2f}x; best reachable")
    print(f"(built-in / (fastpool - its driver share), a driver costing nothing): {best:.2f}x")
    for name in (builtin, fastpool):
        print(f"  {name} {res[name]['calls']}")


def threads(tmp: str, rounds: int, per_thread: int) -> None:
    """Real time, no valgrind: median gets/s of 1 and of 4 threads (bench's 4-thread loop)."""
    import statistics

    from bench_sqlalchemy import ROWS, Item, make_engine, threaded
    from sqlalchemy.orm import Session

    from fastpool.sqlalchemy import readonly

    fp = make_engine(f"sqlite+fastpool:///{tmp}/t_fp.db")
    engines = {"sqlite": make_engine(f"sqlite:///{tmp}/t_sq.db"), "sqlite+fastpool": readonly(fp)}
    rates: dict[tuple[str, int], list[float]] = {(e, n): [] for e in engines for n in (1, 4)}
    for r in range(rounds):  # contestants and thread counts interleaved, order alternating
        for n in (1, 4)[:: 1 - 2 * (r % 2)]:
            for name in list(engines)[:: 1 - 2 * (r % 2)]:

                def gets(i: int, engine: Any = engines[name]) -> None:
                    for k in range(per_thread):
                        with Session(engine) as s:
                            assert s.get(Item, (k * 7 + i) % ROWS) is not None

                rates[name, n].append(n * per_thread / threaded(n, gets))
    print(f"| threads | sqlite gets/s | sqlite+fastpool gets/s | ratio |  ({rounds} rounds)")
    print("|--:|--:|--:|--:|")
    for n in (1, 4):
        sq, f = (statistics.median(rates[e, n]) for e in engines)
        print(f"| {n} | {sq:,.0f} | {f:,.0f} | {f / sq:.2f}x |")
    fp.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="gets measured (default 2000)")
    p.add_argument("--warmup", type=int, default=200, help="gets before (default 200)")
    p.add_argument("--no-async", action="store_true", help="only the sync dialects")
    p.add_argument("--threads", action="store_true", help="time 1 and 4 threads instead")
    p.add_argument("--child")
    p.add_argument("--db")
    p.add_argument("--count", type=int)
    p.add_argument("--split", action="store_true")
    args = p.parse_args()
    if args.child:
        return child(args.child, args.db, args.count, args.warmup, args.split)
    sys.path.insert(0, str(Path(__file__).parent))
    import sqlalchemy as sa
    from bench_sqlalchemy import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        if args.threads:
            return threads(tmp, rounds=5, per_thread=2000)
        groups = [("sync, 1 thread", SYNC)] + ([] if args.no_async else [("async, 1 task", ASYNC)])
        for title, names in groups:
            for name in names:  # bench_sqlalchemy's database: its schema and rows
                db = Path(tmp) / f"{name.replace('+', '_')}.db"
                url = f"sqlite+fastpool:///{db}" if name in SYNC[1:] else f"sqlite:///{db}"
                make_engine(url).dispose()
            res = measure(args, names)
            report(title, args.n, names[0], names[1], res)
    print(f"\n{sa.__version__=}, sqlite {__import__('sqlite3').sqlite_version}, {sys.version}")


if __name__ == "__main__":
    main()
