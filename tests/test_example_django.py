"""examples/django_app for real, each step a ``manage.py`` (or drive.py) subprocess on a
temporary database file: migrate, requests from 8 threads through Django's test client, then
dumpdata, loaddata into a fresh database, inspectdb and dbshell."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django_app"


def manage(db: Path, *args: str, script: str = "manage.py") -> str:
    env = {**os.environ, "EXAMPLE_DB": str(db), "DJANGO_SETTINGS_MODULE": "site_config.settings"}
    proc = subprocess.run(
        [sys.executable, script, *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.timeout(600)
def test_the_example_project_migrates_serves_threads_and_runs_its_commands(tmp_path):
    db = tmp_path / "shop.sqlite3"
    manage(db, "migrate", "-v0")

    summary = json.loads(manage(db, script="drive.py").splitlines()[-1])
    # 8 threads x 50 requests, half of them atomic read-modify-writes of one of 4 items:
    # every one answered 200, none lost, none failed with "database is locked".
    assert summary == {
        "statuses": {"200": 400},
        "total_qty": 200,
        "moves": 200,
        "duplicate_name": 409,
    }

    dump = json.loads(manage(db, "dumpdata", "shop"))
    assert sum(o["model"] == "shop.item" for o in dump) == 4
    assert sum(o["model"] == "shop.move" for o in dump) == 200

    fixture = tmp_path / "shop.json"
    fixture.write_text(json.dumps(dump))
    copy = tmp_path / "copy.sqlite3"
    manage(copy, "migrate", "-v0")
    assert "Installed 204 object(s)" in manage(copy, "loaddata", str(fixture))

    assert "class ShopItem(models.Model):" in manage(db, "inspectdb")
    assert "(200,)" in manage(db, "dbshell", "--", "select count(*) from shop_move")

    # The files, read by the stdlib once every process has exited: intact, in WAL mode.
    for path in (db, copy):
        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert check.execute("SELECT sum(qty), count(*) FROM shop_item").fetchone() == (200, 4)
        finally:
            check.close()
