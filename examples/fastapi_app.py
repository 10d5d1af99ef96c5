"""A FastAPI service on ``fastpool.AsyncPool``: the pool lives in the app's lifespan, and a
dependency hands each request a lease: a reader for GETs, the writer for POSTs.

The same inventory as ``examples/wsgi_app.py``:

    GET  /items?limit=N        -> {"total": T, "items": [...]}
    GET  /items/{id}           -> {"id", "name", "qty"}            (404 if missing)
    POST /items                {"name": str, "qty": int}  -> 201 {"id", "name", "qty"}
    POST /items/{id}/add       {"n": int}                 -> {"id", "qty"} (the new quantity)
    GET  /stats                -> the pool's stats()
    GET  /health               -> {"ok": true}

Run it (needs ``pip install fastapi uvicorn``):

    python examples/fastapi_app.py --db inventory.db --port 8000 --readers 4
    # or: FASTPOOL_EXAMPLE_DB=inventory.db uvicorn fastapi_app:app   (from examples/)

The lease dependencies use ``Depends(..., scope="function")`` (FastAPI 0.121.1 or newer):
the code after their ``yield`` runs when the endpoint returns, *before* the response is sent.
So a write is committed before the client hears about it, and a lease is back in the pool
while the response is still being written to a slow client. If the endpoint raises
(``HTTPException`` included), the writer's transaction is rolled back.

``tests/test_example_fastapi.py`` serves it with uvicorn and sends it a few thousand
concurrent requests.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import fastpool

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS items (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        qty  INTEGER NOT NULL CHECK (qty >= 0))""",
    """CREATE TABLE IF NOT EXISTS moves (
        id      INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id),
        n       INTEGER NOT NULL)""",
)


class NewItem(BaseModel):
    name: str = Field(min_length=1)
    qty: int = Field(ge=0)


class Move(BaseModel):
    n: int = Field(ge=1)


# -- lease dependencies --------------------------------------------------------------------


async def reader(request: Request) -> AsyncIterator[fastpool.AsyncLease]:
    """One of the pool's read-only connections, for the duration of the endpoint."""
    async with request.app.state.pool.reader() as conn:
        yield conn


async def writer(request: Request) -> AsyncIterator[fastpool.AsyncLease]:
    """The writer, in a transaction: committed when the endpoint returns, rolled back if it
    raises. Writers wait for it in the order they arrived."""
    async with request.app.state.pool.writer() as conn:
        yield conn


Reader = Annotated[fastpool.AsyncLease, Depends(reader, scope="function")]
Writer = Annotated[fastpool.AsyncLease, Depends(writer, scope="function")]


# -- the app --------------------------------------------------------------------------------


def create_app(db: str, readers: int = 4) -> FastAPI:
    """The FastAPI app serving ``db``; the pool is opened and closed by its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with fastpool.AsyncPool(db, readers=readers) as pool:
            async with pool.writer() as conn:
                for statement in SCHEMA:
                    await conn.execute(statement)
            app.state.pool = pool
            yield
        # leaving the block closed the pool: every connection, after the last request

    app = FastAPI(title="fastpool inventory", lifespan=lifespan)

    @app.exception_handler(fastpool.PoolTimeout)
    async def pool_timeout(request: Request, exc: fastpool.PoolTimeout) -> JSONResponse:
        # The pool is saturated: tell the client to come back, and say why.
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items")
    async def list_items(conn: Reader, limit: int = 100) -> dict[str, Any]:
        limit = max(0, min(1000, limit))
        # One statement, so the count and the page come from one snapshot.
        rows = await conn.fetchall(
            "SELECT id, name, qty, (SELECT count(*) FROM items) FROM items ORDER BY id LIMIT ?",
            (limit,))
        total = rows[0][3] if rows else (await conn.fetchone("SELECT count(*) FROM items"))[0]
        return {"total": total,
                "items": [{"id": i, "name": name, "qty": qty} for i, name, qty, _ in rows]}

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, conn: Reader) -> dict[str, Any]:
        row = await conn.fetchone("SELECT id, name, qty FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise HTTPException(404, f"no item {item_id}")
        return {"id": row[0], "name": row[1], "qty": row[2]}

    @app.post("/items", status_code=201)
    async def create_item(item: NewItem, conn: Writer) -> dict[str, Any]:
        cur = await conn.execute(
            "INSERT INTO items (name, qty) VALUES (?, ?)", (item.name, item.qty))
        item_id = cur.lastrowid
        if item.qty:
            await conn.execute(
                "INSERT INTO moves (item_id, n) VALUES (?, ?)", (item_id, item.qty))
        return {"id": item_id, "name": item.name, "qty": item.qty}

    @app.post("/items/{item_id}/add")
    async def add(item_id: int, move: Move, conn: Writer) -> dict[str, Any]:
        row = await conn.fetchone(
            "UPDATE items SET qty = qty + ? WHERE id = ? RETURNING qty", (move.n, item_id))
        if row is None:
            raise HTTPException(404, f"no item {item_id}")    # rolls the transaction back
        await conn.execute("INSERT INTO moves (item_id, n) VALUES (?, ?)", (item_id, move.n))
        return {"id": item_id, "qty": row[0]}

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.pool.stats()
        return result

    return app


#: For ``uvicorn fastapi_app:app``; the database comes from FASTPOOL_EXAMPLE_DB.
app = create_app(os.environ.get("FASTPOOL_EXAMPLE_DB", "inventory.db"))


def main(argv: list[str] | None = None, factory: Callable[[str, int], FastAPI] = create_app) -> int:
    """Serve the app ``factory(db, readers)`` makes (examples/fastapi_sqlalchemy_app.py reuses
    this with its own)."""
    parser = argparse.ArgumentParser(description="the fastpool FastAPI example")
    parser.add_argument("--db", default="inventory.db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, default=None,
                        help="serve on this already-bound listening socket instead")
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args(argv)
    application = factory(args.db, args.readers)
    if args.fd is None:
        uvicorn.run(application, host=args.host, port=args.port, log_level="warning")
        return 0
    # socket(fileno=...) finds the socket's real family. (uvicorn's own fd= option takes it
    # for a Unix socket, so asyncio would not set TCP_NODELAY on a TCP one, and every
    # keep-alive request would wait ~40 ms for a delayed ACK.)
    sock = socket.socket(fileno=args.fd)
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:   # uvicorn re-raises the Ctrl-C it handled, once shut down
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
