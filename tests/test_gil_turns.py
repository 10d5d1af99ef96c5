"""GIL turns: a thread that checks out a reader gives the GIL to a thread waiting for it,
about once a millisecond, and never while it holds the writer.

CPython asks a thread for a contended GIL only every switch interval; these tests make that
interval endless, so another thread can run only when a fastpool turn hands the GIL over. No
assertion is about speed: each counts what the other thread got done before a bounded loop
of calls ended. A free-threaded build has no GIL to hand over (and nothing to wait for).
"""

from __future__ import annotations

import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytestmark = pytest.mark.skipif(
    bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason="a free-threaded build: threads run without turns",
)

CAP = 3_000_000  # point reads: seconds of them here, far beyond a few milliseconds of turns


@contextmanager
def endless_switch_interval() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def start_waiting_thread(target) -> tuple[threading.Thread, threading.Event]:
    """A thread parked on an event: once set, it needs the GIL this thread keeps."""
    go = threading.Event()

    def run() -> None:
        go.wait()
        target()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)  # parked in go.wait(), not still starting up
    return thread, go


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
