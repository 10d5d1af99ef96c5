"""One SQLite per file and process: fastpool's SQLite beside the stdlib's ``sqlite3``.

A wheel bundles its own SQLite, so the stdlib's ``sqlite3`` is a second copy in the process,
and two copies must never share a file (their POSIX locks vanish under each other: malformed
reads, SIGBUS). A source build links the system's libsqlite3, the stdlib's own: one copy,
nothing to refuse, and nothing may be said. Each test checks the behaviour of the build it
runs against (scripts/check-wheel.sh runs this file against the wheel, with
FASTPOOL_EXPECT_BUNDLED_SQLITE=1). Real processes, real files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from processes import run_python

import fastpool
from fastpool import _core

SCENARIO = Path(__file__).with_name("two_sqlite_scenario.py")
BUNDLED, HOOKED = _core._sqlite_copies_state()
TWO_COPIES = HOOKED  # the stdlib's sqlite3 is another SQLite copy than fastpool's


def test_the_build_knows_whether_the_stdlib_shares_its_sqlite():
    if os.environ.get("FASTPOOL_EXPECT_BUNDLED_SQLITE") == "1":
        assert BUNDLED and TWO_COPIES
    if BUNDLED:
        assert TWO_COPIES  # a bundled copy is never the stdlib's
    else:
        # A source build calls the shared libsqlite3: another copy only if the stdlib's
        # sqlite3 reports another version.
        assert (sqlite3.sqlite_version != fastpool.sqlite_version()) == TWO_COPIES


def scenario(tmp_path: Path, seconds: float, *flags: str) -> dict:
    res = subprocess.run(
        [sys.executable, str(SCENARIO), str(tmp_path / "copies.db"), str(seconds), *flags],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    # A SIGBUS (or any crash) shows as a negative return code and no JSON.
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["acknowledged"] == out["found"] > 0, out
    assert out["integrity"] == "ok", out
    assert out["malformed"] == 0, out
    assert not out["other_errors"], out
    return out


def test_stdlib_beside_a_pool_on_one_file_is_refused_or_safe(tmp_path):
    out = scenario(tmp_path, 2.0)
    if TWO_COPIES:
        # Every stdlib connection to the pool's file was refused before it could open it.
        assert out["refused"] > 0 and out["stdlib_version"] is None, out
    else:
        # One SQLite in the process: the stdlib shares it, nothing refused.
        assert out["refused"] == 0 and out["stdlib_version"] == fastpool.sqlite_version(), out


def test_install_as_sqlite3_makes_the_process_use_one_sqlite(tmp_path):
    out = scenario(tmp_path, 2.0, "--one-liner")
    assert out["refused"] == 0, out
    assert out["stdlib_version"] == out["fastpool_version"] == fastpool.sqlite_version(), out


def test_a_pool_refuses_a_file_the_other_copy_has_open(tmp_path):
    res = run_python(
        """
        import sqlite3, sys, fastpool
        path = sys.argv[1]
        held = sqlite3.connect(path)
        held.execute("CREATE TABLE t(x)")
        held.commit()
        try:
            fastpool.Pool(path, readers=1).close()
            print("opened while held")
        except fastpool.SQLiteCopyError as exc:
            print("refused:", exc)
        held.close()
        with fastpool.Pool(path, readers=1) as pool:  # once the other copy let go
            print("rows", pool.fetchone("SELECT count(*) FROM t")[0])
        """,
        str(tmp_path / "held.db"),
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    if TWO_COPIES:
        assert lines[0].startswith("refused:") and "still has it open" in lines[0], res.stdout
        assert "install_as_sqlite3()" in lines[0]
    else:
        assert lines[0] == "opened while held", res.stdout
    assert lines[-1] == "rows 0"
    assert "Warning" not in res.stderr, res.stderr


def test_the_refusal_names_the_file_and_the_fix_and_sees_through_uris(tmp_path, make_pool):
    path = tmp_path / "uri.db"
    pool = make_pool(path, readers=1)
    pool.execute("CREATE TABLE t(x)")
    attempts = [
        lambda: sqlite3.connect(path),
        lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True),
        lambda: sqlite3.connect(f"file://{path}", uri=True),
        lambda: sqlite3.connect(os.fsencode(path)),
    ]
    for attempt in attempts:
        if TWO_COPIES:
            with pytest.raises(fastpool.SQLiteCopyError, match="install_as_sqlite3") as info:
                attempt()
            assert str(path) in str(info.value)
        else:
            attempt().close()
    pool.close()
    sqlite3.connect(path).close()  # nobody holds it now: always allowed


def test_the_stdlib_on_other_files_stays_silent(tmp_path, make_pool):
    pool = make_pool(tmp_path / "pool.db", readers=1)
    pool.execute("CREATE TABLE t(x)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for target in (tmp_path / "other.db", ":memory:", "file:mem?mode=memory"):
            conn = sqlite3.connect(target, uri=str(target).startswith("file:"))
            conn.execute("CREATE TABLE IF NOT EXISTS u(y)")
            conn.close()
        # and fastpool opens a file the stdlib used before, once it is closed again
        other = make_pool(tmp_path / "other.db", readers=1)
        assert other.fetchone("SELECT count(*) FROM u") == (0,)


def test_install_as_sqlite3_warns_when_sqlite3_was_imported_first(tmp_path):
    res = run_python(
        """
        import warnings, sys
        warnings.simplefilter("always")
        import fastpool
        fastpool.install_as_sqlite3()          # first thing: silent
        import sqlite3
        assert sqlite3 is fastpool.dbapi, sqlite3
        import sqlite3.dbapi2
        import time
        holder = sqlite3.connect(sys.argv[1])
        holder.execute("CREATE TABLE t(x)")
        holder.commit()
        holder.execute("INSERT INTO t VALUES (1)")  # holds the write lock until commit
        conn = sqlite3.connect(sys.argv[1], timeout=0.3)
        started = time.monotonic()
        try:
            conn.execute("INSERT INTO t VALUES (2)")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc), exc
        waited = time.monotonic() - started
        assert 0.25 <= waited < 5, waited  # the stdlib's timeout= is the busy timeout
        conn.close()
        holder.rollback()
        holder.close()
        print(sqlite3.sqlite_version, sqlite3.sqlite_version_info)
        """,
        str(tmp_path / "one.db"),
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    version = fastpool.sqlite_version()
    assert res.stdout.split()[0] == version
    late = run_python(
        """
        import sqlite3, fastpool
        fastpool.install_as_sqlite3()
        """
    )
    assert late.returncode == 0
    assert "RuntimeWarning" in late.stderr and "already imported" in late.stderr


def test_connect_timeout_is_checked():
    with pytest.raises(TypeError, match="timeout"):
        fastpool.connect(":memory:", timeout="5")
    with pytest.raises(ValueError, match="timeout"):
        fastpool.connect(":memory:", timeout=-1)
    with pytest.raises(ValueError, match="once"):
        fastpool.connect(":memory:", timeout=1, pragmas={"busy_timeout": 10})
