"""Interpreter exit with pools still open: no hang, no crash, and a warning where one is due.

Each case runs a real Python process (the same interpreter, with this checkout's fastpool)
and checks how it ended.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastpool

# The package this test imports, so the child runs the same build (in place or installed).
PACKAGE_ROOT = str(Path(fastpool.__file__).resolve().parent.parent)
EXIT_LIMIT = 60  # seconds; a hang fails the test instead of stalling the suite


def run_child(code: str, db: Path, linger: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    prelude = linger + f"import fastpool, threading, time\nDB = {str(db)!r}\n"
    return subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=EXIT_LIMIT,
        env=env,
    )


def rows(db: Path) -> int:
    with fastpool.Pool(db, readers=1) as pool:
        return pool.fetchone("SELECT count(*) FROM t")[0]


def check_exit(
    code: str,
    db: Path,
    linger: str,
    *,
    readers: int = 1,
    rows_after: int,
    warns: str | None = None,
) -> None:
    """Run ``code`` in a child, after it opened ``pool`` on ``db`` and made table ``t``: the
    child must reach its end and exit 0 with no fatal error (and the warning ``warns`` on
    stderr), its last exit stage stretched by ``linger`` (the exit_linger fixture); then table
    ``t`` holds ``rows_after`` rows."""
    opening = f"pool = fastpool.Pool(DB, readers={readers})\npool.execute('CREATE TABLE t(x)')\n"
    res = run_child(opening + textwrap.dedent(code) + "print('main done')\n", db, linger)
    assert res.returncode == 0, res.stderr
    assert "main done" in res.stdout
    assert "Fatal Python error" not in res.stderr
    if warns is not None:
        assert warns in res.stderr
    assert rows(db) == rows_after


def test_exit_with_an_open_pool_warns_and_keeps_the_data(tmp_path, exit_linger):
    check_exit(
        """
        pool.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
        pool.fetchone("SELECT count(*) FROM t")
    """,
        tmp_path / "open.db",
        exit_linger,
        readers=2,
        rows_after=100,
        warns="still open at interpreter exit with 0 lease(s)",
    )


def test_exit_while_a_daemon_thread_holds_a_lease(tmp_path, exit_linger):
    # rows_after=0: the daemon's transaction was never committed; the database is intact.
    check_exit(
        """
        held = threading.Event()
        def hold():
            with pool.writer() as w:
                w.execute("INSERT INTO t VALUES (1)")
                held.set()
                time.sleep(3600)
        threading.Thread(target=hold, daemon=True).start()
        held.wait(10)
    """,
        tmp_path / "daemon.db",
        exit_linger,
        rows_after=0,
        warns="still open at interpreter exit with 1 lease(s) checked out",
    )


def test_exit_while_a_daemon_thread_runs_a_long_query(tmp_path, exit_linger):
    check_exit(
        """
        pool.execute("INSERT INTO t VALUES (1)")
        running = threading.Event()
        def endless():
            with pool.reader() as r:
                running.set()
                r.fetchone("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                           "WHERE i < 1e12) SELECT sum(i) FROM c")
        threading.Thread(target=endless, daemon=True).start()
        running.wait(10)
        time.sleep(0.2)   # inside SQLite by now, with the GIL dropped
    """,
        tmp_path / "query.db",
        exit_linger,
        rows_after=1,
    )


def test_exit_waits_for_a_non_daemon_thread_that_returns_its_lease(tmp_path, exit_linger):
    check_exit(
        """
        def work():
            time.sleep(0.3)
            with pool.writer() as w:
                w.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
        threading.Thread(target=work).start()
    """,
        tmp_path / "worker.db",
        exit_linger,
        rows_after=10,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_exit_of_a_forked_child_leaves_the_parent_pool_working(tmp_path, make_pool):
    pool = make_pool(tmp_path / "fork.db", readers=1)
    pool.execute("CREATE TABLE t(x)")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if pool.fetchone("SELECT count(*) FROM t") == (0,) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pool.execute("INSERT INTO t VALUES (1)")
    assert pool.fetchone("SELECT count(*) FROM t") == (1,)
