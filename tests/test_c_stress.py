"""Build and run the C concurrency stress tests (csrc/ + tests/c/).

The stress program is compiled with ThreadSanitizer, once against the Linux
futex backend of fp_park and once against the pthread condition-variable
fallback (-DFP_PARK_FORCE_CONDVAR), and must exit 0 without any
ThreadSanitizer report.  A clang build runs too when clang is installed.

Deliberately independent of the fastpool package: nothing here imports it.
Run size: FP_STRESS_SCALE (default below) multiplies every operation count.
"""

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
LIB_SOURCES = sorted(CSRC.glob("*.c"))
STRESS_SOURCE = ROOT / "tests" / "c" / "stress_slots.c"
NOTIFY_SOURCE = ROOT / "tests" / "c" / "stress_notify.c"
ASYNC_SOURCE = ROOT / "tests" / "c" / "stress_async.c"
BATCH_SOURCE = ROOT / "tests" / "c" / "stress_batch.c"
CLAIM_SOURCE = ROOT / "tests" / "c" / "stress_claim.c"

# Keeps the whole module well under 30 s on 2 cores (the full scale=1 run
# takes ~14 s per TSan build there); raise it locally for longer soaks.
DEFAULT_SCALE = {"cc": "0.4", "clang": "0.2"}

TSAN_FLAGS = ["-fsanitize=thread", "-O1", "-g", "-pthread"]
WARN_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]

# Newer kernels randomise mmap more than older TSan runtimes expect; they
# then abort at start-up with this message.  Retrying without ASLR is the
# documented workaround and does not weaken the test.
TSAN_MAPPING_ERROR = "unexpected memory mapping"


def _require_cc() -> str:
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail(
            "no C compiler: `cc` is not on PATH. The C stress tests need gcc "
            "(e.g. `apt-get install gcc`); they are not optional.",
            pytrace=False,
        )
    return cc


def _compile(compiler: str, out: Path, flags: list[str], sources: list[Path]) -> None:
    cmd = [compiler, *WARN_FLAGS, *flags, f"-I{CSRC}", *map(str, sources), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (
        f"compilation failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout}{res.stderr}"
    )


def _run_stress(exe: Path, scale: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # Our own options, not whatever the caller exported (report_bugs=0 etc.).
    env["TSAN_OPTIONS"] = "halt_on_error=0 exitcode=66 second_deadlock_stack=1"
    cmd = [str(exe), scale]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    setarch = shutil.which("setarch")
    if res.returncode != 0 and TSAN_MAPPING_ERROR in res.stderr and setarch:
        cmd = [setarch, platform.machine(), "-R", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    return res


VARIANTS = [
    pytest.param("cc", [], id="cc-futex"),
    pytest.param("cc", ["-DFP_PARK_FORCE_CONDVAR"], id="cc-condvar"),
    pytest.param("clang", [], id="clang-futex"),
    pytest.param("clang", ["-DFP_PARK_FORCE_CONDVAR"], id="clang-condvar"),
]


def _compiler(name: str) -> str:
    if name == "cc":
        return _require_cc()
    compiler = shutil.which(name)
    if compiler is None:
        pytest.skip(f"{name} not installed (the cc builds are the required ones)")
    return compiler


# Each stress program, with the lines its output must contain besides "all checks passed".
PROGRAMS = [
    # fp_slots over fp_ring and fp_park: no slot lost or handed out twice, strict FIFO.
    pytest.param(STRESS_SOURCE, [], id="slots"),
    # fp_notify: producers ping-pong with one consumer; no lost wake-up, no race.
    pytest.param(NOTIFY_SOURCE, ["unit: ok"], id="notify"),
    # fp_async: completion queue and async slot waiters; no lost item, grant or slot.
    pytest.param(ASYNC_SOURCE, ["queue:", "waiters:"], id="async"),
    # fp_batch: group commit's queue; one leader at a time, every job done or cancelled once.
    pytest.param(BATCH_SOURCE, ["stress_batch:"], id="batch"),
    # fp_claim: a connection's holder and the snapshot sweep; never two claimants at once,
    # a holder never refused by a sweep (it waits that out).
    pytest.param(CLAIM_SOURCE, ["unit: ok", "stress_claim:"], id="claim"),
]


@pytest.mark.parametrize("source, markers", PROGRAMS)
@pytest.mark.parametrize("compiler_name, defines", VARIANTS)
def test_stress_program_under_tsan(source, markers, compiler_name, defines, tmp_path):
    compiler = _compiler(compiler_name)
    exe = tmp_path / source.stem
    _compile(compiler, exe, [*TSAN_FLAGS, *defines], [*LIB_SOURCES, source])
    res = _run_stress(exe, os.environ.get("FP_STRESS_SCALE", DEFAULT_SCALE[compiler_name]))
    report = (
        f"exit code {res.returncode}\n--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}"
    )
    assert res.returncode == 0, report
    assert "ThreadSanitizer" not in res.stderr, report
    for marker in [*markers, "all checks passed"]:
        assert marker in res.stdout, report
    if source == STRESS_SOURCE:  # it says which park backend it ran on
        assert ("condvar fallback" if defines else "futex") in res.stdout, report


@pytest.mark.parametrize("compiler_name", ["cc", "clang"])
def test_csrc_builds_warning_free(compiler_name, tmp_path):
    """Library sources compile with -Wall -Wextra -Werror -pedantic, both backends."""
    compiler = _compiler(compiler_name)
    for defines in ([], ["-DFP_PARK_FORCE_CONDVAR"]):
        for src in LIB_SOURCES:
            obj = tmp_path / (src.stem + ".o")
            cmd = [
                compiler,
                *WARN_FLAGS,
                "-pedantic",
                "-O2",
                *defines,
                "-c",
                str(src),
                "-o",
                str(obj),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
