"""Many processes: 4 processes x 4 threads write to one database file, each process through
its own Pool. Every acknowledged write must be in the file (zero lost writes), nothing else may
be, and the only error allowed is BusyError, and only after busy_timeout has passed; busy
errors are counted and reported. Run with the cross-process writer lock on (the default) and
off (SQLite's busy handler alone).

CI: 60 transactions per thread (960 per run); FASTPOOL_LONG=1: 1000 (16,000 per run).
The speed of both modes is measured in bench/multiprocess_writers.py, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import fastpool

LONG = os.environ.get("FASTPOOL_LONG") == "1"
PROCESSES = 4
THREADS = 4
PER_THREAD = 1000 if LONG else 60
BUSY_TIMEOUT_MS = 5000

WORKER = r"""
import json, sys, threading, time, fastpool
path, proc, threads, per_thread, lock, busy_ms, start = sys.argv[1:]
proc, threads, per_thread, busy_ms = int(proc), int(threads), int(per_thread), int(busy_ms)
pool = fastpool.Pool(path, readers=1, writer_lock=lock == "on",
                     pragmas={"busy_timeout": busy_ms})
acked, busy, errors = [], [], []
def work(t):
    for seq in range(per_thread):
        began = time.monotonic()
        try:
            if seq % 3 == 0:
                pool.execute("INSERT INTO w(proc, thread, seq) VALUES (?, ?, ?)", (proc, t, seq))
            else:
                with pool.writer() as w:
                    w.execute("INSERT INTO w(proc, thread, seq) VALUES (?, ?, ?)",
                              (proc, t, seq))
                    w.execute("UPDATE totals SET n = n + 1")
            acked.append([proc, t, seq])
        except fastpool.BusyError as exc:
            busy.append(time.monotonic() - began)
        except BaseException as exc:
            errors.append(repr(exc))
while time.time() < float(start):
    time.sleep(0.001)
ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
pool.close()
print(json.dumps({"acked": acked, "busy": busy, "errors": errors}))
"""


def run_writers(path, lock: str) -> dict[str, object]:
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE w(proc, thread, seq, PRIMARY KEY (proc, thread, seq))")
        pool.execute("CREATE TABLE totals(n)")
        pool.execute("INSERT INTO totals VALUES (0)")
    start = time.time() + 1.5  # all processes imported and opened before anyone writes
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(path),
                str(p),
                str(THREADS),
                str(PER_THREAD),
                lock,
                str(BUSY_TIMEOUT_MS),
                repr(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, err
        results.append(json.loads(out))
    acked = {tuple(row) for r in results for row in r["acked"]}
    busy = [b for r in results for b in r["busy"]]
    errors = [e for r in results for e in r["errors"]]
    with fastpool.Pool(path, readers=1) as pool:
        stored = set(pool.fetchall("SELECT proc, thread, seq FROM w"))
        totals = pool.fetchone("SELECT n FROM totals")[0]
        assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
    assert errors == [], errors[:5]
    assert acked <= stored, f"lost writes: {sorted(acked - stored)[:10]}"
    assert stored <= acked | set(), f"unacknowledged rows: {sorted(stored - acked)[:10]}"
    block_writes = sum(1 for (_, _, seq) in acked if seq % 3 != 0)
    assert totals == block_writes
    # BusyError only after busy_timeout (the lock wait and SQLite's own both count it).
    assert all(b >= BUSY_TIMEOUT_MS / 1000 * 0.95 for b in busy), sorted(busy)[:5]
    assert len(acked) + len(busy) == PROCESSES * THREADS * PER_THREAD
    return {"writes": len(acked), "busy_errors": len(busy)}


def start_holder(path, then: str, **popen: Any) -> subprocess.Popen[str]:
    """Create table ``t(v)`` at ``path``, then start a process that opens its own Pool there,
    checks the writer out as ``w`` and runs the statements ``then`` (stdout is a pipe)."""
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("CREATE TABLE t(v)")
    script = (
        "import sys, time, fastpool\n"
        "pool = fastpool.Pool(sys.argv[1], readers=1)\n"
        "w = pool.writer()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script + then, str(path)], stdout=subprocess.PIPE, text=True, **popen
    )


@pytest.mark.parametrize("lock", ["on", "off"])
@pytest.mark.timeout(1200 if LONG else 180)
def test_four_processes_four_threads_lose_no_write(tmp_path, lock):
    result = run_writers(tmp_path / "shared.db", lock)
    print(f"\nmany processes (writer_lock {lock}): {result}")


def test_writer_lock_is_taken_over_from_a_killed_process(tmp_path):
    # A process killed while holding the cross-process lock must not block the others
    # forever: the next writer finds its owner gone and takes the lock over.
    path = tmp_path / "killed.db"
    holder = start_holder(
        path,
        "w.execute('INSERT INTO t VALUES (1)')\nprint('holding', flush=True)\ntime.sleep(600)\n",
    )
    try:
        assert holder.stdout.readline() == "holding\n"
    finally:
        holder.kill()
        holder.wait(30)
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("INSERT INTO t VALUES (2)")
        assert pool.fetchall("SELECT v FROM t") == [(2,)]


def test_writer_lock_waits_busy_timeout_then_raises_busy_error(tmp_path):
    path = tmp_path / "held.db"
    holder = start_holder(
        path,
        "print('holding', flush=True)\n"
        "sys.stdin.readline()\n"
        "w.execute('INSERT INTO t VALUES (1)')\n"
        "w.close()\n"
        "w = None\n"
        "pool.close()\n",
        stdin=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 300}) as pool:
            began = time.monotonic()
            with pytest.raises(fastpool.BusyError, match="busy_timeout") as info:
                pool.execute("INSERT INTO t VALUES (2)")
            assert time.monotonic() - began >= 0.29
            assert str(path) in str(info.value)
            assert not pool.stats()["writer_busy"]
    finally:
        holder.stdin.write("go\n")
        holder.stdin.close()
        holder.wait(30)
    assert holder.returncode == 0
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("INSERT INTO t VALUES (3)")
        assert pool.fetchall("SELECT v FROM t ORDER BY v") == [(3,)]


@pytest.mark.parametrize("lock", [True, False])
def test_writer_lock_side_file_only_when_on(tmp_path, lock):
    path = tmp_path / "side.db"
    with fastpool.Pool(path, readers=1, writer_lock=lock) as pool:
        pool.execute("CREATE TABLE t(v)")
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES (1)")
    assert (tmp_path / "side.db-writerlock").exists() == lock
    with pytest.raises(TypeError, match="writer_lock must be True or False"):
        fastpool.Pool(path, writer_lock="yes")


def test_writer_lock_in_a_forked_child(tmp_path):
    # The child inherits the mapping of the lock word and reopens its own connections; while
    # the parent holds the writer (its pid in the word) the child waits, then writes.
    # (The fork happens with no lease out: SQLite itself cannot be used in a child that was
    # forked while the parent held a write transaction.)
    path = tmp_path / "fork.db"
    with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 10000}) as pool:
        pool.execute("CREATE TABLE t(v)")
        r, w_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.read(r, 1)  # the parent holds the writer now
                pool.execute("INSERT INTO t VALUES ('child')")
                code = 0
            finally:
                os._exit(code)
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES ('parent')")
            os.write(w_fd, b"x")
            time.sleep(0.3)  # the child waits on the lock meanwhile
            assert w.fetchall("SELECT v FROM t") == [("parent",)]
        _, status = os.waitpid(pid, 0)
        os.close(r)
        os.close(w_fd)
        assert os.waitstatus_to_exitcode(status) == 0
        assert pool.fetchall("SELECT v FROM t") == [("parent",), ("child",)]


def other_process_can_write(path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fastpool\n"
            "with fastpool.Pool(sys.argv[1], readers=1, pragmas={'busy_timeout': 1000}) as p:\n"
            "    p.execute('INSERT INTO t VALUES (-1)')\n",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("end", ["timeouts", "close"])
def test_writer_lock_is_never_left_held_by_an_idle_process(tmp_path, end):
    # Writers queued behind each other pass the lock on without releasing it; when the next
    # one times out, or the pool closes under them, the lock must still be released.
    import threading

    path = tmp_path / "idle.db"
    pool = fastpool.Pool(path, readers=1, acquisition_timeout=0.002)
    pool.execute("CREATE TABLE t(v)")
    stop = threading.Event()
    counts = {"ok": 0, "timeout": 0, "closed": 0}

    def hammer():
        while not stop.is_set():
            try:
                with pool.writer() as w:
                    w.execute("INSERT INTO t VALUES (1)")
                counts["ok"] += 1
            except fastpool.PoolTimeout:
                counts["timeout"] += 1
            except fastpool.PoolClosed:
                counts["closed"] += 1
                return

    def slow_holder():
        # Holds the writer far beyond the 2 ms acquisition timeout now and then, so writers
        # queued behind it time out however fast the machine hands the writer on.
        while not stop.is_set():
            try:
                with pool.writer() as w:
                    w.execute("INSERT INTO t VALUES (2)")
                    stop.wait(0.02)
            except (fastpool.PoolTimeout, fastpool.PoolClosed):
                pass
            stop.wait(0.01)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    threads.append(threading.Thread(target=slow_holder))
    for t in threads:
        t.start()
    time.sleep(0.5)
    if end == "close":
        pool.close(timeout=5)
    stop.set()
    for t in threads:
        t.join(30)
    assert counts["ok"] > 0 and (counts["timeout"] > 0 or end == "close"), counts
    other_process_can_write(path)
    pool.close()
