"""What SQLite fastpool runs on: sqlite_version(), sqlite_compile_options(), and a bundled
SQLite (wheels, FASTPOOL_SQLITE_AMALGAMATION builds) living beside the stdlib's in one process.

Set FASTPOOL_EXPECT_BUNDLED_SQLITE=1 (scripts/check-wheel.sh and the wheel builds do) to also
assert that the extension carries the tuned amalgamation of docs/sqlite-build.md.
"""

from __future__ import annotations

import os
import re
import sqlite3

import fastpool

# The options docs/sqlite-build.md documents for bundled builds, as SQLite reports them.
TUNED = {
    "THREADSAFE=2",
    "DEFAULT_MEMSTATUS=0",
    "DEFAULT_WAL_SYNCHRONOUS=1",
    "DQS=0",
    "LIKE_DOESNT_MATCH_BLOBS",
    "OMIT_DEPRECATED",
    "OMIT_SHARED_CACHE",
    "USE_ALLOCA",
    "ENABLE_FTS5",
    "ENABLE_RTREE",
    "ENABLE_MATH_FUNCTIONS",
    "ENABLE_DBSTAT_VTAB",
}
BUNDLED_VERSION = "3.50.4"  # the pin in scripts/fetch-amalgamation.sh


def test_version_is_the_linked_library(conn):
    version = fastpool.sqlite_version()
    assert re.fullmatch(r"3\.\d+\.\d+", version), version
    assert conn.fetchone("SELECT sqlite_version()") == (version,)


def test_compile_options_are_the_linked_library(conn):
    options = fastpool.sqlite_compile_options()
    assert isinstance(options, tuple)
    assert options, "SQLite always reports some compile options"
    assert all(isinstance(o, str) and o and not o.startswith("SQLITE_") for o in options)
    assert options == tuple(row[0] for row in conn.fetchall("PRAGMA compile_options"))
    # Always some THREADSAFE=n: fastpool needs a SQLite built with mutexes for its threads.
    threadsafe = [o for o in options if o.startswith("THREADSAFE=")]
    assert threadsafe in (["THREADSAFE=1"], ["THREADSAFE=2"]), threadsafe


def test_stdlib_sqlite3_keeps_its_own_library(tmp_path):
    # A bundled SQLite is compiled with hidden symbols: loading the stdlib's libsqlite3 into the
    # same process must not rebind either one to the other's copy. (Each opens its own file:
    # two SQLite copies must never share one database file, see docs/sqlite-build.md.)
    std = sqlite3.connect(tmp_path / "std.db")
    try:
        assert std.execute("SELECT sqlite_version()").fetchone() == (sqlite3.sqlite_version,)
        std_options = tuple(r[0] for r in std.execute("PRAGMA compile_options"))
        with fastpool.Pool(tmp_path / "fp.db", readers=1) as pool:
            pool.execute("CREATE TABLE t(x)")
            pool.execute("INSERT INTO t VALUES (?)", (1,))
            assert pool.fetchone("SELECT sqlite_version(), x FROM t") == (
                fastpool.sqlite_version(),
                1,
            )
            assert std.execute("SELECT sqlite_version()").fetchone() == (sqlite3.sqlite_version,)
    finally:
        std.close()
    if os.environ.get("FASTPOOL_EXPECT_BUNDLED_SQLITE") == "1":
        assert fastpool.sqlite_compile_options() != std_options


def test_bundled_build_is_tuned(conn):
    options = set(fastpool.sqlite_compile_options())
    if os.environ.get("FASTPOOL_EXPECT_BUNDLED_SQLITE") != "1":
        # A system libsqlite3: nothing to assert beyond what it reports about itself.
        assert options == {r[0] for r in conn.fetchall("PRAGMA compile_options")}
        return
    assert fastpool.sqlite_version() == BUNDLED_VERSION
    assert options >= TUNED, sorted(TUNED - options)
    # The options act as documented.
    assert conn.fetchone("SELECT sqrt(16.0)") == (4.0,)
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
    conn.execute("INSERT INTO docs VALUES ('a tuned sqlite')")
    assert conn.fetchone("SELECT count(*) FROM docs WHERE docs MATCH 'tuned'") == (1,)
    conn.execute("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)")
    assert conn.fetchone("SELECT count(*) FROM dbstat") is not None
    conn.execute("CREATE TABLE quoted(a)")
    try:
        conn.execute('SELECT "no such column" FROM quoted')
    except fastpool.OperationalError as exc:  # DQS=0: a double-quoted word is an identifier
        assert "no such column" in str(exc)
    else:
        raise AssertionError("a double-quoted string literal was accepted although DQS=0")
    assert conn.fetchone("SELECT x'61' LIKE 'a'") == (0,)  # LIKE_DOESNT_MATCH_BLOBS
