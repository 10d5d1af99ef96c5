"""examples/wsgi_app.py served for real: a threaded WSGI server on 127.0.0.1, a few thousand
concurrent HTTP requests (reads and writes) from a client thread pool, every answer checked,
then the final database checked with the stdlib sqlite3 module after a clean shutdown.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import random
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from example_checks import check_answers, check_final_database, make_ops

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "wsgi_app.py"


def load_example():
    spec = importlib.util.spec_from_file_location("wsgi_app_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve(db, readers):
    """Serve the example app on 127.0.0.1 from a thread; yield (port, pool); shut down."""
    app = load_example()
    server, pool = app.create_server(str(db), "127.0.0.1", 0, readers=readers)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgi-server"
    )
    thread.start()
    try:
        yield server.server_address[1], pool
    finally:
        server.shutdown()  # stops serve_forever
        server.server_close()  # joins the request threads (block_on_close)
        thread.join(10)
        pool.close(timeout=5)
    assert not thread.is_alive(), "the server thread did not stop"
    assert pool.closed


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.timeout(240)
def test_thousands_of_concurrent_requests(tmp_path):
    db = tmp_path / "inventory.db"
    with serve(db, readers=4) as (port, _pool):
        items, added, new_items = drive(port)
    check_final_database(db, items, added, new_items)


def drive(port):
    """Send the load; check every answer; return what the database must now hold."""
    rng = random.Random(1234)

    # Seed items concurrently: every create answers 201 with a fresh id.
    seeds = [(f"item-{i}", rng.randrange(0, 50)) for i in range(40)]
    with ThreadPoolExecutor(16) as ex:
        created = list(
            ex.map(lambda s: request(port, "POST", "/items", {"name": s[0], "qty": s[1]}), seeds)
        )
    assert all(status == 201 for status, _ in created)
    items = {body["id"]: (body["name"], body["qty"]) for _, body in created}
    assert len(items) == len(seeds)
    assert sorted(items.values()) == sorted(seeds)
    ids = sorted(items)

    ops = make_ops(rng, ids, 3000)

    def run(op):
        kind, item_id, arg = op
        if kind == "get":
            return op, request(port, "GET", f"/items/{item_id}")
        if kind == "list":
            return op, request(port, "GET", "/items?limit=5")
        if kind == "add":
            return op, request(port, "POST", f"/items/{item_id}/add", {"n": arg})
        if kind == "create":
            return op, request(port, "POST", "/items", {"name": arg[0], "qty": arg[1]})
        if kind == "missing":
            return op, request(port, "GET", f"/items/{item_id}")
        return op, request(port, "POST", f"/items/{item_id}/add", {"n": -1})

    with ThreadPoolExecutor(24) as ex:
        results = list(ex.map(run, ops))
    assert len(results) == len(ops)

    added, new_items = check_answers(
        results, items, ids, error_field="error", bad_status=400, bad_says="n must be"
    )

    status, stats = request(port, "GET", "/stats")
    assert status == 200
    assert stats["timeouts"] == 0 and stats["readers_in_use"] == 0
    # Every request but the rejected ones checked a connection out (the seeds too).
    assert stats["checkouts"] >= len(seeds) + sum(1 for op in ops if op[0] != "bad")

    return items, added, new_items


@pytest.mark.timeout(240)
def test_increments_from_many_clients_all_land(tmp_path):
    """Writes only, all to a few items: none lost, none doubled, one reader is enough."""
    db = tmp_path / "counters.db"
    expected: dict[int, int] = {}
    with serve(db, readers=1) as (port, pool), ThreadPoolExecutor(16) as ex:
        created = list(
            ex.map(lambda i: request(port, "POST", "/items", {"name": f"x{i}", "qty": 0}), range(5))
        )
        for status, body in created:
            assert status == 201
            expected[body["id"]] = 0
        ids = sorted(expected)
        plan = [(ids[i % len(ids)], 1 + i % 7) for i in range(1500)]
        answers = list(
            ex.map(lambda p: request(port, "POST", f"/items/{p[0]}/add", {"n": p[1]}), plan)
        )
        for (item_id, n), (status, body) in zip(plan, answers, strict=True):
            assert status == 200 and body["id"] == item_id, body
            expected[item_id] += n
        assert pool.stats()["timeouts"] == 0
    check = sqlite3.connect(db)
    try:
        assert dict(check.execute("SELECT id, qty FROM items")) == expected
        assert check.execute("SELECT count(*), sum(n) FROM moves").fetchone() == (
            len(plan),
            sum(n for _, n in plan),
        )
    finally:
        check.close()
