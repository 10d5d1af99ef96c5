"""``FastpoolPool``: the SQLAlchemy pool class of the fastpool dialects.

SQLAlchemy's pools keep DB-API connections; here a connection record is only a handle on one
fastpool pool (``fastpool.Pool`` or ``AsyncPool``), which does the pooling: the writer, the
readers, the FIFO queue. So this pool never blocks or limits anything itself; it keeps idle
handles for reuse, opens the fastpool pool with the first one, and closes it on ``dispose()``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from sqlalchemy import pool as sa_pool
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from fastpool.sqlalchemy._adapter import AdaptedConnection

__all__ = ["FastpoolPool"]


class FastpoolPool(sa_pool.Pool):
    """A SQLAlchemy pool whose connections all run on one fastpool pool.

    ``engine.pool.fastpool`` is that pool (``fastpool.Pool``, or ``fastpool.AsyncPool`` for
    ``sqlite+fastpool_async``), ``engine.pool.stats()`` its ``stats()``. ``engine.dispose()``
    closes it; the engine opens a new one on its next connection.
    """

    def __init__(self, creator: Any, **kw: Any) -> None:
        super().__init__(creator, **kw)
        self._idle: deque[Any] = deque()
        self._lock = threading.Lock()
        self._fastpool: Any = None
        self._closer: Any = None
        self._disposed = False
        make = self._invoke_creator

        # Bind each new connection to the shared pool before SQLAlchemy's connect events
        # (the dialect's first-connect initialisation runs statements on it).
        def invoke(rec: ConnectionPoolEntry) -> DBAPIConnection:
            conn = make(rec)
            if isinstance(conn, AdaptedConnection):
                conn.attach(self._pool_for(conn))
            return conn

        self._invoke_creator = invoke

    def _pool_for(self, conn: AdaptedConnection) -> Any:
        with self._lock:
            # Closed behind the engine's back (not by dispose()): the new handle that
            # replaces an invalidated one gets a new pool rather than the dead one.
            if self._fastpool is None or self._fastpool.closed:
                self._fastpool = conn.open_pool()
                self._closer = type(conn).close_pool
            return self._fastpool

    @property
    def fastpool(self) -> Any:
        """The fastpool pool behind this engine (opened by a first connection if need be)."""
        if self._fastpool is None:
            self.connect().close()
        return self._fastpool

    def stats(self) -> dict[str, Any]:
        """The fastpool pool's ``stats()`` (docs/observability.md)."""
        return dict(self.fastpool.stats())

    def status(self) -> str:
        """One line for SQLAlchemy's logs."""
        if self._fastpool is None:
            return "FastpoolPool (no fastpool pool opened yet)"
        s = self._fastpool.stats()
        return (
            f"FastpoolPool on {type(self._fastpool).__name__}: "
            f"{s['readers_in_use']} readers in use, writer "
            f"{'busy' if s['writer_busy'] else 'free'}, {len(self._idle)} idle handles"
        )

    def _do_get(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            return self._create_connection()

    def _do_return_conn(self, record: Any) -> None:
        if self._disposed:
            record.close()
        else:
            self._idle.append(record)

    def dispose(self) -> None:
        """Close the idle handles and the fastpool pool (it waits for its leases, 5 s)."""
        self._disposed = True
        while self._idle:
            self._idle.pop().close()
        pool, self._fastpool = self._fastpool, None
        if pool is not None and self._closer is not None:
            self._closer(pool)

    def recreate(self) -> FastpoolPool:
        """A new, empty FastpoolPool with the same arguments (after ``dispose()``)."""
        return self.__class__(
            self._creator,
            recycle=self._recycle,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            pre_ping=self._pre_ping,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )
