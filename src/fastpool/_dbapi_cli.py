"""The command-line shell of ``fastpool.dbapi`` (what ``python -m sqlite3`` offers): run one
SQL statement against a database, or read statements interactively from standard input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

PS1 = "sqlite> "
PS2 = "... "


def _describe(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    kind = type(exc).__name__
    return f"{kind} ({name}): {exc}" if name else f"{kind}: {exc}"


def _run(conn: Any, sql: str) -> bool:
    """Run one statement and print its rows; False (after saying why on stderr) on error."""
    try:
        for row in conn.execute(sql):
            print(row)
    except Exception as exc:  # every database error is reported, not raised
        print(_describe(exc), file=sys.stderr)
        return False
    return True


def _interact(conn: Any, dbapi: Any, where: str) -> None:
    print(
        f"sqlite3 shell, running on SQLite version {dbapi.sqlite_version}\n"
        f"Connected to {where}\n\n"
        "Each command will be run using execute() on the cursor.\n"
        'Type ".help" for more information; type ".quit" or CTRL-D to quit.',
        file=sys.stderr,
    )
    buffer = ""
    while True:
        try:
            line = input(PS2 if buffer else PS1)
        except EOFError:
            return
        if not buffer and line.strip().startswith("."):
            command = line.strip()
            if command in (".quit", ".exit"):
                return
            if command == ".version":
                print(dbapi.sqlite_version)
            elif command == ".help":
                print("Enter SQL code and press enter.")
            else:
                print(f"Error: unknown command or invalid arguments: {command!r}.", file=sys.stderr)
            continue
        buffer += line + "\n"
        if dbapi.complete_statement(buffer):
            _run(conn, buffer)
            buffer = ""


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """``python -m sqlite3 [-v] [filename [sql]]``: exits with 0, or 1 after an SQL error."""
    from fastpool import dbapi

    parser = argparse.ArgumentParser(
        prog="python -m sqlite3",
        description="Python sqlite3 CLI (fastpool.dbapi)",
    )
    parser.add_argument(
        "filename",
        nargs="?",
        default=":memory:",
        help="SQLite database to open (default: ':memory:')",
    )
    parser.add_argument("sql", nargs="?", help="an SQL statement to run, then exit")
    parser.add_argument(
        "-v", "--version", action="version", version=f"SQLite version {dbapi.sqlite_version}"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    where = "a transient in-memory database" if args.filename == ":memory:" else repr(args.filename)
    conn = dbapi.connect(args.filename, isolation_level=None)
    try:
        if args.sql is not None:
            sys.exit(0 if _run(conn, args.sql) else 1)
        _interact(conn, dbapi, where)
    finally:
        conn.close()
    sys.exit(0)
