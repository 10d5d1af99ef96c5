#!/usr/bin/env python3
"""Run CPython's own sqlite3 test suite (Lib/test/test_sqlite3, unmodified) against
``fastpool.dbapi`` and compare with the stdlib on the same interpreter.

    python scripts/run-cpython-sqlite3-tests.py [--min-ratio 0.9] [--modules test_dbapi ...]
        [--show-failures] [--timeout 600]

Run it with the interpreter (or venv) that has fastpool installed. It finds the interpreter's
test_sqlite3 package (``import test.test_sqlite3``; an interpreter that ships no ``test``
package is skipped with a message and exit status 0), then runs each of its modules twice in
a child process of its own: once as is (the stdlib's baseline) and once with a shim
``sqlite3`` package first on ``sys.path`` whose modules only re-export ``fastpool.dbapi``.
It prints, per module, the tests the stdlib passes and how many of those pass on fastpool,
and fails (exit status 1) when that ratio is below ``--min-ratio`` or a child crashed or hung.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

# The shim: `import sqlite3` (and its submodules the tests import) gives fastpool.dbapi's
# names and nothing else.
SHIM_INIT = textwrap.dedent(
    """\
    from fastpool.dbapi import *  # noqa: F403
    from fastpool.dbapi import __getattr__  # noqa: F401  (version, version_info)
    """
)
SHIM_MAIN = textwrap.dedent(
    """\
    from fastpool.dbapi import main  # noqa: F401

    if __name__ == "__main__":
        main()
    """
)

# The child: runs one test module and writes one JSON line per test as it finishes, so the
# results of a child that crashes or hangs survive up to that point.
CHILD = textwrap.dedent(
    """\
    import json, sys, unittest

    out = open(sys.argv[2], "w", buffering=1)


    class Result(unittest.TextTestResult):
        def _put(self, test, outcome, detail=""):
            out.write(json.dumps({"id": test.id(), "outcome": outcome, "detail": detail}) + "\\n")

        def addSuccess(self, test):
            super().addSuccess(test)
            self._put(test, "pass")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._put(test, "fail", self._exc_info_to_string(err, test)[-2000:])

        def addError(self, test, err):
            super().addError(test, err)
            self._put(test, "error", self._exc_info_to_string(err, test)[-2000:])

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._put(test, "skip", reason)

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._put(test, "pass")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._put(test, "fail", "unexpected success")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                kind = "fail" if issubclass(err[0], test.failureException) else "error"
                self._put(test, kind, self._exc_info_to_string(err, test)[-2000:])


    import test.test_sqlite3
    suite = unittest.defaultTestLoader.loadTestsFromName("test.test_sqlite3." + sys.argv[1])
    runner = unittest.TextTestRunner(stream=open("/dev/null", "w"), resultclass=Result)
    runner.run(suite)
    """
)


def find_tests(python: str) -> str | None:
    code = "import os, test.test_sqlite3 as t; print(os.path.dirname(t.__file__))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().splitlines()[-1]


def run_module(python: str, module: str, shim: str | None, timeout: float, tmp: str) -> dict:
    """Run one module; returns {test id: (outcome, detail)} plus the child's fate."""
    out = os.path.join(tmp, f"{module}-{'shim' if shim else 'stdlib'}.jsonl")
    env = dict(os.environ)
    if shim:
        env["PYTHONPATH"] = shim + os.pathsep + env.get("PYTHONPATH", "")
    child = os.path.join(tmp, "child.py")
    fate = "ok"
    try:
        proc = subprocess.run(
            [python, child, module, out],
            env=env,
            cwd=tmp,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        if proc.returncode < 0:
            fate = f"crashed (signal {-proc.returncode})"
        elif proc.returncode != 0:
            fate = f"exit status {proc.returncode}: {proc.stderr.strip()[-800:]}"
    except subprocess.TimeoutExpired:
        fate = f"hung (killed after {timeout:.0f} s)"
    tests: dict[str, tuple[str, str]] = {}
    if os.path.exists(out):
        with open(out) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                prev = tests.get(rec["id"])
                # A test with a failing subtest and a later success record stays failed.
                if prev is None or prev[0] == "pass":
                    tests[rec["id"]] = (rec["outcome"], rec["detail"])
    return {"tests": tests, "fate": fate}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter to test with")
    ap.add_argument("--min-ratio", type=float, default=0.0)
    ap.add_argument("--modules", nargs="*", help="test modules (default: all)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per module")
    ap.add_argument("--show-failures", action="store_true", help="print each failure's reason")
    ap.add_argument("--json", help="write every test's outcome to this file")
    args = ap.parse_args()

    test_dir = find_tests(args.python)
    if test_dir is None:
        print(f"{args.python} ships no test.test_sqlite3 package: skipped")
        return 0
    modules = args.modules or sorted(
        name[:-3]
        for name in os.listdir(test_dir)
        if name.startswith("test_") and name.endswith(".py")
    )
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"CPython {version} test_sqlite3 ({test_dir}) against fastpool.dbapi")

    with tempfile.TemporaryDirectory(prefix="fastpool-sqlite3-shim-") as tmp:
        shim = os.path.join(tmp, "shim")
        pkg = os.path.join(shim, "sqlite3")
        os.makedirs(pkg)
        for name, text in (
            ("__init__.py", SHIM_INIT),
            ("dbapi2.py", SHIM_INIT),
            ("dump.py", SHIM_INIT),
            ("__main__.py", SHIM_MAIN),
        ):
            with open(os.path.join(pkg, name), "w") as f:
                f.write(text)
        with open(os.path.join(tmp, "child.py"), "w") as f:
            f.write(CHILD)

        header = f"{'module':<22}{'stdlib':>8}{'fastpool':>10}{'fail':>6}{'error':>7}{'skip':>6}"
        print(header)
        total_base = total_ok = 0
        broken = []
        report = {}
        for module in modules:
            base = run_module(args.python, module, None, args.timeout, tmp)
            mine = run_module(args.python, module, shim, args.timeout, tmp)
            passed_base = {t for t, (o, _) in base["tests"].items() if o == "pass"}
            outcomes = mine["tests"]
            ok = sum(1 for t in passed_base if outcomes.get(t, ("missing",))[0] == "pass")
            counts = {k: 0 for k in ("fail", "error", "skip")}
            for t in passed_base:
                o = outcomes.get(t, ("error", "did not run"))[0]
                if o in counts:
                    counts[o] += 1
                elif o != "pass":
                    counts["error"] += 1
            total_base += len(passed_base)
            total_ok += ok
            line = (
                f"{module:<22}{len(passed_base):>8}{ok:>10}"
                f"{counts['fail']:>6}{counts['error']:>7}{counts['skip']:>6}"
            )
            if mine["fate"] != "ok":
                line += f"  [{mine['fate'].splitlines()[0][:100]}]"
                if mine["fate"].startswith(("crashed", "hung")):
                    broken.append(f"{module}: {mine['fate']}")
            print(line, flush=True)
            report[module] = {t: outcomes.get(t, ("error", "did not run")) for t in passed_base}
            if args.show_failures:
                for t in sorted(passed_base):
                    o, detail = outcomes.get(t, ("error", "did not run"))
                    if o != "pass":
                        last = detail.strip().splitlines()[-1] if detail.strip() else ""
                        print(f"    {o:<5} {t.split('.', 3)[-1]}: {last[:160]}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)

    ratio = total_ok / total_base if total_base else 0.0
    print(f"{'total':<22}{total_base:>8}{total_ok:>10}   {ratio:.1%} of the stdlib's passes")
    status = 0
    if broken:
        print("crashed or hung: " + "; ".join(broken))
        status = 1
    if ratio < args.min_ratio:
        print(f"below the threshold: {ratio:.1%} < {args.min_ratio:.1%}")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
