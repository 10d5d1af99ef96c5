"""pytest set-up for the benchmark suites in bench/.

- Collects ``bench_*.py`` here (pyproject's pytest config only knows ``tests/test_*.py``), so
  ``python -m pytest bench`` finds the suites without any extra option.
- ``db_path``: a database in service (``live_database``), one per suite module (bench_pool
  makes a fresh one per benchmark instead); ``fastpool_db_path``: the one fastpool's side of a
  side-by-side benchmark opens, the same file unless fastpool brings its own SQLite (a wheel),
  which must not open a file the stdlib's has open: then an identical database of its own.
- ``record_result``: the suites put their headline numbers there; at the end of a real run
  (not ``--benchmark-disable``) the terminal summary prints them and checks them against the
  targets set for the connection core and the pool (``_acceptance.py``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from _acceptance import acceptance_report

from fastpool._bench.data import live_database
from fastpool._bench.systems import FASTPOOL_OWN_SQLITE, FastpoolSync

_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()


def pytest_collect_file(file_path, parent):
    # Files named on the command line are collected by pytest itself, whatever their name.
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_configure(config):
    config.stash[_RESULTS] = {}


@pytest.fixture(scope="module")
def db_path(tmp_path_factory, request):
    """The path of a database in service (``live_database``), shared by one suite module."""
    name = request.module.__name__.rpartition(".")[2]
    with live_database(tmp_path_factory.mktemp(name) / "bench.db") as path:
        yield path


@pytest.fixture(scope="module")
def fastpool_db_path(db_path, tmp_path_factory, request):
    """The database fastpool's side opens: ``db_path`` itself, or (fastpool with a SQLite of
    its own) a second database made the same way and kept by fastpool's library."""
    if not FASTPOOL_OWN_SQLITE:
        yield db_path
        return
    name = request.module.__name__.rpartition(".")[2]
    path = tmp_path_factory.mktemp(f"{name}-fastpool") / "bench.db"
    with live_database(path, connect=FastpoolSync().keeper_connect) as path:
        yield path


@pytest.fixture
def record_result(request, benchmark):
    """``record_result(key, metrics)``: keep ``metrics`` for the summary and put them in the
    benchmark's ``extra_info[key]`` (and so in ``--benchmark-json``)."""
    results = request.config.stash[_RESULTS]

    def record(key: str, metrics: dict[str, Any]) -> None:
        benchmark.extra_info[key] = metrics
        if not benchmark.disabled:
            results[key] = dict(metrics)

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    tr.section("fastpool benchmark summary (medians over rounds)")
    for key in sorted(results):
        shown = {k: v for k, v in results[key].items() if not k.endswith("_rounds")}
        tr.write_line(f"{key:36} {json.dumps(shown)}")
    lines = acceptance_report(results)
    if lines:
        tr.section("Acceptance (connection and pool targets)")
        for line in lines:
            tr.write_line(line)
    path = os.environ.get("FASTPOOL_BENCH_SUMMARY")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"results": results, "acceptance": lines}, f, indent=2)
