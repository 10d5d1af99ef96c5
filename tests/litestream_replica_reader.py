"""A replica host, run as its own process by tests/test_litestream_replica.py.

    LITESTREAM_REPLICA_URL=file:///... python tests/litestream_replica_reader.py

Opens a fastpool.ReplicaPool on its LITESTREAM_REPLICA_URL (the VFS reads it as the process
starts) and answers the commands it reads from stdin, one JSON line each, with one JSON line
on stdout each:
  {"op": "count", "until": N, "timeout": s}   waits until t holds exactly N rows; the wait
  {"op": "at_least", "position": P, "id": i}  reader(at_least=P): is row i there?
  {"op": "writes"}                             every write path: the errors raised
  {"op": "lag"}                                lag(), position() and stats()
  {"op": "async"}                              the same reads through AsyncReplicaPool
  {"op": "exit"}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import fastpool


def count_until(pool: fastpool.ReplicaPool, n: int, timeout: float) -> dict:
    t0 = time.monotonic()
    while True:
        got = pool.fetchone("SELECT count(*) FROM t")[0]
        if got == n or time.monotonic() - t0 > timeout:
            return {"count": got, "seconds": time.monotonic() - t0}
        time.sleep(0.02)


def writes(pool: fastpool.ReplicaPool) -> dict:
    out = {}
    attempts = {
        "execute": lambda: pool.execute("INSERT INTO t (id) VALUES (-1)"),
        "executemany": lambda: pool.executemany("INSERT INTO t (id) VALUES (?)", [(-1,)]),
        "writer": pool.writer,
        "transaction": pool.transaction,
        "fetchone_insert": lambda: pool.fetchone("INSERT INTO t (id) VALUES (-1) RETURNING id"),
        "reader_delete": lambda: pool.fetchall("DELETE FROM t"),
        "load_extension_sql": lambda: pool.fetchone("SELECT load_extension('x')"),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            out[name] = "no error"
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


async def async_reads(url: str) -> dict:
    async with fastpool.AsyncReplicaPool(url, readers=2) as apool:
        count = (await apool.fetchone("SELECT count(*) FROM t"))[0]
        rows = await apool.fetchall("SELECT id FROM t ORDER BY id LIMIT 3")
        async with apool.reader() as r:
            one = r.fetchone("SELECT 1")[0]
        try:
            await apool.execute("DELETE FROM t")
            refused = "no error"
        except fastpool.ReplicaReadOnlyError as exc:
            refused = type(exc).__name__
        return {
            "count": count,
            "rows": len(rows),
            "one": one,
            "refused": refused,
            "position": await apool.position(),
        }


def main() -> None:
    # The VFS's Go runtime logs to the process's stdout: the answers get a descriptor of their
    # own, and whatever else writes to stdout goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    url = os.environ["LITESTREAM_REPLICA_URL"]
    pool = fastpool.ReplicaPool(url, readers=3)
    print(json.dumps({"ready": True}), file=answers)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "exit":
            break
        if op == "count":
            answer = count_until(pool, cmd["until"], cmd["timeout"])
        elif op == "at_least":
            with pool.reader(at_least=cmd["position"], timeout=30) as r:
                found = r.fetchone("SELECT id FROM t WHERE id = ?", (cmd["id"],))
                answer = {"found": found is not None, "position": r.position()}
        elif op == "writes":
            answer = writes(pool)
        elif op == "lag":
            answer = {"lag": pool.lag(), "position": pool.position(), "stats": pool.stats()}
        elif op == "async":
            answer = asyncio.run(async_reads(url))
        else:
            answer = {"error": f"unknown op {op}"}
        print(json.dumps(answer), file=answers)
    pool.close()


if __name__ == "__main__":
    main()
