#!/usr/bin/env bash
# ThreadSanitizer on the whole stack: a free-threaded CPython 3.13 built with
# --with-thread-sanitizer (clang), fastpool._core built against it with FASTPOOL_SANITIZE=thread,
# and the concurrency tests (TESTS below) run with the GIL off. Any ThreadSanitizer report, in
# the pytest process or in any process it starts, fails the run; the only suppressions are in
# scripts/tsan-suppressions.txt, each with its reason, and none of them names fastpool's code.
#
#   scripts/tsan-freethreaded.sh [pytest args...]     (default: TESTS below)
#
# The interpreter lives in $FASTPOOL_TSAN_PREFIX, else build/python3.13t-tsan (git-ignored),
# and is reused when it is already there (scripts/build-freethreaded-python.sh --tsan builds it:
# measured in docs/free-threading.md). fastpool is built in a scratch copy, as in
# scripts/asan-tests.sh, so the checkout's own build is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$SECONDS
prefix=${FASTPOOL_TSAN_PREFIX:-$root/build/python3.13t-tsan}
suppressions=$root/scripts/tsan-suppressions.txt

# The interpreter's own build runs the new binary (sysconfig, ensurepip): the same suppressions.
export TSAN_OPTIONS="suppressions=$suppressions"
python=$(scripts/build-freethreaded-python.sh --tsan "$prefix" | tail -n 1)
echo "interpreter ready after $((SECONDS - start)) s: $python" >&2

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
venv_python=$scratch/venv/bin/python
# Only what the chosen tests and the build import: no third-party C extension that was not
# built under TSan (uvloop, greenlet) enters the process, so every report is about code TSan saw.
"$venv_python" -m pip install -q --disable-pip-version-check \
    'pytest>=8' 'pytest-timeout>=2.3' 'Cython>=3.1' 'setuptools>=77'

cp -r setup.py pyproject.toml csrc src "$scratch"/
# The interpreter's compiler (clang, from its sysconfig) and its -fsanitize=thread; setup.py adds
# -fsanitize=thread, -O1 -g and the debug checks (C asserts, Cython bounds checks).
(cd "$scratch" && FASTPOOL_SANITIZE=thread "$venv_python" setup.py -q build_ext --inplace >/dev/null)
echo "fastpool built under TSan after $((SECONDS - start)) s" >&2

# The concurrency tests. test_async.py's uvloop cases are left out (uvloop is not instrumented).
TESTS=(
    tests/test_free_threading.py      # many threads on one pool, leases between threads, transfer stress
    tests/test_pool_concurrency.py    # checkout/return races, waiters, close under load
    tests/test_pool_snapshots.py      # kept snapshots: the sweep claiming readers in use, leases
    tests/test_gil.py                 # calls that release the GIL (here: run beside each other)
    tests/test_pool_lifecycle.py      # open/close/reopen while threads use the pool
    tests/test_shutdown.py            # interpreter exit with pools in use
    tests/test_async.py               # the async engine (worker threads, loop callbacks)
    tests/test_async_shutdown.py
    tests/test_async_chaos.py
    tests/test_async_writer_faults.py
    tests/test_group_commit.py        # the group-commit writer thread
    tests/test_pool_wal.py            # the WAL checkpointer thread beside readers and writers
    tests/test_hostile_xlock.py       # the cross-process writer lock, threads and processes
    tests/test_fork.py                # fork while other threads hold the pool
    tests/test_dbapi_sqlite3.py       # fastpool.dbapi's write turn between threads
)
if [ $# -eq 0 ]; then
    set -- "${TESTS[@]}" -k 'not uvloop'
fi

# log_path: every process writes its reports to its own file (pytest's capture would hide a
# report printed by a test that passes); exitcode: a process with a report exits 66 as well.
# halt_on_error=0 so that one run lists every report. die_after_fork=0: the fork tests start
# threads in a child forked from a threaded parent, which TSan otherwise refuses (exit 66);
# the children run under TSan too. PYTHON_GIL=0: nothing may turn the GIL on.
mkdir "$scratch/reports"
export TSAN_OPTIONS="suppressions=$suppressions exitcode=66 halt_on_error=0 die_after_fork=0 second_deadlock_stack=1 log_path=$scratch/reports/tsan"
export PYTHON_GIL=0
export PYTHONPATH="$scratch/src"
status=0
"$venv_python" -m pytest -p no:cacheprovider -q "$@" || status=$?

reports=$(cat "$scratch"/reports/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
if [ "$reports" -gt 0 ]; then
    cat "$scratch"/reports/tsan.* >&2
    echo "ThreadSanitizer: $reports report(s) (above)" >&2
    status=1
fi
echo "ThreadSanitizer: $reports report(s); pytest exit $status; $((SECONDS - start)) s in all" >&2
exit "$status"
