"""Build and run tests/c/stress_xlock.c: the cross-process writer lock (csrc/fp_xlock.c and
csrc/fp_xlock_file.c) with forked processes, under AddressSanitizer and
UndefinedBehaviorSanitizer (ThreadSanitizer does not follow memory shared between processes).

Independent of the fastpool package. FP_STRESS_SCALE multiplies the iteration count
(default 1: 4 processes x 20,000 lock/unlock; FASTPOOL_LONG=1: x10).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = [CSRC / "fp_xlock.c", CSRC / "fp_xlock_file.c", ROOT / "tests" / "c" / "stress_xlock.c"]
SCALE = os.environ.get("FP_STRESS_SCALE", "10" if os.environ.get("FASTPOOL_LONG") == "1" else "1")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fp_xlock is Linux-only")
def test_xlock_across_processes_under_asan_and_ubsan(tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail(
            "no C compiler: `cc` is not on PATH (e.g. `apt-get install gcc`)", pytrace=False
        )
    exe = tmp_path / "stress_xlock"
    cmd = [
        cc,
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-g",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        f"-I{CSRC}",
        *map(str, SOURCES),
        "-o",
        str(exe),
    ]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stderr}"
    res = subprocess.run(
        [str(exe), str(tmp_path / "lockfile"), SCALE], capture_output=True, text=True, timeout=600
    )
    report = f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.returncode == 0, report
    assert "Sanitizer" not in res.stderr and "runtime error" not in res.stderr, report
    assert "all checks passed" in res.stdout, report
