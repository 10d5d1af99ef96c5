"""Two builds of fastpool side by side: which SQLite, and which compile options, cost what.

Each build lives in its own environment (its own Python), so the builds cannot share a
process. This script starts one worker process per build and has them take turns, workload
by workload and round by round (the order rotated every round), so both see the same machine
seconds apart. Results: medians over rounds, and the median of the per-round ratios.

    # one venv per build, both from the same checkout
    python -m venv ../v-sys && ../v-sys/bin/pip install .
    scripts/fetch-amalgamation.sh build/sqlite-amalgamation
    python -m venv ../v-bun
    FASTPOOL_SQLITE_AMALGAMATION=build/sqlite-amalgamation ../v-bun/bin/pip install .
    python bench/sqlite_builds.py bundled=../v-bun/bin/python system=../v-sys/bin/python

The first build named is the reference of the ratios. The workloads reuse the comparison
runner's database, seeded work lists, systems and thread runner (``fastpool._bench``):

- ``reads1`` / ``reads4``: ``pool.fetchone`` point selects by primary key, 1 and 4 threads;
- ``execute1``: single-row INSERT transactions as one-shot ``pool.execute``, 1 thread;
- ``writer1``: single-row INSERTs as ``with pool.writer() as w: w.execute(...)``, 1 thread;
- ``join1``: ``pool.fetchall`` of a join + GROUP BY over 3,000 joined rows, 1 thread.

Used in docs/sqlite-build.md ("Could a wheel use the interpreter's SQLite?").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

#: (key, workload of fastpool._bench.workloads it is derived from, workers, system)
WORKLOADS = [
    ("reads1", "reads1", 1, "fastpool"),
    ("reads4", "reads4", 4, "fastpool"),
    ("execute1", "writers8", 1, "fastpool-execute"),
    ("writer1", "writers8", 1, "fastpool"),
    ("join1", "join4", 1, "fastpool"),
]


# -- the worker: one process per build -------------------------------------------------------------


def _worker(rows: int) -> None:
    """Answer one JSON line per request on stdin: run that workload once (after a discarded
    warm-up) on a fresh copy of the database, with this environment's fastpool."""
    import fastpool
    from fastpool._bench import data, rounds, systems, workloads

    class FastpoolExecute(systems.FastpoolSync):
        """Writes as one-shot ``pool.execute``: checkout, statement (its own transaction)
        and return in one call."""

        name = "fastpool-execute"

        def thread_ops(self) -> systems.Ops:
            ops = super().thread_ops()
            execute = self.pool.execute

            def insert(row: tuple[str, str, float]) -> None:
                execute(data.INSERT, row)

            return dataclasses.replace(ops, insert=insert)

    kinds = {"fastpool": systems.FastpoolSync, "fastpool-execute": FastpoolExecute}
    chosen = {
        key: (dataclasses.replace(workloads.WORKLOADS[base], key=key, workers=n), kinds[system])
        for key, base, n, system in WORKLOADS
    }
    options = fastpool.sqlite_compile_options()
    hello = {
        "python": platform.python_version(),
        "sqlite": fastpool.sqlite_version(),
        "threadsafe": next((o for o in options if o.startswith("THREADSAFE=")), "?"),
        "options": len(options),
    }
    print(json.dumps(hello), flush=True)
    with tempfile.TemporaryDirectory(prefix="fastpool-builds-") as tmp:
        template = data.make_database(os.path.join(tmp, "template.db"), rows)
        for line in sys.stdin:
            request = json.loads(line)
            w, kind = chosen[request["workload"]]
            path = os.path.join(tmp, f"{w.key}.db")
            shutil.copyfile(template, path)
            system = kind()
            keeper = data.Keeper(path, system.keeper_connect if system.private_database else None)
            system.open(path)
            try:
                work = [w.work(i, rows) for i in range(w.workers)]
                rounds.ThreadedRound(system, w.op, work).go(request["warmup"])
                keeper.reset()
                result = rounds.ThreadedRound(system, w.op, work).go(request["duration"])
            finally:
                system.close()
                keeper.close()
            for name in os.listdir(tmp):
                if name.startswith(f"{w.key}.db"):
                    os.remove(os.path.join(tmp, name))
            print(json.dumps({"metric": result[w.metric], **result}), flush=True)


# -- the runner ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("builds", nargs="*", metavar="NAME=PYTHON", help="two or more builds")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=1.0, help="seconds per build per round")
    p.add_argument("--warmup", type=float, default=0.2, help="seconds of the discarded warm-up")
    p.add_argument("--rows", type=int, default=data_rows())
    p.add_argument("--only", help="comma-separated workloads (default: all)")
    p.add_argument("--json", metavar="PATH", help="save every round's numbers")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.rows)
        return 0
    builds = dict(b.split("=", 1) for b in args.builds)
    if len(builds) < 2:
        p.error("name at least two builds, as NAME=PYTHON")
    keys = args.only.split(",") if args.only else [w[0] for w in WORKLOADS]
    procs, hello = {}, {}
    for name, python in builds.items():
        procs[name] = subprocess.Popen(
            [python, os.path.abspath(__file__), "--worker", "--rows", str(args.rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello[name] = json.loads(procs[name].stdout.readline())
        print(f"{name}: {hello[name]}", file=sys.stderr)
    names = list(builds)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {k: {n: [] for n in names} for k in keys}
    try:
        for number in range(args.rounds):
            for key in keys:
                shift = number % len(names)
                for name in names[shift:] + names[:shift]:
                    request = {"workload": key, "duration": args.duration, "warmup": args.warmup}
                    procs[name].stdin.write(json.dumps(request) + "\n")
                    procs[name].stdin.flush()
                    result = json.loads(procs[name].stdout.readline())
                    runs[key][name].append(result)
                    print(
                        f"[{key} {number + 1}] {name:<10} {result['metric']:>10,.0f}/s",
                        file=sys.stderr,
                    )
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    print(report(runs, names, hello, args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"builds": hello, "runs": runs, "rounds": args.rounds, "duration_s": args.duration},
                f,
                indent=1,
            )
    return 0


def data_rows() -> int:
    return 10_000  # data.ROWS; not imported here, so the runner needs no fastpool


def report(
    runs: dict[str, dict[str, list[dict[str, float]]]],
    names: list[str],
    hello: dict[str, Any],
    args: argparse.Namespace,
) -> str:
    """A markdown table: the median per build, and each build's median per-round ratio to
    the first build."""
    ref = names[0]
    head = ["workload", *(f"{n} ({hello[n]['sqlite']}) /s" for n in names)]
    head += [f"{n} ÷ {ref}" for n in names[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, per in runs.items():
        medians = [statistics.median(r["metric"] for r in per[n]) for n in names]
        ratios = [
            statistics.median(
                a["metric"] / b["metric"] for a, b in zip(per[n], per[ref], strict=True)
            )
            for n in names[1:]
        ]
        lines.append(
            "| "
            + " | ".join([key, *(f"{m:,.0f}" for m in medians), *(f"{r:.2f}" for r in ratios)])
            + " |"
        )
    lines.append("")
    lines.append(
        f"{args.rounds} rounds x {args.duration} s per build, interleaved (order rotated each "
        f"round); medians; ratios are medians of per-round ratios. Python {hello[ref]['python']}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average at the end: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
