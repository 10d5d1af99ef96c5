"""SQLAlchemy's pytest plugin, with the fastpool dialects registered (third-party style).

One change to SQLAlchemy's SQLite provisioning, made for every driver compared alike: the
suite's ``test_schema`` database is attached on every SQLite connection of every engine the
suite makes, including the ones it gives a pool class of its own (SQLAlchemy's hook attaches
it only on the main engine's pool). For the fastpool drivers the pool's ``on_connect`` does
it, since a ``connect`` event there fires once per SQLAlchemy handle, not per SQLite
connection.
"""

import os
import sqlite3

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite import provision as _sqlite_provision  # noqa: F401 (loaded first)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from sqlalchemy.testing.provision import post_configure_engine

registry.register("sqlite.fastpool", "fastpool.sqlalchemy.dialect", "FastpoolDialect")
registry.register("sqlite.fastpool_async", "fastpool.sqlalchemy.dialect", "FastpoolAsyncDialect")

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403


def _attach_path(driver):
    return f"{driver}_test_schema.db"


def _attach(conn, path):
    names = [row[1] for row in conn.execute("PRAGMA database_list").fetchall()]
    if "test_schema" not in names:
        conn.execute(f'ATTACH DATABASE "{path}" AS test_schema')


@event.listens_for(Engine, "do_connect")
def _fastpool_attach(dialect, record, cargs, cparams):
    if dialect.driver.startswith("fastpool"):
        path = _attach_path(dialect.driver)
        # An empty file is an empty database: the read-only readers can attach it too.
        open(path, "ab").close()
        cparams["on_connect"] = lambda conn: _attach(conn, path)


@event.listens_for(Pool, "connect")
def _sqlite3_attach(dbapi_connection, record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        _attach(dbapi_connection, _attach_path("pysqlite"))
    elif type(dbapi_connection).__module__.endswith(".aiosqlite"):
        _attach(dbapi_connection, _attach_path("aiosqlite"))


@post_configure_engine.for_db("sqlite")
def _post_configure_engine(url, engine, follower_ident):
    @event.listens_for(engine, "engine_disposed")
    def remove_files(engine):
        for path in (_attach_path(engine.driver), engine.url.database):
            if path and path != ":memory:" and os.path.exists(path):
                os.remove(path)
