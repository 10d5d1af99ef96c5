"""The FastAPI inventory of ``examples/fastapi_app.py``, written with SQLAlchemy's ORM on
``sqlite+fastpool_async`` (docs/sqlalchemy.md).

Same endpoints, same answers:

    GET  /items?limit=N        -> {"total": T, "items": [...]}
    GET  /items/{id}           -> {"id", "name", "qty"}            (404 if missing)
    POST /items                {"name": str, "qty": int}  -> 201 {"id", "name", "qty"}
    POST /items/{id}/add       {"n": int}                 -> {"id", "qty"} (the new quantity)
    GET  /stats                -> the fastpool pool's stats()
    GET  /health               -> {"ok": true}

Two session factories on one engine (one AsyncPool): ``Reads`` is bound to
``readonly(engine)``, so its sessions run on the pool's readers, in parallel, each in one
snapshot; ``Writes`` sessions run on the one writer (``BEGIN IMMEDIATE``, FIFO), so the
ORM's read-modify-write in ``add`` (``item.qty += n``) never loses an increment.

Run it (needs ``pip install 'fastpool[sqlalchemy]' fastapi uvicorn``):

    python examples/fastapi_sqlalchemy_app.py --db inventory.db --port 8000 --readers 4

``tests/test_example_fastapi.py`` serves it with uvicorn and sends it a few thousand
concurrent requests, as it does the plain example.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi_app import main as serve  # examples/fastapi_app.py, beside this file
from pydantic import BaseModel, Field
from sqlalchemy import CheckConstraint, ForeignKey, exc, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import fastpool
from fastpool.sqlalchemy import readonly


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (CheckConstraint("qty >= 0"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    qty: Mapped[int]


class Stock(Base):
    __tablename__ = "moves"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    n: Mapped[int]


class NewItem(BaseModel):
    name: str = Field(min_length=1)
    qty: int = Field(ge=0)


class Move(BaseModel):
    n: int = Field(ge=1)


# -- session dependencies --------------------------------------------------------------------


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on one of the pool's readers (one snapshot for the whole endpoint)."""
    async with request.app.state.reads() as session:
        yield session


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the writer, in a transaction: committed when the endpoint returns,
    rolled back if it raises (HTTPException included)."""
    async with request.app.state.writes() as session, session.begin():
        yield session


Reads = Annotated[AsyncSession, Depends(read_session, scope="function")]
Writes = Annotated[AsyncSession, Depends(write_session, scope="function")]


# -- the app --------------------------------------------------------------------------------


def create_app(db: str, readers: int = 4) -> FastAPI:
    """The FastAPI app serving ``db``; the engine is made and disposed of by its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(
            f"sqlite+fastpool_async:///{db}", connect_args={"readers": readers}
        )
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        app.state.engine = engine
        app.state.reads = async_sessionmaker(readonly(engine))
        app.state.writes = async_sessionmaker(engine, expire_on_commit=False)
        yield
        await engine.dispose()  # closes the AsyncPool, after the last request

    app = FastAPI(title="fastpool inventory (SQLAlchemy)", lifespan=lifespan)

    @app.exception_handler(exc.OperationalError)
    async def saturated(request: Request, error: exc.OperationalError) -> JSONResponse:
        # The pool is saturated (PoolTimeout): tell the client to come back, and say why.
        if isinstance(error.orig, fastpool.PoolTimeout):
            return JSONResponse({"error": str(error.orig)}, status_code=503)
        raise error

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/items")
    async def list_items(session: Reads, limit: int = 100) -> dict[str, Any]:
        limit = max(0, min(1000, limit))
        # Two statements, one snapshot: the reader's transaction spans the endpoint.
        total = await session.scalar(select(func.count()).select_from(Item))
        page = await session.scalars(select(Item).order_by(Item.id).limit(limit))
        return {
            "total": total,
            "items": [{"id": it.id, "name": it.name, "qty": it.qty} for it in page],
        }

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, session: Reads) -> dict[str, Any]:
        item = await session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, f"no item {item_id}")
        return {"id": item.id, "name": item.name, "qty": item.qty}

    @app.post("/items", status_code=201)
    async def create_item(new: NewItem, session: Writes) -> dict[str, Any]:
        item = Item(name=new.name, qty=new.qty)
        session.add(item)
        await session.flush()  # assigns item.id
        if new.qty:
            session.add(Stock(item_id=item.id, n=new.qty))
        return {"id": item.id, "name": item.name, "qty": item.qty}

    @app.post("/items/{item_id}/add")
    async def add(item_id: int, move: Move, session: Writes) -> dict[str, Any]:
        item = await session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, f"no item {item_id}")  # rolls the transaction back
        item.qty += move.n  # read-modify-write: safe, the session holds the writer
        session.add(Stock(item_id=item_id, n=move.n))
        await session.flush()
        return {"id": item_id, "qty": item.qty}

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return request.app.state.engine.sync_engine.pool.stats()  # type: ignore[no-any-return]

    return app


#: For ``uvicorn fastapi_sqlalchemy_app:app``; the database comes from FASTPOOL_EXAMPLE_DB.
app = create_app(os.environ.get("FASTPOOL_EXAMPLE_DB", "inventory.db"))


def main(argv: list[str] | None = None) -> int:
    """The command line and server of examples/fastapi_app.py, serving this app."""
    return serve(argv, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
