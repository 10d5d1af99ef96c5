"""fork() at unlucky moments: inside a writer lease, inside a reader's snapshot, while another
thread is inside SQLite, and many times under load. Real processes, real files.

A forked child inherits copies of the parent's connections together with SQLite's
per-process lock bookkeeping; these tests check that the child retires those copies without
touching the parent's transaction, and that no child ever waits in a way that blocks the
parent (docs/durability.md, "Hostile environment").
"""

from __future__ import annotations

import os
import select
import threading
import time

import pytest
from processes import fork_child, wait_child

from fastpool import errors

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Forking a process that has threads is deprecated on 3.12+; these tests do it on purpose.
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"


def test_a_child_forked_inside_a_writer_lease_writes_once_the_parent_commits(make_pool):
    pool = make_pool(readers=2, pragmas={"busy_timeout": 5000})
    pool.execute(SCHEMA)
    r, w = os.pipe()

    def child():
        os.close(r)
        # Blocks until the parent's transaction is over (it commits 0.3 s after the fork),
        # then works as any process does: reads see the parent's commit, writes go in.
        assert pool.fetchone("SELECT v FROM t WHERE v = 'parent in lease'") == ("parent in lease",)
        for i in range(20):
            pool.execute("INSERT INTO t(v) VALUES (?)", (f"child {i}",))
        with pool.writer() as c:
            c.execute("INSERT INTO t(v) VALUES ('child lease')")
        os.write(w, b"done")

    with pool.writer() as c:
        c.execute("INSERT INTO t(v) VALUES ('parent in lease')")
        pid = fork_child(child)
        os.close(w)
        time.sleep(0.3)
    # The parent's writers are never held up by the child's wait, nor after it.
    started = time.monotonic()
    for i in range(20):
        pool.execute("INSERT INTO t(v) VALUES (?)", (f"parent after {i}",))
    assert time.monotonic() - started < 2.5, "the parent's writers waited for the child"
    assert select.select([r], [], [], 10)[0], "the child never finished writing"
    assert os.read(r, 16) == b"done"
    os.close(r)
    assert wait_child(pid, 10) == 0
    assert pool.fetchone("SELECT count(*) FROM t WHERE v LIKE 'child%'") == (21,)
    assert pool.fetchone("SELECT count(*) FROM t WHERE v LIKE 'parent%'") == (21,)
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)


def test_the_parents_transaction_after_the_fork_is_untouched_by_the_child(make_pool):
    # The child retires its copy of the parent's open transaction by rolling the copy back:
    # that must not undo or corrupt what the parent goes on to write in it.
    pool = make_pool(readers=1, pragmas={"busy_timeout": 5000})
    pool.execute(SCHEMA)
    with pool.writer() as c:
        c.executemany("INSERT INTO t(v) VALUES (?)", [("before fork",)] * 500)
        pid = fork_child(lambda: pool.execute("INSERT INTO t(v) VALUES ('child')"))
        time.sleep(0.2)  # the child is waiting for this transaction now
        c.executemany("INSERT INTO t(v) VALUES (?)", [("after fork",)] * 500)
    assert wait_child(pid, 10) == 0
    assert pool.fetchall("SELECT v, count(*) FROM t GROUP BY v ORDER BY v") == [
        ("after fork", 500),
        ("before fork", 500),
        ("child", 1),
    ]
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)


def test_a_child_forked_inside_a_reader_snapshot_works_at_once(make_pool):
    pool = make_pool(readers=2)
    pool.execute(SCHEMA)
    pool.execute("INSERT INTO t(v) VALUES ('one')")
    with pool.reader() as rd, rd.transaction():
        assert rd.fetchone("SELECT count(*) FROM t") == (1,)

        def child():
            started = time.monotonic()
            pool.execute("INSERT INTO t(v) VALUES ('child')")
            assert pool.fetchone("SELECT count(*) FROM t") == (2,)
            assert time.monotonic() - started < 2

        assert wait_child(fork_child(child), 10) == 0
        assert rd.fetchone("SELECT count(*) FROM t") == (1,)  # the parent's snapshot holds
    assert pool.fetchone("SELECT count(*) FROM t") == (2,)


def test_a_child_forked_while_another_thread_is_inside_sqlite_refuses_at_once(make_pool):
    # A long query drops the GIL from inside SQLite; a fork meanwhile copies that call's
    # half-done state. The child must say so at once, never hang or read unprotected.
    pool = make_pool(readers=2)
    started = threading.Event()

    def long_read():
        with pool.reader() as rd:
            started.set()
            rd.fetchone(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000)"
                " SELECT count(*) FROM c"
            )

    thread = threading.Thread(target=long_read)
    thread.start()
    assert started.wait(5)
    time.sleep(0.2)  # well inside the query, which runs for seconds

    def child():
        begun = time.monotonic()
        for call in (lambda: pool.fetchone("SELECT 1"), lambda: pool.execute("SELECT 1")):
            # the pool must not work beside a copied running call
            with pytest.raises(
                errors.InterfaceError,
                match="forked while another thread of the parent was inside a SQLite",
            ):
                call()
        assert time.monotonic() - begun < 1
        pool.close()  # closing still works, and touches nothing of the parent's

    pid = fork_child(child)
    try:
        assert wait_child(pid, 10) == 0
    finally:
        thread.join(60)
    assert pool.fetchone("SELECT 1") == (1,)


def test_forks_under_load_never_hang_and_every_child_writes(make_pool):
    # Writers and the background checkpointer run while the main thread forks again and
    # again: no child may hang on a lock or mutex copied mid-use, and each child writes.
    pool = make_pool(readers=2, pragmas={"busy_timeout": 5000, "wal_autocheckpoint": 50})
    pool.execute(SCHEMA)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            pool.execute("INSERT INTO t(v) VALUES ('load')")

    def reader():
        while not stop.is_set():
            pool.fetchone("SELECT count(*) FROM t")

    threads = [threading.Thread(target=f) for f in (writer, writer, reader)]
    for t in threads:
        t.start()
    outcomes = {"wrote": 0, "refused": 0}
    try:
        for i in range(40 if os.environ.get("FASTPOOL_LONG") != "1" else 400):
            r, w = os.pipe()

            def child(i=i, r=r, w=w):
                os.close(r)
                try:
                    pool.execute("INSERT INTO t(v) VALUES (?)", (f"child {i}",))
                    os.write(w, b"w")
                except errors.InterfaceError as exc:
                    # Another thread was inside SQLite at the fork: refused at once, clearly.
                    assert "forked while another thread" in str(exc)
                    os.write(w, b"r")

            pid = fork_child(child)
            os.close(w)
            assert wait_child(pid, 20) == 0
            got = os.read(r, 1)
            os.close(r)
            outcomes["wrote" if got == b"w" else "refused"] += 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert outcomes["wrote"] >= outcomes["refused"], outcomes
    wrote = pool.fetchone("SELECT count(*) FROM t WHERE v LIKE 'child%'")[0]
    assert wrote == outcomes["wrote"]
    assert pool.fetchone("PRAGMA integrity_check") == ("ok",)
