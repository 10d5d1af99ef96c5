"""Faults: a full disk, damaged and foreign files, read-only files and directories, a database
deleted or replaced while open, and SQLite rolling a writer's transaction back on its own.

Every case must end in a clear fastpool exception that names the database, a pool that keeps
working (or refuses loudly), and no crash or hang. Real files only. The tests run as root in
CI, where permission bits do not stop writes, so read-only files and directories are made with
``chattr +i`` (the immutable attribute, which stops root too) when that works, and with chmod
otherwise; ``read_only`` checks that the result really refuses writes before a test relies on it.

Each repeated fault runs 3 times in CI, 30 times with FASTPOOL_LONG=1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time

import pytest

import fastpool
from fastpool import errors

LONG = os.environ.get("FASTPOOL_LONG") == "1"
ROUNDS = 30 if LONG else 3  # repetitions of each injected fault (FASTPOOL_LONG=1: 30)


def writable(path) -> bool:
    """True if this process can still change ``path`` (a file or a directory)."""
    try:
        if os.path.isdir(path):
            probe = os.path.join(path, ".probe")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        else:
            with open(path, "ab"):
                pass
        return True
    except OSError:
        return False


def _run(*cmd: str) -> bool:
    return (
        shutil.which(cmd[0]) is not None
        and subprocess.run(cmd, capture_output=True).returncode == 0
    )


@contextlib.contextmanager
def read_only(path):
    """Make ``path`` refuse writes for this process, root included, for the block.

    Yields True when that worked: chmod (enough unless root), else ``chattr +i`` (stops root,
    needs a filesystem with attributes), else a read-only bind mount (needs CAP_SYS_ADMIN).
    Yields False when none did (e.g. an unprivileged container on overlayfs); the tests then
    fall back to opening the database through a ``mode=ro`` URI, which SQLite treats the same
    way (it opens the file read-only), and say so in their assertion messages.
    """
    path = str(path)
    mode = os.stat(path).st_mode
    os.chmod(path, mode & 0o555)
    undo = []
    if writable(path) and _run("chattr", "+i", path):
        undo.append(["chattr", "-i", path])
    if writable(path) and _run("mount", "--bind", path, path):
        undo.append(["umount", path])
        _run("mount", "-o", "remount,bind,ro", path)
    try:
        yield not writable(path)
    finally:
        for cmd in reversed(undo):
            subprocess.run(cmd, check=True)
        os.chmod(path, mode)


def make_db(path, rows=10) -> None:
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        pool.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}",) for i in range(rows)])


def assert_pool_works(pool) -> None:
    before = pool.fetchone("SELECT count(*) FROM t")[0]
    pool.execute("INSERT INTO t(v) VALUES ('after')")
    assert pool.fetchone("SELECT count(*) FROM t")[0] == before + 1
    stats = pool.stats()
    assert stats["readers_in_use"] == 0 and not stats["writer_busy"]


# -- SQLite rolls a writer's transaction back by itself -----------------------------------------


def interrupting_pool(make_pool):
    """A pool whose connections have stop_at(i): interrupts its own statement when i == 500."""

    def on_connect(conn):
        conn.create_function("stop_at", 1, lambda i: (conn.interrupt(), i)[1] if i == 500 else i)

    pool = make_pool(on_connect=on_connect)
    pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    pool.execute("CREATE TABLE u(k INTEGER UNIQUE)")
    return pool


BIG_INSERT = (
    "INSERT INTO t(v) WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
    "WHERE i < 100000) SELECT stop_at(i) FROM r"
)


@pytest.mark.parametrize("cause", ["interrupt", "or_rollback"])
def test_writer_block_never_commits_half_a_transaction_sqlite_rolled_back(make_pool, cause):
    pool = interrupting_pool(make_pool)
    pool.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(errors.OperationalError) as info, pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('first half')")
        try:
            if cause == "interrupt":
                w.execute(BIG_INSERT)
            else:
                w.execute("INSERT OR ROLLBACK INTO u VALUES (1)")
        except errors.DatabaseError as exc:
            assert "rolled back the whole transaction" in str(exc)
        assert not w.in_transaction
        # Before the fix this ran on its own, in autocommit mode, and was committed.
        with pytest.raises(errors.OperationalError) as later:
            w.execute("INSERT INTO t(v) VALUES ('second half')")
        assert later.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
        # The block ends "cleanly": its COMMIT must not pretend anything was committed.
    assert info.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
    assert pool.fetchall("SELECT v FROM t") == []
    assert pool.stats()["discarded"] == 0 and not pool.stats()["writer_busy"]
    with pool.writer() as w:  # the writer is healthy, the next block starts clean
        w.execute("INSERT INTO t(v) VALUES ('next')")
    assert pool.fetchall("SELECT v FROM t") == [("next",)]


def test_rollback_inside_the_block_recovers_after_sqlite_rolled_back(make_pool):
    pool = interrupting_pool(make_pool)
    with pool.writer() as w:
        with pytest.raises(errors.OperationalError):
            w.execute(BIG_INSERT)
        with pytest.raises(errors.OperationalError):
            w.commit()
        w.rollback()  # acknowledges the loss and begins a new transaction
        assert w.in_transaction
        w.execute("INSERT INTO t(v) VALUES ('retried')")
    assert pool.fetchall("SELECT v FROM t") == [("retried",)]


def test_explicit_commit_inside_a_writer_block_is_not_mistaken_for_a_lost_transaction(make_pool):
    pool = interrupting_pool(make_pool)
    with pool.writer() as w:
        w.execute("INSERT INTO t(v) VALUES ('a')")
        w.execute("COMMIT")
        with pytest.raises(errors.OperationalError, match="no such table"):
            w.execute("SELECT * FROM missing")
        w.execute("INSERT INTO t(v) VALUES ('b')")
    assert pool.fetchall("SELECT v FROM t ORDER BY id") == [("a",), ("b",)]


# -- disk full ------------------------------------------------------------------------------


def test_disk_full_rolls_back_keeps_readers_and_recovers_when_room_is_made(make_pool):
    pool = make_pool(pragmas={"max_page_count": 40})
    pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    pool.execute("INSERT INTO t(v) VALUES (zeroblob(1000))")
    full = 0
    for _ in range(ROUNDS):
        with pytest.raises(errors.DiskFullError) as info, pool.writer() as w:
            w.execute("INSERT INTO t(v) VALUES (zeroblob(1000))")
            for _ in range(200):
                w.execute("INSERT INTO t(v) VALUES (randomblob(3000))")
        full += 1
        exc = info.value
        assert isinstance(exc, errors.OperationalError)
        assert exc.sqlite_errorname == "SQLITE_FULL"
        # The block was rolled back as a whole; readers see the old state and keep working.
        assert pool.fetchone("SELECT count(*) FROM t") == (1,)
        with pool.reader() as r:
            assert r.fetchone("SELECT length(v) FROM t") == (1000,)
        # One-shot writes hit the same wall with the same error, and the writer stays usable.
        with pytest.raises(errors.DiskFullError):
            pool.execute("INSERT INTO t(v) VALUES (randomblob(200000))")
    stats = pool.stats()
    assert stats["discarded"] == 0 and not stats["writer_busy"] and stats["readers_in_use"] == 0
    # Make room: more pages allowed (on a real disk: free space), and writes succeed again.
    with pool.writer() as w:
        w.execute("PRAGMA max_page_count = 100000")
        for _ in range(200):
            w.execute("INSERT INTO t(v) VALUES (randomblob(3000))")
    assert pool.fetchone("SELECT count(*) FROM t") == (201,)
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
    assert full == ROUNDS


def test_disk_full_room_made_by_deleting_rows(make_pool):
    pool = make_pool(pragmas={"max_page_count": 30})
    pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    written = 0
    with pytest.raises(errors.DiskFullError):
        while True:
            pool.execute("INSERT INTO t(v) VALUES (randomblob(2000))")
            written += 1
    assert pool.fetchone("SELECT count(*) FROM t") == (written,)
    pool.execute("DELETE FROM t WHERE id <= ?", (written // 2,))  # frees whole pages
    for _ in range(written // 3):
        pool.execute("INSERT INTO t(v) VALUES (randomblob(2000))")
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)


# -- bad files ------------------------------------------------------------------------------


def test_not_a_database_names_the_path(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is a text file, not an SQLite database\n" * 200)
    with pytest.raises(errors.DatabaseError, match="not a database") as info:
        fastpool.Pool(path)
    assert str(path) in str(info.value)
    assert info.value.sqlite_errorname == "SQLITE_NOTADB"


def test_missing_directory_names_it(tmp_path):
    path = tmp_path / "missing" / "x.db"
    with pytest.raises(errors.OperationalError, match="does not exist") as info:
        fastpool.Pool(path)
    assert str(tmp_path / "missing") in str(info.value)


def damage(path) -> None:
    """Overwrite every page after the first (the header stays valid) with junk."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(bytes(range(256)) * ((size - 4096) // 256))


def test_damaged_file_gives_a_clear_error_and_discards_the_connection(tmp_path):
    path = tmp_path / "damaged.db"
    make_db(path, rows=2000)
    damage(path)
    try:
        pool = fastpool.Pool(path, readers=2)
    except errors.DatabaseError as exc:  # damage found while opening: fine, if clear
        assert str(path) in str(exc)
        return
    with pool:
        for _ in range(ROUNDS):  # each failure discards its reader; the next one reopens
            with pytest.raises(errors.DatabaseError) as info:
                pool.fetchall("SELECT * FROM t")
            assert info.value.sqlite_errorname.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
            assert str(path) in str(info.value)
        with pytest.raises(errors.DatabaseError):
            pool.execute("INSERT INTO t(v) VALUES ('x')")
        stats = pool.stats()
        assert stats["discarded"] >= ROUNDS + 1, stats
        assert stats["readers_in_use"] == 0 and not stats["writer_busy"]
        assert pool.fetchone("PRAGMA integrity_check") != ("ok",)


def test_damaged_while_open(tmp_path):
    path = tmp_path / "live.db"
    with fastpool.Pool(path, readers=2, pragmas={"cache_size": 0}) as pool:
        pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        pool.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 100,)] * 3000)
        pool.checkpoint("truncate")
        damage(path)
        seen = set()
        for _ in range(ROUNDS + 2):
            try:
                pool.fetchall("SELECT * FROM t")
            except errors.DatabaseError as exc:
                assert str(path) in str(exc)
                seen.add(exc.sqlite_errorname)
        assert seen, "reading a damaged file raised nothing"
        assert pool.stats()["readers_in_use"] == 0


def test_read_only_file_fails_at_construction(tmp_path):
    path = tmp_path / "ro.db"
    make_db(path)
    with read_only(path) as really:
        target = path if really else f"file:{path}?mode=ro"
        with pytest.raises(errors.OperationalError, match="read-only") as info:
            fastpool.Pool(target)
    assert str(path) in str(info.value), f"(file really read-only: {really})"
    assert info.value.sqlite_errorname.startswith("SQLITE_READONLY")


def test_read_only_uri_fails_at_construction(tmp_path):
    path = tmp_path / "ro.db"
    make_db(path)
    with pytest.raises(errors.OperationalError, match="read-only") as info:
        fastpool.Pool(f"file:{path}?mode=ro")
    assert str(path) in str(info.value)


def test_read_only_directory_with_an_existing_database(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    path = folder / "x.db"
    make_db(path)
    with read_only(folder) as really:
        target = path if really else f"file:{path}?mode=ro"
        with pytest.raises(errors.OperationalError) as info:
            fastpool.Pool(target)
    assert str(path) in str(info.value)
    assert ("directory" if really else "read-only") in str(info.value), f"really: {really}"


def test_read_only_directory_for_a_new_database(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with read_only(folder) as really:
        target = folder / "new.db" if really else f"file:{folder / 'new.db'}?mode=ro"
        with pytest.raises(errors.OperationalError) as info:
            fastpool.Pool(target)
    assert str(folder) in str(info.value)
    if really:
        assert "not writable" in str(info.value)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_database_deleted_or_replaced_while_open(tmp_path, how):
    path = tmp_path / "moving.db"
    with fastpool.Pool(path, readers=2) as pool:
        pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        pool.execute("INSERT INTO t(v) VALUES ('before')")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        if how == "replaced":
            make_db(path, rows=3)
        time.sleep(0.15)  # the writer looks at most every 100 ms
        for _ in range(ROUNDS):
            with pytest.raises(errors.OperationalError, match=how) as info:
                pool.execute("INSERT INTO t(v) VALUES ('lost?')")
            assert str(path) in str(info.value)
            assert info.value.sqlite_errorname == "SQLITE_READONLY_DBMOVED"
            with pytest.raises(errors.OperationalError, match=how), pool.writer():
                pass
        stats = pool.stats()
        assert not stats["writer_busy"] and stats["waiting_writers"] == 0
    if how == "replaced":
        with fastpool.Pool(path, readers=1) as fresh:
            assert fresh.fetchone("SELECT count(*) FROM t") == (3,)
    else:
        assert not path.exists(), "a write recreated the deleted file"


# -- small fixed bugs -------------------------------------------------------------------------


def test_one_shot_read_leaving_a_transaction_open_is_rolled_back(make_pool):
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t(v)")
    with pytest.warns(ResourceWarning, match="left a transaction open"):
        pool.fetchone("BEGIN")
    with pool.reader() as r:
        assert not r.in_transaction
    with pytest.warns(ResourceWarning, match="left a transaction open"):
        pool.fetchall("BEGIN")
    pool.execute("INSERT INTO t VALUES (1)")
    assert pool.fetchone("SELECT count(*) FROM t") == (1,)


@pytest.mark.parametrize("readers", [2**24 + 1, 2**40, 2**100])
def test_too_many_readers_is_a_value_error(tmp_path, readers):
    with pytest.raises(ValueError, match="readers must be <="):
        fastpool.Pool(tmp_path / "x.db", readers=readers)


def test_pool_finalizer_survives_missing_module_globals(tmp_path):
    # At interpreter shutdown module globals such as `warnings` may already be None; the
    # finalizer must neither raise nor print "Exception ignored in ...".
    code = (
        "import fastpool, fastpool.pool, sys\n"
        f"pool = fastpool.Pool({str(tmp_path / 'x.db')!r}, readers=1)\n"
        "lease = pool.reader()\n"
        "fastpool.pool.warnings = None\n"
        "del lease\n"
        "pool.__del__()\n"
        "print('finalized', pool.closed)\n"
    )
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [os.sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "finalized True" in out.stdout
    assert "Exception ignored" not in out.stderr, out.stderr


def test_finalizers_at_shutdown_with_pools_and_leases_in_globals(tmp_path):
    code = (
        "import fastpool\n"
        f"pool = fastpool.Pool({str(tmp_path / 'y.db')!r}, readers=1)\n"
        "lease = pool.reader()\n"
        "w = pool.writer()\n"
        "class Cycle:\n"
        "    pass\n"
        "c = Cycle(); c.me = c; c.pool = pool; c.lease = lease\n"
        "del pool, lease\n"
    )
    out = subprocess.run(
        [os.sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
