"""Pool under real threads: the FIFO writer, readers beside it, one thread per lease, timeouts
and close(). No assertion is about speed; waits are on events, barriers and stats() gauges.
"""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

import fastpool
from fastpool import errors

# A query that runs until interrupted: its first row calls started() (registered by Started,
# passed as on_connect), then SQLite counts without calling back into Python.
ENDLESS = (
    "WITH RECURSIVE r(i) AS (SELECT started() UNION ALL SELECT i + 1 FROM r WHERE i < 1e15) "
    "SELECT sum(i) FROM r"
)


class Started:
    """on_connect hook registering started(); ``event`` is set when a query calls it."""

    def __init__(self):
        self.event = threading.Event()
        self.connections = []

    def __call__(self, conn):
        self.connections.append(conn)
        conn.create_function("started", 0, self._started)

    def _started(self):
        self.event.set()
        return 1


class Endless:
    """Run ENDLESS on ``lease`` in a thread until stopped with lease.interrupt()."""

    def __init__(self, lease, started: Started):
        self.lease = lease
        self.started = started
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.lease.fetchone(ENDLESS)
        except BaseException as exc:
            self.error = exc

    def __enter__(self):
        self.started.event.clear()
        self.thread.start()
        assert self.started.event.wait(10), "the query did not start"
        return self

    def stop(self):
        deadline = time.monotonic() + 10
        while self.thread.is_alive() and time.monotonic() < deadline:
            self.lease.interrupt()
            self.thread.join(0.02)
        assert not self.thread.is_alive(), "interrupt() did not stop the query"

    def __exit__(self, *exc_info):
        self.stop()
        return False


def run_threads(targets, timeout=60):
    """Start one thread per callable, join them all, and re-raise the first error."""
    failures: list[BaseException] = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:
                failures.append(exc)

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    if failures:
        raise failures[0]


# -- the writer --------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_32_writer_threads_500_transactions_each(make_pool):
    pool = make_pool(readers=2)
    pool.execute("CREATE TABLE w(thread INTEGER, n INTEGER, PRIMARY KEY (thread, n))")
    nthreads, per_thread = 32, 500
    barrier = threading.Barrier(nthreads)
    failures: list[BaseException] = []

    def work(tid):
        try:
            barrier.wait(30)
            for n in range(per_thread):
                with pool.writer() as w:
                    w.execute("INSERT INTO w VALUES (?, ?)", (tid, n))
                    if tid == 0 and n == 0:
                        time.sleep(0.05)  # the others queue behind it, however fast hand-off is
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert pool.fetchone("SELECT count(*) FROM w") == (nthreads * per_thread,)
    assert pool.fetchall("SELECT thread, count(*), min(n), max(n) FROM w GROUP BY thread") == [
        (tid, per_thread, 0, per_thread - 1) for tid in range(nthreads)
    ]
    st = pool.stats()
    assert st["checkouts"] >= nthreads * per_thread
    assert st["waits"] > 0 and st["wait_time"] > 0  # they really queued
    assert st["timeouts"] == 0
    assert not st["writer_busy"] and st["waiting_writers"] == 0
    with pool.writer() as w:  # and the writer is still there for the next one
        assert w.fetchone("PRAGMA integrity_check") == ("ok",)


@pytest.mark.parametrize("group_commit", [False, True])
def test_writer_is_handed_over_in_arrival_order(make_pool, until, group_commit):
    # With group commit, the one-shots that queue while one-shot 0 waits for the writer run in
    # its transaction, in the order they queued; everyone else in arrival order after it.
    pool = make_pool(readers=1, group_commit=group_commit)
    pool.execute("CREATE TABLE log(who INTEGER)")
    n = 12
    holder = pool.writer()

    def via_lease(i):
        with pool.writer() as w:
            w.execute("INSERT INTO log VALUES (?)", (i,))

    def via_one_shot(i):
        pool.execute("INSERT INTO log VALUES (?)", (i,))

    threads = []
    for i in range(n):
        target = via_lease if i % 3 else via_one_shot  # both queue for the same writer
        t = threading.Thread(target=target, args=(i,))
        t.start()
        threads.append(t)
        # The next one starts only once this one is queued behind the previous ones.
        until(
            lambda i=i: pool.stats()["waiting_writers"] + pool.stats()["writes_queued"] == i + 1,
            what=f"waiter {i} queued",
        )
    holder.close()
    for t in threads:
        t.join(30)
    order = list(range(n))
    if group_commit:
        order = [i for i in order if i % 3 == 0] + [i for i in order if i % 3]
    assert [who for (who,) in pool.fetchall("SELECT who FROM log ORDER BY rowid")] == order
    assert pool.stats()["waiting_writers"] == 0 and pool.stats()["writes_queued"] == 0


# -- the hand-off policy: barging, bounded by fifo_after ------------------------------------


def queue_one_writer(pool, until, log):
    """Start a thread that queues for the writer (held by the caller) and logs 'waiter' once
    it has it; return the thread once it is queued."""

    def waiter():
        with pool.writer():
            log.append("waiter")

    t = threading.Thread(target=waiter)
    t.start()
    until(lambda: pool.stats()["waiting_writers"] == 1, what="the waiter queued")
    return t


def retakes_past_a_queued_waiter(pool, until, role: str) -> int:
    """The main thread returns its lease (the writer, or the only reader) and takes it again
    200 times while another thread keeps queueing for it; count the times it took it back
    before that queued thread had it."""
    lease = pool.writer if role == "writer" else pool.reader
    queued = f"waiting_{role}s"
    stop = threading.Event()
    others_turns = [0]

    def other():
        while not stop.is_set():
            with lease():
                others_turns[0] += 1

    holder = lease()
    t = threading.Thread(target=other)
    t.start()
    past = 0
    for _ in range(200):
        # Each round starts with the other thread in the queue: a thread just woken (or one
        # the OS has not run yet) is not queued, and taking the slot past nobody proves nothing.
        until(lambda: pool.stats()[queued] == 1, what="the other thread queued")
        turns = others_turns[0]
        holder.close()
        holder = lease()
        # Counted inside its lease, so a turn it took before ours shows here.
        if others_turns[0] == turns:
            past += 1
    stop.set()
    holder.close()
    t.join(10)
    return past


@pytest.mark.parametrize("role", ["writer", "reader"])
@pytest.mark.parametrize("fifo_after", [0.001, 60])
def test_a_running_thread_takes_a_free_slot_before_a_fresh_waiter(
    make_pool, until, fifo_after, role
):
    # No convoy: the thread that returns a lease and wants it again need not queue and sleep
    # behind a waiter that has not waited fifo_after yet. (The nudged waiter may win the race
    # now and then; the returning thread wins it nearly always.)
    pool = make_pool(readers=1, fifo_after=fifo_after)
    assert retakes_past_a_queued_waiter(pool, until, role) > 0


@pytest.mark.parametrize("role", ["writer", "reader"])
def test_fifo_after_zero_never_lets_a_running_thread_past_a_waiter(make_pool, until, role):
    assert retakes_past_a_queued_waiter(make_pool(readers=1, fifo_after=0), until, role) == 0


def test_a_waiter_passed_over_for_fifo_after_gets_the_next_release(make_pool, until):
    # The bound: however fast the holder cycles, the waiter gets the writer once it has
    # waited fifo_after (the holder would go on for 10 minutes otherwise).
    pool = make_pool(fifo_after=0.05)
    log: list[str] = []
    holder = pool.writer()
    t = queue_one_writer(pool, until, log)
    deadline = time.monotonic() + 600
    while "waiter" not in log and time.monotonic() < deadline:
        holder.close()
        with pool.writer():
            log.append("holder")
        holder = pool.writer()
    holder.close()
    t.join(10)
    assert "waiter" in log and log.count("holder") > 0


def test_nested_writer_in_another_thread_waits_instead_of_nesting(make_pool, until):
    pool = make_pool()
    pool.execute("CREATE TABLE t(v)")
    got = threading.Event()

    def other():
        with pool.writer() as w:
            assert w.kind == "writer"  # a real writer, not a savepoint of ours
            w.execute("INSERT INTO t VALUES ('other')")
            got.set()

    with pool.writer() as w:
        w.execute("INSERT INTO t VALUES ('mine')")
        t = threading.Thread(target=other)
        t.start()
        until(lambda: pool.stats()["waiting_writers"] == 1)
        assert not got.is_set()
    t.join(10)
    assert got.is_set()
    assert pool.fetchall("SELECT v FROM t ORDER BY rowid") == [("mine",), ("other",)]


def test_reader_completes_while_the_writer_holds_a_transaction(make_pool):
    pool = make_pool(readers=2)
    pool.execute("CREATE TABLE t(v)")
    pool.execute("INSERT INTO t VALUES ('committed')")
    seen = {}

    def read():
        seen["one-shot"] = pool.fetchall("SELECT v FROM t")
        with pool.reader() as r:
            seen["lease"] = r.fetchall("SELECT v FROM t")
            with r.transaction():
                seen["snapshot"] = r.fetchone("SELECT count(*) FROM t")

    with pool.writer() as w:
        w.execute("INSERT INTO t VALUES ('uncommitted')")
        w.execute("UPDATE t SET v = 'changed' WHERE v = 'committed'")
        assert w.fetchone("SELECT count(*) FROM t") == (2,)
        t = threading.Thread(target=read)
        t.start()
        t.join(10)  # the writer's transaction stays open the whole time
        assert not t.is_alive(), "a reader waited for the writer"
        assert w.in_transaction
    assert seen == {
        "one-shot": [("committed",)],
        "lease": [("committed",)],
        "snapshot": (1,),
    }
    assert pool.fetchall("SELECT v FROM t ORDER BY rowid") == [("changed",), ("uncommitted",)]


def test_readers_run_side_by_side(make_pool):
    pool = make_pool(readers=4)
    barrier = threading.Barrier(4, timeout=10)

    def read():
        with pool.reader() as r:
            barrier.wait()  # all four leases are out at the same moment
            assert r.fetchone("SELECT 1") == (1,)

    run_threads([read] * 4)
    assert pool.stats()["readers_in_use"] == 0


# -- reader affinity -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["one-shot", "lease"])
def test_a_thread_gets_back_the_reader_it_returned(make_pool, form):
    # The slot a thread returns is set aside for it (csrc/fp_slots.h, "Slots set aside"): a
    # thread that keeps reading keeps one reader, so its statement is prepared once, not once
    # per reader as a ring going round all four would make it.
    pool = make_pool(readers=4)
    base = pool.stats()["statement_cache_misses"]
    for i in range(200):
        if form == "lease":
            with pool.reader() as r:
                assert r.fetchone("SELECT ?", (i,)) == (i,)
        else:
            assert pool.fetchone("SELECT ?", (i,)) == (i,)
    assert pool.stats()["statement_cache_misses"] - base == 1


def test_a_reader_set_aside_for_one_thread_serves_the_others(make_pool, until):
    # Set aside is still free: with the one reader set aside for a thread that went quiet, a
    # second thread gets it at once, and a waiter queued behind a lease gets it when that
    # returns.
    pool = make_pool(readers=1)
    assert pool.fetchone("SELECT 1") == (1,)  # set aside for this thread
    assert pool.stats()["readers_idle"] == 1
    got: list[object] = []
    run_threads([lambda: got.append(pool.fetchone("SELECT 2"))])
    assert got == [(2,)]
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.reader() as r:
            r.fetchone("SELECT 3")
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    waiter = threading.Thread(target=lambda: got.append(pool.fetchone("SELECT 4")))
    waiter.start()
    until(lambda: pool.stats()["waiting_readers"] == 1)
    release.set()  # the holder sets the slot aside only if nobody waits: it must hand it on
    holder.join(10)
    waiter.join(10)
    assert got == [(2,), (4,)]
    assert pool.stats()["readers_idle"] == 1 and pool.stats()["waiting_readers"] == 0


# -- one thread per lease ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reader", "writer"])
def test_a_lease_used_from_two_threads_at_once_raises(make_pool, kind):
    started = Started()
    pool = make_pool(readers=1, on_connect=started)
    with getattr(pool, kind)() as lease:
        with Endless(lease, started) as endless:
            for call in (
                lambda: lease.fetchone("SELECT 1"),
                lambda: lease.fetchall("SELECT 1"),
                lambda: lease.execute("SELECT 1"),
                lambda: lease.executescript("SELECT 1"),
            ):
                with pytest.raises(errors.InterfaceError, match="one thread at a time"):
                    call()
        assert isinstance(endless.error, errors.OperationalError)
        assert "interrupt" in str(endless.error)
        # Once the other thread is done, the lease works again.
        assert lease.fetchone("SELECT 1") == (1,)


def test_interrupt_from_another_thread_stops_a_one_shot(make_pool):
    started = Started()
    pool = make_pool(readers=1, on_connect=started)
    with pool.reader() as lease:
        with Endless(lease, started) as endless:
            pass
        assert isinstance(endless.error, errors.OperationalError)
    assert pool.fetchone("SELECT 2") == (2,)


# -- timeouts ------------------------------------------------------------------------------------


def seconds_waited(message: str) -> float:
    return float(re.search(r"timed out after ([\d.]+) s", message).group(1))


def test_reader_timeout_message_and_stats(make_pool):
    pool = make_pool(readers=2, acquisition_timeout=0.2)
    leases = [pool.reader(), pool.reader()]
    with pytest.raises(errors.PoolTimeout) as info:
        pool.reader()
    message = str(info.value)
    assert "waiting for a reader" in message
    assert "2 reader connection(s), 2 in use, 0 other caller(s) waiting" in message
    assert seconds_waited(message) >= 0.19
    assert "debug=True" in message  # says how to learn more
    with pytest.raises(errors.PoolTimeout, match="waiting for a reader"):
        pool.fetchone("SELECT 1")
    with pytest.raises(errors.PoolTimeout, match="waiting for a reader"):
        pool.fetchall("SELECT 1")
    st = pool.stats()
    assert st["timeouts"] == 3 and st["waits"] == 3 and st["wait_time"] >= 0.55
    assert st["waiting_readers"] == 0
    leases[0].close()
    with pool.reader() as r:  # nothing lost: the freed reader is lent at once
        assert r.fetchone("SELECT 1") == (1,)
    leases[1].close()
    assert pool.stats()["readers_idle"] == 2


def test_writer_timeout_message(make_pool):
    pool = make_pool(readers=1, acquisition_timeout=0.1)
    pool.execute("CREATE TABLE t(v)")
    caught = []

    def contender():
        for call in (
            pool.writer,
            lambda: pool.execute("INSERT INTO t VALUES (1)"),
            lambda: pool.executemany("INSERT INTO t VALUES (?)", [(1,)]),
            pool.checkpoint,
        ):
            with pytest.raises(errors.PoolTimeout) as info:
                call()
            caught.append(str(info.value))

    with pool.writer():
        run_threads([contender])
    assert len(caught) == 4
    for message in caught:
        assert "waiting for a writer: 1 writer connection(s), 1 in use" in message
        assert seconds_waited(message) >= 0.09
    assert pool.stats()["timeouts"] == 4
    assert pool.fetchone("SELECT count(*) FROM t") == (0,)


@pytest.mark.parametrize("kind", ["reader", "writer"])
def test_debug_timeout_names_the_holder_and_its_stack(make_pool, kind):
    pool = make_pool(readers=1, acquisition_timeout=0.1, debug=True)
    held, done = threading.Event(), threading.Event()

    def hold_the_connection_here():
        with getattr(pool, kind)():
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold_the_connection_here, name="holder-7f3a")
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(errors.PoolTimeout) as info:
            getattr(pool, kind)()
    finally:
        done.set()
        holder.join(10)
    message = str(info.value)
    assert f"waiting for a {kind}" in message
    assert "Held by:" in message
    assert f"{kind} 0: thread 'holder-7f3a' for " in message
    assert "hold_the_connection_here" in message  # the stack where it was checked out
    assert "test_pool_concurrency.py" in message


def test_a_timed_out_writer_waiter_is_never_handed_the_writer(make_pool, until):
    # Arrival order: A, then B. A times out; the writer, released afterwards, goes to B.
    pool = make_pool(readers=1, acquisition_timeout=2.0)
    pool.execute("CREATE TABLE log(who TEXT)")
    outcome = {}

    def waiter(name):
        try:
            with pool.writer() as w:
                w.execute("INSERT INTO log VALUES (?)", (name,))
            outcome[name] = "wrote"
        except errors.PoolTimeout:
            outcome[name] = "timed out"

    holder = pool.writer()
    a = threading.Thread(target=waiter, args=("A",))
    a.start()
    until(lambda: pool.stats()["waiting_writers"] == 1)
    time.sleep(1.0)  # B's deadline must come ~1 s after A's
    b = threading.Thread(target=waiter, args=("B",))
    b.start()
    until(lambda: pool.stats()["waiting_writers"] == 2)
    a.join(10)
    assert outcome == {"A": "timed out"}
    assert pool.stats()["waiting_writers"] == 1  # B, still queued
    holder.close()
    b.join(10)
    assert outcome == {"A": "timed out", "B": "wrote"}
    assert pool.fetchall("SELECT who FROM log") == [("B",)]
    st = pool.stats()
    assert st["timeouts"] == 1 and not st["writer_busy"] and st["waiting_writers"] == 0


@pytest.mark.timeout(120)
def test_timeouts_racing_releases_never_lose_or_double_the_writer(make_pool):
    # Waiters whose timeout expires just as the writer is released: each either gets the
    # writer (and returns it) or gets PoolTimeout, never both and never neither.
    pool = make_pool(readers=1, acquisition_timeout=0.002)
    pool.execute("CREATE TABLE t(who INTEGER)")
    attempts, nthreads = 150, 4
    wrote = [0] * nthreads
    timed_out = [0] * nthreads
    stop = threading.Event()

    def holder():
        rng = random.Random(1)
        while not stop.is_set():
            try:
                with pool.writer():
                    time.sleep(rng.random() * 0.003)
            except errors.PoolTimeout:
                pass

    def contender(i):
        for _ in range(attempts):
            try:
                with pool.writer() as w:
                    w.execute("INSERT INTO t VALUES (?)", (i,))
                wrote[i] += 1
            except errors.PoolTimeout:
                timed_out[i] += 1

    h = threading.Thread(target=holder)
    h.start()
    try:
        run_threads([lambda i=i: contender(i) for i in range(nthreads)])
    finally:
        stop.set()
        h.join(10)
    assert [w + t for w, t in zip(wrote, timed_out, strict=True)] == [attempts] * nthreads
    assert pool.fetchone("SELECT count(*) FROM t") == (sum(wrote),)
    st = pool.stats()
    assert not st["writer_busy"] and st["waiting_writers"] == 0
    assert st["timeouts"] >= sum(timed_out)
    with pool.writer() as w:  # free at once: acquisition_timeout is 2 ms
        w.execute("INSERT INTO t VALUES (-1)")


# -- close -----------------------------------------------------------------------------------


def test_closed_pool_refuses_checkouts(make_pool):
    pool = make_pool()
    pool.execute("CREATE TABLE t(v)")
    pool.close()
    assert pool.closed
    for call in (
        pool.reader,
        pool.writer,
        lambda: pool.fetchone("SELECT 1"),
        lambda: pool.fetchall("SELECT 1"),
        lambda: pool.execute("INSERT INTO t VALUES (1)"),
        lambda: pool.executemany("INSERT INTO t VALUES (?)", [(1,)]),
        pool.checkpoint,
    ):
        with pytest.raises(errors.PoolClosed, match="closed"):
            call()
    pool.close()  # idempotent
    pool.close(timeout=0)
    assert pool.stats()["closed"]


def test_pool_as_context_manager(tmp_path):
    seen = []
    with fastpool.Pool(tmp_path / "cm.db", readers=2, on_connect=seen.append) as pool:
        pool.execute("CREATE TABLE t(v)")
        pool.execute("INSERT INTO t VALUES (1)")
        assert pool.fetchone("SELECT count(*) FROM t") == (1,)
    assert pool.closed
    assert len(seen) == 3 and all(c.closed for c in seen)
    with pytest.raises(errors.PoolClosed):
        pool.reader()
    # Everything was written and the files are consistent for the next opener.
    with fastpool.Pool(tmp_path / "cm.db") as again:
        assert again.fetchone("SELECT count(*) FROM t") == (1,)


def test_close_waits_for_leases_to_come_back(make_pool, until):
    seen = []
    pool = make_pool(readers=2, on_connect=seen.append)
    pool.execute("CREATE TABLE t(v)")
    reader = pool.reader()
    writer = pool.writer()
    writer.execute("INSERT INTO t VALUES ('during close')")
    closer = threading.Thread(target=pool.close, kwargs={"timeout": 30})
    closer.start()
    until(lambda: pool.closed)
    with pytest.raises(errors.PoolClosed):  # new checkouts fail at once, while close waits
        pool.reader()
    with pytest.raises(errors.PoolClosed):
        pool.fetchone("SELECT 1")

    def other_thread():  # on this thread, pool.writer() would be a savepoint of `writer`
        with pytest.raises(errors.PoolClosed):
            pool.writer()

    run_threads([other_thread])
    closer.join(0.2)
    assert closer.is_alive()  # still waiting for the two leases
    # The leases out still work until they are returned.
    assert reader.fetchone("SELECT 1") == (1,)
    reader.close()
    closer.join(0.2)
    assert closer.is_alive()  # the writer is still out
    writer.__exit__(None, None, None)  # commits
    closer.join(10)
    assert not closer.is_alive()
    assert all(c.closed for c in seen)
    with fastpool.Pool(seen[0].path) as again:
        assert again.fetchall("SELECT v FROM t") == [("during close",)]


def test_close_timeout_leaves_late_leases_working_until_they_return(make_pool):
    started = Started()
    pool = make_pool(readers=2, on_connect=started)
    pool.execute("CREATE TABLE t(v)")
    busy = pool.reader()
    idle_reader = pool.reader()
    writer = pool.writer()
    writer.execute("INSERT INTO t VALUES ('late commit')")
    with Endless(busy, started) as endless:
        # close() gives up on the three leases after the timeout and must not crash, even
        # though one of them is running a query in another thread right now.
        with pytest.warns(ResourceWarning, match="3 lease"):
            pool.close(timeout=0.1)
        assert pool.closed
        assert idle_reader.fetchone("SELECT count(*) FROM t") == (0,)
    assert isinstance(endless.error, errors.OperationalError)  # interrupted, not broken
    assert busy.fetchone("SELECT 1") == (1,)
    for lease in (busy, idle_reader):
        lease.close()
    with writer:
        pass  # a clean exit still commits
    assert all(c.closed for c in started.connections)
    with fastpool.Pool(started.connections[0].path) as again:
        assert again.fetchall("SELECT v FROM t") == [("late commit",)]


def test_lease_returned_after_close_timeout_does_not_crash(make_pool):
    seen = []
    pool = make_pool(readers=1, on_connect=seen.append)
    pool.execute("CREATE TABLE t(v)")
    reader, writer = pool.reader(), pool.writer()
    cur = reader.execute("SELECT 1 UNION ALL SELECT 2")
    with pytest.warns(ResourceWarning, match="2 lease"):
        pool.close(timeout=0)
    with pytest.raises(RuntimeError), writer:
        writer.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("rolled back after close")
    assert cur.fetchone() == (1,)
    reader.close()
    reader.close()
    assert all(c.closed for c in seen)
    with pytest.raises(errors.InterfaceError):
        cur.fetchone()


@pytest.mark.timeout(30)
def test_close_from_the_thread_holding_the_writer_does_not_wait_for_itself(make_pool, tmp_path):
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t(v)")
    with pool.writer() as w:
        w.execute("INSERT INTO t VALUES (1)")
        with pytest.warns(ResourceWarning, match="1 lease"):
            pool.close(timeout=None)  # would wait forever for this very lease
        assert pool.closed
    assert w.closed
    with fastpool.Pool(tmp_path / "pool.db") as again:
        assert again.fetchall("SELECT v FROM t") == [(1,)]


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_close_rejects_a_negative_timeout(make_pool, timeout):
    pool = make_pool(readers=1)
    with pytest.raises(ValueError, match="timeout"):
        pool.close(timeout=timeout)
    assert not pool.closed


def test_waiters_get_pool_closed_when_the_pool_closes(make_pool, until):
    seen = []
    pool = make_pool(readers=1, on_connect=seen.append, acquisition_timeout=30)
    outcome = {}

    def wait_reader():
        try:
            pool.reader()
        except errors.PoolClosed as exc:
            outcome["reader"] = str(exc)

    def wait_writer():
        try:
            pool.writer()
        except errors.PoolClosed as exc:
            outcome["writer"] = str(exc)

    r, w = pool.reader(), pool.writer()
    waiters = [threading.Thread(target=wait_reader), threading.Thread(target=wait_writer)]
    for t in waiters:
        t.start()
    until(lambda: pool.stats()["waiting_readers"] == 1 and pool.stats()["waiting_writers"] == 1)
    closer = threading.Thread(target=pool.close)
    closer.start()
    until(lambda: pool.closed)
    r.close()
    w.close()
    for t in [*waiters, closer]:
        t.join(10)
        assert not t.is_alive()
    assert set(outcome) == {"reader", "writer"}
    assert all("closed while waiting" in message for message in outcome.values())
    assert all(c.closed for c in seen)


def test_infinite_timeouts_mean_wait_for_ever(make_pool, until):
    # float("inf") is accepted wherever None is, and means the same: no limit.
    pool = make_pool(readers=1, acquisition_timeout=float("inf"))
    lease = pool.reader()
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.fetchone("SELECT 1")))
    waiter.start()
    until(lambda: pool.stats()["waiting_readers"] == 1)
    waiter.join(0.2)
    assert waiter.is_alive() and got == []  # waiting, not timed out
    lease.close()
    waiter.join(10)
    assert got == [(1,)] and pool.stats()["timeouts"] == 0

    lease = pool.reader()
    closer = threading.Thread(target=pool.close, kwargs={"timeout": float("inf")})
    closer.start()
    until(lambda: pool.closed)
    closer.join(0.2)
    assert closer.is_alive()  # close waits for the lease, as with timeout=None
    lease.close()
    closer.join(10)
    assert not closer.is_alive()
