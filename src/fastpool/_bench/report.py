"""What the runner prints and saves: the machine, the library versions, the markdown tables
and the acceptance lines of the Pool and AsyncPool issues, all from a results dict (so that
``--from-json`` renders a saved run exactly as the run itself did)."""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
import platform
import sqlite3
import statistics
from typing import Any

from .data import PRAGMAS
from .systems import SYSTEMS
from .workloads import WORKLOADS

#: Distributions whose versions the report prints.
PACKAGES = ("fastpool", "SQLAlchemy", "DBUtils", "apsw", "aiosqlite", "aiosqlitepool", "matplotlib")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _filesystem(path: str) -> str | None:
    """The filesystem type holding ``path`` (Linux, from /proc/mounts), e.g. ext4 or tmpfs."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    path = os.path.realpath(path)
    best = max(
        (m for m in mounts if len(m) > 2 and (path + "/").startswith(m[1].rstrip("/") + "/")),
        key=lambda m: len(m[1]),
        default=None,
    )
    return best[2] if best else None


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, when the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine(directory: str) -> dict[str, Any]:
    """Where the run happens: CPU, cores, memory, OS, Python, the database's filesystem."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "database_filesystem": _filesystem(directory),
    }


def versions() -> dict[str, Any]:
    """Library versions, and which SQLite library each system runs on."""
    out: dict[str, Any] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    sqlite = {"sqlite3 (stdlib, SQLAlchemy, DBUtils, aiosqlite)": sqlite3.sqlite_version}
    try:
        import fastpool

        sqlite["fastpool"] = fastpool.sqlite_version()
    except ImportError:
        pass
    try:
        apsw = importlib.import_module("apsw")
        sqlite["apsw"] = apsw.sqlite_lib_version()
    except ImportError:
        pass
    out["sqlite_library"] = sqlite
    return out


# -- numbers --------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if digits == 0 and abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}" if digits else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def fastpool_name(workload: dict[str, Any]) -> str:
    """The fastpool system of a workload: the async pool for asyncio workloads."""
    return "fastpool-async" if workload["kind"] == "async" else "fastpool"


def medians(workload: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``system -> median metrics`` for the systems that produced numbers."""
    return {n: e["median"] for n, e in workload["systems"].items() if e.get("median")}


def _paired(w: dict[str, Any], a: str, b: str) -> float | None:
    """Median over rounds of a's throughput / b's (the two ran seconds apart each round)."""
    ra, rb = w["systems"][a]["rounds"], w["systems"][b]["rounds"]
    pairs = [
        x[w["metric"]] / y[w["metric"]] for x, y in zip(ra, rb, strict=False) if y.get(w["metric"])
    ]
    return statistics.median(pairs) if pairs else None


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per workload: fastpool, the baseline, the best other system, and ratios."""
    rows = []
    for key, w in results["workloads"].items():
        meds = medians(w)
        metric, fp = w["metric"], fastpool_name(w)
        fp_value = meds.get(fp, {}).get(metric)
        others = {n: m[metric] for n, m in meds.items() if not n.startswith("fastpool")}
        best = max(others, key=lambda n: others[n]) if others else None
        base = w.get("baseline")
        rows.append(
            {
                "key": key,
                "title": w["title"],
                "unit": w["unit"],
                "fastpool": fp,
                "fastpool_value": fp_value,
                "baseline": base,
                "baseline_value": meds.get(base, {}).get(metric) if base else None,
                "ratio": w["systems"].get(fp, {}).get("ratio"),
                "best_other": best,
                "best_other_value": others.get(best) if best else None,
                "vs_best": _paired(w, fp, best) if fp_value and best else None,
            }
        )
    return rows


def summary_table(results: dict[str, Any]) -> str:
    """The short table: per workload, fastpool against the baseline and the best other."""
    lines = [
        "| workload | fastpool | baseline | fastpool ÷ baseline | best other system | "
        "fastpool ÷ best other |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    skipped = results.get("skipped", {})
    for r in summary_rows(results):
        fp = (
            f"{_fmt(r['fastpool_value'])} {r['unit']}"
            if r["fastpool_value"]
            else f"{r['fastpool']}: {'skipped' if r['fastpool'] in skipped else 'not run'}"
        )
        base = f"{r['baseline']}: {_fmt(r['baseline_value'])}" if r["baseline"] else "—"
        best = f"{r['best_other']}: {_fmt(r['best_other_value'])}" if r["best_other"] else "—"
        lines.append(
            f"| {r['title']} | {fp} | {base} | {_ratio(r['ratio'])} | {best} | "
            f"{_ratio(r['vs_best'])} |"
        )
    return "\n".join(lines)


def matrix_table(results: dict[str, Any]) -> str:
    """Every workload against every system: throughput as a multiple of the baseline."""
    names = [n for n in SYSTEMS if any(n in w["systems"] for w in results["workloads"].values())]
    lines = [
        "| workload (baseline) | " + " | ".join(names) + " |",
        "|---|" + "--:|" * len(names),
    ]
    for key, w in results["workloads"].items():
        cells = []
        for n in names:
            e = w["systems"].get(n)
            if e is None:
                cells.append("")
            elif "error" in e:
                cells.append("error")
            else:
                cells.append(_ratio(e.get("ratio")))
        lines.append(f"| {key} ({w.get('baseline') or 'none'}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_LATENCY_COLUMNS = [
    ("read_p50_us", "read p50 µs"),
    ("read_p99_us", "read p99 µs"),
    ("read_p999_us", "read p99.9 µs"),
    ("read_max_us", "worst read µs"),
    ("write_p50_us", "write p50 µs"),
    ("write_p99_us", "write p99 µs"),
    ("write_p999_us", "write p99.9 µs"),
    ("write_max_us", "worst write µs"),
]


def workload_table(w: dict[str, Any]) -> str:
    """One workload: every system's throughput, ratio to the baseline, latencies, errors."""
    meds = medians(w)
    columns = [(w["metric"], w["unit"])]
    if any("ns_per_op" in m for m in meds.values()):
        columns.append(("ns_per_op", "ns per checkout"))
    columns += [c for c in _LATENCY_COLUMNS if any(c[0] in m for m in meds.values())]
    header = ["system"] + [label for _, label in columns[:1]] + [f"x {w.get('baseline')}"]
    header += [label for _, label in columns[1:]] + ["errors"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "--:|" * (len(header) - 1)]
    ordered = sorted(
        w["systems"].items(),
        key=lambda kv: -(kv[1].get("median") or {}).get(w["metric"], -1.0),
    )
    for name, e in ordered:
        if "median" not in e:
            lines.append(f"| {name} | {e.get('error', 'no result')} |" + " |" * (len(header) - 2))
            continue
        m = e["median"]
        cells = [name, _fmt(m.get(w["metric"])), _ratio(e.get("ratio"))]
        cells += [_fmt(m.get(k)) for k, _ in columns[1:]]
        cells.append(f"{m.get('errors', 0):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- acceptance -----------------------------------------------------------------------------------


def acceptance(results: dict[str, Any]) -> list[str]:
    """The targets of the Pool (3) and AsyncPool (4) issues, checked on this run: ratios of two
    systems of one workload are medians of per-round ratios, like the tables'. Lines whose
    data the run does not have are left out."""
    ws = results["workloads"]
    lines: list[str] = []

    def med(key: str, system: str, metric: str) -> float | None:
        entry = ws.get(key, {}).get("systems", {}).get(system, {})
        value = entry.get("median", {}).get(metric)
        return None if value is None else float(value)

    def ratio(key: str, system: str) -> float | None:
        value = ws.get(key, {}).get("systems", {}).get(system, {}).get("ratio")
        return None if value is None else float(value)

    def line(ok: bool, text: str) -> None:
        lines.append(f"[{'PASS' if ok else 'FAIL'}] {text}")

    r = ratio("reads4", "fastpool")
    if r is not None and ws["reads4"].get("baseline") == "sqlite3":
        line(r >= 3, f"4-thread point reads: {r:.2f}x sqlite3 per-thread ops/s (target ≥ 3x)")
    fp, sq = med("reads4", "fastpool", "read_p99_us"), med("reads4", "sqlite3", "read_p99_us")
    if fp and sq:
        line(
            fp <= sq / 2,
            f"4-thread point reads: p99 {fp:.1f} µs vs sqlite3 {sq:.1f} µs (target ≤ half)",
        )
    errors = med("writers8", "fastpool", "errors")
    if errors is not None:
        line(errors == 0, f"8 writer threads: fastpool 'database is locked' errors = {errors:.0f}")
    r = ratio("writers8", "fastpool")
    if r is not None and ws["writers8"].get("baseline") == "sqlite3":
        line(r >= 1.2, f"8 writer threads: {r:.2f}x sqlite3 per-thread commits/s (target ≥ 1.2x)")
    one, eight = med("writers1", "fastpool", "ops_per_s"), med("writers8", "fastpool", "ops_per_s")
    sq8 = med("writers8", "sqlite3", "ops_per_s")
    if one and eight and sq8:
        # One writer connection, and the GIL between the threads: one thread's rate is the
        # ceiling of eight, so it says how far the 1.2x above can go on this machine.
        lines.append(
            f"[INFO] fastpool's own ceiling: 1 writer thread {one:,.0f} commits/s = "
            f"{one / sq8:.2f}x sqlite3's 8 threads; its 8 threads keep {eight / one:.0%} of it"
        )
    fw = med("mix16", "fastpool", "write_p99_us")
    if fw is not None:
        line(fw <= 1000, f"16-thread 90/10 mix: write p99 {fw / 1e3:.3f} ms (target ≤ 1 ms)")
    fr, sr = med("mix16", "fastpool", "read_p99_us"), med("mix16", "sqlite3", "read_p99_us")
    if fr is not None and sr is not None:
        line(
            fr <= sr,
            f"16-thread 90/10 mix: read p99 {fr:.1f} µs vs sqlite3 {sr:.1f} µs (target: no worse)",
        )
    ns = med("checkout", "fastpool", "ns_per_op")
    loop = med("checkout", "fastpool", "loop_ns_per_op")
    if ns is not None:
        net = ns - (loop or 0.0)
        line(
            net <= 200,
            f"checkout+return: {net:.0f} ns net of the {loop or 0:.0f} ns loop ({ns:.0f} ns "
            "with it; target <= 200 ns)",
        )
    r = ratio("checkout", "fastpool")
    if r is not None and ws["checkout"].get("baseline") == "sqlite3-queue":
        line(r >= 10, f"checkout+return: {r:.1f}x the queue.Queue pool (target ≥ 10x)")

    def paired(key: str, a: str, b: str) -> float | None:
        w = ws.get(key, {})
        if a in w.get("systems", {}) and b in w["systems"]:
            return _paired(w, a, b)
        return None

    fa = med("async_reads100", "fastpool-async", "ops_per_s")
    if fa is not None:
        for other, target in (("aiosqlite", 2), ("aiosqlitepool", 20)):
            r = paired("async_reads100", "fastpool-async", other)
            if r:
                line(
                    r >= target,
                    f"100-task async point selects: {r:.1f}x {other} (target ≥ {target}x)",
                )
        sync = med("reads1", "fastpool", "ops_per_s")
        if sync:
            line(
                fa / sync >= 0.5,
                f"100-task async point selects: {fa / sync:.2f}x fastpool's single-thread sync "
                "pool.fetchone (medians of two workloads; target ≥ 0.5x)",
            )
    errors = med("async_writes50", "fastpool-async", "errors")
    if errors is not None:
        line(errors == 0, f"50-task async inserts: fastpool errors = {errors:.0f}")
        r = paired("async_writes50", "fastpool-async", "aiosqlitepool")
        if r:
            line(r >= 10, f"50-task async inserts: {r:.1f}x aiosqlitepool commits/s (target ≥ 10x)")
    for key, w in ws.items():
        check = w.get("check")
        if check is not None:
            line(check["ok"], f"{key}: every counted commit is in the database ({check['detail']})")
    return lines


# -- the whole report -----------------------------------------------------------------------------


def markdown(results: dict[str, Any], images: str | None = None) -> str:
    """The full report as markdown; ``images``: a directory (relative to the report) holding
    the PNGs of ``--plot``, to link them."""
    meta = results.get("meta", {})
    cfg = results["config"]
    mach = meta.get("machine", {})
    vers = meta.get("versions", {})
    out = ["# fastpool comparison benchmark", ""]
    if meta.get("command"):
        out += [f"Command: `{meta['command']}`", ""]
    out.append(
        f"Run: {meta.get('started', '?')}, {results.get('elapsed_s', '?')} s; "
        f"{cfg['rounds']} rounds of {cfg['duration_s']} s per system per workload "
        f"(+ a {cfg['warmup_s']} s warm-up round, discarded), systems interleaved "
        "(order rotated every round); medians over rounds."
    )
    out.append("")
    if mach:
        out.append(
            f"Machine: {mach.get('cpu')}, {mach.get('cpus_usable')} usable CPU(s) of "
            f"{mach.get('cpus')}, {mach.get('memory_gib')} GiB, {mach.get('os')}, "
            f"{mach.get('python')}; database on {mach.get('database_filesystem') or '?'}. "
            f"Load average (1/5/15 min) before: {meta.get('load_before')}, after: "
            f"{meta.get('load_after')}."
        )
        out.append("")
    if vers:
        libs = ", ".join(f"{k} {v}" for k, v in vers.items() if k != "sqlite_library" and v)
        sq = ", ".join(f"{k}: {v}" for k, v in vers.get("sqlite_library", {}).items())
        out += [f"Libraries: {libs}. SQLite library — {sq}.", ""]
    pragmas = ", ".join(f"{k}={v}" for k, v in PRAGMAS.items())
    out += [f"Pragmas (every connection of every system): {pragmas}.", ""]
    out += [
        "## Summary",
        "",
        summary_table(results),
        "",
        "Ratios are medians of per-round ratios (each round runs both systems seconds apart), so "
        "on a noisy machine they can differ from the ratio of the two medians.",
        "",
    ]
    out += [
        "## Every system, as a multiple of each workload's baseline",
        "",
        "(throughput; each ratio is the median of per-round ratios)",
        "",
        matrix_table(results),
        "",
    ]
    for key, w in results["workloads"].items():
        out += [f"## {key}: {w['title']}", "", f"{w['what']}.", ""]
        if not w["systems"]:
            out += ["No installed system can run it.", ""]
            continue
        out += [workload_table(w), ""]
        if w.get("check"):
            out += [
                f"Check: {'OK' if w['check']['ok'] else 'FAILED'} — {w['check']['detail']}.",
                "",
            ]
        if images:
            out.append(f"![{key} throughput]({images}/throughput-{key}.png)")
            if key != "checkout":
                out.append(f"![{key} latency]({images}/latency-{key}.png)")
            out.append("")
    lines = acceptance(results)
    if lines:
        out += ["## Acceptance (issues 3 and 4)", ""] + [f"- {x}" for x in lines] + [""]
    out += ["## Systems", ""]
    for name in cfg["systems"]:
        cls = SYSTEMS.get(name)
        if cls is not None:
            out.append(f"- **{name}** — {cls.how}")
    out.append("")
    if results.get("skipped"):
        out += ["Skipped:", ""] + [f"- {n}: {why}" for n, why in results["skipped"].items()]
        out.append("")
    return "\n".join(out)


def listing() -> str:
    """``--list``: the workloads and the systems, and which systems can run here."""
    out = ["workloads:"]
    out += [f"  {k:<16} {w.title}" for k, w in WORKLOADS.items()]
    out.append("systems:")
    for name, cls in SYSTEMS.items():
        why = cls().missing()
        out.append(f"  {name:<20} {'(skipped: ' + why + ')' if why else cls.how}")
    return "\n".join(out)
