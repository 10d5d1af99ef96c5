"""``manage.py dbshell`` for ``fastpool.django``: the ``sqlite3`` shell on fastpool's SQLite."""

from __future__ import annotations

import sys
from typing import Any

from django.db.backends.sqlite3.client import DatabaseClient as StockClient

__all__ = ["DatabaseClient"]


class DatabaseClient(StockClient):  # type: ignore[misc]  # Django ships no types
    """Runs ``fastpool.dbapi``'s shell (the stdlib ``python -m sqlite3`` one, on the SQLite
    library the backend uses) instead of the ``sqlite3`` program, which may not be installed
    or may be another SQLite version."""

    executable_name = sys.executable

    @classmethod
    def settings_to_cmd_args_env(
        cls, settings_dict: dict[str, Any], parameters: list[str]
    ) -> tuple[list[str], None]:
        """``python -c <run the shell> NAME [SQL ...]``."""
        shell = "import sys, fastpool.dbapi as d; d.main(sys.argv[1:])"
        return [cls.executable_name, "-c", shell, str(settings_dict["NAME"]), *parameters], None
