"""The comparison runner (``python -m fastpool bench``), run for real at a tiny scale.

One real run in a child process (every workload, every installed system, 3 rounds of 20 ms
each) produces JSON, markdown and PNG charts; the tests check their structure, that every
installed system produced numbers, that ratios were computed against the baseline, that
every counted commit reached the database, and that a saved run renders again the same way.
No speed is asserted: speed goals live in bench/.
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import fastpool
from fastpool._bench import compare
from fastpool._bench.systems import SYSTEMS
from fastpool._bench.workloads import WORKLOADS

SRC = Path(fastpool.__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
README = f"# x\n\nbefore\n\n{compare.README_START}\nold numbers\n{compare.README_END}\n\nafter\n"
TINY = ["--rounds", "3", "--duration", "0.02", "--warmup", "0.01", "--rows", "1000"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _bench(
    *args: str, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fastpool", "bench", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def expected_order(results: dict, key: str) -> list[str]:
    """The systems that can run workload ``key`` among those installed here."""
    installed = [SYSTEMS[n]() for n in SYSTEMS if n not in results["skipped"]]
    return [s.name for s in WORKLOADS[key].systems(installed)]


def ran(results: dict) -> list[str]:
    """The workloads that some installed system could run."""
    return [k for k in WORKLOADS if expected_order(results, k)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny full run with ``--docs`` in a stand-in checkout (a README with the results
    markers, a docs/ directory): (process, results, checkout). The run writes
    docs/benchmark-results.{json,md}, docs/img/*.png and README's block."""
    out = tmp_path_factory.mktemp("checkout")
    (out / "docs").mkdir()
    (out / "README.md").write_text(README, encoding="utf-8")
    proc = _bench(*TINY, "--dir", str(out), "--docs", cwd=out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "docs" / "benchmark-results.json").read_text(encoding="utf-8"))
    return proc, results, out


def test_structure(run):
    _, results, out = run
    assert set(results) >= {"config", "workloads", "skipped", "meta", "acceptance", "elapsed_s"}
    assert list(results["workloads"]) == list(WORKLOADS)
    meta = results["meta"]
    assert meta["command"] == "python -m fastpool bench " + " ".join(TINY) + f" --dir {out}"
    assert meta["machine"]["cpus"] >= 1 and meta["machine"]["python"]
    assert meta["versions"]["fastpool"] == fastpool.__version__
    assert meta["versions"]["sqlite_library"]["fastpool"] == fastpool.sqlite_version()
    assert isinstance(results["acceptance"], list) and results["acceptance"]
    for key, w in results["workloads"].items():
        assert w["order"] == expected_order(results, key), key
        if WORKLOADS[key].baseline in results["skipped"] or not w["order"]:
            assert w["baseline"] is None, key
        else:
            assert w["baseline"] == WORKLOADS[key].baseline, key
    # Without aiosqlite (not in the test extra) only the threaded workloads run.
    assert {"checkout", "reads1", "reads4", "reads16", "join4", "writers8", "mix16"} <= set(
        ran(results)
    )


def test_every_installed_system_produced_numbers(run):
    _, results, _ = run
    installed = [name for name in SYSTEMS if name not in results["skipped"]]
    assert "fastpool" in installed and "sqlite3" in installed
    seen = set()
    for key, w in results["workloads"].items():
        assert set(w["order"]) == set(w["systems"]), key
        for name in w["order"]:
            entry = w["systems"][name]
            assert "error" not in entry, (key, name, entry.get("error"))
            assert len(entry["rounds"]) == 3, (key, name)
            median = entry["median"]
            assert median[w["metric"]] > 0, (key, name, median)
            assert median["ops"] > 0
            if WORKLOADS[key].kind != "checkout":
                kinds = {"mix": ("read", "write"), "insert": ("write",)}.get(
                    WORKLOADS[key].op, ("read",)
                )
                for kind in kinds:
                    p50, p99 = median.get(f"{kind}_p50_us"), median.get(f"{kind}_p99_us")
                    assert p50 is not None, (key, name, kind, entry["rounds"])
                    assert 0 < p50 <= p99, (key, name)
            seen.add(name)
    assert seen == set(installed), f"installed but never run: {set(installed) - seen}"


def test_ratios_against_the_baseline(run):
    _, results, _ = run
    for key, w in results["workloads"].items():
        base = w["baseline"]
        if base is None:  # not installed here: no ratios, and the table says so
            assert all(e.get("ratio") is None for e in w["systems"].values()), key
            continue
        assert base in w["systems"], f"{key}: baseline {base} did not run"
        assert w["systems"][base]["ratio"] == pytest.approx(1.0), key
        for name, entry in w["systems"].items():
            ratio = entry["ratio"]
            assert isinstance(ratio, float) and ratio > 0, (key, name)
            pairs = [
                r[w["metric"]] / b[w["metric"]]
                for r, b in zip(entry["rounds"], w["systems"][base]["rounds"], strict=True)
                if b[w["metric"]]
            ]
            assert ratio == pytest.approx(statistics.median(pairs)), (key, name)


def test_the_report_gives_one_writers_ceiling_beside_eight(run):
    # writers1 beside writers8: the acceptance list says what one writer thread reaches and
    # how much of it eight keep, from the same medians as the tables.
    _, results, _ = run
    w1, w8 = results["workloads"]["writers1"], results["workloads"]["writers8"]
    one = w1["systems"]["fastpool"]["median"]["ops_per_s"]
    eight = w8["systems"]["fastpool"]["median"]["ops_per_s"]
    sq8 = w8["systems"]["sqlite3"]["median"]["ops_per_s"]
    (line,) = [a for a in results["acceptance"] if "ceiling" in a]
    assert line.startswith("[INFO] ")
    assert f"1 writer thread {one:,.0f} commits/s = {one / sq8:.2f}x sqlite3's 8 threads" in line
    assert f"keep {eight / one:.0%} of it" in line


def test_writes_reached_the_database(run):
    _, results, _ = run
    for key in ("writers8", "mix16", "async_writes50"):
        if key in ran(results):
            check = results["workloads"][key]["check"]
            assert check["ok"], (key, check)
    assert results["workloads"]["writers8"]["systems"]["fastpool"]["median"]["errors"] == 0


def test_skipped_systems_say_why(run):
    proc, results, _ = run
    for name, reason in results["skipped"].items():
        assert f"skip {name}: {reason}" in proc.stderr
    if hasattr(fastpool, "AsyncPool"):
        assert "fastpool-async" not in results["skipped"]
    else:
        assert "AsyncPool" in results["skipped"]["fastpool-async"]


def test_progress_and_markdown(run):
    proc, results, out = run
    for key in ran(results):
        assert f"[{key} 1] " in proc.stderr and f"[{key} 3] " in proc.stderr
    text = (out / "docs" / "benchmark-results.md").read_text(encoding="utf-8")
    assert proc.stdout.strip() == text.strip()
    assert "## Summary" in text and "| workload | fastpool |" in text
    for key in WORKLOADS:
        assert f"## {key}: " in text
    for key in ran(results):
        assert f"(img/throughput-{key}.png)" in text
    assert "journal_mode=wal, synchronous=normal, busy_timeout=5000" in text


def test_plots(run):
    _, results, out = run
    expected = {"overview.png", "latency-overview.png"}
    expected |= {f"throughput-{k}.png" for k in ran(results)}
    expected |= {f"latency-{k}.png" for k in ran(results) if k != "checkout"}
    assert {p.name for p in (out / "docs" / "img").iterdir()} == expected
    for name in expected:
        data = (out / "docs" / "img" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name


def test_from_json_renders_the_same_report(run, tmp_path, capsys):
    _, _, out = run
    md = tmp_path / "again.md"
    status = compare.main(
        ["--from-json", str(out / "docs" / "benchmark-results.json"), "--markdown", str(md)]
    )
    assert status == 0
    first = (out / "docs" / "benchmark-results.md").read_text(encoding="utf-8")
    # Same tables; the first report also linked its charts.
    strip = lambda text: [x for x in text.splitlines() if x and not x.startswith("![")]  # noqa: E731
    assert strip(md.read_text(encoding="utf-8")) == strip(first)
    assert capsys.readouterr().out.strip() == md.read_text(encoding="utf-8").strip()


def test_docs_refreshes_a_checkout(run):
    proc, _, out = run
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "old numbers" not in text and text.startswith("# x\n\nbefore\n")
    assert text.rstrip().endswith("after")
    assert "| workload | fastpool |" in text and "(docs/img/overview.png)" in text
    assert "(docs/benchmark-results.md)" in text
    assert "updated the benchmark block of README.md" in proc.stderr


def test_docs_outside_a_checkout_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        compare.main(["--docs", "--rounds", "1"])
    assert exc.value.code == 2
    assert "repository root" in capsys.readouterr().err


def test_bad_arguments_are_refused():
    proc = _bench("--only", "reads4,nope", timeout=60)
    assert proc.returncode == 2
    assert "unknown workload nope" in proc.stderr and "reads1" in proc.stderr
    proc = _bench("--systems", "fastpool", "--rounds", "0", timeout=60)
    assert proc.returncode == 2 and "rounds must be at least 1" in proc.stderr


def test_reproduce_leaves_out_the_output_options():
    argv = ["--quick", "--json", "/x/r.json", "--plot=/x/img", "--docs", "--only", "a"]
    assert compare.reproduce(argv) == "python -m fastpool bench --quick --only a"


def test_list():
    proc = _bench("--list", timeout=60)
    assert proc.returncode == 0
    for name in (*WORKLOADS, *SYSTEMS):
        assert name in proc.stdout


def test_demo_is_still_the_default(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fastpool", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "--threads" in proc.stdout


def test_the_library_never_imports_the_benchmark():
    package = SRC / "fastpool"
    for path in package.glob("*.py"):
        if path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any(n.startswith("fastpool._bench") for n in names), path.name
