"""Make the last stage of interpreter exit last long enough to be met.

A daemon thread that wakes late in Py_FinalizeEx, after CPython has torn down the
interpreter's thread bookkeeping, crashes if it takes the GIL the wrong way
(PyGILState_Ensure). That stage normally lasts well under a millisecond, so such a crash
shows as a rare flake. A C function registered with Py_AtExit runs in exactly that stage;
one that sleeps there lets every thread whose timer fires meanwhile meet it, so a child
process exits cleanly only if no thread of ours does that.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = """
#include <time.h>
void fp_test_linger_at_exit(void) {
    struct timespec ts = {0, %d};
    nanosleep(&ts, NULL);
}
"""


def build(directory: Path, linger_s: float = 0.3) -> Path:
    """Compile the lingering exit function into a shared library in ``directory``."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler (`cc`) on PATH; the exit tests build a tiny library with it")
    src = directory / "linger.c"
    lib = directory / "linger.so"
    src.write_text(SOURCE % int(linger_s * 1e9))
    res = subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", str(src), "-o", str(lib)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return lib


def prelude(lib: Path) -> str:
    """Python code for the child: register the lingering function with Py_AtExit."""
    return (
        "import ctypes\n"
        f"_linger = ctypes.CDLL({str(lib)!r})\n"
        "ctypes.pythonapi.Py_AtExit.argtypes = [ctypes.c_void_p]\n"
        "assert ctypes.pythonapi.Py_AtExit("
        "ctypes.cast(_linger.fp_test_linger_at_exit, ctypes.c_void_p)) == 0\n"
    )
