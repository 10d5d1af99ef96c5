"""The GIL is released while SQLite works for long, and a connection serves one thread at a time.

No assertion here is about speed: the GIL tests check that a Python thread keeps counting
during the middle of a long query. Were the GIL held for the whole call, the counter could not
move at all until the call returned (C code holding the GIL is never preempted).
"""

from __future__ import annotations

import threading
import time

import pytest

from fastpool import errors

# SQLite's virtual machine counting to ? in a recursive CTE: long work without any Python.
COUNT_TO = (
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?) "
    "SELECT sum(i) FROM r"
)


class Counter:
    """A Python thread that increments a counter as fast as the GIL lets it, noting the time
    of every 1000th increment."""

    def __init__(self):
        self.value = 0
        self.stop = False
        self.times: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop:
            self.value += 1
            if self.value % 1000 == 0:
                self.times.append(time.perf_counter())

    def ticks_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)

    def __enter__(self):
        self.thread.start()
        while self.value == 0:  # running
            time.sleep(0.001)
        return self

    def __exit__(self, *exc_info):
        self.stop = True
        self.thread.join()


def rows_for(conn, seconds):
    """How far COUNT_TO must count for the query to take about ``seconds`` here."""
    n = 200_000
    start = time.perf_counter()
    conn.fetchone(COUNT_TO, (n,))
    elapsed = max(time.perf_counter() - start, 1e-4)
    return int(min(max(n * seconds / elapsed, n), 50_000_000))


def middle_half(start: float, end: float) -> tuple[float, float]:
    quarter = (end - start) / 4
    return start + quarter, end - quarter


@pytest.mark.timeout(60)
def test_long_query_releases_the_gil(conn):
    n = rows_for(conn, 0.6)
    with Counter() as counter:
        start = time.perf_counter()
        result = conn.fetchone(COUNT_TO, (n,))
        end = time.perf_counter()
    assert result == (n * (n + 1) // 2,)
    ticks = counter.ticks_between(*middle_half(start, end))
    assert ticks >= 2, (
        f"the counter thread did not run during the middle of a {end - start:.2f} s query "
        f"({ticks} x 1000 increments)"
    )


@pytest.mark.timeout(60)
def test_long_fetchall_and_cursor_release_the_gil(conn):
    n = rows_for(conn, 0.3)
    for run in (
        lambda: conn.fetchall(COUNT_TO, (n,)),
        lambda: conn.execute(COUNT_TO, (n,)).fetchall(),
    ):
        with Counter() as counter:
            start = time.perf_counter()
            rows = run()
            end = time.perf_counter()
        assert sum(r[0] for r in rows) == n * (n + 1) // 2
        assert counter.ticks_between(*middle_half(start, end)) >= 2


@pytest.mark.timeout(60)
def test_other_connections_work_during_a_long_query(open_conn, endless_query):
    busy = open_conn()
    other = open_conn()
    other.executescript("CREATE TABLE t(x)")
    with endless_query(busy) as query:
        # While `busy` grinds in another thread, this thread reads and writes freely.
        for i in range(100):
            other.execute("INSERT INTO t VALUES (?)", (i,))
        assert other.fetchone("SELECT count(*) FROM t") == (100,)
        assert query.thread.is_alive()
    assert query.error.sqlite_errorname == "SQLITE_INTERRUPT"


@pytest.mark.timeout(60)
def test_connection_used_from_two_threads_raises_interface_error(conn, endless_query):
    conn.executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
    early_cursor = conn.execute("SELECT x FROM t ORDER BY x")
    with endless_query(conn) as query:
        # Thread A is inside a call on conn; every call from this thread B is refused.
        for use in (
            lambda: conn.fetchone("SELECT 1"),
            lambda: conn.fetchall("SELECT 1"),
            lambda: conn.execute("SELECT 1"),
            lambda: conn.executemany("INSERT INTO t VALUES (?)", [(3,)]),
            lambda: conn.executescript("SELECT 1"),
            lambda: conn.create_function("g", 0, lambda: 1),
            lambda: conn.reset(),
            lambda: conn.close(),
            early_cursor.fetchone,
            early_cursor.close,
            lambda: early_cursor.__exit__(None, None, None),
        ):
            with pytest.raises(errors.InterfaceError, match="running"):
                use()
        assert query.thread.is_alive()  # thread A's query was not disturbed
    assert isinstance(query.error, errors.OperationalError)
    assert query.error.sqlite_errorname == "SQLITE_INTERRUPT"
    # SQLite keeps an interrupt in effect until no statement of the connection is running,
    # and the early cursor's statement is still running: its next step is interrupted too.
    with pytest.raises(errors.OperationalError, match="interrupt"):
        early_cursor.fetchall()
    # Then nothing runs any more, and the connection works normally.
    assert conn.fetchall("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    assert not conn.closed


@pytest.mark.timeout(60)
def test_dropping_a_cursor_in_another_thread_during_a_call(conn, endless_query):
    # Deallocating a cursor must not reset its statement while another thread steps on the
    # same handle; the statement is given back on reset() instead.
    sql = "SELECT 1 UNION ALL SELECT 2"
    holder = [conn.execute(sql)]
    with endless_query(conn):
        holder.clear()
    conn.reset()
    assert conn.fetchall(sql) == [(1,), (2,)]
    assert conn.cache_stats()["hits"] >= 1


@pytest.mark.timeout(60)
def test_sequential_use_from_several_threads_is_fine(conn):
    # One thread at a time is the contract, not one thread forever: hand-offs work.
    conn.executescript("CREATE TABLE t(x)")
    for i in range(4):
        t = threading.Thread(target=conn.execute, args=("INSERT INTO t VALUES (?)", (i,)))
        t.start()
        t.join()
    assert conn.fetchone("SELECT count(*) FROM t") == (4,)
