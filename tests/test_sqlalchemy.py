"""sqlite+fastpool: SQLAlchemy's ORM and Core on fastpool's pool (docs/sqlalchemy.md).

Real database files, real threads. SQLAlchemy is in the `test` extra: these tests fail, not
skip, without it.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy_models import Base, Book, Counter

import fastpool
from fastpool.sqlalchemy import FastpoolDialect, FastpoolPool, readonly


@pytest.fixture
def engine(tmp_path) -> Iterator[sa.Engine]:
    eng = sa.create_engine(f"sqlite+fastpool:///{tmp_path / 'app.db'}")
    Base.metadata.create_all(eng)
    with Session(eng) as s, s.begin():
        s.add(Counter(id=1, value=0))
    yield eng
    eng.dispose()


def test_the_entry_points_register_both_dialects():
    names = {ep.name: ep.value for ep in entry_points(group="sqlalchemy.dialects")}
    assert names["sqlite.fastpool"] == "fastpool.sqlalchemy.dialect:FastpoolDialect"
    assert names["sqlite.fastpool_async"] == "fastpool.sqlalchemy.dialect:FastpoolAsyncDialect"


def test_the_engine_runs_on_a_fastpool_pool(engine):
    assert isinstance(engine.dialect, FastpoolDialect)
    assert isinstance(engine.pool, FastpoolPool)
    assert isinstance(engine.pool.fastpool, fastpool.Pool)
    before = engine.pool.stats()["checkouts"]
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT value FROM counter")).scalar() == 0
    assert engine.pool.stats()["checkouts"] == before + 1


def test_orm_read_modify_write_from_8_threads_keeps_every_increment(engine):
    # The scenario: the SELECT of s.get() opens the transaction, the UPDATE follows.
    # With no option set, every transaction runs on the writer from its first statement.
    make = sessionmaker(engine)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(100):
                with make() as s:
                    c = s.get(Counter, 1)
                    assert c is not None
                    c.value += 1
                    s.add(Book(title=f"{t}-{i}"))
                    s.commit()
        except BaseException as e:  # any failure fails the test below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with make() as s:
        assert s.get(Counter, 1).value == 800
        assert s.scalar(sa.select(sa.func.count()).select_from(Book)) == 800


def test_readonly_transactions_run_on_readers_and_refuse_writes(engine):
    ro = sessionmaker(readonly(engine))
    stats = engine.pool.fastpool.stats
    with ro() as s:
        assert s.get(Counter, 1).value == 0
        # The reader is held by this session's transaction, the writer is free.
        assert stats()["readers_in_use"] == 1 and not stats()["writer_busy"]
        s.get(Counter, 1).value = 5
        with pytest.raises(exc.OperationalError, match="readonly"):
            s.flush()
    assert stats()["readers_in_use"] == 0
    with Session(engine) as s:
        s.get(Counter, 1)
        assert stats()["writer_busy"]  # the default: the writer, from the first read


def test_a_readonly_session_sees_one_snapshot(engine):
    with Session(readonly(engine)) as s:
        first = s.execute(sa.text("SELECT value FROM counter")).scalar()
        with engine.begin() as c:
            c.execute(sa.text("UPDATE counter SET value = value + 7"))
        assert s.execute(sa.text("SELECT value FROM counter")).scalar() == first
    with Session(readonly(engine)) as s:
        assert s.execute(sa.text("SELECT value FROM counter")).scalar() == first + 7


def test_integrity_error_arrives_as_sqlalchemy_integrity_error(engine):
    with Session(engine) as s:
        s.add(Book(title="same"))
        s.commit()
        s.add(Book(title="same"))
        with pytest.raises(exc.IntegrityError) as info:
            s.commit()
    assert isinstance(info.value.orig, fastpool.IntegrityError)
    assert engine.dialect.dbapi.IntegrityError is fastpool.IntegrityError
    assert not engine.pool.stats()["writer_busy"]  # the failed transaction gave it back


def test_autocommit_statements_commit_one_by_one(engine):
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        assert c.get_isolation_level() == "AUTOCOMMIT"
        c.execute(sa.text("UPDATE counter SET value = 41"))
        # No transaction holds the writer between statements.
        assert not engine.pool.stats()["writer_busy"]
        with engine.connect() as other:
            assert other.execute(sa.text("SELECT value FROM counter")).scalar() == 41
        c.rollback()  # nothing to roll back: the update stays
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT value FROM counter")).scalar() == 41
        assert c.get_isolation_level() == "SERIALIZABLE"


def test_nested_savepoints_roll_back_alone(engine):
    with Session(engine) as s:
        s.add(Book(title="outer"))
        with s.begin_nested():
            s.add(Book(title="kept"))
        nested = s.begin_nested()
        s.add(Book(title="dropped"))
        s.flush()
        inner = s.begin_nested()
        s.add(Book(title="dropped too"))
        s.flush()
        inner.rollback()
        nested.rollback()
        s.commit()
    with Session(engine) as s:
        titles = set(s.scalars(sa.select(Book.title)))
    assert titles == {"outer", "kept"}


def test_dispose_closes_the_pool_and_the_engine_opens_a_new_one(engine):
    first = engine.pool.fastpool
    engine.dispose()
    assert first.closed
    with Session(engine) as s:
        assert s.get(Counter, 1).value == 0
    assert engine.pool.fastpool is not first and not engine.pool.fastpool.closed


def test_a_handle_whose_pool_was_closed_is_invalidated_and_replaced(engine):
    # A checked-out connection outlives the pool it ran on (closed behind the engine's
    # back): SQLAlchemy must see a disconnect, drop the handle and reconnect on a new pool.
    conn = engine.connect()
    conn.execute(sa.text("SELECT 1"))
    conn.rollback()
    old = engine.pool.fastpool
    old.close()
    with pytest.raises(exc.OperationalError) as info:
        conn.execute(sa.text("SELECT 1"))
    assert info.value.connection_invalidated
    conn.rollback()
    assert conn.execute(sa.text("SELECT value FROM counter")).scalar() == 0
    conn.close()
    assert engine.pool.fastpool is not old and not engine.pool.fastpool.closed


def test_pre_ping_replaces_a_handle_whose_pool_was_closed(engine):
    eng = sa.create_engine(engine.url, pool_pre_ping=True)
    try:
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        old = eng.pool.fastpool
        old.close()
        with eng.connect() as c:  # the ping fails, the handle is replaced, no error
            assert c.execute(sa.text("SELECT value FROM counter")).scalar() == 0
        assert eng.pool.fastpool is not old
    finally:
        eng.dispose()


def test_pool_options_come_from_the_url_and_connect_args(tmp_path):
    seen: list[object] = []
    eng = sa.create_engine(
        f"sqlite+fastpool:///{tmp_path / 'o.db'}?readers=3&acquisition_timeout=2.5",
        connect_args={
            "on_connect": seen.append,
            "pragmas": {"cache_size": -4000},
            "timeout": 2.5,  # pysqlite's, in seconds: the pool's busy_timeout
        },
    )
    try:
        assert eng.pool.stats()["readers"] == 3
        with eng.connect() as c:
            assert c.execute(sa.text("PRAGMA cache_size")).scalar() == -4000
            # SQLAlchemy's SQL functions are on every pool connection.
            assert c.execute(sa.text("SELECT 'abc' REGEXP 'b'")).scalar() == 1
        assert seen and all(isinstance(x, fastpool.Connection) for x in seen)
        # (The pool's own busy handler serves busy_timeout, so PRAGMA busy_timeout reads 0.)
        handle = eng.raw_connection()
        assert handle.dbapi_connection.pool_arguments["pragmas"]["busy_timeout"] == 2500
        handle.close()
    finally:
        eng.dispose()


def test_fastpool_core_never_imports_sqlalchemy():
    # Only the fastpool.sqlalchemy facade may; `import fastpool` must work without it.
    pkg = Path(fastpool.__file__).resolve().parent
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "sqlalchemy" for n in names), path.name


def test_a_begin_of_its_own_in_autocommit_mode_is_committed_by_commit(engine):
    # SQLAlchemy's recipe for SQLite savepoints with pysqlite: the driver in autocommit mode,
    # BEGIN emitted by a "begin" event. commit() must commit that transaction.
    eng = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT")

    @sa.event.listens_for(eng, "begin")
    def do_begin(conn):
        conn.exec_driver_sql("BEGIN")

    try:
        with eng.begin() as c:
            c.execute(sa.text("UPDATE counter SET value = 5"))
            assert eng.pool.stats()["writer_busy"]  # kept by the open transaction
        with eng.connect() as c, c.begin():
            c.execute(sa.text("UPDATE counter SET value = 6"))
            c.rollback()
        with Session(engine) as s:
            assert s.get(Counter, 1).value == 5
        assert not eng.pool.stats()["writer_busy"]
    finally:
        eng.dispose()


def test_a_second_session_in_the_same_thread_joins_the_first_ones_transaction(engine):
    # docs/sqlalchemy.md, "Two connections in one thread": the writer is per thread, so the
    # second session's writes are a savepoint inside the first one's transaction.
    with Session(engine) as first:
        first.get(Counter, 1).value = 1
        first.flush()
        with Session(engine) as second:
            second.add(Book(title="inner"))
            second.commit()  # releases its savepoint; the first still holds the writer
        assert engine.pool.stats()["writer_busy"]
        first.rollback()  # undoes both
    with Session(engine) as s:
        assert s.get(Counter, 1).value == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Book)) == 0
