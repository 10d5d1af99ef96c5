"""Cross-process writers: 4 processes x 4 threads, each process with its own fastpool.Pool on
one database file, every thread committing small write transactions as fast as it can.

Compares the pool's cross-process writer lock (``writer_lock=True``: waiting processes sleep
on a shared futex and are woken one at a time) with SQLite's own busy handler alone
(``writer_lock=False``: sleep, retry, sleep longer). Reports, per mode, the median over the
rounds of: commits/s, the latency of one transaction (from asking for the writer to
COMMIT returned) p50/p99/p99.9/max, the slowest process's share of the commits, and BusyErrors.

    python bench/multiprocess_writers.py                # 3 rounds of 3 s per mode
    python bench/multiprocess_writers.py --rounds 5 --seconds 5 --json out.json

The modes alternate within each round so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKER = r"""
import json, sys, time, fastpool
from concurrent.futures import ThreadPoolExecutor
path, proc, threads, seconds, lock, start = sys.argv[1:]
proc, threads, seconds = int(proc), int(threads), float(seconds)
pool = fastpool.Pool(path, readers=1, writer_lock=lock == "on")
lat, busy = [], [0]
stop_at = float(start) + seconds
def work(t):
    mine = []
    n = 0
    while True:
        began = time.perf_counter()
        if time.time() >= stop_at:
            break
        try:
            with pool.writer() as w:
                w.execute("INSERT INTO w(proc, thread, n, pad) VALUES (?, ?, ?, ?)",
                          (proc, t, n, "x" * 100))
                w.execute("UPDATE totals SET n = n + 1")
        except fastpool.BusyError:
            busy[0] += 1
            continue
        mine.append(time.perf_counter() - began)
        n += 1
    lat.extend(mine)
while time.time() < float(start):
    time.sleep(0.0005)
with ThreadPoolExecutor(threads) as threads_of_this_process:
    list(threads_of_this_process.map(work, range(threads)))
pool.close()
print(json.dumps({"lat": lat, "busy": busy[0]}))
"""


def one_run(directory: str, lock: str, processes: int, threads: int, seconds: float) -> dict:
    import fastpool

    path = os.path.join(directory, f"bench-{lock}-{time.monotonic_ns()}.db")
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE w(id INTEGER PRIMARY KEY, proc, thread, n, pad)")
        pool.execute("CREATE TABLE totals(n)")
        pool.execute("INSERT INTO totals VALUES (0)")
    start = time.time() + 1.5
    args = [str(threads), str(seconds), lock, repr(start)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, path, str(p), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    per_process = []
    lat: list[float] = []
    busy = 0
    for child in children:
        out, err = child.communicate(timeout=seconds + 120)
        if child.returncode != 0:
            raise SystemExit(f"worker failed:\n{err}")
        result = json.loads(out)
        per_process.append(len(result["lat"]))
        lat.extend(result["lat"])
        busy += result["busy"]
    with fastpool.Pool(path, readers=1) as pool:
        stored = pool.fetchone("SELECT count(*) FROM w")[0]
    if stored != len(lat):
        raise SystemExit(f"{lock}: {len(lat)} commits acknowledged but {stored} rows stored")
    for suffix in ("", "-wal", "-shm", "-writerlock"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    lat.sort()
    return {
        "commits_per_s": len(lat) / seconds,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
        "p999_ms": lat[min(len(lat) - 1, int(len(lat) * 0.999))] * 1e3,
        "max_ms": lat[-1] * 1e3,
        "min_process_share": min(per_process) / max(1, sum(per_process)) * processes,
        "busy_errors": busy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as directory:
        for r in range(args.rounds):
            for lock in ("off", "on") if r % 2 == 0 else ("on", "off"):
                result = one_run(directory, lock, args.processes, args.threads, args.seconds)
                runs[lock].append(result)
                print(
                    f"round {r + 1} writer_lock={lock:3}: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in result.items()),
                    flush=True,
                )
    medians = {
        lock: {key: statistics.median(run[key] for run in rs) for key in rs[0]}
        for lock, rs in runs.items()
    }
    print(
        f"\n{args.processes} processes x {args.threads} threads, {args.seconds:g} s per run, "
        f"median of {args.rounds} rounds"
    )
    print(
        f"{'writer_lock':12} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
        f"{'max ms':>8} {'min share':>9} {'busy':>5}"
    )
    for lock in ("off", "on"):
        m = medians[lock]
        print(
            f"{lock:12} {m['commits_per_s']:10.0f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} "
            f"{m['p999_ms']:9.2f} {m['max_ms']:8.1f} {m['min_process_share']:9.2f} "
            f"{m['busy_errors']:5.0f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "medians": medians}, f, indent=2)


if __name__ == "__main__":
    main()
