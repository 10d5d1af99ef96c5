"""fastpool's VFS: a WAL frame's header goes down joined to its page, one write per frame.

What must hold: connections open through it unless their URI names a VFS; every frame of
every shape of commit (one page, many pages, a transaction that spilled and rewrote its
frames' checksums, a synchronous=full commit) is in the file when COMMIT returns, so a
process killed right after it loses nothing, even when SQLite must rebuild the WAL index
from the frames' headers alone. A log synced at every commit is grown ahead of its frames with
zeros, never over a frame, and the zeros are never read as one.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from typing import Any

import pytest

import fastpool
from fastpool import _core


def counts() -> dict[str, Any]:
    return _core.wal_vfs_counts()


def test_the_vfs_is_registered_beside_the_default_one() -> None:
    assert counts()["vfs"] == "fastpool"


def test_each_frame_of_a_pools_commits_is_one_write(tmp_path) -> None:
    with fastpool.Pool(str(tmp_path / "db.sqlite"), readers=1) as pool:
        pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        before = counts()
        for i in range(200):
            with pool.writer() as w:
                w.execute("INSERT INTO t(v) VALUES (?)", (str(i),))
        after = counts()
        assert pool.fetchone("SELECT count(*) FROM t") == (200,)
    # One frame per single-row commit at least (a commit that restarts the log writes its
    # first frame apart from the log's header, which is synced on its own).
    assert after["frames_joined"] - before["frames_joined"] >= 190
    assert after["writes_alone"] == before["writes_alone"]


def test_dbapi_connections_use_it_too(tmp_path) -> None:
    from fastpool import dbapi

    conn = dbapi.connect(str(tmp_path / "db.sqlite"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t(v)")
        before = counts()["frames_joined"]
        for i in range(50):
            conn.execute("INSERT INTO t VALUES (?)", (i,))
        assert counts()["frames_joined"] - before >= 45
    finally:
        conn.close()


def test_a_uri_that_names_a_vfs_keeps_it(tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    with fastpool.Pool(f"file:{path}?vfs=unix", readers=1) as pool:
        pool.execute("CREATE TABLE t(v)")
        before = counts()
        for i in range(50):
            with pool.writer() as w:
                w.execute("INSERT INTO t VALUES (?)", (i,))
        assert counts() == before
        assert pool.fetchone("SELECT count(*) FROM t") == (50,)


CHILD = r"""
import os, signal, sys, fastpool
from fastpool import _core
path, synchronous = sys.argv[1], sys.argv[2]
pool = fastpool.Pool(path, readers=1, pragmas={
    "synchronous": synchronous, "wal_autocheckpoint": 0, "cache_size": 8})
pool.execute("CREATE TABLE one(n INTEGER PRIMARY KEY)")
pool.execute("CREATE TABLE many(n INTEGER PRIMARY KEY, blob BLOB)")
pool.execute("CREATE TABLE spill(k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)")
with pool.writer() as w:
    w.executemany("INSERT INTO spill VALUES (?, 0, zeroblob(300))", [(k,) for k in range(600)])
n = 0
for round in range(40):
    n += 1
    with pool.writer() as w:                   # one page
        w.execute("INSERT INTO one VALUES (?)", (n,))
    with pool.writer() as w:                   # many pages
        w.executemany("INSERT INTO many VALUES (?, randomblob(900))",
                      [(n * 1000 + i,) for i in range(40)])
    with pool.writer() as w:                   # spills (cache_size=8), then rewrites pages
        for _ in range(3):
            w.execute("UPDATE spill SET v = v + 1")
stats = _core.wal_vfs_counts()
print(n, stats["frames_joined"], stats["writes_alone"], stats["bytes_preallocated"], flush=True)
os.kill(os.getpid(), signal.SIGKILL)           # no close, no checkpoint: all in the WAL
"""


@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_every_commit_is_whole_in_the_wal_after_a_kill(tmp_path, synchronous) -> None:
    path = str(tmp_path / "db.sqlite")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, path, synchronous],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    rounds, joined, alone, preallocated = map(int, child.stdout.split())
    assert rounds == 40 and joined > 0 and alone == 0
    wal_size = os.path.getsize(path + "-wal")
    assert wal_size > 0
    if synchronous == "full":  # synced at every commit: grown ahead, whole MiBs of it
        assert preallocated > 0 and wal_size % (1 << 20) == 0
    else:
        assert preallocated == 0
    # Without the -shm file SQLite rebuilds the WAL index from the frames' headers and
    # checksums: a header that never reached the file would end the log there.
    os.remove(path + "-shm")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*), max(n) FROM one").fetchone() == (40, 40)
        assert conn.execute("SELECT count(*) FROM many").fetchone() == (40 * 40,)
        assert conn.execute("SELECT min(v), max(v), count(*) FROM spill").fetchone() == (
            120,
            120,
            600,
        )
    finally:
        conn.close()


def test_zeros_never_land_on_frames_another_connection_wrote(tmp_path) -> None:
    # Two pools on one file, each with its own handle on the log: `late` learns the log's
    # size, `early` then appends frames past it, and `late` writes again. Growing ahead from
    # what `late` last saw would put zeros over `early`'s frames, which the readers below
    # (and the checkpoint that copies them into the database) would find.
    path = str(tmp_path / "db.sqlite")
    pragmas = {"synchronous": "full", "wal_autocheckpoint": 0}
    early = fastpool.Pool(path, readers=1, pragmas=pragmas)
    late = fastpool.Pool(path, readers=1, pragmas=pragmas)
    try:
        early.execute("CREATE TABLE t(who TEXT, n INTEGER, pad BLOB)")
        before = counts()["bytes_preallocated"]
        for _ in range(3):
            for pool, who, rows in ((late, "late", 5), (early, "early", 400)):
                for n in range(rows):
                    pool.execute("INSERT INTO t VALUES (?, ?, randomblob(600))", (who, n))
        assert counts()["bytes_preallocated"] > before
        expected = [("early", 3 * 400), ("late", 3 * 5)]
        for pool in (early, late):
            assert pool.fetchall("SELECT who, count(*) FROM t GROUP BY who") == expected
    finally:
        late.close()
        early.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT who, count(*) FROM t GROUP BY who").fetchall() == expected
    finally:
        conn.close()
