"""fastpool.django against Django's stock SQLite backend, the same ORM code on both.

- reads: 8 threads, each ``Item.objects.get(pk=...)`` in a loop, ``CONN_MAX_AGE=None`` (a
  persistent connection per thread, the stock backend's best case);
- requests: the same reads with ``CONN_MAX_AGE=0`` (Django's default), each followed by
  what Django runs when a request finishes (``close_if_unusable_or_obsolete``): the stock
  backend opens a connection per request, fastpool.django takes one from its pool;
- writes: 8 threads, each ``with transaction.atomic(): item = get(pk); item.qty += 1;
  item.save()`` on 10 hot rows. Errors are counted, not hidden: the stock backend's deferred
  ``BEGIN`` fails such blocks with "database is locked"; ``stock-immediate`` is the stock
  backend with ``transaction_mode="IMMEDIATE"`` (Django 5.1+), which waits on SQLite's busy
  handler instead.

Every alias has its own file, seeded alike, with the same pragmas (WAL, synchronous=normal,
journal_size_limit, mmap_size: fastpool.django's defaults, given to the stock backend through
``init_command``). The threads are one executor's, kept across rounds, so each keeps its
connections; every round runs each contestant once, order rotated. Django's settings are
configured once in this process (``settings.configure``): only this suite uses Django.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from _suite import SIDE_BY_SIDE, batch_summary, interleaved, rounds_for, scale_factor, scaled

THREADS = 8
READS_PER_THREAD = 2000
WRITES_PER_THREAD = 200
ROWS = 1000
HOT_ROWS = 10
ROUNDS = 5
STOCK_PRAGMAS = (
    "PRAGMA journal_mode=wal; PRAGMA synchronous=normal; "
    "PRAGMA journal_size_limit=67108864; PRAGMA mmap_size=134217728"
)

pytestmark = pytest.mark.benchmark(group="fastpool.django vs the stock SQLite backend")


@pytest.fixture(scope="module")
def django_env(tmp_path_factory):
    """(the Item model, the aliases) on freshly seeded files; Django configured once."""
    import django
    from django.conf import settings

    tmp = tmp_path_factory.mktemp("django")
    stock = {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": None}
    databases = {
        "default": {"ENGINE": "fastpool.django", "NAME": tmp / "default.sqlite3"},
        "fastpool": {"ENGINE": "fastpool.django", "NAME": tmp / "fp.sqlite3", "CONN_MAX_AGE": None},
        "stock": {
            **stock,
            "NAME": tmp / "stock.sqlite3",
            "OPTIONS": {"init_command": STOCK_PRAGMAS},
        },
        # CONN_MAX_AGE=0, Django's default: connections closed at the end of every request.
        "fastpool-per-request": {"ENGINE": "fastpool.django", "NAME": tmp / "fp.sqlite3"},
        "stock-per-request": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": tmp / "stock.sqlite3",
            "OPTIONS": {"init_command": STOCK_PRAGMAS},
        },
        "stock-immediate": {
            **stock,
            "NAME": tmp / "stock-immediate.sqlite3",
            "OPTIONS": {"init_command": STOCK_PRAGMAS, "transaction_mode": "IMMEDIATE"},
        },
    }
    if settings.configured:
        raise RuntimeError("bench_django.py configures Django itself; run it in its own process")
    settings.configure(DATABASES=databases, INSTALLED_APPS=[], USE_TZ=True)
    django.setup()
    from django.db import connections, models

    class Item(models.Model):
        name = models.CharField(max_length=50)
        qty = models.IntegerField(default=0)

        class Meta:
            app_label = "bench"

    aliases = ["fastpool", "stock", "stock-immediate"]
    for alias in aliases:
        with connections[alias].schema_editor() as editor:
            editor.create_model(Item)
        Item.objects.using(alias).bulk_create(
            Item(pk=i, name=f"item-{i}") for i in range(1, ROWS + 1)
        )
    with ThreadPoolExecutor(THREADS) as executor:
        yield Item, aliases, executor
    for alias in connections:
        connections[alias].close()


def on_threads(executor: ThreadPoolExecutor, work) -> tuple[float, list[Any]]:
    """Run ``work(i)`` on each of the executor's 8 threads at once (a barrier makes each task
    take its own thread); (seconds from the release to the last finish, their results)."""
    start = threading.Barrier(THREADS + 1)

    def task(i: int) -> Any:
        start.wait()
        return work(i)

    futures = [executor.submit(task, i) for i in range(THREADS)]
    start.wait()
    began = time.perf_counter()
    results = [f.result() for f in futures]
    return time.perf_counter() - began, results


def test_get_by_pk_from_8_threads(benchmark, record_result, django_env):
    Item, aliases, executor = django_env
    per_thread = scaled(READS_PER_THREAD, scale_factor(benchmark))
    keys = [random.Random(i).choices(range(1, ROWS + 1), k=per_thread) for i in range(THREADS)]

    def contestant(alias: str):
        def reads(i: int) -> int:
            manager = Item.objects.using(alias)
            return sum(manager.get(pk=k).pk for k in keys[i])

        return lambda: on_threads(executor, reads)[0]

    durations = interleaved(
        benchmark, rounds_for(benchmark, ROUNDS), {a: contestant(a) for a in aliases[:2]}
    )
    summaries = {a: batch_summary(d, THREADS * per_thread) for a, d in durations.items()}
    for alias, summary in summaries.items():
        record_result(f"{SIDE_BY_SIDE}/django_get_8_threads/{alias}", summary)
    if not benchmark.disabled:
        ratio = summaries["fastpool"]["ops_per_s"] / summaries["stock"]["ops_per_s"]
        record_result("django_get_8_threads/fastpool_vs_stock", {"ratio": round(ratio, 2)})


def test_requests_with_conn_max_age_0_from_8_threads(benchmark, record_result, django_env):
    from django.db import connections

    Item, _, executor = django_env
    per_thread = scaled(READS_PER_THREAD // 4, scale_factor(benchmark))

    def contestant(alias: str):
        def requests(i: int) -> None:
            rng = random.Random(i)
            for _ in range(per_thread):
                Item.objects.using(alias).get(pk=rng.randrange(1, ROWS + 1))
                connections[alias].close_if_unusable_or_obsolete()  # the request's end

        return lambda: on_threads(executor, requests)[0]

    aliases = ["fastpool-per-request", "stock-per-request"]
    durations = interleaved(
        benchmark, rounds_for(benchmark, ROUNDS), {a: contestant(a) for a in aliases}
    )
    for alias, values in durations.items():
        record_result(
            f"{SIDE_BY_SIDE}/django_requests_8_threads/{alias}",
            batch_summary(values, THREADS * per_thread),
        )


def test_atomic_single_row_writes_from_8_threads(benchmark, record_result, django_env):
    from django.db import OperationalError, transaction

    Item, aliases, executor = django_env
    per_thread = scaled(WRITES_PER_THREAD, scale_factor(benchmark))

    def contestant(alias: str):
        def writes(i: int) -> tuple[int, int]:
            rng, done, errors = random.Random(i), 0, 0
            for _ in range(per_thread):
                try:
                    with transaction.atomic(using=alias):
                        item = Item.objects.using(alias).get(pk=rng.randrange(1, HOT_ROWS + 1))
                        item.qty += 1
                        item.save(update_fields=["qty"])
                    done += 1
                except OperationalError:
                    errors += 1
            return done, errors

        def run() -> dict[str, float]:
            seconds, results = on_threads(executor, writes)
            done = sum(d for d, _ in results)
            return {"commits_per_s": done / seconds, "errors": sum(e for _, e in results)}

        return run

    results = interleaved(
        benchmark, rounds_for(benchmark, ROUNDS), {a: contestant(a) for a in aliases}
    )
    for alias, rounds in results.items():
        record_result(
            f"{SIDE_BY_SIDE}/django_atomic_writes_8_threads/{alias}",
            {
                "transactions_per_round": THREADS * per_thread,
                "rounds": len(rounds),
                "commits_per_s": round(statistics.median(r["commits_per_s"] for r in rounds)),
                "errors": sum(int(r["errors"]) for r in rounds),
            },
        )
    assert all(r["errors"] == 0 for r in results["fastpool"]), results["fastpool"]
    # Every increment fastpool.django committed is in its table: none lost.
    kept = sum(Item.objects.using("fastpool").values_list("qty", flat=True))
    assert kept == len(results["fastpool"]) * THREADS * per_thread
