#!/usr/bin/env python3
"""SQLAlchemy's dialect compliance suite on sqlite+fastpool(_async) beside the built-in drivers.

Runs ``sqlalchemy.testing.suite`` (tests/sqlalchemy_suite/: SQLAlchemy's pytest plugin, a
conftest registering the dialects, one requirements class for all) once per dialect in a
scratch directory, prints passed/failed/skipped for each and the tests whose outcome differs
from the built-in pysqlite dialect, and fails when a fastpool dialect passes fewer tests than
pysqlite does.

    python scripts/run-sqlalchemy-suite.py            # fastpool, fastpool_async, sqlite, aiosqlite
    python scripts/run-sqlalchemy-suite.py --only fastpool sqlite
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent / "tests" / "sqlalchemy_suite"
DIALECTS = ["fastpool", "fastpool_async", "sqlite", "aiosqlite"]
BASELINE = "sqlite"


def run(db: str, workdir: Path) -> tuple[dict[str, str], float]:
    """Run the suite for the ``[db]`` entry ``db``; each test's outcome and the run's seconds."""
    scratch = workdir / db
    shutil.copytree(SUITE, scratch)
    report = scratch / "report.xml"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--db", db, "-p", "no:warnings", f"--junitxml={report}"],
        cwd=scratch,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.monotonic() - started
    if not report.exists():
        raise SystemExit(f"{db}: pytest wrote no report (run it in {SUITE} to see why)")
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        # The class name carries the driver and SQLite version; the test's identity does not.
        cls = case.attrib["classname"].rsplit(".", 1)[-1].split("_sqlite+")[0]
        outcome = "passed"
        for child in case:
            if child.tag in ("error", "failure"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        outcomes[f"{cls}::{case.attrib['name']}"] = outcome
    return outcomes, elapsed


def count(outcomes: dict[str, str], what: str) -> int:
    return sum(1 for o in outcomes.values() if o == what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=DIALECTS, default=DIALECTS)
    args = parser.parse_args()
    wanted = list(dict.fromkeys([*args.only, BASELINE]))
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="sqlalchemy-suite-") as tmp:
        for db in wanted:
            results[db], elapsed = run(db, Path(tmp))
            r = results[db]
            print(
                f"{db:15} passed {count(r, 'passed'):5}  failed {count(r, 'failed'):4}  "
                f"skipped {count(r, 'skipped'):4}  ({elapsed:.0f} s)",
                flush=True,
            )
    base = results[BASELINE]
    status = 0
    for db in wanted:
        if not db.startswith("fastpool"):
            continue
        r = results[db]
        diff = sorted(t for t in set(base) | set(r) if base.get(t) != r.get(t))
        for t in diff:
            print(f"  {db} differs: {t}: {BASELINE} {base.get(t)}, {db} {r.get(t)}")
        if count(r, "passed") < count(base, "passed"):
            print(f"FAIL: {db} passes fewer tests than {BASELINE}")
            status = 1
    if "fastpool_async" in results and "aiosqlite" in results:
        a, b = results["fastpool_async"], results["aiosqlite"]
        for t in sorted(t for t in set(a) | set(b) if a.get(t) != b.get(t)):
            print(f"  fastpool_async differs: {t}: aiosqlite {b.get(t)}, fastpool_async {a.get(t)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
