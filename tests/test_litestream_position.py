"""fastpool.litestream_position beside the real `litestream replicate` (file:// replica).

The position it returns is what a replica host waits for before it reads (read-your-writes
across hosts, docs/scale-out.md): it must hold every transaction committed before the call,
which `litestream restore -txid` checks here without the VFS.
"""

from __future__ import annotations

import signal
import subprocess

import pytest
from conftest import wait_until
from litestream_env import Replicator, litestream_binary, restore, write_config

import fastpool


def restored_ids(replica, out, txid: int) -> set[int]:
    """The ids in the replica restored up to txid, once the replica has it (uploads lag)."""
    found: set[int] = set()

    def restored() -> bool:
        out.unlink(missing_ok=True)
        try:
            conn = restore(replica, out, txid)
        except subprocess.CalledProcessError:
            return False  # not uploaded yet
        found.update(r[0] for r in conn.execute("SELECT id FROM t"))
        conn.close()
        return True

    wait_until(restored, timeout=30, what=f"txid {txid:x} in {replica}")
    return found


@pytest.mark.timeout(180)
def test_a_position_holds_every_commit_made_before_the_call(tmp_path):
    litestream_binary()
    db, replica = tmp_path / "p.db", tmp_path / "replica"
    pool = fastpool.Pool(db, 2)
    pool.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    litestream = Replicator(write_config(tmp_path, db, replica), tmp_path / "ls.log")
    try:
        wait_until(
            lambda: fastpool.litestream_position(db) is not None, timeout=60, what="a first sync"
        )
        before = fastpool.litestream_position(db)
        assert before is not None
        # Litestream records a first write past `before`; a second write follows it. A
        # position past `before` that is only the first one's is too old for the second.
        pool.execute("INSERT INTO t (id) VALUES (1)")
        wait_until(
            lambda: (fastpool.litestream_position(db) or 0) > before,
            timeout=30,
            what="the first write recorded",
        )
        first = fastpool.litestream_position(db)
        pool.execute("INSERT INTO t (id) VALUES (2)")
        position = fastpool.litestream_position(db, newer_than=before)
        assert position is not None and position > first
        assert restored_ids(replica, tmp_path / "restored.db", position) == {1, 2}

        # Nothing past the newest position while nothing is written: a bounded wait.
        newest = fastpool.litestream_position(db)
        assert newest is not None
        with pytest.raises(fastpool.PoolTimeout, match="is `litestream replicate` running"):
            fastpool.litestream_position(db, newer_than=newest, timeout=0.3)
    finally:
        litestream.stop(signal.SIGTERM)
        pool.close()


def test_arguments_are_checked(tmp_path):
    db = tmp_path / "none.db"
    assert fastpool.litestream_position(db) is None  # Litestream never ran on it
    with pytest.raises(TypeError, match="position"):
        fastpool.litestream_position(db, newer_than=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        fastpool.litestream_position(db, newer_than=1, timeout=-1)
    with pytest.raises(fastpool.PoolTimeout, match="0000000000000001"):
        fastpool.litestream_position(db, newer_than=1, timeout=0.05)
