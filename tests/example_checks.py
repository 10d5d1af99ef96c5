"""Checks shared by the example applications' load tests (tests/test_example_*.py)."""

from __future__ import annotations

import sqlite3


def check_final_database(db, items, added, new_items):
    """Read the file with the stdlib sqlite3 module, after the server and pool are closed."""
    expected = {i: (n, q + sum(added.get(i, []))) for i, (n, q) in items.items()}
    expected.update(new_items)
    moves = sum(len(ns) for ns in added.values())
    moves += sum(1 for _, q in list(items.values()) + list(new_items.values()) if q)
    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = check.execute("SELECT id, name, qty FROM items").fetchall()
        assert {i: (n, q) for i, n, q in rows} == expected
        assert check.execute("SELECT count(*) FROM moves").fetchone() == (moves,)
        # Every quantity is the sum of its moves: both statements of each write committed
        # together.
        assert check.execute(
            "SELECT count(*) FROM items WHERE qty != "
            "(SELECT coalesce(sum(n), 0) FROM moves WHERE item_id = items.id)"
        ).fetchone() == (0,)
    finally:
        check.close()
