"""fastpool.dbapi writers in several processes: write transactions queue on the file's
cross-process writer lock (``<database>-writerlock``, the one a Pool's writer takes), which
hands the lock on to the writers already waiting when it is released.

Real files, real processes (fresh interpreters where the parent holds SQLite locks: a forked
child would inherit SQLite's in-process lock state). A waiter is known to be queued when the
lock word in the side file carries the waiters bit and the waiting process sleeps in a futex
(its /proc/<pid>/wchan), both polled with a deadline.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import fork_child, wait_child

import fastpool
import fastpool.dbapi as sqlite3
from fastpool._core import _write_turn_waiting

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the writer lock is Linux-only"
)

WORD_OFFSET = 64  # the lock word in the side file's page (csrc/fp_xlock_internal.h)
WAITERS = 0x80000000


def make_counter(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("CREATE TABLE log(who TEXT)")
    conn.execute("INSERT INTO counter VALUES (1, 0)")
    conn.commit()
    conn.close()


def increment(conn: sqlite3.Connection, who: str) -> None:
    # Read-modify-write: a lost update or a "database is locked" would show in the count.
    conn.execute("BEGIN")
    (n,) = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()
    conn.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
    conn.execute("INSERT INTO log VALUES (?)", (who,))
    conn.commit()


# A child that increments once through its own connection; a fresh interpreter, since a
# forked child would inherit SQLite's in-process lock state of the parent's open connections.
INCREMENT = """
import sys
sys.path.insert(0, sys.argv[3])
import fastpool.dbapi as sqlite3
from test_dbapi_processes import increment
increment(sqlite3.connect(sys.argv[1], timeout=60), sys.argv[2])
"""

POOL_WRITE = """
import sys, fastpool
with fastpool.Pool(sys.argv[1], readers=1, pragmas={"busy_timeout": 60000}) as pool:
    pool.execute("INSERT INTO log VALUES (?)", (sys.argv[2],))
"""


def spawn(code: str, path: Path, who: str) -> subprocess.Popen[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path), who, here], stderr=subprocess.PIPE, text=True
    )


def finish(child: subprocess.Popen[str]) -> None:
    try:
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err


def wait_until_queued(path: Path, pid: int) -> None:
    # The child set the waiters bit and sleeps in the kernel on the lock word.
    side = f"{path}-writerlock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(side, "rb") as f:
            word = int.from_bytes(os.pread(f.fileno(), 4, WORD_OFFSET), sys.byteorder)
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if word & WAITERS and "futex" in wchan:
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} never queued on the writer lock (wchan {wchan!r})")


def test_processes_doing_read_modify_write_lose_no_update_and_see_no_error(tmp_path):
    path = tmp_path / "rmw.db"
    make_counter(path)
    rounds, nproc = 150, 3

    def child(who: str) -> None:
        conn = sqlite3.connect(path, timeout=60)
        for _ in range(rounds):
            increment(conn, who)
        conn.close()

    pids = [fork_child(lambda who=f"p{i}": child(who)) for i in range(nproc)]
    codes = [wait_child(pid, timeout=120) for pid in pids]
    assert codes == [0] * nproc  # a child exits 1 on any exception (database is locked)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT n FROM counter").fetchone() == (rounds * nproc,)
    counts = conn.execute("SELECT who, count(*) FROM log GROUP BY who ORDER BY who").fetchall()
    assert counts == [(f"p{i}", rounds) for i in range(nproc)]
    conn.close()
    assert os.path.exists(f"{path}-writerlock")


def test_a_waiting_process_is_served_before_the_releasers_next_transaction(tmp_path):
    # The parent holds the write lock; a child queues for it. The parent commits and at once
    # begins again: the lock must go to the child first (a plain release lets the parent,
    # already running, take it back before the woken child is scheduled).
    path = tmp_path / "order.db"
    make_counter(path)
    holder = sqlite3.connect(path, timeout=60)
    holder.execute("BEGIN")  # BEGIN IMMEDIATE: the turn, the writer lock, SQLite's lock
    child = spawn(INCREMENT, path, "child")
    try:
        wait_until_queued(path, child.pid)
        increment_in_transaction(holder, "parent 1")
        holder.commit()
        increment(holder, "parent 2")
    finally:
        finish(child)
    log = [who for (who,) in holder.execute("SELECT who FROM log ORDER BY rowid")]
    assert log == ["parent 1", "child", "parent 2"]
    assert holder.execute("SELECT n FROM counter").fetchone() == (3,)
    holder.close()


def increment_in_transaction(conn: sqlite3.Connection, who: str) -> None:
    (n,) = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()
    conn.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
    conn.execute("INSERT INTO log VALUES (?)", (who,))


def test_a_pool_writer_and_a_dbapi_writer_hand_the_lock_to_each_other(tmp_path):
    # Both directions, deterministic: a dbapi writer queued behind a pool's writer is served
    # before the pool's next writer, and a pool writer queued behind a dbapi transaction
    # before that connection's next one.
    path = tmp_path / "mixed.db"
    make_counter(path)
    with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 60000}) as pool:
        with pool.writer() as w:
            child = spawn(INCREMENT, path, "dbapi")
            try:
                wait_until_queued(path, child.pid)
                w.execute("INSERT INTO log VALUES ('pool 1')")
            except BaseException:
                finish(child)
                raise
        pool.execute("INSERT INTO log VALUES ('pool 2')")
        finish(child)

        conn = sqlite3.connect(path, timeout=60)
        conn.execute("BEGIN")
        child = spawn(POOL_WRITE, path, "pool 3")
        try:
            wait_until_queued(path, child.pid)
            conn.execute("INSERT INTO log VALUES ('dbapi 2')")
            conn.commit()
            conn.execute("INSERT INTO log VALUES ('dbapi 3')")
            conn.commit()
        finally:
            finish(child)
        conn.close()
        log = [who for (who,) in pool.fetchall("SELECT who FROM log ORDER BY rowid")]
    assert log == ["pool 1", "dbapi", "pool 2", "dbapi 2", "pool 3", "dbapi 3"]


def test_processes_and_a_pool_together_lose_no_update(tmp_path):
    path = tmp_path / "together.db"
    make_counter(path)
    with fastpool.Pool(path, readers=1):
        pass  # WAL now, so the pool opened below need not change the journal mode under load
    rounds = 100

    def child() -> None:
        conn = sqlite3.connect(path, timeout=60)
        for _ in range(rounds):
            increment(conn, "dbapi")
        conn.close()

    pids = [fork_child(child) for _ in range(2)]
    with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 60000}) as pool:
        for _ in range(rounds):
            with pool.writer() as w:
                (n,) = w.fetchone("SELECT n FROM counter WHERE id = 1")
                w.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
        codes = [wait_child(pid, timeout=120) for pid in pids]
        assert codes == [0, 0]
        assert pool.fetchone("SELECT n FROM counter") == (3 * rounds,)


def test_a_killed_holder_does_not_lock_the_others_out(tmp_path):
    # A process killed inside its write transaction: SQLite's lock dies with it, and the
    # writer lock is taken over at the next waiter's probe (its token byte lock is gone).
    path = tmp_path / "killed.db"
    make_counter(path)
    ready_r, ready_w = os.pipe()  # the child says it holds the lock
    hold_r, hold_w = os.pipe()  # nobody writes: the child waits here until killed

    def doomed() -> None:
        conn = sqlite3.connect(path, timeout=60)
        conn.execute("BEGIN")
        conn.execute("UPDATE counter SET n = 1000")
        os.write(ready_w, b"x")
        os.read(hold_r, 1)

    pid = fork_child(doomed)
    try:
        assert os.read(ready_r, 1) == b"x"
        os.kill(pid, 9)
        assert wait_child(pid) == -9
        conn = sqlite3.connect(path, timeout=10)
        began = time.monotonic()
        increment(conn, "after")
        took = time.monotonic() - began
    finally:
        for fd in (ready_r, ready_w, hold_r, hold_w):
            os.close(fd)
    assert conn.execute("SELECT n FROM counter").fetchone() == (1,)
    conn.close()
    assert took < 5, f"waited {took:.3f} s for a dead holder's lock"


def lock_word(path: Path) -> int:
    with open(f"{path}-writerlock", "rb") as f:
        return int.from_bytes(os.pread(f.fileno(), 4, WORD_OFFSET), sys.byteorder)


def test_the_writer_lock_is_released_by_commit_rollback_close_and_collection(tmp_path):
    path = tmp_path / "ends.db"
    make_counter(path)
    conn = sqlite3.connect(path)
    for end in ("commit", "rollback", "close", "collect"):
        conn.execute("UPDATE counter SET n = n + 1")  # the implicit BEGIN IMMEDIATE
        assert lock_word(path) != 0, end
        if end == "close":
            conn.close()
        elif end == "collect":
            del conn
            gc.collect()
        else:
            getattr(conn, end)()
        assert lock_word(path) == 0, end
        if end in ("close", "collect"):
            conn = sqlite3.connect(path)
    other = sqlite3.connect(path, timeout=0)
    increment(other, "after")  # nothing was left held: no wait at all
    assert other.execute("SELECT n FROM counter").fetchone() == (2,)
    other.close()
    conn.close()


def test_private_databases_use_no_writer_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (":memory:", ""):
        conn = sqlite3.connect(name)
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert _write_turn_waiting(conn) == 0
        conn.commit()
        conn.close()
    assert os.listdir(tmp_path) == []
