"""Helpers for tests that watch who holds the GIL: with CPython's switch interval made endless,
another thread runs only when the running one releases the GIL itself."""

from __future__ import annotations

import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

needs_a_gil = pytest.mark.skipif(
    bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason="a free-threaded build: there is no GIL to hand over",
)


@contextmanager
def endless_switch_interval() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def start_waiting_thread(target: Callable[[], object]) -> tuple[threading.Thread, threading.Event]:
    """A thread parked on an event: once set, it needs the GIL this thread keeps."""
    go = threading.Event()

    def run() -> None:
        go.wait()
        target()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)  # parked in go.wait(), not still starting up
    return thread, go
