"""A small threaded WSGI service on ``fastpool.Pool``, standard library only.

An inventory of items with a quantity; every change of quantity is also logged in a second
table, in the same transaction.

    GET  /items?limit=N        -> {"total": T, "items": [...]}    (one snapshot for both)
    GET  /items/<id>           -> {"id", "name", "qty"}            (404 if missing)
    POST /items                {"name": str, "qty": int}  -> 201 {"id", "name", "qty"}
    POST /items/<id>/add       {"n": int}                 -> {"id", "qty"} (the new quantity)
    GET  /stats                -> pool.stats()

Run it:

    python examples/wsgi_app.py --db inventory.db --port 8000 --readers 4

Every request runs in its own thread (``socketserver.ThreadingMixIn``; ``wsgiref``'s own
server handles one request at a time). The threads share one pool: reads go to the readers,
writes queue for the single writer in arrival order, and no request ever sees
"database is locked". ``tests/test_example_wsgi.py`` serves it and sends it a few thousand
concurrent requests.
"""

from __future__ import annotations

import argparse
import json
import re
import socketserver
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import fastpool

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    qty  INTEGER NOT NULL CHECK (qty >= 0)
);
CREATE TABLE IF NOT EXISTS moves (
    id      INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    n       INTEGER NOT NULL
);
"""

ITEM = re.compile(r"^/items/(\d+)$")
ADD = re.compile(r"^/items/(\d+)/add$")
MAX_BODY = 64 * 1024

StartResponse = Callable[..., Any]


class HTTPError(Exception):
    """An error answer: status line and message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_json(environ: dict[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object, or HTTPError 400."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError("400 Bad Request", "bad Content-Length") from None
    if length > MAX_BODY:
        raise HTTPError("413 Content Too Large", "body too large")
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except ValueError:
        raise HTTPError("400 Bad Request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPError("400 Bad Request", "the body must be a JSON object")
    return body


def int_field(body: dict[str, Any], name: str, minimum: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HTTPError("400 Bad Request", f"{name} must be an integer >= {minimum}")
    return value


def make_app(pool: fastpool.Pool) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application, serving from ``pool``."""

    def get_item(item_id: int) -> tuple[str, Any]:
        row = pool.fetchone("SELECT id, name, qty FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise HTTPError("404 Not Found", f"no item {item_id}")
        return "200 OK", {"id": row[0], "name": row[1], "qty": row[2]}

    def list_items(query: str) -> tuple[str, Any]:
        limit = 100
        for part in query.split("&"):
            if part.startswith("limit="):
                try:
                    limit = max(0, min(1000, int(part[6:])))
                except ValueError:
                    raise HTTPError("400 Bad Request", "limit must be an integer") from None
        with pool.reader() as conn, conn.transaction():     # one snapshot for both queries
            total = conn.fetchone("SELECT count(*) FROM items")[0]
            rows = conn.fetchall("SELECT id, name, qty FROM items ORDER BY id LIMIT ?", (limit,))
        items = [{"id": i, "name": name, "qty": qty} for i, name, qty in rows]
        return "200 OK", {"total": total, "items": items}

    def create_item(environ: dict[str, Any]) -> tuple[str, Any]:
        body = read_json(environ)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise HTTPError("400 Bad Request", "name must be a non-empty string")
        qty = int_field(body, "qty", 0)
        with pool.writer() as conn:                  # BEGIN IMMEDIATE ... COMMIT
            item_id = conn.execute(
                "INSERT INTO items (name, qty) VALUES (?, ?)", (name, qty)).lastrowid
            if qty:
                conn.execute("INSERT INTO moves (item_id, n) VALUES (?, ?)", (item_id, qty))
        return "201 Created", {"id": item_id, "name": name, "qty": qty}

    def add(item_id: int, environ: dict[str, Any]) -> tuple[str, Any]:
        n = int_field(read_json(environ), "n", 1)
        with pool.writer() as conn:                  # both statements or neither
            row = conn.fetchone(
                "UPDATE items SET qty = qty + ? WHERE id = ? RETURNING qty", (n, item_id))
            if row is None:
                raise HTTPError("404 Not Found", f"no item {item_id}")
            conn.execute("INSERT INTO moves (item_id, n) VALUES (?, ?)", (item_id, n))
        return "200 OK", {"id": item_id, "qty": row[0]}

    def route(environ: dict[str, Any]) -> tuple[str, Any]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if path == "/items":
            if method == "GET":
                return list_items(environ.get("QUERY_STRING", ""))
            if method == "POST":
                return create_item(environ)
        elif path == "/stats" and method == "GET":
            return "200 OK", pool.stats()
        elif (m := ITEM.match(path)) and method == "GET":
            return get_item(int(m.group(1)))
        elif (m := ADD.match(path)) and method == "POST":
            return add(int(m.group(1)), environ)
        raise HTTPError("404 Not Found", f"no route for {method} {path}")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, payload = route(environ)
        except HTTPError as exc:
            status, payload = exc.status, {"error": exc.message}
        except fastpool.PoolTimeout as exc:          # the pool is saturated: ask to retry
            status, payload = "503 Service Unavailable", {"error": str(exc)}
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per connection; server_close() joins those threads."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def create_server(db: str, host: str = "127.0.0.1", port: int = 0, readers: int = 4,
                  ) -> tuple[ThreadingWSGIServer, fastpool.Pool]:
    """Open the pool (creating the schema) and a server bound to ``host:port``, not started.

    Start it with ``server.serve_forever()``; stop it with ``server.shutdown()``, then
    ``server.server_close()`` and ``pool.close()``.
    """
    pool = fastpool.Pool(db, readers=readers, acquisition_timeout=10.0)
    try:
        with pool.writer() as conn:
            conn.executescript(SCHEMA)
        server = make_server(host, port, make_app(pool), server_class=ThreadingWSGIServer,
                             handler_class=QuietHandler)
    except BaseException:
        pool.close()
        raise
    return server, pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="inventory.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args(argv)
    server, pool = create_server(args.db, args.host, args.port, args.readers)
    print(f"serving {args.db} on http://{args.host}:{server.server_address[1]}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
