"""Scenarios for tests/test_django_backend.py, each run in a subprocess of its own so that
Django's settings never reach another test module: ``python django_scenarios.py NAME DB``
configures Django on the database file DB, runs scenario NAME and prints its findings as
JSON on the last line of stdout. Real threads, a real file, no sleeps."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import django
from django.conf import settings

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


def configure(db: str, **options: Any) -> None:
    database = {"ENGINE": "fastpool.django", "NAME": db, "OPTIONS": options}
    if options.pop("health_checks", False):
        database.update(CONN_HEALTH_CHECKS=True, CONN_MAX_AGE=None)
    if options.pop("test_file", False):
        database["TEST"] = {"NAME": f"{db}.test"}
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()


def models(create: bool = True):
    """A counter and a uniquely named item, their tables made on the scenario's file (unless
    ``create`` is false: another process made them)."""
    from django.db import connection, models

    class Counter(models.Model):
        value = models.IntegerField(default=0)

        class Meta:
            app_label = "scenarios"

    class Item(models.Model):
        name = models.CharField(max_length=50, unique=True)

        class Meta:
            app_label = "scenarios"

    if create:
        with connection.schema_editor() as editor:
            editor.create_model(Counter)
            editor.create_model(Item)
        Counter.objects.create(pk=1, value=0)
    return Counter, Item


def run_threads(n: int, target, *args) -> list[BaseException]:
    """Run ``target(i, *args)`` on n threads; the exceptions they raised."""
    from django.db import connection

    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            target(i, *args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # each thread's wrapper gives its connection back

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@scenario
def read_modify_write() -> dict[str, Any]:
    from django.db import transaction

    Counter, _ = models()

    def work(_i: int) -> None:
        for _ in range(100):
            with transaction.atomic():
                c = Counter.objects.get(pk=1)  # read first, then write: IMMEDIATE from BEGIN
                c.value += 1
                c.save(update_fields=["value"])

    errors = run_threads(8, work)
    return {"value": Counter.objects.get(pk=1).value, "errors": [repr(e) for e in errors]}


@scenario
def tables_only() -> dict[str, Any]:
    models()
    return {}


@scenario
def increments_beside_another_process() -> dict[str, Any]:
    """4 threads x 100 atomic read-modify-writes on tables another process made, while a
    second process does the same: across processes SQLite's lock decides."""
    from django.db import transaction

    Counter, _ = models(create=False)
    Counter.objects.get(pk=1)  # connected
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together: the test says "go" to both

    def work(_i: int) -> None:
        for _ in range(100):
            with transaction.atomic():
                c = Counter.objects.get(pk=1)
                c.value += 1
                c.save(update_fields=["value"])

    return {"errors": [repr(e) for e in run_threads(4, work)]}


@scenario
def integrity_error() -> dict[str, Any]:
    import django.db
    from django.db import transaction

    import fastpool.errors

    _, Item = models()
    Item.objects.create(name="tea")
    caught: dict[str, Any] = {}
    try:
        with transaction.atomic():
            Item.objects.create(name="coffee")
            Item.objects.create(name="tea")
    except django.db.IntegrityError as exc:
        caught = {
            "class": f"{type(exc).__module__}.{type(exc).__name__}",
            "cause_is_fastpool": isinstance(exc.__cause__, fastpool.errors.IntegrityError),
        }
    Item.objects.create(name="milk")  # the connection works on after the rollback
    return {**caught, "names": sorted(Item.objects.values_list("name", flat=True))}


@scenario
def nested_savepoints() -> dict[str, Any]:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    _, Item = models()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        Item.objects.create(name="outer")
        try:
            with transaction.atomic():
                Item.objects.create(name="inner")
                raise ValueError("undo the inner block only")
        except ValueError:
            pass
        with transaction.atomic():
            Item.objects.create(name="kept inner")
    sql = [q["sql"] for q in queries.captured_queries]
    return {
        "names": sorted(Item.objects.values_list("name", flat=True)),
        "savepoints": sum(s.startswith("SAVEPOINT") for s in sql),
        "rolled_back_to": sum(s.startswith("ROLLBACK TO SAVEPOINT") for s in sql),
    }


@scenario
def readers_beside_a_long_writer() -> dict[str, Any]:
    from django.db import connection, transaction

    Counter, _ = models()
    written = threading.Event()  # the writer's transaction holds an uncommitted change
    release = threading.Event()  # the readers are done: the writer may commit

    def writer() -> None:
        try:
            with transaction.atomic():
                Counter.objects.filter(pk=1).update(value=42)
                written.set()
                release.wait()
        finally:
            connection.close()

    seen: list[int] = []

    def reader(_i: int) -> None:
        for _ in range(200):
            seen.append(Counter.objects.get(pk=1).value)

    w = threading.Thread(target=writer)
    w.start()
    written.wait()
    # The readers run to the end while the writer's transaction is open: no read waits for it.
    errors = run_threads(4, reader)
    writer_still_open = w.is_alive() and not release.is_set()
    release.set()
    w.join()
    return {
        "reads": len(seen),
        "values_seen": sorted(set(seen)),
        "writer_still_open": writer_still_open,
        "errors": [repr(e) for e in errors],
        "after": Counter.objects.get(pk=1).value,
    }


@scenario
def closed_connections_return_to_the_pool() -> dict[str, Any]:
    from django.db import connection

    Counter, _ = models()
    first = connection.connection
    connection.close()
    Counter.objects.get(pk=1)
    same = connection.connection is first
    pool = connection.pool
    before = pool.opened

    def request(_i: int) -> None:
        for _ in range(20):  # a request: a query, then Django closes (CONN_MAX_AGE=0)
            Counter.objects.get(pk=1)
            connection.close()

    errors = run_threads(8, request)
    return {
        "same_connection_again": same,
        "opened_by_threads": pool.opened - before,
        "reused": pool.reused,
        "idle": pool.idle(),
        "errors": [repr(e) for e in errors],
    }


@scenario
def half_read_iterator_pins_no_snapshot() -> dict[str, Any]:
    from django.db import connection

    from fastpool import dbapi

    _, Item = models()
    Item.objects.bulk_create(Item(name=f"n{i}") for i in range(10))
    first = connection.connection
    rows = Item.objects.iterator(chunk_size=2)
    next(rows)  # a statement left mid-way: it holds a read snapshot while it lives
    connection.close()  # the request ends; the connection goes back to the pool
    other = dbapi.connect(settings.DATABASES["default"]["NAME"])  # another writer commits
    other.execute("INSERT INTO scenarios_item (name) VALUES ('later')")
    other.commit()
    other.close()
    count = Item.objects.count()  # the same pooled connection, next "request"
    return {"same_connection": connection.connection is first, "count": count}


@scenario
def health_checks_replace_a_dead_connection() -> dict[str, Any]:
    from django.db import connection

    Counter, _ = models()
    connection.connection.close()  # closed underneath Django
    connection.close_if_unusable_or_obsolete()  # what Django runs when a request starts
    value = Counter.objects.get(pk=1).value  # the health check replaces the connection
    return {"value": value, "opened": connection.pool.opened, "idle": connection.pool.idle()}


@scenario
def max_lifetime_closes_old_connections() -> dict[str, Any]:
    from django.db import connection

    Counter, _ = models()
    for _ in range(3):
        connection.close()  # older than max_lifetime: closed, not kept
        Counter.objects.get(pk=1)
    return {"opened": connection.pool.opened, "reused": connection.pool.reused}


@scenario
def test_database_files_start_clean() -> dict[str, Any]:
    import os

    from django.db import connection

    name = settings.DATABASES["default"]["TEST"]["NAME"]
    for suffix in ("", "-wal", "-shm"):  # what a killed earlier run leaves behind
        with open(f"{name}{suffix}", "wb") as f:
            f.write(b"stale")
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x)")
        cursor.execute("INSERT INTO t VALUES (1)")
    made = os.path.exists(f"{name}-wal")  # WAL in use on the new file
    connection.creation.destroy_test_db(name, verbosity=0)
    left = [s for s in ("", "-wal", "-shm") if os.path.exists(f"{name}{s}")]
    return {"wal_while_open": made, "left_after_destroy": left}


@scenario
def async_orm() -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from django.db import transaction

    Counter, Item = models()

    def bump() -> None:
        with transaction.atomic():
            c = Counter.objects.get(pk=1)
            c.value += 1
            c.save()

    async def main() -> list[Any]:
        await Item.objects.acreate(name="async")
        # Concurrent tasks: the ORM runs on asgiref's thread(s), the atomic ones in turn.
        await asyncio.gather(*(sync_to_async(bump)() for _ in range(20)))
        return [(await Counter.objects.aget(pk=1)).value, await Item.objects.acount()]

    value, items = asyncio.run(main())
    return {"value": value, "items": items}


@scenario
def select_for_update() -> dict[str, Any]:
    from django.db import transaction

    Counter, _ = models()
    with transaction.atomic():
        locked = Counter.objects.select_for_update().get(pk=1)
        locked.value = 7
        locked.save()
    outside = list(Counter.objects.select_for_update().filter(pk=1).values_list("value", flat=True))
    return {"outside_atomic": outside}


@scenario
def pragmas() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        got = {
            name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
            for name in (
                "journal_mode",
                "synchronous",
                "journal_size_limit",
                "mmap_size",
                "foreign_keys",
                "cache_size",
            )
        }
    return got


def main() -> None:
    name, db = sys.argv[1], sys.argv[2]
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    configure(db, **options)
    print(json.dumps(SCENARIOS[name]()))


if __name__ == "__main__":
    main()
