"""One process, one database file, fastpool's writers and a stdlib ``sqlite3`` user beside them.

    python tests/two_sqlite_scenario.py DB_PATH SECONDS [--one-liner]

3 threads insert rows through ``with pool.writer()`` while a 4th opens a ``sqlite3``
connection on the same file every 5 ms, counts the rows and closes it. With ``--one-liner``
the process first runs ``fastpool.install_as_sqlite3()``, so ``import sqlite3`` is fastpool's.
Prints one JSON line: rows acknowledged and found, reads that saw a malformed database, the
stdlib connections refused (fastpool.errors.SQLiteCopyError) and the SQLite version the
stdlib-side thread reported. A crash (SIGBUS) shows as the process's exit status.

Run by tests/test_sqlite_copies.py, and 20 times against the wheel by scripts/check-wheel.sh.
"""

from __future__ import annotations

import json
import sys
import threading
import time

if "--one-liner" in sys.argv:
    import fastpool

    fastpool.install_as_sqlite3()

import sqlite3

import fastpool
from fastpool import errors


def main() -> None:
    path, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    pool = fastpool.Pool(path, readers=2)
    pool.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v INTEGER)")
    acked = [0, 0, 0]
    out = {"malformed": 0, "refused": 0, "other_errors": [], "stdlib_version": None}

    def writer(k: int) -> None:
        while time.monotonic() < deadline:
            with pool.writer() as c:
                c.execute("INSERT INTO t(v) VALUES (?)", (k,))
            acked[k] += 1

    def stdlib_user() -> None:
        while time.monotonic() < deadline:
            try:
                conn = sqlite3.connect(path, timeout=5)
                try:
                    out["stdlib_version"] = sqlite3.sqlite_version
                    conn.execute("SELECT count(*) FROM t").fetchone()
                finally:
                    conn.close()
            except getattr(errors, "SQLiteCopyError", ()) as exc:  # noqa: F841
                out["refused"] += 1
            except Exception as exc:  # the stdlib's or fastpool's DatabaseError
                if "malformed" in str(exc):
                    out["malformed"] += 1
                elif len(out["other_errors"]) < 5:
                    out["other_errors"].append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.005)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=stdlib_user))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = pool.fetchone("SELECT count(*) FROM t")[0]
    out.update(
        acknowledged=sum(acked),
        found=found,
        integrity=pool.fetchone("PRAGMA integrity_check")[0],
        fastpool_version=fastpool.sqlite_version(),
    )
    pool.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
