"""Configurations that would wedge or corrupt a pool are refused at construction (issue 12,
item 7), DEFENSIVE mode is on by default, and Ctrl-C / SystemExit raised inside a user
function comes back as itself (item 8). Real database files, no mocks."""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3

import pytest

import fastpool
from fastpool import errors


def open_fds_on(path) -> list[str]:
    """The file descriptors of this process open on ``path`` or its -wal/-shm/-journal files."""
    base = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(base):
            found.append(target)
    return found


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def refused(make, path, exc_type, match, recwarn):
    gc.collect()
    recwarn.clear()
    with pytest.raises(exc_type, match=match) as info:
        make()
    del info
    gc.collect()
    assert not [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    if os.path.isdir("/proc/self/fd"):
        assert open_fds_on(path) == []


def make_wal_file(path):
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE t(x)")
        pool.execute("INSERT INTO t VALUES (1)")
    with contextlib.closing(sqlite3.connect(path)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def works(pool):
    pool.execute("CREATE TABLE IF NOT EXISTS w(x)")
    with pool.writer() as conn:
        conn.execute("INSERT INTO w VALUES (1)")
    with pool.writer() as conn:
        conn.execute("INSERT INTO w VALUES (2)")
    assert pool.fetchone("SELECT count(*) FROM w") == (2,)
    with pool.reader() as r:
        assert r.fetchone("SELECT count(*) FROM w") == (2,)


# -- item 7: configurations that wedge the pool ---------------------------------------------


@pytest.mark.parametrize("value", ["exclusive", "EXCLUSIVE", " Exclusive "])
def test_exclusive_locking_mode_is_refused(tmp_path, recwarn, value):
    path = tmp_path / "x.db"
    for cls in (fastpool.Pool, fastpool.AsyncPool):
        refused(
            lambda cls=cls: cls(path, pragmas={"locking_mode": value}),
            path,
            ValueError,
            r"locking_mode.*exclusive.*(never|wedge)",
            recwarn,
        )


def test_exclusive_locking_mode_from_on_connect_is_refused(tmp_path, recwarn):
    path = tmp_path / "x.db"

    def on_connect(conn):
        conn.executescript("PRAGMA locking_mode = exclusive")

    refused(
        lambda: fastpool.Pool(path, on_connect=on_connect),
        path,
        errors.NotSupportedError,
        "locking_mode",
        recwarn,
    )


def test_normal_locking_mode_still_works(tmp_path):
    with fastpool.Pool(tmp_path / "x.db", pragmas={"locking_mode": "normal"}) as pool:
        works(pool)


@pytest.mark.parametrize("query", ["nolock=1", "nolock=yes", "vfs=unix-none"])
@pytest.mark.parametrize("mode", [None, "delete"])
def test_a_uri_without_locking_is_refused_by_a_pool(tmp_path, recwarn, query, mode):
    path = tmp_path / "x.db"
    uri = f"file:{path}?{query}"
    pragmas = {"journal_mode": mode} if mode else None
    for cls in (fastpool.Pool, fastpool.AsyncPool):
        refused(
            lambda cls=cls: cls(uri, pragmas=pragmas),
            path,
            errors.NotSupportedError,
            query.split("=")[0],
            recwarn,
        )


@needs_proc
@pytest.mark.parametrize("query", ["nolock=1", "vfs=unix-none", "vfs=unix-dotfile"])
def test_an_existing_wal_file_under_a_vfs_without_shared_memory_says_why(tmp_path, recwarn, query):
    # Used to fail with "SQLite could not open the -wal/-shm files beside it: is its
    # directory writable?", which sent people looking at permissions.
    path = tmp_path / "x.db"
    make_wal_file(path)
    uri = f"file:{path}?{query}"
    for make in (
        lambda: fastpool.Pool(uri),
        lambda: fastpool.connect(uri, uri=True, pragmas={"journal_mode": "wal"}),
    ):
        gc.collect()
        recwarn.clear()
        with pytest.raises(errors.Error) as info:
            make()
        message = str(info.value)
        assert "writable" not in message
        assert query.split("=")[0] in message and "shared memory" in message
        del info
        gc.collect()
        assert open_fds_on(path) == []


@pytest.mark.parametrize("vfs", ["unix-dotfile", "unix-none"])
def test_wal_that_silently_does_not_take_effect_is_refused(tmp_path, recwarn, vfs):
    path = tmp_path / "x.db"
    uri = f"file:{path}?vfs={vfs}"
    for make in (
        lambda: fastpool.Pool(uri),
        lambda: fastpool.AsyncPool(uri),
        lambda: fastpool.connect(uri, uri=True, pragmas={"journal_mode": "wal"}),
    ):
        refused(make, path, errors.NotSupportedError, r"journal_mode=wal.*'delete'", recwarn)


def test_a_rollback_journal_under_dotfile_locking_is_the_users_choice(tmp_path):
    path = tmp_path / "x.db"
    uri = f"file:{path}?vfs=unix-dotfile"
    with fastpool.Pool(uri, pragmas={"journal_mode": "delete"}) as pool:
        works(pool)
        with pool.writer() as w:
            assert w.fetchone("PRAGMA journal_mode") == ("delete",)
    conn = fastpool.connect(uri, uri=True, pragmas={"journal_mode": "truncate"})
    try:
        assert conn.execute("SELECT count(*) FROM w").fetchone() == (2,)
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["delete", "truncate", "persist"])
def test_explicit_rollback_journal_modes_keep_working(tmp_path, mode):
    with fastpool.Pool(tmp_path / "x.db", pragmas={"journal_mode": mode}) as pool:
        works(pool)
        with pool.writer() as w:  # a rollback journal mode is per connection: the writer's
            assert w.fetchone("PRAGMA journal_mode") == (mode,)


def test_journal_mode_off_is_refused_under_defensive_mode_and_allowed_without(tmp_path, recwarn):
    # Defensive mode silently ignores journal_mode=off; asking for it must not go unnoticed.
    path = tmp_path / "x.db"
    refused(
        lambda: fastpool.Pool(path, pragmas={"journal_mode": "off"}),
        path,
        errors.NotSupportedError,
        "defensive=False",
        recwarn,
    )
    with fastpool.Pool(path, pragmas={"journal_mode": "off"}, defensive=False) as pool:
        works(pool)
        with pool.writer() as w:
            assert w.fetchone("PRAGMA journal_mode") == ("off",)


def test_in_memory_databases_keep_working(tmp_path):
    with fastpool.Pool(":memory:") as pool:
        works(pool)
    name = f"file:hostile-{os.getpid()}?mode=memory&cache=shared"
    with fastpool.Pool(name) as pool:
        works(pool)
    conn = fastpool.connect(":memory:")
    conn.close()


# -- item 7: SQLITE_DBCONFIG_DEFENSIVE --------------------------------------------------------

CORRUPTING = "UPDATE sqlite_master SET sql = 'CREATE TABLE t(x, y)' WHERE name = 't'"


def test_writable_schema_cannot_corrupt_the_database_by_default(tmp_path):
    path = tmp_path / "x.db"
    with fastpool.Pool(path) as pool:
        pool.execute("CREATE TABLE t(x)")
        pool.execute("INSERT INTO t VALUES (1)")
        with pool.writer() as conn:
            conn.execute("PRAGMA writable_schema = 1")
            with pytest.raises(errors.DatabaseError, match="may not be modified"):
                conn.execute(CORRUPTING)
        assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
        assert pool.fetchone("SELECT sql FROM sqlite_master WHERE name = 't'") == (
            "CREATE TABLE t(x)",
        )
    conn = fastpool.connect(path)
    try:
        conn.execute("PRAGMA writable_schema = 1")
        with pytest.raises(errors.DatabaseError, match="may not be modified"):
            conn.execute(CORRUPTING)
    finally:
        conn.close()


def test_defensive_false_allows_writable_schema(tmp_path):
    path = tmp_path / "x.db"
    with fastpool.Pool(path, defensive=False) as pool:
        pool.execute("CREATE TABLE t(x)")
        with pool.writer() as conn:
            conn.execute("PRAGMA writable_schema = 1")
            conn.execute(CORRUPTING)
            conn.execute("PRAGMA writable_schema = 0")
    conn = fastpool.connect(path, defensive=False)
    try:
        assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 't'").fetchone() == (
            "CREATE TABLE t(x, y)",
        )
    finally:
        conn.close()


def test_defensive_must_be_a_bool(tmp_path):
    with pytest.raises(TypeError, match="defensive must be True or False"):
        fastpool.Pool(tmp_path / "x.db", defensive="yes")
    with pytest.raises(TypeError, match="defensive must be True or False"):
        fastpool.connect(tmp_path / "x.db", defensive=1)


# -- item 8: KeyboardInterrupt and SystemExit from a user function --------------------------

INTERRUPTS = [KeyboardInterrupt, SystemExit]


def raising(kind, after=0):
    calls = []

    def func(x):
        calls.append(x)
        if len(calls) > after:
            raise kind("from the user function")
        return x

    return func


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_user_function_propagates_from_a_connection(tmp_path, kind):
    conn = fastpool.Connection(tmp_path / "x.db")
    try:
        conn.create_function("boom", 1, raising(kind))
        conn.executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3), (4);")
        with pytest.raises(kind, match="from the user function"):
            conn.fetchone("SELECT boom(x) FROM t")
        assert conn.fetchone("SELECT count(*) FROM t") == (4,)
        conn.create_function("boom2", 1, raising(kind, after=1))
        with pytest.raises(kind):
            conn.fetchall("SELECT boom2(x) FROM t")
        cur = conn.execute("SELECT x FROM t")  # the connection still works
        conn.create_function("boom3", 1, raising(kind, after=1))
        with pytest.raises(kind):
            list(conn.execute("SELECT boom3(x) FROM t"))
        assert cur.fetchall() == [(1,), (2,), (3,), (4,)]
        with pytest.raises(kind):
            conn.executescript("SELECT boom(1)")
        assert not conn.in_transaction
        assert conn.fetchone("SELECT 1") == (1,)
    finally:
        conn.close()


def test_an_ordinary_exception_in_a_user_function_is_still_an_operational_error(tmp_path):
    conn = fastpool.Connection(tmp_path / "x.db")
    try:
        conn.create_function("boom", 1, raising(ZeroDivisionError))
        with pytest.raises(errors.OperationalError, match="ZeroDivisionError") as info:
            conn.fetchone("SELECT boom(1)")
        assert isinstance(info.value.__cause__, ZeroDivisionError)
    finally:
        conn.close()


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_user_function_propagates_through_the_pool(tmp_path, kind):
    def on_connect(conn):
        conn.create_function("boom", 1, raising(kind))

    with fastpool.Pool(tmp_path / "x.db", readers=2, on_connect=on_connect) as pool:
        pool.execute("CREATE TABLE t(x)")
        with pytest.raises(kind):
            pool.fetchone("SELECT boom(1)")
        with pytest.raises(kind):
            pool.fetchall("SELECT boom(1)")
        with pytest.raises(kind), pool.reader() as r:
            r.fetchone("SELECT boom(1)")
        with pytest.raises(kind), pool.writer() as w:
            w.execute("INSERT INTO t VALUES (1)")
            w.execute("INSERT INTO t SELECT boom(2)")
        stats = pool.stats()
        assert stats["readers_in_use"] == 0 and not stats["writer_busy"]
        assert stats["discarded"] == 0
        # The writer's transaction was rolled back; everything still works.
        assert pool.fetchone("SELECT count(*) FROM t") == (0,)
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES (3)")
        assert pool.fetchall("SELECT x FROM t") == [(3,)]


@pytest.mark.parametrize("kind", INTERRUPTS)
def test_an_interrupt_in_a_user_function_propagates_through_the_async_pool(tmp_path, kind):
    import asyncio

    def on_connect(conn):
        conn.create_function("boom", 1, raising(kind))

    async def main():
        async with fastpool.AsyncPool(tmp_path / "x.db", readers=2, on_connect=on_connect) as ap:
            await ap.execute("CREATE TABLE t(x)")
            with pytest.raises(kind):
                await ap.fetchone("SELECT boom(1)")
            with pytest.raises(kind):
                async with ap.writer() as w:
                    await w.execute("INSERT INTO t VALUES (1)")
                    await w.execute("INSERT INTO t SELECT boom(2)")
            stats = ap.stats()
            assert stats["readers_in_use"] == 0 and not stats["writer_busy"]
            assert await ap.fetchone("SELECT count(*) FROM t") == (0,)

    asyncio.run(main())
