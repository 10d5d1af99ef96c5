"""PNG charts of a results dict, with matplotlib (``pip install matplotlib``, in the ``bench``
extra): per workload a throughput bar chart and a latency-percentile chart, plus two
overviews (``overview.png``: every workload's throughput; ``latency-overview.png``: p99)."""

from __future__ import annotations

import os
from typing import Any

from .report import medians

FASTPOOL_COLOR = "#d9480f"
BASELINE_COLOR = "#495057"
OTHER_COLOR = "#74c0fc"
PERCENTILES = (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"))
PCT_COLORS = ("#a5d8ff", "#1c7ed6", "#0b3d75")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(name: str, baseline: str | None) -> str:
    if name.startswith("fastpool"):
        return FASTPOOL_COLOR
    return BASELINE_COLOR if name == baseline else OTHER_COLOR


def _no_minor_labels(ax: Any) -> None:
    """Only decades are labelled on a log axis (minor labels collide on narrow ranges)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def _throughput(ax: Any, w: dict[str, Any], small: bool = False) -> None:
    meds = medians(w)
    names = sorted(meds, key=lambda n: meds[n][w["metric"]])
    values = [meds[n][w["metric"]] for n in names]
    ax.barh(names, values, color=[_color(n, w.get("baseline")) for n in names])
    if values and max(values) / max(min(values), 1e-9) > 50:
        ax.set_xscale("log")
        _no_minor_labels(ax)
    ax.set_xlabel(w["unit"] + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_title(w["title"], fontsize=9 if small else 11)
    for i, (n, v) in enumerate(zip(names, values, strict=True)):
        ratio = w["systems"][n].get("ratio")
        label = f" {v:,.0f}" + (f"  ({ratio:.2f}x)" if ratio is not None and not small else "")
        ax.text(v, i, label, va="center", fontsize=6 if small else 8)
    ax.tick_params(axis="y", labelsize=7 if small else 9)
    ax.margins(x=0.35 if ax.get_xscale() != "log" else 0.0)
    if ax.get_xscale() == "log" and values:
        ax.set_xlim(min(values) / 2, max(values) * (8 if small else 30))


def _latency(ax: Any, w: dict[str, Any], kind: str, small: bool = False) -> bool:
    meds = {n: m for n, m in medians(w).items() if f"{kind}_p50_us" in m}
    if not meds:
        return False
    names = sorted(meds, key=lambda n: -meds[n][f"{kind}_p99_us"])
    height = 0.8 / len(PERCENTILES)
    for j, ((key, label), color) in enumerate(zip(PERCENTILES, PCT_COLORS, strict=True)):
        ys = [i + (j - 1) * height for i in range(len(names))]
        ax.barh(ys, [meds[n][f"{kind}_{key}_us"] for n in names], height, label=label, color=color)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7 if small else 9)
    for tick in ax.get_yticklabels():
        if tick.get_text().startswith("fastpool"):
            tick.set_color(FASTPOOL_COLOR)
            tick.set_fontweight("bold")
    values = [meds[n][f"{kind}_{key}_us"] for n in names for key, _ in PERCENTILES]
    log = max(values) / max(min(values), 1e-9) > 20
    if log:
        ax.set_xscale("log")
        _no_minor_labels(ax)
    scale = "log scale; " if log else ""
    ax.set_xlabel(f"{kind} latency, µs ({scale}shorter is better)")
    ax.set_title(f"{w['title']}: {kind}s", fontsize=9 if small else 11)
    ax.legend(fontsize=7, loc="lower right")
    return True


def plot(results: dict[str, Any], directory: str) -> list[str]:
    """Write the charts of ``results`` into ``directory``; return the files written."""
    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    written: list[str] = []

    def save(fig: Any, name: str, grid: bool = False) -> None:
        # Fixed margins: tight_layout would draw every figure one more time.
        if grid:
            fig.subplots_adjust(
                left=0.09, right=0.98, bottom=0.07, top=0.92, wspace=0.55, hspace=0.55
            )
        else:
            fig.subplots_adjust(left=0.22, right=0.97, bottom=0.12, top=0.9, hspace=0.45)
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    workloads = {k: w for k, w in results["workloads"].items() if medians(w)}
    for key, w in workloads.items():
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(medians(w)) + 1.4))
        _throughput(ax, w)
        save(fig, f"throughput-{key}.png")
        kinds = [
            k for k in ("read", "write") if any(f"{k}_p50_us" in m for m in medians(w).values())
        ]
        if kinds:
            fig, axes = plt.subplots(
                len(kinds),
                1,
                figsize=(8, (0.55 * len(medians(w)) + 1.4) * len(kinds)),
                squeeze=False,
            )
            for ax, kind in zip(axes[:, 0], kinds, strict=True):
                _latency(ax, w, kind)
            save(fig, f"latency-{key}.png")

    if workloads:
        cols = 3
        rows = (len(workloads) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(15, 3.2 * rows), squeeze=False)
        for ax, w in zip(axes.flat, workloads.values(), strict=False):
            _throughput(ax, w, small=True)
        for ax in list(axes.flat)[len(workloads) :]:
            ax.axis("off")
        fig.suptitle("Throughput (longer is better; fastpool in orange, baseline in grey)")
        save(fig, "overview.png", grid=True)

        panels = [
            (w, kind)
            for w in workloads.values()
            for kind in ("read", "write")
            if any(f"{kind}_p99_us" in m for m in medians(w).values())
        ]
        if panels:
            rows = (len(panels) + cols - 1) // cols
            fig, axes = plt.subplots(rows, cols, figsize=(15, 3.4 * rows), squeeze=False)
            for ax, (w, kind) in zip(axes.flat, panels, strict=False):
                _latency(ax, w, kind, small=True)
            for ax in list(axes.flat)[len(panels) :]:
                ax.axis("off")
            fig.suptitle("Latency percentiles p50 / p99 / p99.9 (shorter is better)")
            save(fig, "latency-overview.png", grid=True)
    return written
