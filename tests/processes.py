"""Real child processes for the tests: fork one to run a function, or run Python code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable


def fork_child(fn: Callable[[], object]) -> int:
    """Fork; the child runs fn() and exits 0 when it returns, 1 when it raises. The child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int, timeout: float = 60) -> int:
    """The child's exit code; a child still running after timeout is killed, and that fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    stacks = _stacks_of(pid)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} still running after {timeout} s (hung)\n{stacks}")


def _stacks_of(pid: int) -> str:
    """Where a hung child is stuck, from gdb when the machine has it (else a note)."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(no gdb on this machine: no stacks of the hung child)"
    try:
        out = subprocess.run(
            [gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(gdb failed: {exc})"
    return out.stdout[-8000:]


def in_child(fn: Callable[[], object], timeout: float = 60) -> int:
    """Run fn() in a forked child and return its exit code (0 when fn returned)."""
    return wait_child(fork_child(fn), timeout)


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) in a fresh interpreter with args in sys.argv[1:]."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
