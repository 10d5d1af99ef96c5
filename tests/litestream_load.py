"""A primary under load, run as its own process by tests/test_litestream.py.

    LOAD_READERS=n python tests/litestream_load.py DB ACKS SECONDS [POOL_KWARGS_JSON]

Four writer threads insert rows (``seq``: the commit order) through a fastpool.Pool (one-shot
``execute``, each its own transaction) while four reader threads run a count over the table and
a point read; a sampler thread records the size of the WAL file every 5 ms. Every acknowledged
row id is appended to ACKS (one line each, written with os.write before the next insert, so a
SIGKILL loses none that was acknowledged). At the end it prints one JSON line: rows written,
errors, write p50/p99 in ms, the largest WAL seen, and the pool's checkpoint stats.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import fastpool

WRITERS = 4
# seq numbers the rows in commit order (it is computed inside each row's transaction).
INSERT = (
    "INSERT INTO t (id, seq, w, body) VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM t), ?, ?)"
)
READERS = int(os.environ.get("LOAD_READERS", "4"))


def main() -> None:
    db, acks, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    kwargs = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    pool = fastpool.Pool(db, readers=max(READERS, 1), **kwargs)
    pool.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, seq INTEGER UNIQUE NOT NULL, "
        "w INTEGER, body TEXT)"
    )
    ack_fd = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stop = threading.Event()
    errors: list[str] = []
    latencies: list[list[float]] = [[] for _ in range(WRITERS)]
    wal_max = [0]
    next_id = iter(range(1, 1 << 62))
    id_lock = threading.Lock()
    body = "x" * 300

    def writer(k: int) -> None:
        mine = latencies[k]
        while not stop.is_set():
            with id_lock:
                row = next(next_id)
            t0 = time.perf_counter()
            try:
                pool.execute(INSERT, (row, k, body))
            except Exception as exc:  # counted and reported: the test asserts there are none
                errors.append(f"write {row}: {exc!r}")
                continue
            mine.append(time.perf_counter() - t0)
            os.write(ack_fd, b"%d\n" % row)

    def reader() -> None:
        while not stop.is_set():
            try:
                pool.fetchone("SELECT count(*), max(id) FROM t WHERE id > ?", (0,))
                pool.fetchone("SELECT body FROM t WHERE id = ?", (1,))
            except Exception as exc:
                errors.append(f"read: {exc!r}")

    def sampler() -> None:
        while not stop.is_set():
            try:
                wal_max[0] = max(wal_max[0], os.path.getsize(db + "-wal"))
            except OSError:
                pass
            time.sleep(0.005)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
    threads += [threading.Thread(target=reader) for _ in range(READERS)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    stats = pool.stats()
    pool.close()
    os.close(ack_fd)
    every = sorted(x for mine in latencies for x in mine)
    report = {
        "rows": len(every),
        "errors": errors[:20],
        "error_count": len(errors),
        "p50_ms": every[len(every) // 2] * 1000 if every else None,
        "p99_ms": every[int(len(every) * 0.99)] * 1000 if every else None,
        "wal_max": wal_max[0],
        "stats": {
            k: v for k, v in stats.items() if "checkpoint" in k or "wal" in k or "litestream" in k
        },
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
