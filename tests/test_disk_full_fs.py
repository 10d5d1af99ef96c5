"""Disk full on a real (tiny) filesystem: a 1 MiB tmpfs mounted for the test, filled up by
the database and a filler file, then given room again by deleting the filler.

Unlike ``PRAGMA max_page_count`` (tests/test_faults.py), a full disk can strike while SQLite
spills a big transaction's pages into the WAL, and SQLite then rolls the *whole* transaction
back (SQLITE_FULL): the writer block must not go on and commit its later statements one by
one. Mounting needs root (CAP_SYS_ADMIN), which CI has; elsewhere this module is skipped and
the max_page_count tests stand in for it. FASTPOOL_LONG=1 runs the cycle 5 times.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import fastpool
from fastpool import errors

CYCLES = 5 if os.environ.get("FASTPOOL_LONG") == "1" else 1


@pytest.fixture
def small_fs(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("mounts a tmpfs (Linux)")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({res.stderr.strip()}); "
            "tests/test_faults.py covers disk full with max_page_count"
        )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.parametrize("cycle", range(CYCLES))
def test_real_disk_full(small_fs, cycle):
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * 300_000)
    spare = small_fs / "spare"
    spare.write_bytes(b"\0" * 200_000)
    with fastpool.Pool(small_fs / "x.db", readers=2, pragmas={"cache_size": 20}) as pool:
        pool.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        # One-shot writes until the disk is full.
        written = 0
        with pytest.raises(errors.DiskFullError) as info:
            for _ in range(1000):
                pool.execute("INSERT INTO t(v) VALUES (randomblob(20000))")
                written += 1
        assert info.value.sqlite_errorname.startswith("SQLITE_FULL")
        assert 0 < written < 1000
        assert pool.fetchone("SELECT count(*) FROM t") == (written,)

        # Make some room; a big transaction fills the disk again mid-way.
        os.unlink(spare)
        lost = None
        with pytest.raises(errors.OperationalError) as ended, pool.writer() as w:
            for i in range(1000):
                try:
                    w.execute("INSERT INTO t(v) VALUES (randomblob(20000))")
                except errors.DiskFullError:
                    lost = i
                    break
            assert lost is not None, "the disk never filled up"
            print(f"\nwriter block: disk full at insert {lost} (one-shots: {written})")
            if w.in_transaction:
                pytest.fail("expected SQLite to roll the whole transaction back")
            # The block goes on regardless: nothing may run outside the transaction.
            with pytest.raises(errors.OperationalError) as later:
                w.execute("INSERT INTO t(v) VALUES (x'00')")
            assert later.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
        assert ended.value.sqlite_errorname == "SQLITE_ABORT_ROLLBACK"
        assert pool.fetchone("SELECT count(*) FROM t") == (written,)
        stats = pool.stats()
        assert stats["discarded"] == 0 and not stats["writer_busy"]
        assert stats["readers_in_use"] == 0

        # Readers kept working all along; room is made; writes succeed again.
        os.unlink(filler)
        for _ in range(10):
            pool.execute("INSERT INTO t(v) VALUES (randomblob(20000))")
        assert pool.fetchone("SELECT count(*) FROM t") == (written + 10,)
        assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
