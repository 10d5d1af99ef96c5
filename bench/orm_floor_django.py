"""How fast could any Django SQLite backend make ``Item.objects.get(pk=...)``? Counted.

A runner script, not a pytest suite: ``python bench/orm_floor_django.py [--gets N]`` prints a
table. It needs valgrind (callgrind), Django and fastpool installed.

What it measures. Each *mode* runs in a child process of this script under ``valgrind
--tool=callgrind`` (``PYTHONHASHSEED=0``, gc disabled after setup), with Django configured as
bench/bench_django.py configures it: one alias, ``CONN_MAX_AGE=None``, the same ``Item``
model and 1,000 rows, the same pragmas on both backends (the stock one gets them through
``init_command``). The child seeds the table, warms up (200 gets: statement caches, Django's
caches, the persistent connection), then runs N gets, single thread. Every mode runs twice,
with N gets and with none; the difference over N is the cost of one get, with Django's
import, setup and warm-up subtracted out. Callgrind counts instructions, so the numbers
repeat to a few instructions on a busy machine. The modes:

- ``stock``: ``django.db.backends.sqlite3``; ``fastpool``: ``fastpool.django``;
- ``<engine>-layer`` and ``<engine>-bare``: the backend's own Python layer, by difference.
  ``-layer`` runs N times what Django asks of its backend per query (``create_cursor()``,
  ``execute(sql, (pk,))`` with Django's ``%s`` SQL, ``fetchmany(100)``, ``close()``) through
  the backend's cursor wrapper; ``-bare`` runs the same on a plain cursor of the same
  DB-API connection with the SQL already in ``?`` form. layer - bare is what the backend's
  Python code (placeholder conversion, cursor bookkeeping) adds to a query.

How a get is split. The driver and SQLite are shared objects: the stock backend's are the
``_sqlite3`` extension and libsqlite3, fastpool.django's are ``fastpool._core`` and the same
libsqlite3. From the callgrind output (``--compress-strings=no --compress-pos=no``) the
script adds up, over every call arc whose caller is in another object and whose callee is
in one of these, the arc's *inclusive* cost: everything between the interpreter calling
into the driver and the driver returning, including the Python objects the driver builds
(in libpython), its malloc calls and system calls. That is what a driver costs the caller:
a zero-cost driver would save all of it. The per-object self cost (instructions executed
inside these objects' own code, a lower bound) is printed beside it. Nesting would count
twice (driver -> Python code -> driver); it does not happen here (no converter, adapter or
callback runs for this query), and the script checks it: without nesting, the entries'
cost equals the driver's self cost plus the inclusive cost of its calls out to other
objects, and the difference, the instructions counted twice, is printed.

Everything else is "Django + interpreter": the ORM (cloning the query set, building the
filter, compiling the SQL, building the instance), Django's cursor wrapper, and the backend's
Python layer, which the -layer/-bare modes price separately.

The floor. A backend whose driver and Python layer cost nothing would still run the rest:
best ratio = stock total / (fastpool total - fastpool driver - fastpool layer). Single-thread
counts are the honest bound for 8 threads too: the ORM is Python code that runs under the
one GIL, so 8 threads run at most one core's worth of it (they add GIL hand-offs, not
throughput), and both backends pay the same ORM per get.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROWS = 1000
WARMUP = 200
CHUNK = 100  # Django's GET_ITERATOR_CHUNK_SIZE, what get() fetches with
STOCK_PRAGMAS = (
    "PRAGMA journal_mode=wal; PRAGMA synchronous=normal; "
    "PRAGMA journal_size_limit=67108864; PRAGMA mmap_size=134217728"
)
ENGINES = {"stock": "django.db.backends.sqlite3", "fastpool": "fastpool.django"}
MODES = [f"{e}{s}" for e in ENGINES for s in ("", "-layer", "-bare")]
# Driver objects by file name: the stock backend's DB-API module and SQLite, fastpool's.
DRIVER_PREFIXES = {"stock": ("_sqlite3.", "libsqlite3"), "fastpool": ("_core.", "libsqlite3")}


# -- the child: one mode, n operations, under callgrind ------------------------------------


def child(mode: str, n: int, keys_total: int, directory: str) -> None:
    import django
    from django.conf import settings

    engine = mode.split("-")[0]
    database = {"ENGINE": ENGINES[engine], "NAME": Path(directory) / "db.sqlite3"}
    database["CONN_MAX_AGE"] = None
    if engine == "stock":
        database["OPTIONS"] = {"init_command": STOCK_PRAGMAS}
    settings.configure(DATABASES={"default": database}, INSTALLED_APPS=[], USE_TZ=True)
    django.setup()
    from django.db import connection, models

    class Item(models.Model):
        name = models.CharField(max_length=50)
        qty = models.IntegerField(default=0)

        class Meta:
            app_label = "bench"

    with connection.schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.bulk_create(Item(pk=i, name=f"item-{i}") for i in range(1, ROWS + 1))
    # The same keys in every mode and for every n (the list is built whole either way).
    keys = random.Random(0).choices(range(1, ROWS + 1), k=keys_total)
    for k in keys[:WARMUP]:
        Item.objects.get(pk=k)
    sql, _ = Item.objects.filter(pk=1)[:21].query.get_compiler("default").as_sql()
    gc.collect()
    gc.disable()
    if mode == engine:
        run_gets(Item, keys[:n])
    elif mode.endswith("-layer"):
        run_layer(connection, sql, keys[:n])
    else:
        run_bare(connection.connection, sql.replace("%s", "?"), keys[:n])


def run_gets(model, keys: list[int]) -> None:
    get = model.objects.get
    for k in keys:
        get(pk=k)


def run_layer(wrapper, sql: str, keys: list[int]) -> None:
    for k in keys:
        cursor = wrapper.create_cursor()
        cursor.execute(sql, (k,))
        cursor.fetchmany(CHUNK)
        cursor.close()
        del cursor


def run_bare(dbapi_connection, sql: str, keys: list[int]) -> None:
    for k in keys:
        cursor = dbapi_connection.cursor()
        cursor.execute(sql, (k,))
        cursor.fetchmany(CHUNK)
        cursor.close()
        del cursor


# -- reading a callgrind output file ----------------------------------------------------


def split_costs(path: Path, prefixes: tuple[str, ...]) -> dict[str, int]:
    """{total, entries (inclusive cost of calls into the driver's objects from outside),
    self (instructions executed in the driver's objects), outbound (inclusive cost of calls
    from the driver's objects to others)}. Without nesting, entries = self + outbound."""

    def inside(obj: str) -> bool:
        return os.path.basename(obj).startswith(prefixes)

    out = dict.fromkeys(("total", "entries", "self", "outbound"), 0)
    ob = cob = ""
    arc_cost_next = False
    with open(path) as f:
        for line in f:
            if line[0].isdigit() or line[0] in "+-*":
                cost = int(line.split()[1]) if len(line.split()) > 1 else 0
                if arc_cost_next:
                    arc_cost_next = False
                    if not inside(ob) and inside(cob):
                        out["entries"] += cost
                    elif inside(ob) and not inside(cob):
                        out["outbound"] += cost
                    cob = ""
                    continue
                out["total"] += cost
                if inside(ob):
                    out["self"] += cost
            elif line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("cob="):
                cob = line[4:].strip()
            elif line.startswith("calls="):
                arc_cost_next = True
                cob = cob or ob
            elif line.startswith("fn="):
                cob = ""
    return out


def measure(mode: str, n: int, keys_total: int, workdir: Path) -> dict[str, int]:
    engine = mode.split("-")[0]
    out = workdir / f"callgrind.{mode}.{n}"
    with tempfile.TemporaryDirectory(dir=workdir) as db_dir:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--compress-strings=no",
            "--compress-pos=no",
            sys.executable,
            __file__,
            "--child",
            mode,
            str(n),
            str(keys_total),
            db_dir,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{mode} n={n} failed:\n{done.stderr[-3000:]}")
    return split_costs(out, DRIVER_PREFIXES[engine])


def per_op(results: dict[tuple[str, int], dict[str, int]], mode: str, n: int) -> dict[str, float]:
    high, low = results[mode, n], results[mode, 0]
    return {key: (high[key] - low[key]) / n for key in high}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gets", type=int, default=1000, help="N, gets per run (1000)")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once (2)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, n, keys_total, directory = args.child
        child(mode, int(n), int(keys_total), directory)
        return
    n, keys_total = args.gets, args.gets + WARMUP
    runs = [(mode, count) for mode in MODES for count in (n, 0)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = {run: pool.submit(measure, *run, keys_total, Path(tmp)) for run in runs}
        results = {run: future.result() for run, future in futures.items()}
    report(results, n)


def nested(costs: dict[str, float]) -> float:
    return costs["entries"] - costs["self"] - costs["outbound"]


def report(results: dict[tuple[str, int], dict[str, int]], n: int) -> None:
    import django

    print(
        f"Item.objects.get(pk=...), 1 thread, CONN_MAX_AGE=None: instructions per get "
        f"(callgrind, {n} gets minus none; Python {sys.version.split()[0]}, "
        f"Django {django.get_version()})\n"
    )
    rows = {}
    for engine in ENGINES:
        get = per_op(results, engine, n)
        layer = per_op(results, f"{engine}-layer", n)["total"]
        layer -= per_op(results, f"{engine}-bare", n)["total"]
        rows[engine] = get, layer
    header = ("backend", "total", "driver+SQLite", "(self)", "backend's Python", "the rest")
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for engine, (get, layer) in rows.items():
        rest = get["total"] - get["entries"] - layer
        cells = [
            ENGINES[engine],
            f"{get['total']:,.0f}",
            f"{get['entries']:,.0f} ({get['entries'] / get['total']:.1%})",
            f"{get['self']:,.0f}",
            f"{layer:,.0f} ({layer / get['total']:.1%})",
            f"{rest:,.0f}",
        ]
        print("| " + " | ".join(cells) + " |")
    stock, fast = rows["stock"][0], rows["fastpool"][0]
    print(
        "\ncounted twice (nested entries into the driver), per get: "
        f"stock {round(nested(stock)):,}, fastpool {round(nested(fast)):,}"
    )
    floor = fast["total"] - fast["entries"]
    print(
        f"stock / fastpool.django, counted:                  {stock['total'] / fast['total']:.3f}x"
    )
    print(f"best with a driver+SQLite costing nothing:         {stock['total'] / floor:.3f}x")
    floor -= rows["fastpool"][1]
    print(f"... and fastpool.django's Python layer too:        {stock['total'] / floor:.3f}x")


if __name__ == "__main__":
    main()
