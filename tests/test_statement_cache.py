"""The per-connection LRU of prepared statements: counters, eviction, limits, checkout."""

from __future__ import annotations

import pytest

A = "SELECT 'a'"
B = "SELECT 'b'"
C = "SELECT 'c'"


def stats(conn):
    s = conn.cache_stats()
    return (s["size"], s["hits"], s["misses"], s["evictions"])


def test_initial_stats(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=7)
    assert conn.cache_stats() == {"size": 0, "capacity": 7, "hits": 0, "misses": 0, "evictions": 0}


def test_lru_counters(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=2)
    conn.fetchone(A)  # miss                 cache: A
    assert stats(conn) == (1, 0, 1, 0)
    conn.fetchone(B)  # miss                 cache: B A
    assert stats(conn) == (2, 0, 2, 0)
    conn.fetchone(A)  # hit                  cache: A B
    assert stats(conn) == (2, 1, 2, 0)
    conn.fetchone(C)  # miss, evicts B (LRU) cache: C A
    assert stats(conn) == (2, 1, 3, 1)
    conn.fetchone(A)  # hit: A survived
    assert stats(conn) == (2, 2, 3, 1)
    conn.fetchone(B)  # miss: B was evicted; evicts C
    assert stats(conn) == (2, 2, 4, 2)
    conn.fetchone(C)  # miss: C was evicted; evicts A
    assert stats(conn) == (2, 2, 5, 3)
    conn.fetchone(B)  # hit
    assert stats(conn) == (2, 3, 5, 3)
    # Results stay right throughout.
    assert [conn.fetchone(sql)[0] for sql in (A, B, C, A)] == ["a", "b", "c", "a"]


def test_every_entry_point_uses_the_cache(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    conn.executescript("CREATE TABLE t(x)")  # scripts are not cached
    assert stats(conn) == (0, 0, 0, 0)
    insert = "INSERT INTO t VALUES (?)"
    conn.execute(insert, (1,))
    conn.executemany(insert, [(2,), (3,)])
    conn.execute(insert, (4,))
    assert stats(conn) == (1, 2, 1, 0)
    select = "SELECT x FROM t ORDER BY x"
    assert conn.fetchall(select) == [(1,), (2,), (3,), (4,)]
    assert conn.fetchone(select) == (1,)
    assert list(conn.execute(select)) == [(1,), (2,), (3,), (4,)]
    assert stats(conn) == (2, 4, 2, 0)


def test_capacity_zero_disables_caching(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=0)
    for _ in range(5):
        assert conn.fetchone(A) == ("a",)
        assert conn.execute(B).fetchall() == [("b",)]
    s = conn.cache_stats()
    assert s["size"] == 0
    assert s["capacity"] == 0
    assert s["hits"] == 0
    assert s["misses"] == 10
    assert s["evictions"] == 0


def test_long_sql_is_not_cached(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=8)
    long_sql = "SELECT 1" + " " * 16400
    assert len(long_sql) > 16384
    for _ in range(3):
        assert conn.fetchone(long_sql) == (1,)
    assert stats(conn) == (0, 0, 3, 0)
    # Up to the limit is cached.
    limit_sql = "SELECT 2" + " " * (16384 - len("SELECT 2"))
    assert len(limit_sql) == 16384
    conn.fetchone(limit_sql)
    conn.fetchone(limit_sql)
    assert stats(conn) == (1, 1, 4, 0)


def test_statement_in_use_is_never_evicted(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=1)
    conn.executescript("CREATE TABLE n(i)")
    conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(5)])
    cur = conn.execute("SELECT i FROM n ORDER BY i")
    assert cur.fetchone() == (0,)
    for sql in (A, B, C, A, B, C):  # churn the one-entry cache while the cursor holds its statement
        conn.fetchone(sql)
    assert cur.fetchall() == [(1,), (2,), (3,), (4,)]
    assert conn.cache_stats()["size"] <= 2


def test_second_user_of_busy_sql_gets_a_fresh_uncached_statement(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    sql = "SELECT 1 UNION ALL SELECT 2"
    first = conn.execute(sql)
    assert stats(conn) == (1, 0, 1, 0)
    second = conn.execute(sql)  # the cached one is checked out: a miss, and not cached
    assert stats(conn) == (1, 0, 2, 0)
    third = conn.execute(sql)
    assert stats(conn) == (1, 0, 3, 0)
    assert first.fetchall() == second.fetchall() == third.fetchall() == [(1,), (2,)]
    assert conn.execute(sql).fetchall() == [(1,), (2,)]
    assert stats(conn) == (1, 1, 3, 0)


def test_fetchone_inside_iteration_over_the_same_sql(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    sql = "SELECT 1 UNION ALL SELECT 2"
    seen = [(row, conn.fetchone(sql)) for row in conn.execute(sql)]
    assert seen == [((1,), (1,)), ((2,), (1,))]


def test_cached_statement_is_reset_and_unbound_on_reuse(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    conn.executescript("CREATE TABLE n(i)")
    conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(5)])
    sql = "SELECT i FROM n WHERE i >= ? ORDER BY i"
    cur = conn.execute(sql, (1,))
    assert cur.fetchone() == (1,)
    cur.close()  # abandoned half-way
    assert conn.fetchall(sql, (3,)) == [(3,), (4,)]  # starts over with the new binding
    assert conn.cache_stats()["hits"] >= 1


def test_failed_statement_goes_back_to_the_cache_usable(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    conn.executescript("CREATE TABLE u(x UNIQUE)")
    sql = "INSERT INTO u VALUES (?)"
    conn.execute(sql, (1,))
    for _ in range(3):
        with pytest.raises(Exception, match="UNIQUE"):
            conn.execute(sql, (1,))
    conn.execute(sql, (2,))
    assert conn.fetchall("SELECT x FROM u ORDER BY x") == [(1,), (2,)]
    assert conn.cache_stats()["hits"] == 4


def test_failed_prepare_is_not_cached(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    for _ in range(2):
        with pytest.raises(Exception, match="no such table"):
            conn.fetchone("SELECT * FROM later")
    assert conn.cache_stats()["size"] == 0
    conn.executescript("CREATE TABLE later(x); INSERT INTO later VALUES (1)")
    assert conn.fetchone("SELECT * FROM later") == (1,)


def test_cached_statement_survives_a_schema_change(open_conn):
    conn = open_conn(statement_cache_size=4)
    conn.executescript("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2)")
    sql = "SELECT * FROM t"
    cur = conn.execute(sql)
    assert [d[0] for d in cur.description] == ["a", "b"]
    assert cur.fetchall() == [(1, 2)]

    conn.executescript("ALTER TABLE t ADD COLUMN c DEFAULT 3")
    hits = conn.cache_stats()["hits"]
    cur = conn.execute(sql)
    assert conn.cache_stats()["hits"] == hits + 1  # the same cached statement, re-prepared
    assert [d[0] for d in cur.description] == ["a", "b", "c"]
    assert cur.fetchall() == [(1, 2, 3)]
    assert conn.fetchone(sql) == (1, 2, 3)


def test_schema_change_by_another_connection(open_conn):
    conn = open_conn(statement_cache_size=4)
    conn.executescript("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
    sql = "SELECT * FROM t"
    assert conn.fetchone(sql) == (1,)
    other = open_conn()
    other.executescript("ALTER TABLE t ADD COLUMN z DEFAULT 'zz'")
    cur = conn.execute(sql)
    assert [d[0] for d in cur.description] == ["a", "z"]
    assert cur.fetchone() == (1, "zz")


def test_schema_change_dropping_the_table(open_conn):
    conn = open_conn(statement_cache_size=4)
    conn.executescript("CREATE TABLE t(a)")
    sql = "SELECT * FROM t"
    conn.fetchall(sql)
    conn.executescript("DROP TABLE t")
    with pytest.raises(Exception, match="no such table"):
        conn.fetchall(sql)
    conn.executescript("CREATE TABLE t(x, y); INSERT INTO t VALUES (1, 2)")
    assert conn.fetchall(sql) == [(1, 2)]


def test_close_clears_the_cache(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=4)
    conn.fetchone(A)
    conn.fetchone(B)
    assert conn.cache_stats()["size"] == 2
    conn.close()
    assert conn.cache_stats()["size"] == 0


def test_many_distinct_statements_with_a_small_cache(open_conn):
    conn = open_conn(pragmas={}, statement_cache_size=3)
    for _ in range(3):
        for i in range(20):
            assert conn.fetchone(f"SELECT {i}") == (i,)
    s = conn.cache_stats()
    assert s["size"] == 3
    assert s["misses"] == 60
    assert s["evictions"] == 57
    assert s["hits"] == 0
