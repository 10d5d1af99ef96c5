"""The cross-process writer lock's side file ``<database>-writerlock`` in a hostile environment:
planted files, holders killed in another pid namespace, a file truncated under live mappings,
a full disk, permissions, and a process that sleeps in SQLite's busy handler.

Real files and real processes throughout. Whatever goes wrong with the side file, the pool
must keep working without it (SQLite's own locks keep writes correct), log a WARNING on the
``fastpool`` logger naming the file, and never write into a file that is not its own.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from processes import run_python

import fastpool

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the writer lock is Linux-only"
)

FOREIGN = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake user@host\n"


def make_db(path: Path) -> None:
    with fastpool.Pool(path, readers=1, writer_lock=False) as pool:
        pool.execute("CREATE TABLE t(v)")


def side(path: Path) -> Path:
    return path.with_name(path.name + "-writerlock")


def lock_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "fastpool" and r.levelno == logging.WARNING and "writerlock" in r.getMessage()
    ]


# -- 1. planted side files ------------------------------------------------------------------


def plant(kind: str, lock: Path, target: Path) -> None:
    if kind == "symlink to a file":
        target.write_bytes(FOREIGN)
        lock.symlink_to(target)
    elif kind == "symlink to a database":
        con = sqlite3.connect(target)
        con.execute("CREATE TABLE secret(v)")
        con.execute("INSERT INTO secret VALUES ('keep me')")
        con.commit()
        con.close()
        lock.symlink_to(target)
    elif kind == "dangling symlink":
        lock.symlink_to(target)
    elif kind == "hard link":
        target.write_bytes(FOREIGN)
        os.link(target, lock)
    elif kind == "foreign content":
        lock.write_bytes(FOREIGN * 100)
    elif kind == "fifo":
        os.mkfifo(lock)
    elif kind == "directory":
        lock.mkdir()
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "symlink to a file",
        "symlink to a database",
        "dangling symlink",
        "hard link",
        "foreign content",
        "fifo",
        "directory",
    ],
)
def test_planted_side_file_is_never_written_and_the_pool_works_without_it(tmp_path, kind, caplog):
    path = tmp_path / "app.db"
    make_db(path)
    lock, target = side(path), tmp_path / "victim"
    plant(kind, lock, target)
    before = {
        p.name: (p.lstat().st_size, p.read_bytes() if p.is_file() else None)
        for p in (lock, target)
        if p.exists() or p.is_symlink()
    }
    with (
        caplog.at_level(logging.WARNING, logger="fastpool"),
        fastpool.Pool(path, readers=1) as pool,
    ):
        for i in range(3):
            pool.execute("INSERT INTO t VALUES (?)", (i,))
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES (3)")
        assert pool.fetchone("SELECT count(*) FROM t") == (4,)
    after = {
        p.name: (p.lstat().st_size, p.read_bytes() if p.is_file() else None)
        for p in (lock, target)
        if p.exists() or p.is_symlink()
    }
    assert after == before, f"the planted {kind} was modified"
    if kind == "dangling symlink":
        assert not target.exists(), "the symlink's target was created"
    if kind == "symlink to a database":
        con = sqlite3.connect(target)
        assert con.execute("SELECT v FROM secret").fetchall() == [("keep me",)]
        con.close()
    warned = lock_warnings(caplog)
    assert len(warned) == 1, warned
    assert str(lock) in warned[0] and "without" in warned[0] and "remove it" in warned[0]


def test_a_version_1_side_file_is_taken_over(tmp_path, caplog):
    # A page left by an older fastpool (magic "fplk", pid word at byte 4) is ours: it is
    # converted, not refused, and the old word is left alone.
    path = tmp_path / "v1.db"
    make_db(path)
    page = bytearray(4096)
    page[0:4] = (0x6B6C7066).to_bytes(4, "little")
    page[4:8] = (12345).to_bytes(4, "little")
    side(path).write_bytes(bytes(page))
    side(path).chmod(0o644)
    with (
        caplog.at_level(logging.WARNING, logger="fastpool"),
        fastpool.Pool(path, readers=1) as pool,
    ):
        pool.execute("INSERT INTO t VALUES (1)")
    assert lock_warnings(caplog) == []
    data = side(path).read_bytes()
    assert data[0:4] == b"fpl2" and data[4:8] == (12345).to_bytes(4, "little")
    assert len(data) == 4096


# -- 2. a holder killed in another pid namespace ---------------------------------------------

HOLDER = """
    import sys, time, fastpool
    pool = fastpool.Pool(sys.argv[1], readers=1)
    with pool.writer() as w:
        w.execute("INSERT INTO t VALUES ('holder')")
        print("holding", flush=True)
        time.sleep(600)
"""


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_writer_lock_held_by_a_killed_process_in_another_pid_namespace(tmp_path):
    # Inside its own pid namespace the holder is pid 1; in ours pid 1 is alive, so a lock
    # word holding the owner's pid looked owned forever (the same thing as a reused pid).
    if (
        subprocess.run(
            ["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True, timeout=30
        ).returncode
        != 0
    ):
        pytest.skip("unshare -p (a new pid namespace) is not permitted here")
    path = tmp_path / "ns.db"
    make_db(path)
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER))
    outer = subprocess.Popen(
        ["unshare", "-p", "-f", "--mount-proc", sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert outer.stdout is not None
        assert outer.stdout.readline() == "holding\n"
        (inner,) = children_of(outer.pid)
        os.kill(inner, 9)
        outer.wait(30)
        with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 10000}) as pool:
            began = time.monotonic()
            pool.execute("INSERT INTO t VALUES ('after')")
            took = time.monotonic() - began
            assert pool.fetchall("SELECT v FROM t") == [("after",)]
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait(30)
    print(f"\nwriter after a holder killed in another pid namespace: {took * 1000:.1f} ms")
    assert took < 1.0, f"took {took:.3f} s (busy_timeout 10 s)"


# -- 4. the side file truncated under a live pool; a full disk -------------------------------

TRUNCATE = """
    import logging, os, sys, fastpool
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    path = sys.argv[1]
    pool = fastpool.Pool(path, readers=1)
    pool.execute("INSERT INTO t VALUES (1)")
    with open(path + "-writerlock", "w"):    # ': > db-writerlock' by a cleanup script
        pass
    for i in range(5):
        pool.execute("INSERT INTO t VALUES (?)", (i,))
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES (?)", (i,))
    print(pool.fetchone("SELECT count(*) FROM t")[0])
    pool.close()
"""


def test_side_file_truncated_under_a_live_pool(tmp_path):
    path = tmp_path / "trunc.db"
    make_db(path)
    res = run_python(TRUNCATE, str(path))
    assert res.returncode == 0, f"exit {res.returncode} (negative: a signal)\n{res.stderr}"
    assert res.stdout.strip() == "11"
    assert "WARNING fastpool" in res.stderr and "truncated" in res.stderr, res.stderr
    # The next pool sets the emptied file up again and uses it.
    with fastpool.Pool(path, readers=1) as pool:
        pool.execute("INSERT INTO t VALUES (99)")
    assert side(path).stat().st_size == 4096


@pytest.fixture
def small_fs(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip()})")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_disk_when_the_side_file_is_created(small_fs):
    # The database, its WAL and shared-memory files exist (a pool without the lock keeps them
    # open); then the disk fills up and another process opens a pool with the lock. A sparse
    # page would fault (SIGBUS) at its first store.
    path = small_fs / "full.db"
    keeper = fastpool.Pool(path, readers=1, writer_lock=False)
    try:
        keeper.execute("CREATE TABLE t(v)")
        keeper.execute("INSERT INTO t VALUES (1)")
        fill(small_fs)
        res = run_python(
            """
            import sys, fastpool
            with fastpool.Pool(sys.argv[1], readers=1) as pool:
                print(pool.fetchone("SELECT count(*) FROM t")[0])
            """,
            str(path),
        )
        assert res.returncode == 0, f"exit {res.returncode} (negative: a signal)\n{res.stderr}"
        assert res.stdout.strip() == "1"
        assert "writerlock" in res.stderr and "No space left on device" in res.stderr, res.stderr
        lock = side(path)
        assert not lock.exists() or lock.stat().st_size == 0
        # With room again, the next pool creates and uses it.
        os.unlink(small_fs / "filler")
        with fastpool.Pool(path, readers=1) as pool:
            pool.execute("INSERT INTO t VALUES (2)")
        assert lock.stat().st_size == 4096 and lock.stat().st_blocks > 0
    finally:
        keeper.close()


# -- 6. permissions ---------------------------------------------------------------------------


# A private database gives a private side file, and a group-shared one a group-writable side
# file, whatever the umask.
@pytest.mark.parametrize(
    ("mode", "umask"), [(0o600, 0o022), (0o660, 0o077)], ids=["private", "group-shared"]
)
def test_side_file_gets_the_database_files_mode(tmp_path, mode, umask):
    path = tmp_path / "test.db"
    make_db(path)
    path.chmod(mode)
    old = os.umask(umask)
    try:
        with fastpool.Pool(path, readers=1) as pool:
            pool.execute("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old)
    assert side(path).stat().st_mode & 0o777 == mode


def test_root_creates_the_side_file_for_the_database_files_owner():
    if os.geteuid() != 0:
        pytest.skip("needs root (to chown the database to another user)")
    try:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    except KeyError:
        uid, gid = 65534, 65534
    # pytest's tmp_path sits under a 0700 directory: that user could not reach it.
    directory = Path(tempfile.mkdtemp(prefix="fastpool-owner-"))
    try:
        directory.chmod(0o755)
        path = directory / "svc.db"
        make_db(path)
        os.chown(directory, uid, gid)
        os.chown(path, uid, gid)
        with fastpool.Pool(path, readers=1) as pool:
            pool.execute("INSERT INTO t VALUES (1)")
        st = side(path).stat()
        assert (st.st_uid, st.st_gid) == (uid, gid)
        # That user's own process can use it (it is not refused as someone else's file).
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                "import logging, sys, os, fastpool\n"
                "logging.basicConfig(level=logging.WARNING)\n"
                "os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[2]))\n"
                "with fastpool.Pool(sys.argv[1], readers=1) as p:\n"
                "    p.execute('INSERT INTO t VALUES (2)')\n",
                str(path),
                str(uid),
                str(gid),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert "writerlock" not in res.stderr, res.stderr
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- 3 (tail). never hold the lock while sleeping in SQLite's busy handler --------------------

STUCK = """
    import sys, fastpool
    pool = fastpool.Pool(sys.argv[1], readers=1, pragmas={"busy_timeout": 30000})
    print("writing", flush=True)
    pool.execute("INSERT INTO t VALUES ('child')")   # sleeps in SQLite's busy handler
    print("done", flush=True)
    pool.close()
"""


FOREIGN_WRITER = """
    import sqlite3, sys
    foreign = sqlite3.connect(sys.argv[1], isolation_level=None)
    foreign.execute("BEGIN IMMEDIATE")
    foreign.execute("INSERT INTO t VALUES ('foreign')")
    print("holding", flush=True)
    sys.stdin.readline()
    foreign.execute("COMMIT")
    foreign.close()
    print("committed", flush=True)
"""


def test_a_process_in_sqlites_busy_wait_does_not_hold_the_writer_lock(tmp_path):
    # Another process's stdlib sqlite3 (which knows nothing of the side lock) holds SQLite's
    # write lock. A child fastpool process takes the side lock, runs BEGIN IMMEDIATE and
    # sleeps in SQLite's busy handler. The parent's pool must not queue behind that sleep: a
    # passive checkpoint (which takes the writer, but needs no write lock) returns at once.
    path = tmp_path / "busy.db"
    make_db(path)
    foreign = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FOREIGN_WRITER), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert foreign.stdin is not None and foreign.stdout is not None
    assert foreign.stdout.readline() == "holding\n"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STUCK), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n"
        time.sleep(0.5)  # the child is in its busy handler by now
        assert child.poll() is None
        with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 2000}) as pool:
            began = time.monotonic()
            pool.checkpoint()
            with pool.writer_no_transaction() as w:
                w.execute("CREATE TEMP TABLE scratch(v)")
            took = time.monotonic() - began
            foreign.stdin.write("\n")
            foreign.stdin.flush()
            assert foreign.stdout.readline() == "committed\n"
            pool.execute("INSERT INTO t VALUES ('parent')")
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out == "done\n"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if foreign.poll() is None:
            foreign.kill()
        foreign.wait(30)
    print(f"\nparent's writer while a child sleeps in SQLite's busy handler: {took * 1000:.1f} ms")
    assert took < 0.5, f"the parent's writer waited {took:.3f} s for the child's side lock"
    with fastpool.Pool(path, readers=1) as pool:
        assert sorted(pool.fetchall("SELECT v FROM t")) == [("child",), ("foreign",), ("parent",)]


def test_forked_child_never_takes_the_lock_over_from_its_live_parent(tmp_path):
    # A child shares its parent's open file description of the side file, and with it the
    # byte lock that proves the parent alive: seen through it, the parent would look dead.
    # The child must use a handle of its own: while the parent holds the writer, the child
    # waits (busy_timeout) instead of taking the lock over.
    path = tmp_path / "fork.db"
    make_db(path)
    with fastpool.Pool(path, readers=1, pragmas={"busy_timeout": 300}) as pool:
        pool.execute("INSERT INTO t VALUES (0)")
        with pool.writer() as w:
            w.execute("INSERT INTO t VALUES (1)")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    try:
                        with pool.writer_no_transaction():
                            code = 2  # took the lock from its live parent
                    except fastpool.BusyError:
                        code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        pool.execute("INSERT INTO t VALUES (2)")


def test_a_lock_held_on_the_side_file_for_ever_does_not_hang_pool_creation(tmp_path):
    # Anyone who can open the side file can lock it; fastpool's setup lock waits 2 s at most.
    import fcntl

    path = tmp_path / "held.db"
    make_db(path)
    fd = os.open(side(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        began = time.monotonic()
        res = run_python(
            """
            import sys, fastpool
            with fastpool.Pool(sys.argv[1], readers=1) as pool:
                pool.execute("INSERT INTO t VALUES (1)")
            """,
            str(path),
            timeout=30,
        )
        took = time.monotonic() - began
    finally:
        os.close(fd)
    assert res.returncode == 0, res.stderr
    assert "writerlock" in res.stderr and "without" in res.stderr, res.stderr
    assert took < 10, took
