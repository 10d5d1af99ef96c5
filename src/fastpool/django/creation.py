"""Test databases for ``fastpool.django``: the stock SQLite creation, with the copies that
parallel test runs make (``spawn`` start method) written through ``fastpool.dbapi``, so that
one SQLite library serves the process (docs/sqlite-build.md, "One SQLite per process")."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from django.db.backends.sqlite3.creation import DatabaseCreation as StockCreation

from fastpool import dbapi

__all__ = ["DatabaseCreation"]


class DatabaseCreation(StockCreation):  # type: ignore[misc]  # Django ships no types
    """Django's SQLite test-database creation; in-memory clones go through fastpool."""

    def _clone_test_db(self, suffix: Any, verbosity: int, keepdb: bool = False) -> None:
        source = self.connection.settings_dict["NAME"]
        if not self.is_in_memory_db(source):
            # The stock clone copies the file; in WAL mode the latest pages may still be in
            # the -wal file, so they go into the database file first.
            self.connection.ensure_connection()
            busy = self.connection.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if busy.fetchone()[0]:
                raise dbapi.OperationalError(f"cannot checkpoint {source} to clone it")
        if not self.is_in_memory_db(source) or multiprocessing.get_start_method() != "spawn":
            super()._clone_test_db(suffix, verbosity, keepdb)  # a file copy, or fork's copy
            return
        target = dbapi.connect(self.get_test_db_clone_settings(suffix)["NAME"], uri=True)
        try:
            self.connection.connection.backup(target)
        finally:
            target.close()

    def setup_worker_connection(self, _worker_id: int) -> None:
        """Load the worker's copy of an in-memory test database (spawn), or as stock."""
        settings = self.get_test_db_clone_settings(_worker_id)
        if multiprocessing.get_start_method() != "spawn" or not self.is_in_memory_db(
            self.connection.settings_dict["NAME"]
        ):
            super().setup_worker_connection(_worker_id)
            return
        alias = self.connection.alias
        memory = f"file:memorydb_{alias}_{_worker_id}?mode=memory&cache=shared"
        source = dbapi.connect(f"file:{settings['NAME']}?mode=ro", uri=True)
        target = dbapi.connect(memory, uri=True)
        try:
            source.backup(target)
        finally:
            source.close()
        self.connection.settings_dict.update(settings)
        self.connection.settings_dict["NAME"] = memory
        self.connection.connect()  # the wrapper's connection keeps the memory database alive
        target.close()
        if os.environ.get("RUNNING_DJANGOS_TEST_SUITE") == "true":
            self.mark_expected_failures_and_skips()
