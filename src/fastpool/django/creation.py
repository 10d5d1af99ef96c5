"""Test databases for ``fastpool.django``: the stock SQLite creation, with the copies that
parallel test runs make (``spawn`` start method) written through ``fastpool.dbapi``, so that
one SQLite library serves the process (docs/sqlite-build.md, "One SQLite per process")."""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from django.db.backends.sqlite3.creation import DatabaseCreation as StockCreation

from fastpool import dbapi
from fastpool.django.pool import close_pools

__all__ = ["DatabaseCreation"]

# What SQLite keeps beside a database file. A stale -wal beside a new file of the same name
# would be replayed into it (a corrupt schema), so they go whenever the file goes.
SIDE_FILES = ("-wal", "-shm", "-journal")


def remove_side_files(name: str) -> None:
    """Remove ``name``'s -wal, -shm and -journal files, where there are any."""
    for suffix in SIDE_FILES:
        try:
            os.remove(f"{name}{suffix}")
        except FileNotFoundError:
            pass


class DatabaseCreation(StockCreation):  # type: ignore[misc]  # Django ships no types
    """Django's SQLite test-database creation; in-memory clones go through fastpool."""

    def _create_test_db(self, verbosity: int, autoclobber: bool, keepdb: bool = False) -> str:
        name: str = super()._create_test_db(verbosity, autoclobber, keepdb)
        if not keepdb and not self.is_in_memory_db(name):
            close_pools(str(name))
            remove_side_files(str(name))  # the stock creation removed the file itself
        return name

    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        if test_database_name and not self.is_in_memory_db(test_database_name):
            close_pools(str(test_database_name))  # the idle connections on it
        super()._destroy_test_db(test_database_name, verbosity)
        if test_database_name and not self.is_in_memory_db(test_database_name):
            remove_side_files(str(test_database_name))

    def _clone_test_db(self, suffix: Any, verbosity: int, keepdb: bool = False) -> None:
        source = self.connection.settings_dict["NAME"]
        target = self.get_test_db_clone_settings(suffix)["NAME"]
        if not self.is_in_memory_db(source):
            if not (keepdb and os.path.exists(target)):
                remove_side_files(str(target))
            # The stock clone copies the file; in WAL mode the latest pages may still be in
            # the -wal file, so they go into the database file first.
            self.connection.ensure_connection()
            busy = self.connection.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if busy.fetchone()[0]:
                raise dbapi.OperationalError(f"cannot checkpoint {source} to clone it")
            super()._clone_test_db(suffix, verbosity, keepdb)
        elif multiprocessing.get_start_method() != "spawn":
            super()._clone_test_db(suffix, verbosity, keepdb)  # fork copies the memory
        else:
            copy = dbapi.connect(target, uri=True)
            try:
                self.connection.connection.backup(copy)
            finally:
                copy.close()

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
