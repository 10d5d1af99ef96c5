"""GIL turns: a thread that checks out a reader gives the GIL to a thread waiting for it,
every millisecond or two, never while it holds the writer, and the turns go round in order.

CPython asks a thread for a contended GIL only every switch interval; most of these tests
make that interval endless, so another thread can run only when a fastpool turn hands the
GIL over. No assertion is about speed: each counts what the other threads got done, or in
what order. A free-threaded build has no GIL to hand over (and nothing to wait for).
"""

from __future__ import annotations

import os
import sysconfig
import threading
import time

import pytest
from gil_switches import endless_switch_interval, start_waiting_thread
from processes import fork_child, wait_child

pytestmark = pytest.mark.skipif(
    bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason="a free-threaded build: threads run without turns",
)

CAP = 3_000_000  # point reads: seconds of them here, far beyond a few milliseconds of turns


def test_a_thread_looping_on_short_calls_gives_another_thread_its_turn(make_pool):
    pool = make_pool(readers=1)
    other_ran = threading.Event()
    thread, go = start_waiting_thread(other_ran.set)
    calls = 0
    with endless_switch_interval():
        go.set()
        while not other_ran.is_set() and calls < CAP:
            pool.fetchone("SELECT 1")
            calls += 1
    thread.join()
    assert other_ran.is_set() and calls < CAP, f"the other thread ran only after {calls} calls"


def test_a_writer_thread_gets_to_write_beside_a_reading_loop(make_pool):
    # Only this reading loop's turns can let the writer thread run. (Writers take no turns,
    # so with the switch interval endless the writer keeps the GIL once it has it: it stops
    # by itself after its writes.)
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t (v)")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set() and written[0] < 200:
            pool.execute("INSERT INTO t (v) VALUES (1)")
            written[0] += 1

    thread, go = start_waiting_thread(writer)
    calls = 0
    with endless_switch_interval():
        go.set()
        while written[0] < 200 and calls < CAP:
            pool.fetchone("SELECT 1")
            calls += 1
        stop.set()
    thread.join()
    assert written[0] >= 200, f"{written[0]} writes while this thread made {calls} reads"
    assert pool.fetchone("SELECT count(*) FROM t") == (written[0],)


def test_no_turn_is_taken_holding_the_writer(make_pool):
    # A turn there would leave the writer held while this thread waits for the GIL. Inside
    # the block, statements on the writer and one-shot reads on the pool take none.
    pool = make_pool(readers=1)
    pool.execute("CREATE TABLE t (v)")
    other_ran = threading.Event()
    thread, go = start_waiting_thread(other_ran.set)
    with endless_switch_interval():
        with pool.writer() as w:
            go.set()
            started = time.perf_counter()
            while time.perf_counter() - started < 0.05:  # many turns' worth of calls
                w.execute("INSERT INTO t (v) VALUES (1)")
                pool.fetchone("SELECT 1")
            ran_inside = other_ran.is_set()
        for _ in range(CAP):  # holding nothing, turns come back
            if other_ran.is_set():
                break
            pool.fetchone("SELECT 1")
    thread.join()
    assert not ran_inside and other_ran.is_set()


def test_turns_go_round_in_order_so_no_thread_is_passed_over(make_pool):
    # Eight threads loop on one-shot reads and log who holds the GIL each time it changes
    # hands. Turns queue in order, so between two of one thread's holds the others hold it
    # about once each (7). Left to CPython's wake-ups it was a lottery: 6.5-10.7 % of the
    # waits outlasted more than 14 others' holds (one 49), against 0-0.6 % in line, with or
    # without two busy processes beside (a preempted holder, forced out by CPython's switch
    # interval, can overtake the line once).
    pool = make_pool(readers=2)
    threads_n = 8
    holders = [-1]
    start = threading.Barrier(threads_n)
    stop = threading.Event()

    def loop(me: int) -> None:
        start.wait()
        while not stop.is_set():
            pool.fetchone("SELECT 1")
            if holders[-1] != me:
                holders.append(me)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    last_hold: dict[int, int] = {}
    waits: list[int] = []  # how many holds of others came between two of one thread's
    for position, holder in enumerate(holders[1:]):
        if holder in last_hold:
            waits.append(position - last_hold[holder] - 1)
        last_hold[holder] = position
    assert len(last_hold) == threads_n, "a thread never held the GIL"
    assert len(waits) > 10 * threads_n, f"only {len(holders) - 1} hand-offs"
    passed_over = [w for w in waits if w > 2 * (threads_n - 1)]
    assert len(passed_over) < 0.03 * len(waits), (
        f"{len(passed_over)} of {len(waits)} waits outlasted over {2 * (threads_n - 1)} holds "
        f"of others (the longest {max(waits)})"
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_child_forked_while_threads_queue_for_turns_takes_turns_of_its_own(make_pool, tmp_path):
    # At a fork some parent thread is nearly always in the turn queue, waiting for the GIL:
    # the child must not inherit its place (nobody would ever leave it), or the child's first
    # turn waits for good.
    pool = make_pool(readers=2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            pool.fetchone("SELECT 1")

    def child() -> None:
        fresh = make_pool(tmp_path / "child.db", readers=1)
        helper = threading.Thread(target=lambda: [fresh.fetchone("SELECT 1") for _ in range(2000)])
        helper.start()
        ended = time.monotonic() + 0.1  # several turns' worth
        while time.monotonic() < ended:
            fresh.fetchone("SELECT 1")
        helper.join()

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            time.sleep(0.02)
            assert wait_child(fork_child(child), 20) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
