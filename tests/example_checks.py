"""Checks shared by the example applications' load tests (tests/test_example_*.py)."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict


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


def make_ops(rng: random.Random, ids: list[int], n: int) -> list[tuple]:
    """The mix of requests: reads of one item, lists, increments, creates, and some errors."""
    ops: list[tuple] = []
    for i in range(n):
        r = rng.random()
        if r < 0.40:
            ops.append(("get", rng.choice(ids), None))
        elif r < 0.50:
            ops.append(("list", None, None))
        elif r < 0.85:
            ops.append(("add", rng.choice(ids), rng.randrange(1, 10)))
        elif r < 0.95:
            ops.append(("create", None, (f"new-{i}", rng.randrange(0, 5))))
        elif r < 0.97:
            ops.append(("missing", 10**9 + i, None))
        else:
            ops.append(("bad", rng.choice(ids), None))
    return ops


def check_answers(results, items, ids, *, error_field, bad_status, bad_says=None):
    """Check each answer, ``results`` being ``(op, (status, body))`` pairs; return ``(added,
    new_items)``: the increments sent to each item, and the items created. ``error_field``:
    the key of the message in the app's error bodies; ``bad_status``, ``bad_says``: its answer
    to a negative increment, and a phrase its message holds (None: not checked, as FastAPI's
    validation error is a list)."""
    added: dict[int, list[int]] = defaultdict(list)  # item id -> increments sent
    seen_qty: dict[int, list[int]] = defaultdict(list)  # item id -> quantities answered
    new_items: dict[int, tuple[str, int]] = {}
    for (kind, item_id, arg), (status, body) in results:
        if kind == "get":
            assert status == 200, body
            assert body["id"] == item_id and body["name"] == items[item_id][0]
            assert isinstance(body["qty"], int) and body["qty"] >= items[item_id][1]
        elif kind == "list":
            assert status == 200, body
            assert body["total"] >= len(items) and len(body["items"]) == 5
            assert [it["id"] for it in body["items"]] == ids[:5]
        elif kind == "add":
            assert status == 200, body
            assert body["id"] == item_id
            added[item_id].append(arg)
            seen_qty[item_id].append(body["qty"])
        elif kind == "create":
            assert status == 201, body
            assert (body["name"], body["qty"]) == arg
            assert body["id"] not in items and body["id"] not in new_items
            new_items[body["id"]] = arg
        elif kind == "missing":
            assert status == 404 and "no item" in body[error_field], body
        else:
            assert status == bad_status, body
            if bad_says is not None:
                assert bad_says in body[error_field], body

    # Increments of one item went through the single writer one at a time: each answered a
    # distinct running total, the largest being the start plus all of them.
    for item_id, ns in added.items():
        answers = seen_qty[item_id]
        assert len(set(answers)) == len(answers)
        assert max(answers) == items[item_id][1] + sum(ns)
    return added, new_items
