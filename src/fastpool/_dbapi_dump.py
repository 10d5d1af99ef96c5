"""``Connection.iterdump()`` of ``fastpool.dbapi``: the SQL text that recreates a database.

The output follows the stdlib ``sqlite3`` module's (and the ``sqlite3`` shell's ``.dump``):
``BEGIN TRANSACTION;``, each table's CREATE statement and one INSERT per row, then the
indexes, triggers and views, then ``COMMIT;``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any


def _quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(conn: Any, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    # A plain cursor: the caller's row_factory and text_factory must not shape the dump.
    cur = conn.cursor()
    cur.row_factory = None
    try:
        return [tuple(row) for row in cur.execute(sql, params).fetchall()]
    finally:
        cur.close()


def iterdump(conn: Any, *, filter: str | None = None) -> Iterator[str]:
    """Yield the statements of ``conn``'s main database, as ``sqlite3``'s iterdump does."""
    newer = sys.version_info >= (3, 13)
    if newer and _rows(conn, "PRAGMA foreign_key_check"):
        # Rows that break a foreign key must load: the dump turns the checks off first.
        yield "PRAGMA foreign_keys=OFF;"
    yield "BEGIN TRANSACTION;"
    where = "AND name LIKE ?" if filter else ""
    params: tuple[object, ...] = (filter,) if filter else ()
    tables = _rows(
        conn,
        f"SELECT name, type, sql FROM sqlite_master WHERE sql NOT NULL AND type == 'table' "
        f"{where} ORDER BY name",
        params,
    )
    schema_written = False
    sequences = []
    for name, _kind, sql in tables:
        if name == "sqlite_sequence":
            sequences = _rows(conn, 'SELECT name, seq FROM "sqlite_sequence"')
            continue
        if name == "sqlite_stat1":
            yield 'ANALYZE "sqlite_master";'
            continue
        if name.startswith("sqlite_"):
            continue
        if sql.startswith("CREATE VIRTUAL TABLE"):
            if not schema_written:
                yield "PRAGMA writable_schema=ON;"
                schema_written = True
            yield (
                "INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)"
                "VALUES('table',{0},{0},0,{1});".format(_literal(name), _literal(sql))
            )
            continue
        yield f"{sql};"
        columns = [row[1] for row in _rows(conn, f"PRAGMA table_info({_quote_name(name)})")]
        values = ",".join(f"'||quote({_quote_name(c)})||'" for c in columns)
        select = (
            f"SELECT 'INSERT INTO {_quote_literal_name(name)} VALUES({values})' "
            f"FROM {_quote_name(name)}"
        )
        for (row,) in _rows(conn, select):
            yield f"{row};"
    if sequences:
        yield 'DELETE FROM "sqlite_sequence";'
        for seq_name, seq in sequences:
            yield f'INSERT INTO "sqlite_sequence" VALUES({_literal(seq_name)},{seq});'
    others = _rows(
        conn,
        f"SELECT name, type, sql FROM sqlite_master WHERE sql NOT NULL AND "
        f"type IN ('index', 'trigger', 'view') {where} ORDER BY type, name"
        if not newer
        else f"SELECT name, type, sql FROM sqlite_master WHERE sql NOT NULL AND "
        f"type IN ('index', 'trigger', 'view') {where}",
        params,
    )
    for _name, _kind, sql in others:
        yield f"{sql};"
    if schema_written:
        yield "PRAGMA writable_schema=OFF;"
    yield "COMMIT;"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_literal_name(name: str) -> str:
    # The table's quoted name inside the SQL string literal of the SELECT above.
    return _quote_name(name).replace("'", "''")
