"""``python -m fastpool bench``: fastpool side by side with the other ways Python programs use
SQLite concurrently (see docs/benchmarks.md).

Progress lines go to stderr, the markdown report to stdout; ``--json`` saves the results,
``--plot`` draws PNG charts, ``--from-json`` renders a saved run again, ``--docs`` refreshes
docs/benchmark-results.{md,json}, docs/img/*.png and README's table from a checkout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
from typing import Any

from . import report
from .suite import Config, Runner
from .systems import SYSTEMS
from .workloads import WORKLOADS

FULL: dict[str, Any] = {"rounds": 5, "duration": 1.0, "warmup": 0.2}
QUICK: dict[str, Any] = {"rounds": 3, "duration": 0.25, "warmup": 0.05}

#: Where ``--docs`` writes, relative to the repository root (the current directory).
DOCS_JSON = "docs/benchmark-results.json"
DOCS_MD = "docs/benchmark-results.md"
DOCS_IMG = "docs/img"
README = "README.md"
README_START = "<!-- benchmark-results:start -->"
README_END = "<!-- benchmark-results:end -->"


def _names(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(known)} (comma-separated; --list shows them)"
        )
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastpool bench",
        description="Compare fastpool with sqlite3, a queue.Queue pool, SQLAlchemy's QueuePool, "
        "DBUtils, apsw, aiosqlite and aiosqlitepool on one database, systems interleaved "
        "round by round. Progress on stderr, a markdown report on stdout.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds of 0.25 s per system (about a minute) instead of 5 of 1 s",
    )
    p.add_argument(
        "--only",
        type=lambda t: _names(t, WORKLOADS, "workload"),
        metavar="W,W",
        help="run only these workloads (comma-separated)",
    )
    p.add_argument(
        "--systems",
        type=lambda t: _names(t, SYSTEMS, "system"),
        metavar="S,S",
        help="run only these systems (comma-separated)",
    )
    p.add_argument("--rounds", type=int, help="rounds per workload (default 5, quick 3)")
    p.add_argument(
        "--duration", type=float, help="seconds per system per round (default 1.0, quick 0.25)"
    )
    p.add_argument("--warmup", type=float, help="seconds of the discarded warm-up round")
    p.add_argument("--rows", type=int, default=10_000, help="users in the database (10,000)")
    p.add_argument(
        "--dir",
        help="directory for the database files (default: the system temp "
        "directory; its filesystem matters)",
    )
    p.add_argument("--json", metavar="PATH", help="save the results as JSON")
    p.add_argument("--markdown", metavar="PATH", help="save the markdown report")
    p.add_argument("--plot", metavar="DIR", help="write PNG charts there (needs matplotlib)")
    p.add_argument(
        "--docs",
        action="store_true",
        help=f"from a checkout's root: write {DOCS_JSON}, {DOCS_MD}, {DOCS_IMG}/*.png "
        f"and the results block of {README}",
    )
    p.add_argument(
        "--from-json",
        metavar="PATH",
        help="render a saved run (with --markdown/--plot/--docs) instead of running",
    )
    p.add_argument("--list", action="store_true", help="list the workloads and systems")
    return p


def _config(args: argparse.Namespace) -> Config:
    preset = QUICK if args.quick else FULL
    return Config(
        workloads=args.only or tuple(WORKLOADS),
        systems=args.systems or tuple(SYSTEMS),
        rounds=args.rounds if args.rounds is not None else preset["rounds"],
        duration=args.duration if args.duration is not None else preset["duration"],
        warmup=args.warmup if args.warmup is not None else preset["warmup"],
        rows=args.rows,
        directory=args.dir,
    )


#: Options that only say where the output goes: left out of the recorded command.
_OUTPUT_OPTIONS = {"--json": 1, "--markdown": 1, "--plot": 1, "--docs": 0}


def reproduce(argv: list[str]) -> str:
    """The command that reproduces a run's numbers: ``argv`` without the output options
    (which also keeps this machine's paths out of saved results)."""
    kept, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in _OUTPUT_OPTIONS:
            skip = _OUTPUT_OPTIONS[name] if "=" not in arg else 0
            continue
        kept.append(shlex.quote(arg))
    return " ".join(["python -m fastpool bench", *kept])


def update_readme(path: str, results: dict[str, Any], images: str) -> bool:
    """Replace README's block between the benchmark markers; False when it has none."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    meta, cfg = results.get("meta", {}), results["config"]
    mach = meta.get("machine", {})
    block = [
        README_START,
        "",
        f"`{meta.get('command', 'python -m fastpool bench')}` — {meta.get('started', '?')}, "
        f"{mach.get('cpu', '?')}, {mach.get('cpus_usable', '?')} CPU(s), {mach.get('os', '?')}, "
        f"{mach.get('python', '?')}; load average before/after: {meta.get('load_before')} / "
        f"{meta.get('load_after')}; {cfg['rounds']} rounds x {cfg['duration_s']} s per system, "
        "interleaved, medians.",
        "",
        report.summary_table(results),
        "",
        "Ratios are medians of per-round ratios (each round runs both systems seconds apart), so "
        "on a noisy machine they can differ from the ratio of the two medians.",
        "",
        f"![throughput]({images}/overview.png)",
        "",
        f"![latency]({images}/latency-overview.png)",
        "",
        f"Every system and every percentile: [{DOCS_MD}]({DOCS_MD}) "
        f"(raw numbers: [{DOCS_JSON}]({DOCS_JSON})).",
        "",
        README_END,
    ]
    text = text[:start] + "\n".join(block) + text[end + len(README_END) :]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    """Run (or re-render) the comparison; returns the process exit status."""
    p = parser()
    args = p.parse_args(argv)
    if args.list:
        print(report.listing())
        return 0
    if args.docs:
        if not (os.path.isfile(README) and os.path.isdir("docs")):
            p.error(
                "--docs writes into a checkout: run it from the repository root "
                "(where README.md and docs/ are)"
            )
        args.json = args.json or DOCS_JSON
        args.markdown = args.markdown or DOCS_MD
        args.plot = args.plot or DOCS_IMG
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error(
                "--plot needs matplotlib: python -m pip install matplotlib "
                "(or install fastpool's 'bench' extra)"
            )

    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            results = json.load(f)
        results["acceptance"] = report.acceptance(results)  # as this version checks them
        if args.json and os.path.abspath(args.json) != os.path.abspath(args.from_json):
            _write(args.json, json.dumps(results, indent=1) + "\n")
    else:
        try:
            config = _config(args)
            runner = Runner(config)
        except ValueError as exc:
            p.error(str(exc))
        started = datetime.datetime.now(datetime.timezone.utc)
        load_before = report.load_average()
        print(
            f"fastpool bench: {len(config.workloads)} workload(s), {config.rounds} round(s) of "
            f"{config.duration} s per system; progress below, report on stdout",
            file=sys.stderr,
        )
        results = runner.run()
        results["meta"] = {
            "command": reproduce(argv if argv is not None else sys.argv[2:]),
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "load_before": load_before,
            "load_after": report.load_average(),
            "machine": report.machine(args.dir or tempfile.gettempdir()),
            "versions": report.versions(),
        }
        results["acceptance"] = report.acceptance(results)
        if args.json:
            _write(args.json, json.dumps(results, indent=1) + "\n")

    images = None
    if args.plot:
        from .plot import plot

        written = plot(results, args.plot)
        print(f"wrote {len(written)} chart(s) to {args.plot}", file=sys.stderr)
        if args.markdown:
            images = os.path.relpath(args.plot, os.path.dirname(os.path.abspath(args.markdown)))
    text = report.markdown(results, images=images)
    print(text)
    if args.markdown:
        _write(args.markdown, text + "\n")
    if args.docs:
        if update_readme(README, results, DOCS_IMG):
            print(f"updated the benchmark block of {README}", file=sys.stderr)
        else:
            print(
                f"{README} has no {README_START} ... {README_END} block: not updated",
                file=sys.stderr,
            )
    failed = [w for w, r in results["workloads"].items() if not r.get("check", {"ok": True})["ok"]]
    return 1 if failed else 0
