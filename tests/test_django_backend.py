"""The Django backend (``ENGINE: "fastpool.django"``) on a real database file, from real
threads. Each scenario runs in a subprocess (tests/django_scenarios.py), so Django's global
settings never reach another test module; the test asserts on what the scenario reports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import django  # the test extra has Django: without it this module fails, it does not skip
import pytest

SCENARIOS = Path(__file__).resolve().parent / "django_scenarios.py"


def run(name: str, db: Path, **options: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS), name, str(db), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_django_is_the_version_the_extra_asks_for():
    assert django.VERSION >= (5, 1)


@pytest.mark.timeout(300)
def test_8_threads_of_100_atomic_read_modify_writes_keep_every_increment(tmp_path):
    got = run("read_modify_write", tmp_path / "db.sqlite3")
    assert got == {"value": 800, "errors": []}


@pytest.mark.timeout(300)
def test_two_processes_of_4_threads_x_100_atomic_read_modify_writes_keep_all(tmp_path):
    # Like two gunicorn workers: inside each process writers queue in FIFO order; between
    # them SQLite's lock decides, BEGIN IMMEDIATE waiting up to `timeout` (never "locked" at
    # once because a block read first).
    db = tmp_path / "db.sqlite3"
    run("tables_only", db)
    cmd = [sys.executable, str(SCENARIOS), "increments_beside_another_process", str(db), "{}"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    procs = [subprocess.Popen(cmd, text=True, **pipes) for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"  # connected, waiting for "go"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == {"errors": []}
    check = sqlite3.connect(db)
    try:
        assert check.execute("SELECT value FROM scenarios_counter").fetchone() == (800,)
    finally:
        check.close()


def test_integrity_error_is_djangos_and_rolls_back_the_atomic_block(tmp_path):
    got = run("integrity_error", tmp_path / "db.sqlite3")
    assert got["class"] == "django.db.utils.IntegrityError"
    assert got["cause_is_fastpool"] is True
    assert got["names"] == ["milk", "tea"]  # "coffee" went with the failed block


def test_nested_atomic_blocks_are_savepoints(tmp_path):
    got = run("nested_savepoints", tmp_path / "db.sqlite3")
    assert got == {"names": ["kept inner", "outer"], "savepoints": 2, "rolled_back_to": 1}


@pytest.mark.timeout(120)
def test_reads_from_4_threads_do_not_wait_for_a_writer_holding_a_long_transaction(tmp_path):
    got = run("readers_beside_a_long_writer", tmp_path / "db.sqlite3")
    assert got["writer_still_open"] is True  # every read finished inside its transaction
    assert got["reads"] == 800 and got["errors"] == []
    assert got["values_seen"] == [0]  # the last committed value, never the uncommitted 42
    assert got["after"] == 42


def test_connections_closed_by_django_go_back_to_the_pool(tmp_path):
    got = run("closed_connections_return_to_the_pool", tmp_path / "db.sqlite3")
    assert got["same_connection_again"] is True
    assert got["errors"] == []
    # 8 threads x 20 "requests", each closing its connection: at most one open per thread,
    # every other checkout served by a returned connection.
    assert got["opened_by_threads"] <= 8
    assert got["reused"] >= 160 - 8
    assert 1 <= got["idle"] <= 8  # max_idle's default


def test_max_idle_bounds_the_connections_kept(tmp_path):
    got = run("closed_connections_return_to_the_pool", tmp_path / "db.sqlite3", max_idle=1)
    assert got["idle"] == 1 and got["errors"] == []


def test_a_half_read_iterator_does_not_pin_a_snapshot_for_the_next_user(tmp_path):
    got = run("half_read_iterator_pins_no_snapshot", tmp_path / "db.sqlite3")
    assert got == {"same_connection": True, "count": 11}


def test_health_checks_replace_a_connection_closed_underneath(tmp_path):
    got = run(
        "health_checks_replace_a_dead_connection", tmp_path / "db.sqlite3", health_checks=True
    )
    assert got == {"value": 0, "opened": 2, "idle": 0}  # the dead one was not kept


def test_max_lifetime_closes_connections_instead_of_keeping_them(tmp_path):
    # Any connection is older than a nanosecond when it comes back.
    got = run("max_lifetime_closes_old_connections", tmp_path / "db.sqlite3", max_lifetime=1e-9)
    assert got == {"opened": 4, "reused": 0}


def test_a_test_database_file_starts_without_an_earlier_runs_wal_and_leaves_none(tmp_path):
    # A stale -wal beside a new file of the same name would be replayed into it.
    got = run("test_database_files_start_clean", tmp_path / "db.sqlite3", test_file=True)
    assert got == {"wal_while_open": True, "left_after_destroy": []}


def test_async_orm_calls_and_concurrent_atomic_blocks(tmp_path):
    got = run("async_orm", tmp_path / "db.sqlite3")
    assert got == {"value": 20, "items": 1}


def test_select_for_update_behaves_as_on_the_stock_backend(tmp_path):
    # SQLite has no FOR UPDATE: the stock backend drops it, inside atomic() or not.
    got = run("select_for_update", tmp_path / "db.sqlite3")
    assert got == {"outside_atomic": [7]}


def test_production_pragmas_by_default_and_options_override_them(tmp_path):
    got = run("pragmas", tmp_path / "db.sqlite3")
    assert got["journal_mode"] == "wal"
    assert got["synchronous"] == 1  # NORMAL
    assert got["journal_size_limit"] == 64 * 1024 * 1024
    assert got["mmap_size"] == 128 * 1024 * 1024
    assert got["foreign_keys"] == 1
    got = run("pragmas", tmp_path / "other.sqlite3", pragmas={"cache_size": -8000, "mmap_size": 0})
    assert got["cache_size"] == -8000 and got["mmap_size"] == 0
    assert got["journal_mode"] == "wal"


def test_a_bad_pool_option_is_improperly_configured(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS), "pragmas", str(tmp_path / "db"), '{"max_idle": -1}'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "ImproperlyConfigured: OPTIONS['max_idle'] must be an int >= 0" in proc.stderr
