"""Run the workloads: every system on the same database, interleaved round by round.

For each workload: one database (a copy of a template made once per run), shared by all its
systems; every system opened once; one short warm-up round each (discarded); then ``rounds``
rounds, in each of which every system runs once, the order rotated from round to round
(A B C, B C A, C A B, ...), with the WAL checkpointed and rewound between two turns so each
turn starts from the same state. Results are medians over rounds; ratios to the workload's
baseline are the median of the per-round ratios (each pairs two turns run seconds apart).
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data import ROWS, Keeper, make_database
from .rounds import ThreadedRound, async_round, checkout_round
from .systems import SYSTEMS, System
from .workloads import WORKLOADS, Workload, check_writes

#: Result keys summed over rounds, and the worst single operations: the largest over rounds
#: (the others are medians).
_SUMMED = {"ops", "commits", "errors"}
_WORST = {"read_max_us", "write_max_us"}


@dataclass
class Config:
    """What to run, and how long."""

    workloads: Sequence[str] = tuple(WORKLOADS)
    systems: Sequence[str] = tuple(SYSTEMS)
    rounds: int = 5
    duration: float = 1.0  # seconds per system per round
    warmup: float = 0.2  # seconds of the discarded warm-up round
    rows: int = ROWS
    directory: str | None = None
    progress: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))

    def check(self) -> None:
        """Raise ValueError for settings that cannot run."""
        unknown = [w for w in self.workloads if w not in WORKLOADS]
        if unknown:
            raise ValueError(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown system(s) {unknown}; choose from {list(SYSTEMS)}")
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1 (3 or more for meaningful medians)")
        if not (self.duration > 0 and self.warmup >= 0):
            raise ValueError("duration must be > 0 seconds and warmup >= 0 seconds")
        if self.rows < 1000:
            raise ValueError("rows must be at least 1000")


def median_summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Medians over rounds of every metric (sums for ops, commits and errors, the largest
    for the worst single operation)."""
    out: dict[str, float] = {}
    keys = dict.fromkeys(k for r in rounds for k in r)  # a short round may lack reads or writes
    for key in keys:
        values = [r[key] for r in rounds if key in r and not math.isnan(r[key])]
        if not values:
            continue
        if key in _SUMMED:
            out[key] = sum(values)
        elif key in _WORST:
            out[key] = max(values)
        else:
            out[key] = statistics.median(values)
    return out


def paired_ratio(
    rounds: list[dict[str, float]], base: list[dict[str, float]], metric: str
) -> float | None:
    """Median over rounds of ``rounds[i][metric] / base[i][metric]``."""
    pairs = [
        r[metric] / b[metric]
        for r, b in zip(rounds, base, strict=False)
        if b.get(metric) and not math.isnan(r.get(metric, math.nan))
    ]
    return statistics.median(pairs) if pairs else None


class Runner:
    """Runs a ``Config``; ``run()`` returns the results as a JSON-able dict."""

    def __init__(self, config: Config) -> None:
        config.check()
        self.config = config
        self.say = config.progress
        self.skipped: dict[str, str] = {}
        self.available: list[System] = []
        for name in config.systems:
            system = SYSTEMS[name]()
            reason = system.missing()
            if reason:
                self.skipped[name] = reason
            else:
                self.available.append(system)

    def run(self) -> dict[str, Any]:
        cfg = self.config
        for name, reason in self.skipped.items():
            self.say(f"skip {name}: {reason}")
        results: dict[str, Any] = {
            "config": {
                "workloads": list(cfg.workloads),
                "systems": list(cfg.systems),
                "rounds": cfg.rounds,
                "duration_s": cfg.duration,
                "warmup_s": cfg.warmup,
                "rows": cfg.rows,
            },
            "skipped": dict(self.skipped),
            "workloads": {},
        }
        started = time.perf_counter()
        loop = asyncio.new_event_loop()
        try:
            with tempfile.TemporaryDirectory(prefix="fastpool-bench-", dir=cfg.directory) as tmp:
                template = make_database(os.path.join(tmp, "template.db"), cfg.rows)
                for key in cfg.workloads:
                    began = time.perf_counter()
                    results["workloads"][key] = self.workload(
                        WORKLOADS[key], template, os.path.join(tmp, key), loop
                    )
                    results["workloads"][key]["elapsed_s"] = round(time.perf_counter() - began, 1)
                    for name in os.listdir(tmp):
                        if name.startswith(f"{key}."):
                            os.remove(os.path.join(tmp, name))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        results["elapsed_s"] = round(time.perf_counter() - started, 1)
        return results

    # -- one workload -----------------------------------------------------------------------------

    def workload(
        self, w: Workload, template: str, stem: str, loop: asyncio.AbstractEventLoop
    ) -> dict[str, Any]:
        """Run one workload on copies of ``template`` named ``stem.*``."""
        cfg = self.config
        systems = w.systems(self.available)
        out: dict[str, Any] = {
            "title": w.title,
            "what": w.what,
            "kind": w.kind,
            "workers": w.workers,
            "metric": w.metric,
            "unit": w.unit,
            "baseline": w.baseline,
            "order": [s.name for s in systems],
            "systems": {},
        }
        if not systems:
            self.say(f"[{w.key}] no installed system can run it: skipped")
            return out
        self.say(f"[{w.key}] {w.title}: {', '.join(s.name for s in systems)}")
        work = [w.work(i, cfg.rows) for i in range(w.workers)]
        rounds: dict[str, list[dict[str, float]]] = {s.name: [] for s in systems}
        errors: dict[str, str] = {}
        warm_commits: dict[str, int] = {s.name: 0 for s in systems}
        # One database for all systems, except one with a SQLite of its own (a copy for it).
        paths = {
            s.name: f"{stem}.{s.name}.db" if s.private_database else f"{stem}.db" for s in systems
        }
        keepers: dict[str, Keeper] = {}
        opened: list[System] = []
        try:
            for s in systems:
                path = paths[s.name]
                if path not in keepers:
                    shutil.copyfile(template, path)
                    keepers[path] = Keeper(path, s.keeper_connect if s.private_database else None)
                try:
                    if s.kind == "async":
                        loop.run_until_complete(s.aopen(path))
                    else:
                        s.open(path)
                    opened.append(s)
                except Exception as exc:
                    errors[s.name] = f"open failed: {exc!r}"
                    self.say(f"[{w.key}] {s.name}: {errors[s.name]}")
            running = list(opened)
            for number in range(cfg.rounds + 1):
                warm = number == 0
                shift = (number - 1) % len(running) if running and not warm else 0
                for s in running[shift:] + running[:shift]:
                    try:
                        result = self.turn(w, s, work, cfg.warmup if warm else cfg.duration, loop)
                        keepers[paths[s.name]].reset()
                    except Exception as exc:
                        # A system that fails (or leaves the database locked) is out of this
                        # workload; the others go on.
                        errors[s.name] = f"failed: {exc!r}"
                        self.say(f"[{w.key}] {s.name}: {errors[s.name]}")
                        continue
                    if warm:
                        warm_commits[s.name] += int(result.get("commits", 0))
                    else:
                        rounds[s.name].append(result)
                        self.say(self.progress_line(w, number, s.name, result))
                running = [s for s in running if s.name not in errors]
        finally:
            for s in opened:
                try:
                    if s.kind == "async":
                        loop.run_until_complete(s.aclose())
                    else:
                        s.close()
                except Exception as exc:
                    errors.setdefault(s.name, f"close failed: {exc!r}")
            try:
                if w.writes:
                    out["check"] = self.check(w, keepers, paths, rounds, warm_commits)
                out["checkpoint_busy"] = sum(k.checkpoint_busy for k in keepers.values())
            finally:
                for keeper in keepers.values():
                    keeper.close()

        base = rounds.get(w.baseline) if w.baseline not in errors else None
        if not base:
            out["baseline"] = None
        for s in systems:
            entry: dict[str, Any] = {"rounds": rounds[s.name]}
            if rounds[s.name] and s.name not in errors:
                entry["median"] = median_summary(rounds[s.name])
                entry["ratio"] = paired_ratio(rounds[s.name], base, w.metric) if base else None
            if s.name in errors:
                entry["error"] = errors[s.name]
            out["systems"][s.name] = entry
        return out

    def turn(
        self,
        w: Workload,
        s: System,
        work: list[list[Any]],
        duration: float,
        loop: asyncio.AbstractEventLoop,
    ) -> dict[str, float]:
        """One system's turn in one round."""
        if w.kind == "checkout":
            return checkout_round(s, duration, loop)
        if w.kind == "async":
            return loop.run_until_complete(async_round(s, w.op, work, duration))
        return ThreadedRound(s, w.op, work, timeout=120.0).go(duration)

    def check(
        self,
        w: Workload,
        keepers: dict[str, Keeper],
        paths: dict[str, str],
        rounds: dict[str, list[dict[str, float]]],
        warm_commits: dict[str, int],
    ) -> dict[str, Any]:
        """Every counted commit must be in the table, and nothing else (per database)."""
        rows, ok, details = self.config.rows, True, []
        for path, keeper in keepers.items():
            names = [name for name, p in paths.items() if p == path]
            commits = sum(
                warm_commits[n] + sum(int(r.get("commits", 0)) for r in rounds[n]) for n in names
            )
            good, detail = check_writes(w.op, commits, *keeper.count_and_scores(), rows)
            details.append(detail)
            if len(keepers) > 1:
                details[-1] += f" ({', '.join(names)})"
            ok = ok and good
        detail = "; ".join(details)
        if not ok:
            self.say(f"[{w.key}] CHECK FAILED: {detail}")
        return {"ok": ok, "detail": detail}

    @staticmethod
    def progress_line(w: Workload, number: int, name: str, r: dict[str, float]) -> str:
        text = f"[{w.key} {number}] {name:<18} {r[w.metric]:>12,.0f} {w.unit}"
        if "ns_per_op" in r:
            text += f"  {r['ns_per_op']:,.0f} ns/op"
        for kind in ("read", "write"):
            if f"{kind}_p99_us" in r:
                text += f"  {kind} p50/p99 {r[f'{kind}_p50_us']:,.0f}/{r[f'{kind}_p99_us']:,.0f} µs"
        if r.get("errors"):
            text += f"  errors {r['errors']:.0f}"
        return text
