"""What the pytest-benchmark suites add to the harness (``fastpool._bench``): how much to run,
rounds timed through ``benchmark.pedantic``, contestants side by side, and the summaries.

The database, the contestants (``fastpool._bench.systems``), the workloads and the thread
runner (``fastpool._bench.rounds.ThreadedRound``) are the ones ``python -m fastpool bench``
uses; only the glue to pytest-benchmark lives here.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastpool._bench.rounds import ThreadedRound
from fastpool._bench.suite import median_summary

#: Key prefix of results measured with ``interleaved`` (contestants side by side).
SIDE_BY_SIDE = "side-by-side"


def scale_factor(benchmark: Any = None) -> float:
    """How much of the full operation counts to run.

    ``FASTPOOL_BENCH_SCALE`` wins when set; otherwise 1.0, or 0.01 when pytest-benchmark is
    disabled (``--benchmark-disable``: the suites only have to run, not to measure).
    """
    env = os.environ.get("FASTPOOL_BENCH_SCALE")
    if env:
        return float(env)
    if benchmark is not None and getattr(benchmark, "disabled", False):
        return 0.01
    return 1.0


def scaled(count: int, factor: float, minimum: int = 10) -> int:
    return max(minimum, int(count * factor))


def rounds_for(benchmark: Any, default: int) -> int:
    env = os.environ.get("FASTPOOL_BENCH_ROUNDS")
    if env:
        return max(1, int(env))
    return 1 if getattr(benchmark, "disabled", False) else default


def run_rounds(
    benchmark: Any, rounds: int, make_round: Callable[[], ThreadedRound]
) -> list[dict[str, float]]:
    """Time ``rounds`` rounds with ``benchmark.pedantic`` (threads are started in the untimed
    setup and released by the timed target) and return every round's result."""
    results: list[dict[str, float]] = []

    def setup() -> tuple[tuple[ThreadedRound], dict[str, Any]]:
        return (make_round(),), {}

    def target(rnd: ThreadedRound) -> None:
        results.append(rnd.go())

    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
    return results


def interleaved(
    benchmark: Any, rounds: int, contestants: dict[str, Callable[[], Any]]
) -> dict[str, list[Any]]:
    """Side by side: each ``benchmark.pedantic`` round runs every contestant once, in an order
    rotated from round to round, so that all of them see the same machine (a noisy neighbour,
    a frequency change) in equal measure. Returns each contestant's results, round by round."""
    results: dict[str, list[Any]] = {name: [] for name in contestants}
    order = list(contestants)

    def one_round() -> None:
        for name in order:
            results[name].append(contestants[name]())
        order.append(order.pop(0))

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=0, iterations=1)
    return results


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` wrapped to return how long one call took, in seconds."""

    def run() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return run


def batch_summary(durations: Sequence[float], batch: int) -> dict[str, Any]:
    """Per-operation cost from the durations of calls that each ran ``batch`` operations."""
    median = statistics.median(durations)
    return {
        "ops_per_call": batch,
        "rounds": len(durations),
        "ns_per_op": round(median / batch * 1e9, 1),
        "ops_per_s": round(batch / median),
    }


def summarize(rounds: Sequence[dict[str, float]], threads: int) -> dict[str, Any]:
    """Medians over rounds (``ThreadedRound.go`` results): ops/s, commits/s, and read/write
    latency p50/p99/p99.9 in microseconds (each round's percentile, then the median of
    those), the largest latency of any round, plus total commits and lock errors."""
    med = median_summary(list(rounds))
    out: dict[str, Any] = {
        "threads": threads,
        "rounds": len(rounds),
        "ops_per_round": int(rounds[0]["ops"]),
        "ops_per_s": med.get("ops_per_s", float("nan")),
        "ops_per_s_rounds": [round(r["ops_per_s"]) for r in rounds],
        "commits_per_s": med.get("commits_per_s", float("nan")),
        "commits": int(med["commits"]),
        "locked_errors": int(med["errors"]),
    }
    for kind in ("read", "write"):
        for label in ("p50", "p99", "p999"):
            key = f"{kind}_{label}_us"
            if key in med:
                out[key] = med[key]
        maxima = [r[f"{kind}_max_us"] for r in rounds if f"{kind}_max_us" in r]
        if maxima:
            out[f"{kind}_max_us"] = max(maxima)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
