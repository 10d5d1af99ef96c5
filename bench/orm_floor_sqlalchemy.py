"""How fast any driver could make SQLAlchemy's ORM ``session.get``: instructions under callgrind.

A runner script, not a pytest suite: ``python bench/orm_floor_sqlalchemy.py`` prints a table
(``--n``, ``--warmup``, ``--no-async``; needs valgrind). The workload is bench_sqlalchemy.py's
(its models and ``make_engine``): ``with Session(engine) as s: s.get(Item, key)``, a fresh
session per get, on ``sqlite://`` (pysqlite) and on ``readonly(sqlite+fastpool://)``; async:
``async with AsyncSession(engine) as s: await s.get(Item, key)``, one task, on
``sqlite+aiosqlite://`` and on ``readonly(sqlite+fastpool_async://)``.

Method. Each contestant runs in a child ``python`` under ``valgrind --tool=callgrind``
(``PYTHONHASHSEED=0``, gc disabled, ``--warmup`` gets first so that SQLAlchemy's statement
caches are filled), once with N gets and once with none; the difference divided by N is the
cost of one get, start-up and set-up cancelled out. Each child is run twice:

- *plain*: nothing changed; gives the total per get.
- *split*: every place where SQLAlchemy hands control to the driver is wrapped so that the
  driver's work runs inside ``operator.call`` (a C function, ``_operator_call`` in
  libpython), and callgrind's inclusive cost of ``_operator_call`` is the driver's share:
  its C code, SQLite, and the interpreter running the driver's Python code (fastpool's
  adapter, its pool, aiosqlite's thread hand-offs). A call the driver makes into another
  wrapped entry point is not wrapped again (a depth flag), so nothing is counted twice.
  The entry points: the dialect's ``do_execute``/``do_rollback``/``do_commit``; the DB-API
  connection's ``cursor``/``commit``/``rollback``; the cursor's ``execute``/``fetch*``/
  ``close``/``description``; and for fastpool the pool class's ``_do_get``/``_do_return_conn``
  (fastpool's code, where pysqlite has SQLAlchemy's QueuePool). pysqlite's C types are
  wrapped through subclasses (``connect(factory=...)``). The wrappers' own Python runs
  outside ``operator.call``, so the split run's total is larger and is not used for the
  total; a wrapped method's call overhead is counted as the driver's, which is the generous
  side for the "best reachable" ratio below.

Also printed, as a cross-check that needs no wrapping: instructions spent in the driver's
shared objects themselves (self cost of libsqlite3, ``_sqlite3``, ``fastpool/*.so``); that is
a lower bound of the driver's share, since it leaves out the Python objects they create.

Best reachable = built-in total / (fastpool total - fastpool's driver share): the ORM on a
driver that costs nothing. The ORM's Python holds the GIL, so threads add no throughput
beyond one core's worth of it: a single-thread instruction count bounds the 4-thread ratio.
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


def _slug(name: str) -> str:
    return re.sub(r"\W", "_", name)


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

    base_cursor = _wrap("Connection.cursor", sqlite3.Connection.cursor)
    desc = _wrap("Cursor.description", sqlite3.Cursor.description.__get__)

    class Cursor(sqlite3.Cursor):
        execute = _wrap("Cursor.execute", sqlite3.Cursor.execute)
        fetchone = _wrap("Cursor.fetchone", sqlite3.Cursor.fetchone)
        fetchmany = _wrap("Cursor.fetchmany", sqlite3.Cursor.fetchmany)
        fetchall = _wrap("Cursor.fetchall", sqlite3.Cursor.fetchall)
        close = _wrap("Cursor.close", sqlite3.Cursor.close)
        description = property(lambda self: desc(self))

    class Connection(sqlite3.Connection):
        commit = _wrap("Connection.commit", sqlite3.Connection.commit)
        rollback = _wrap("Connection.rollback", sqlite3.Connection.rollback)

        def cursor(self, factory: Any = Cursor) -> Any:  # type: ignore[override]
            return base_cursor(self, factory)

    return Connection


def _wrap_classes(classes: list[type], names: tuple[str, ...]) -> None:
    for cls in classes:
        for name in names:
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


def child(name: str, db: str, count: int, warmup: int, split: bool) -> None:
    """Run ``warmup`` then ``count`` gets on contestant ``name`` (inside valgrind)."""
    gc.disable()
    from bench_sqlalchemy import ROWS, Item
    from sqlalchemy import create_engine
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import Session

    from fastpool.sqlalchemy import readonly

    kwargs: dict[str, Any] = {}
    if split:
        from fastpool.sqlalchemy import _adapter

        if name == "sqlite":
            kwargs["connect_args"] = {"factory": _pysqlite_factory()}
        elif name == "sqlite+aiosqlite":
            from sqlalchemy.connectors import asyncio as sa_async
            from sqlalchemy.dialects.sqlite import aiosqlite as sa_aio

            _wrap_classes(
                [
                    sa_aio.AsyncAdapt_aiosqlite_connection,
                    sa_async.AsyncAdapt_dbapi_connection,
                    sa_async.AsyncAdapt_dbapi_cursor,
                ],
                ("cursor", "commit", "rollback", "execute", "fetchone", "fetchmany", "fetchall"),
            )
            _wrap_classes([sa_async.AsyncAdapt_dbapi_cursor], ("close",))
        _wrap_classes(
            [_adapter.AdaptedConnection, _adapter.AdaptedCursor],
            ("cursor", "commit", "rollback", "execute", "fetchone", "fetchmany", "fetchall"),
        )
        _wrap_classes([_adapter.AdaptedCursor], ("close",))
    url = f"{name}:///{db}"

    if name in SYNC:
        engine = create_engine(url, **kwargs)
        if split:
            _wrap_engine(engine)
        target = readonly(engine) if "fastpool" in name else engine

        def gets(n: int) -> None:
            for k in range(n):
                with Session(target) as s:
                    assert s.get(Item, (k * 7) % ROWS) is not None

        gets(warmup)
        _calls.clear()
        gets(count)
        engine.dispose()
    else:
        aengine = create_async_engine(url)
        if split:
            _wrap_engine(aengine.sync_engine)
        atarget = readonly(aengine) if "fastpool" in name else aengine

        async def agets(n: int) -> None:
            for k in range(n):
                async with AsyncSession(atarget) as s:
                    assert await s.get(Item, (k * 7) % ROWS) is not None

        async def run() -> None:
            await agets(warmup)
            _calls.clear()
            await agets(count)
            await aengine.dispose()

        asyncio.run(run())
    if count:
        per_get = ", ".join(f"{k} {v / count:g}" for k, v in sorted(_calls.items()))
        print(f"calls per get: {per_get}", file=sys.stderr)


def callgrind(args: argparse.Namespace, name: str, db: Path, count: int, split: bool) -> dict:
    """One child under callgrind: total, ``_operator_call`` inclusive, self cost by object."""
    out = Path(args.tmp) / f"cg.{_slug(name)}.{count}.{int(split)}"
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
        ann = subprocess.run(
            ["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in ann.splitlines():
            m = re.match(r"\s*([\d,]+)\s+(?:\([\d.%]+\)\s+)?(.*)$", line)
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
    jobs = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for name in names:
            db = Path(args.tmp) / f"{_slug(name)}.db"
            for count in (args.n, 0):
                for split in (False, True):
                    jobs[name, count, split] = ex.submit(callgrind, args, name, db, count, split)
    out = {}
    for name in names:
        r = {key[1:]: job.result() for key, job in jobs.items() if key[0] == name}

        def per_get(split: bool, field: str, r: dict = r) -> float:
            return (r[args.n, split].get(field, 0) - r[0, split].get(field, 0)) / args.n

        out[name] = {
            "total": per_get(False, "total"),
            "driver": per_get(True, "driver"),
            "objects": per_get(False, "objects"),
            "calls": r[args.n, True]["calls"],
        }
    return out


def report(title: str, builtin: str, fastpool: str, res: dict) -> None:
    print(f"\n{title}: instructions per get (callgrind, N={ARGS.n} minus N=0)")
    print(f"| contestant | total | driver + SQLite | rest (ORM) | driver .so self |")
    print("|---|--:|--:|--:|--:|")
    for name in (builtin, fastpool):
        r = res[name]
        share = r["driver"] / r["total"]
        print(
            f"| {name} | {r['total']:,.0f} | {r['driver']:,.0f} ({share:.1%}) | "
            f"{r['total'] - r['driver']:,.0f} | {r['objects']:,.0f} |"
        )
    b, f = res[builtin], res[fastpool]
    print(f"\nfastpool / built-in, instructions: {b['total'] / f['total']:.2f}x")
    best = b["total"] / (f["total"] - f["driver"])
    print(f"best reachable (a driver costing nothing): {best:.2f}x")
    for name in (builtin, fastpool):
        print(f"  {name} {res[name]['calls']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="gets measured (default 2000)")
    p.add_argument("--warmup", type=int, default=200, help="gets before (default 200)")
    p.add_argument("--jobs", type=int, default=2, help="valgrind runs at a time (default 2)")
    p.add_argument("--no-async", action="store_true", help="only the sync dialects")
    p.add_argument("--child")
    p.add_argument("--db")
    p.add_argument("--count", type=int)
    p.add_argument("--split", action="store_true")
    args = p.parse_args()
    if args.child:
        return child(args.child, args.db, args.count, args.warmup, args.split)
    global ARGS
    ARGS = args
    sys.path.insert(0, str(Path(__file__).parent))
    import sqlalchemy as sa
    from bench_sqlalchemy import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        groups = [("sync, 1 thread", SYNC)] + ([] if args.no_async else [("async, 1 task", ASYNC)])
        for title, names in groups:
            for name in names:  # bench_sqlalchemy's database: its schema and rows
                db = Path(tmp) / f"{_slug(name)}.db"
                url = f"sqlite+fastpool:///{db}" if name in SYNC[1:] else f"sqlite:///{db}"
                make_engine(url).dispose()
            res = measure(args, names)
            report(title, names[0], names[1], res)
    print(f"\n{sa.__version__=}, sqlite {__import__('sqlite3').sqlite_version}, {sys.version}")


ARGS: argparse.Namespace
if __name__ == "__main__":
    main()
