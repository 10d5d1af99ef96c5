"""Crash durability: a child process writes numbered transactions through a Pool and reports
each acknowledged commit on a pipe; the parent kills it with SIGKILL at a random moment, then
reopens the database and checks that every acknowledged commit is there, no transaction is
half there, and ``PRAGMA integrity_check`` says ok. Then the next child carries on.

CI: 30 kills with the default ``synchronous=normal`` and 6 with ``synchronous=off`` (a
process crash loses nothing the OS already has, whatever the setting; only power loss tells
them apart, see docs/durability.md). FASTPOOL_LONG=1: 300 and 60.

Each transaction n inserts n into ``a`` and into ``b`` (with a blob, so the WAL fills and the
checkpointer runs, and dies, mid-checkpoint now and then) and sets ``counter.n = n``; a kill
lands anywhere in that cycle: inside the transaction, in COMMIT, in a checkpoint, in a RESTART
between writers, or while the parent is reading the pipe.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

import fastpool

LONG = os.environ.get("FASTPOOL_LONG") == "1"

CHILD = r"""
import os, sys, fastpool
path, synchronous, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
pool = fastpool.Pool(path, readers=1, pragmas={"synchronous": synchronous,
                                              "wal_autocheckpoint": 50})
pool.execute("CREATE TABLE IF NOT EXISTS a(n INTEGER PRIMARY KEY)")
pool.execute("CREATE TABLE IF NOT EXISTS b(n INTEGER PRIMARY KEY, blob BLOB)")
pool.execute("CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY CHECK (id = 1), n)")
pool.execute("INSERT OR IGNORE INTO counter VALUES (1, 0)")
os.write(1, b"ready\n")
n = start
while True:
    with pool.writer() as w:
        w.execute("INSERT INTO a VALUES (?)", (n,))
        w.execute("INSERT INTO b VALUES (?, randomblob(?))", (n, 500 + n % 3000))
        w.execute("UPDATE counter SET n = ? WHERE id = 1", (n,))
        if n % 7 == 0:
            w.execute("DELETE FROM b WHERE n < ? AND n % 5 != 0", (n - 200,))
    os.write(1, b"%d\n" % n)      # acknowledged: COMMIT has returned
    n += 1
"""


def read_line(fd: int) -> bytes:
    # Byte by byte from the descriptor: a buffered readline() could swallow acknowledgements
    # that communicate() (which reads the descriptor itself) would then never see.
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line


def check(path, acked: set[int]) -> int:
    """Open like an application restarting; return the last committed n."""
    with fastpool.Pool(path, readers=1) as pool:
        assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
        a = {n for (n,) in pool.fetchall("SELECT n FROM a")}
        b_max = pool.fetchone("SELECT max(n) FROM b")[0]
        counter = pool.fetchone("SELECT n FROM counter")
    missing = acked - a
    assert not missing, f"acknowledged commits lost: {sorted(missing)[:10]}"
    last = max(a, default=0)
    # No half transaction: the three writes of the last n are all there, or none is.
    assert counter is None or counter[0] == last, (counter, last)
    assert b_max == (last or None), (b_max, last)
    assert a == set(range(1, last + 1)), "a committed n is missing in the middle"
    return last


def run_kills(tmp_path, synchronous: str, kills: int, seed: int) -> dict[str, int]:
    rnd = random.Random(seed)
    path = tmp_path / f"crash-{synchronous}.db"
    acked: set[int] = set()
    last = 0
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), synchronous, str(last + 1)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert read_line(child.stdout.fileno()) == b"ready\n", child.stderr.read().decode()
            time.sleep(rnd.uniform(0.0, 0.04))
        finally:
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err.decode()
        acked.update(int(line) for line in out.split())
        last = check(path, acked)
    assert len(acked) > kills // 2, f"children acknowledged too little to test: {len(acked)}"
    # A commit can be durable but unacknowledged (killed between COMMIT and the pipe write):
    # at most one per kill.
    assert last - len(acked) <= kills, (last, len(acked))
    return {
        "kills": kills,
        "acked": len(acked),
        "last": last,
        "committed_unacked": last - len(acked),
    }


@pytest.mark.parametrize(
    ("synchronous", "kills"),
    [("normal", 300 if LONG else 30), ("off", 60 if LONG else 6)],
)
@pytest.mark.timeout(1800 if LONG else 240)
def test_sigkill_never_loses_an_acknowledged_commit(tmp_path, synchronous, kills):
    result = run_kills(tmp_path, synchronous, kills, seed=kills)
    print(f"\ncrash[{synchronous}]: {result}")
