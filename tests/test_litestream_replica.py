"""fastpool.ReplicaPool on real Litestream replicas (file://), each read by its own process.

The primary (this process) writes through a fastpool.Pool while the real `litestream
replicate` uploads two databases to two replicas; two reader processes, each started with
its own LITESTREAM_REPLICA_URL as another host would be, read them through the real
Litestream VFS (tests/litestream_replica_reader.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until
from litestream_env import Replicator, litestream_binary, require_vfs, write_config

import fastpool

# Litestream syncs every second and the VFS polls every second: a write reaches a replica
# reader within a few seconds (docs/scale-out.md); the bound leaves room for a loaded machine.
CATCH_UP_BOUND = 15.0
READER = Path(__file__).with_name("litestream_replica_reader.py")


class ReplicaHost:
    """tests/litestream_replica_reader.py in its own process, reading one replica."""

    def __init__(self, replica: Path) -> None:
        env = {**os.environ, "LITESTREAM_REPLICA_URL": f"file://{replica}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(READER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.ask_raw() == {"ready": True}

    def ask_raw(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the replica process exited ({self.proc.wait(10)})"
        return json.loads(line)

    def ask(self, **cmd: object) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.ask_raw()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(op="exit")
            except (AssertionError, BrokenPipeError, ValueError):
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


def primary(db: Path, rows: int) -> fastpool.Pool:
    pool = fastpool.Pool(db, 2)
    pool.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    pool.executemany("INSERT INTO t (id, body) VALUES (?, ?)", [(i, "x" * 50) for i in range(rows)])
    return pool


def wait_for_replica(replica: Path) -> None:
    """Litestream's first snapshot is up (the VFS needs one to open the replica)."""
    wait_until(
        lambda: any(replica.glob("ltx/*/*.ltx")), timeout=60, what=f"a snapshot in {replica}"
    )


@pytest.mark.timeout(300)
def test_two_replica_processes_catch_up_refuse_writes_and_report_lag(tmp_path):
    litestream_binary()
    require_vfs()
    db1, db2 = tmp_path / "one.db", tmp_path / "two.db"
    rep1, rep2 = tmp_path / "replica-one", tmp_path / "replica-two"
    pool1, pool2 = primary(db1, 100), primary(db2, 200)
    litestream = Replicator(
        write_config(tmp_path, db1, rep1, 121359, (db2, rep2)), tmp_path / "ls.log"
    )
    hosts: list[ReplicaHost] = []
    try:
        wait_for_replica(rep1)
        wait_for_replica(rep2)
        hosts = [ReplicaHost(rep1), ReplicaHost(rep2)]
        one, two = hosts
        assert one.ask(op="count", until=100, timeout=CATCH_UP_BOUND)["count"] == 100
        assert two.ask(op="count", until=200, timeout=CATCH_UP_BOUND)["count"] == 200

        # Catching up: new rows on each primary reach its replica's reader.
        pool1.executemany(
            "INSERT INTO t (id, body) VALUES (?, 'y')", [(i,) for i in range(100, 600)]
        )
        pool2.execute("DELETE FROM t WHERE id < 50")
        caught1 = one.ask(op="count", until=600, timeout=CATCH_UP_BOUND)
        caught2 = two.ask(op="count", until=150, timeout=CATCH_UP_BOUND)
        print(f"\ncatch-up: {caught1['seconds']:.2f} s and {caught2['seconds']:.2f} s")
        assert caught1["count"] == 600 and caught1["seconds"] < CATCH_UP_BOUND
        assert caught2["count"] == 150 and caught2["seconds"] < CATCH_UP_BOUND

        # Read-your-writes across hosts: the primary's position once Litestream recorded
        # the write; reader(at_least=...) on the replica host waits for it.
        before = fastpool.litestream_position(db1)
        assert before is not None
        pool1.execute("INSERT INTO t (id, body) VALUES (10000, 'mine')")
        position = fastpool.litestream_position(db1, newer_than=before)
        assert position is not None and position > before
        seen = one.ask(op="at_least", position=position, id=10000)
        assert seen == {"found": True, "position": seen["position"]}
        assert seen["position"] >= position

        # Every write path is refused with the fastpool error that says where to write.
        refused = one.ask(op="writes")
        for name in (
            "execute",
            "executemany",
            "writer",
            "transaction",
            "fetchone_insert",
            "reader_delete",
        ):
            assert refused[name].startswith("ReplicaReadOnlyError: "), refused
            assert "Write on the primary" in refused[name], refused
        # SQL's load_extension() stays off: extension loading was on only for the VFS's load.
        assert refused["load_extension_sql"].startswith("OperationalError"), refused
        assert "not authorized" in refused["load_extension_sql"], refused

        # Lag: seconds since the VFS's last successful poll (it polls every second).
        lag = one.ask(op="lag")
        assert lag["lag"] is not None and 0 <= lag["lag"] < CATCH_UP_BOUND, lag
        assert lag["stats"]["position"] == lag["position"] >= position
        assert lag["stats"]["timeouts"] == 0

        answer = two.ask(op="async")
        assert answer == {
            "count": 150,
            "rows": 3,
            "one": 1,
            "refused": "ReplicaReadOnlyError",
            "position": answer["position"],
        }
    finally:
        for host in hosts:
            host.close()
        litestream.stop(signal.SIGTERM)
        pool1.close()
        pool2.close()


def ltx_files(replica: Path, level: int) -> list[tuple[int, int, Path]]:
    """(min TXID, max TXID, file) of each LTX file in the replica's level, in order."""
    found = []
    for f in replica.glob(f"ltx/{level}/*.ltx"):
        lo, hi = f.name.split(".")[0].split("-")
        found.append((int(lo, 16), int(hi, 16), f))
    return sorted(found)


def copy_ltx(files: list[tuple[int, int, Path]], replica: Path, into: Path) -> None:
    for _, _, f in files:
        target = into / f.relative_to(replica)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


@pytest.mark.timeout(300)
def test_a_connection_wedged_by_a_level1_file_spanning_its_mark_recovers(tmp_path):
    # litestream-vfs 0.5.17: a connection opened while the replica has no level-1 file yet
    # takes its position as its level-1 mark; a level-1 file that then spans that mark is
    # never read, the next one fails every poll with "non-contiguous ltx file", and the
    # connection reads the same position for good (CI saw it on a fresh replica). Litestream
    # decides when it compacts, so the test replays a real replica's files in the order
    # that wedges: level 0 up to a mark inside a level-1 file, the host opens, then the rest.
    # The pool sees the connection's polls failing (lag) and rebuilds its index.
    litestream_binary()
    require_vfs()
    db, rep = tmp_path / "app.db", tmp_path / "replica"
    pool = primary(db, 10)
    litestream = Replicator(
        write_config(tmp_path, db, rep, level1_interval="3s"), tmp_path / "ls.log"
    )
    try:
        wait_for_replica(rep)

        def spanning() -> list[tuple[int, int, Path]]:
            # Level-1 files of more than one transaction, with another level-1 file after.
            return [f for f in ltx_files(rep, 1)[:-1] if f[0] < f[1]]

        i = 0
        while not spanning():
            pool.execute("INSERT INTO t (id, body) VALUES (?, 'w')", (1000 + i,))
            i += 1
            assert i < 400, "Litestream wrote no level-1 file spanning two transactions"
            time.sleep(0.05)
        final = fastpool.litestream_position(db)
    finally:
        litestream.stop(signal.SIGTERM)
        pool.close()
    assert final is not None
    wait_until(lambda: ltx_files(rep, 0)[-1][1] >= final, timeout=30, what="the last upload")
    mark = spanning()[0][0]
    staged = tmp_path / "staged"
    copy_ltx([f for f in ltx_files(rep, 0) if f[1] <= mark], rep, staged)
    host = ReplicaHost(staged)
    try:
        assert host.ask(op="lag")["position"] == mark
        # Level 1 first: a poll that saw the new level-0 files first would read past the mark
        # before it met the level-1 files.
        copy_ltx([*ltx_files(rep, 1), *ltx_files(rep, 9), *ltx_files(rep, 0)], rep, staged)
        seen = host.ask(op="at_least", position=final, id=1000)
        assert seen["found"] and seen["position"] >= final
        stats = host.ask(op="lag")["stats"]
        assert stats["index_rebuilds"] >= 1, stats
    finally:
        host.close()


def test_replica_url_must_be_the_process_environment(tmp_path):
    # The VFS reads LITESTREAM_REPLICA_URL as the process starts: a pool asking for another
    # replica gets told how to start the process, and nothing is opened.
    code = (
        "import fastpool\n"
        "try:\n"
        "    fastpool.ReplicaPool('file:///somewhere/else')\n"
        "except fastpool.OperationalError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITESTREAM_REPLICA_URL"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Start the process with LITESTREAM_REPLICA_URL=file:///somewhere/else" in out.stdout, out
    with pytest.raises(ValueError, match="replica URL"):
        fastpool.ReplicaPool("not a url")
    with pytest.raises(ValueError, match="readers"):
        fastpool.ReplicaPool("file:///x", readers=0)
