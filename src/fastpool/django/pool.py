"""The process-wide pools of ``fastpool.dbapi`` connections behind ``fastpool.django``.

One ``ConnectionPool`` per database file, settings and process. Django's wrappers take a
connection when they connect and give it back when Django closes them (the end of a request
with ``CONN_MAX_AGE=0``, an unusable connection, ``close_old_connections()``), so a request
costs a checkout instead of opening a file and running its pragmas. This module imports
nothing from Django.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from fastpool import dbapi

__all__ = ["ConnectionPool", "close_pools", "pool_for"]


class ConnectionPool:
    """Idle ``fastpool.dbapi`` connections of one database, lent to Django's wrappers.

    Lent connections are not capped: a Django thread keeps its connection for a whole request
    (or for good, with ``CONN_MAX_AGE=None``), so a cap could only stall or deadlock threads.
    ``max_idle`` bounds the connections kept open between uses; ``max_lifetime`` (seconds, or
    None) replaces a connection given back after that long.
    """

    def __init__(
        self,
        params: dict[str, Any],
        *,
        max_idle: int,
        max_lifetime: float | None,
        prepare: Callable[[dbapi.Connection], None],
    ) -> None:
        self._params = params
        self.database = str(params.get("database"))
        self._max_idle = max_idle
        self._max_lifetime = max_lifetime
        self._prepare = prepare
        self._idle: deque[dbapi.Connection] = deque()
        self._born: weakref.WeakKeyDictionary[dbapi.Connection, float] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.opened = 0  # connections opened, for tests and docs/django.md's checks
        self.reused = 0  # checkouts served by an idle connection

    def take(self) -> dbapi.Connection:
        """An idle connection (the most recently returned: its caches are warm) or a new one."""
        with self._lock:
            if self._idle:
                self.reused += 1
                return self._idle.pop()
            self.opened += 1
        conn = dbapi.connect(**self._params)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._born[conn] = time.monotonic()
        return conn

    def give_back(self, conn: dbapi.Connection) -> None:
        """Take a connection back: rolled back if a transaction is open, kept if there is room
        and it is young enough, closed otherwise. One that no longer works is closed."""
        try:
            if conn.in_transaction:
                conn.rollback()
            keep = self._max_lifetime is None or (
                time.monotonic() - self._born.get(conn, 0.0) < self._max_lifetime
            )
        except dbapi.Error:
            keep = False  # closed underneath, or the rollback failed: never lend it again
        if keep:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        try:
            conn.close()
        except dbapi.Error:
            pass

    def idle(self) -> int:
        """How many connections wait idle in the pool."""
        return len(self._idle)

    def close(self) -> None:
        """Close the idle connections (lent ones are closed when they come back)."""
        with self._lock:
            idle, self._idle = list(self._idle), deque()
            self._max_idle = 0
        for conn in idle:
            conn.close()


# Keyed by process id first: after fork() a child builds its own pools and never touches
# (nor closes) the parent's connections, which stay referenced here.
_POOLS: dict[tuple[int, str], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(
    params: dict[str, Any],
    *,
    max_idle: int,
    max_lifetime: float | None,
    prepare: Callable[[dbapi.Connection], None],
) -> ConnectionPool:
    """The process's pool for these connection parameters, made on first use.

    ``prepare`` runs once on each connection the pool opens (Django's SQL functions).
    """
    key = (os.getpid(), repr(sorted((k, repr(v)) for k, v in params.items())))
    pool = _POOLS.get(key)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                pool = _POOLS[key] = ConnectionPool(
                    params, max_idle=max_idle, max_lifetime=max_lifetime, prepare=prepare
                )
    return pool


def close_pools(database: str | None = None) -> None:
    """Close the idle connections of this process's pools (of ``database`` only, if given)
    and forget those pools; connections still lent are closed when they come back."""
    with _POOLS_LOCK:
        mine = [
            key
            for key, pool in _POOLS.items()
            if key[0] == os.getpid() and database in (None, pool.database)
        ]
        pools = [_POOLS.pop(key) for key in mine]
    for pool in pools:
        pool.close()


# At exit the idle connections are closed, so that SQLite checkpoints and removes the -wal
# file as it does when a program closes its last connection.
atexit.register(close_pools)
