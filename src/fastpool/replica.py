"""``fastpool.ReplicaPool`` and ``AsyncReplicaPool``: read-only pools on a Litestream replica.

Their connections open the replica through the Litestream VFS (the ``litestream-vfs`` package,
``pip install 'fastpool[litestream]'``), which reads the database straight from the replica's
storage (``file://``, ``s3://``, ...) and polls it for what the primary's ``litestream
replicate`` uploaded since. See docs/scale-out.md for the deployment and the VFS's limits: it
reads the replica URL from ``LITESTREAM_REPLICA_URL`` as the process started, so one process
reads one replica.

``litestream_position(path)`` is the primary's side: the transaction ID of the latest change
Litestream recorded for a database, to hand to a replica's ``reader(at_least=...)``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeVar

from fastpool._core import Connection, Row, load_vfs_extension
from fastpool.errors import (
    OperationalError,
    PoolClosed,
    PoolTimeout,
    ReplicaReadOnlyError,
)

__all__ = ["AsyncReplicaPool", "ReplicaPool", "litestream_position"]

VFS_NAME = "litestream"
URL_VARIABLE = "LITESTREAM_REPLICA_URL"
SQLITE_READONLY = 8
T = TypeVar("T")

# The VFS polls the replica once a second. A connection whose polls have all failed for this
# long gets its page index rebuilt from a fresh listing of the replica: litestream-vfs 0.5.17
# wedges a connection for good (every poll fails with "non-contiguous ltx file") when it
# opened before Litestream's first level-1 compaction and that compaction then spans the
# position it opened at; the rebuild, what opening a connection does, is what frees it.
STALLED_POLL_SECONDS = 5
# How often (seconds) a connection's lag is looked at, at checkout and while waiting.
STALL_CHECK_INTERVAL = 1.0

WRITE_HINT = (
    "a ReplicaPool is read-only: a Litestream replica is written only by the primary's "
    "`litestream replicate`. Write on the primary (its fastpool.Pool); this replica sees the "
    "change once Litestream uploaded it and the VFS polled it (see ReplicaPool.lag() and "
    "reader(at_least=litestream_position(...)))"
)


def _startup_environment() -> dict[str, str] | None:
    """The environment this process started with (Linux: /proc/self/environ), else None."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {os.fsdecode(k): os.fsdecode(v) for k, v in pairs}


def _load_vfs(replica_url: str) -> None:
    """Load the Litestream VFS once per process, for the replica at replica_url."""
    if not isinstance(replica_url, str) or "://" not in replica_url:
        raise ValueError(
            f"replica_url must be a Litestream replica URL such as 'file:///backups/db' or "
            f"'s3://bucket/db', not {replica_url!r}"
        )
    # The VFS (Go) reads LITESTREAM_REPLICA_URL from the environment the process started
    # with: a value set later, in os.environ, is not seen.
    started = _startup_environment()
    seen = (started if started is not None else os.environ).get(URL_VARIABLE)
    if seen != replica_url:
        raise OperationalError(
            f"the Litestream VFS reads its replica from {URL_VARIABLE} as this process "
            f"started, which is {seen!r}, not {replica_url!r}; a process reads one replica. "
            f"Start the process with {URL_VARIABLE}={replica_url} in its environment (for "
            f"example in the service's unit file or `env {URL_VARIABLE}=... python app.py`)"
        )
    try:
        import litestream_vfs  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise OperationalError(
            "fastpool.ReplicaPool needs the Litestream VFS: pip install 'fastpool[litestream]'"
        ) from None
    load_vfs_extension(litestream_vfs.loadable_path(), VFS_NAME)


def _txid(value: object) -> int:
    """A TXID as Litestream writes it (16 hex digits) or an int, as an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return int(value, 16)
    raise TypeError(f"a position is an int or Litestream's hex TXID string, not {value!r}")


def litestream_position(
    path: str | os.PathLike[str], newer_than: int | None = None, timeout: float = 30.0
) -> int | None:
    """The primary's position: the highest transaction ID Litestream recorded for a database.

    Read from Litestream's local LTX files (``.<name>-litestream/ltx/0`` beside the
    database); None before its first sync. With ``newer_than``, waits (at most ``timeout``
    seconds, then PoolTimeout) for a position past it that holds every transaction committed
    to the database before the call: Litestream records a change at its next sync
    (``monitor-interval``, 1 s by default). Read-your-writes across hosts::

        before = litestream_position(db)
        pool.execute(...)                                   # commit on the primary
        position = litestream_position(db, newer_than=before)
        # on a replica host: with replica.reader(at_least=position) as r: ...

    A sync that was already reading the log as the write committed records what came before
    it; the position returned is never that one (see docs/scale-out.md).
    """
    db = Path(os.fspath(path))
    level0 = db.parent / f".{db.name}-litestream" / "ltx" / "0"
    if newer_than is None:
        return max((txid for txid, _ in _level0_files(level0)), default=None)
    newer_than = _txid(newer_than)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
    committed = _wal_end(db)
    deadline = time.monotonic() + timeout
    while True:
        found = _covering_txid(level0, newer_than, committed)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise PoolTimeout(
                f"Litestream recorded no position past {newer_than:016x} holding the commits "
                f"to {db} within {timeout} s: is `litestream replicate` running on it?"
            )
        time.sleep(0.02)


class _WalEnd(NamedTuple):
    """Where the WAL's last commit ends, and the salt of that WAL generation."""

    salt: bytes
    offset: int


# SQLite's WAL-index header (the first 48 bytes of -shm, written twice; native byte order):
# szPage u16 at 14, mxFrame u32 at 16, the WAL header's salts as raw bytes at 32.
_WAL_HEADER = 32
_FRAME_HEADER = 24


def _wal_end(db: Path) -> _WalEnd | None:
    """The committed end of db's WAL, from its -shm; None when there is no readable one."""
    for _ in range(100):
        try:
            with open(f"{db}-shm", "rb") as shm:
                head = shm.read(96)
        except OSError:
            return None
        if len(head) < 96 or head[12] == 0:  # too short or isInit unset: nothing to go on
            return None
        if head[:48] == head[48:]:  # the two copies agree: not caught mid-update
            size = int.from_bytes(head[14:16], sys.byteorder)
            page = 65536 if size == 1 else size
            frames = int.from_bytes(head[16:20], sys.byteorder)
            return _WalEnd(head[32:40], _WAL_HEADER + frames * (page + _FRAME_HEADER))
        time.sleep(0.001)
    return None


# Litestream's LTX header: WALOffset u64 at 48, WALSize u64 at 56, WAL salts at 64 (big-endian).
_LTX_HEADER = 72


def _covering_txid(level0: Path, newer_than: int, committed: _WalEnd | None) -> int | None:
    """The lowest TXID past newer_than whose LTX reaches committed's end of the WAL."""
    later = sorted(txid_name for txid_name in _level0_files(level0) if txid_name[0] > newer_than)
    if committed is None or committed.offset == _WAL_HEADER:
        # No WAL index to compare with, or an empty log (all of it checkpointed into the
        # database, which Litestream does only after copying it): any later position.
        return later[-1][0] if later else None
    seen_generation = False
    for txid, name in later:
        try:
            with open(level0 / name, "rb") as ltx:
                head = ltx.read(_LTX_HEADER)
        except OSError:  # compacted away meanwhile: the next scan sees its successor
            continue
        if len(head) < _LTX_HEADER or head[:4] != b"LTX1":
            continue
        salt = head[64:72]
        if salt == committed.salt:
            seen_generation = True
            end = int.from_bytes(head[48:56], "big") + int.from_bytes(head[56:64], "big")
            if end >= committed.offset:
                return txid
        elif seen_generation:
            # A later WAL generation: the log restarted after Litestream copied all of ours.
            return txid
    return None


def _level0_files(level0: Path) -> Iterator[tuple[int, str]]:
    """(max TXID, file name) of each LTX file in Litestream's level 0."""
    try:
        names = os.listdir(level0)
    except FileNotFoundError:
        return
    for name in names:
        stem, _, ext = name.partition(".")
        if ext != "ltx" or "-" not in stem:
            continue
        try:
            yield int(stem.rsplit("-", 1)[1], 16), name
        except ValueError:
            continue


class ReplicaReader:
    """One replica connection, lent by ``ReplicaPool.reader()``; reads only."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def fetchone(self, sql: str, params: Any = ()) -> Any:
        """The first row of ``sql`` (or None)."""
        return _read(self._conn.fetchone, sql, params)

    def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of ``sql``."""
        return _read(self._conn.fetchall, sql, params)

    def position(self) -> int:
        """The replica position this connection reads at (Litestream's TXID)."""
        return _txid(self._conn.fetchone("PRAGMA litestream_txid")[0])

    def execute(self, sql: str, params: Any = ()) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)


def _read(method: Callable[[str, Any], T], sql: str, params: Any) -> T:
    try:
        return method(sql, params)
    except OperationalError as exc:
        code = exc.sqlite_errorcode
        if code is not None and code & 0xFF == SQLITE_READONLY:
            raise ReplicaReadOnlyError(f"{exc}: {WRITE_HINT}") from None
        raise


class _Options(NamedTuple):
    replica_url: str
    readers: int
    acquisition_timeout: float | None
    statement_cache_size: int
    row_factory: type[Row] | None


class _ReplicaFacade:
    """The constructor both replica pools share (internal)."""

    def __init__(
        self,
        replica_url: str,
        readers: int = 4,
        *,
        acquisition_timeout: float | None = 30.0,
        statement_cache_size: int = 128,
        row_factory: type[Row] | None = None,
    ) -> None:
        """Open the pool: loads the VFS and opens one connection, so a bad URL fails here.

        Args:
            replica_url: the replica's URL (``file://``, ``s3://``, ...): the process's
                ``LITESTREAM_REPLICA_URL`` as it started.
            readers: connections at most, each opened on first use.
            acquisition_timeout: seconds to wait for a free one before ``PoolTimeout``
                (None waits forever).
            statement_cache_size: prepared statements kept per connection.
            row_factory: None for tuples, or ``fastpool.Row``.
        """
        if type(readers) is not int or readers < 1:
            raise ValueError(f"readers must be an int >= 1, not {readers!r}")
        if acquisition_timeout is not None and not acquisition_timeout >= 0:
            raise ValueError(
                f"acquisition_timeout must be >= 0 or None, not {acquisition_timeout!r}"
            )
        self.replica_url = replica_url
        self._open(
            _Options(replica_url, readers, acquisition_timeout, statement_cache_size, row_factory)
        )

    def _open(self, o: _Options) -> None:
        raise NotImplementedError


class ReplicaPool(_ReplicaFacade):
    """A read-only pool on a Litestream replica, through the Litestream VFS.

    ``ReplicaPool(replica_url, readers=4)``: up to ``readers`` connections, opened on first
    use, each reading the replica at ``replica_url`` (which must be this process's
    ``LITESTREAM_REPLICA_URL``, set before it started). Reads as ``Pool``'s (``fetchone``,
    ``fetchall``, ``reader()``); every write raises ``ReplicaReadOnlyError``.
    """

    def _open(self, o: _Options) -> None:
        _load_vfs(o.replica_url)
        self._readers = o.readers
        self._timeout = o.acquisition_timeout
        self._cache_size = o.statement_cache_size
        self._row_factory = o.row_factory
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(o.readers)
        self._lock = threading.Lock()
        self._opened = 0
        self._checkouts = 0
        self._timeouts = 0
        self._rebuilds = 0
        # Per connection: when it opened, and when _revive_if_stalled may next look at it.
        # Touched only by the thread holding that connection (and close, for idle ones).
        self._opened_at: dict[Connection, float] = {}
        self._next_check: dict[Connection, float] = {}
        self._closed = False
        self._idle.put(self._connect())  # fails here on an unreadable replica

    def _connect(self) -> Connection:
        conn = Connection(
            f"file:litestream-replica?vfs={VFS_NAME}&mode=ro",
            readonly=True,
            statement_cache_size=self._cache_size,
            row_factory=self._row_factory,
        )
        self._opened_at[conn] = time.monotonic()
        with self._lock:
            self._opened += 1
        return conn

    def _checkout(self) -> Connection:
        if self._closed:
            raise PoolClosed("the ReplicaPool is closed")
        if not self._slots.acquire(timeout=self._timeout):
            with self._lock:
                self._timeouts += 1
            raise PoolTimeout(
                f"no replica connection became free within {self._timeout} s "
                f"(all {self._readers} are in use; raise readers=)"
            )
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            try:
                conn = self._connect()
            except BaseException:
                self._slots.release()
                raise
        with self._lock:
            self._checkouts += 1
        try:
            self._revive_if_stalled(conn)
        except BaseException:
            self._checkin(conn)
            raise
        return conn

    def _revive_if_stalled(self, conn: Connection) -> None:
        """Rebuild conn's page index when its polls have failed for STALLED_POLL_SECONDS."""
        now = time.monotonic()
        if now < self._next_check.get(conn, 0.0):
            return
        self._next_check[conn] = now + STALL_CHECK_INTERVAL
        lag = int(conn.fetchone("PRAGMA litestream_lag")[0])
        if lag < 0:  # no poll has succeeded yet: count from the connection's opening
            lag = int(now - self._opened_at.get(conn, now))
        if lag < STALLED_POLL_SECONDS:
            return
        # Storage that cannot be listed fails the rebuild too: lag() keeps saying so, and the
        # next attempt waits as long again (a listing is a request to the storage).
        self._next_check[conn] = now + STALLED_POLL_SECONDS
        try:
            conn.fetchone("PRAGMA litestream_time = 'latest'")
        except OperationalError:
            return
        with self._lock:
            self._rebuilds += 1

    def _checkin(self, conn: Connection) -> None:
        if self._closed or conn.fatal:
            self._close_connection(conn)
        else:
            self._idle.put(conn)
        self._slots.release()

    @contextmanager
    def reader(
        self, at_least: int | str | None = None, timeout: float = 30.0
    ) -> Iterator[ReplicaReader]:
        """Lend one connection; with ``at_least``, once it reads at that position or later.

        ``at_least`` is a position (``litestream_position()`` on the primary, or a replica
        ``position()``): read-your-writes across hosts. Waits at most ``timeout`` seconds for
        the replica to get there (PoolTimeout after).
        """
        conn = self._checkout()
        try:
            lent = ReplicaReader(conn)
            if at_least is not None:
                self._wait_position(lent, _txid(at_least), timeout)
            yield lent
        finally:
            self._checkin(conn)

    def _wait_position(self, reader: ReplicaReader, position: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            now = reader.position()
            if now >= position:
                # The VFS's position does not prove its page index is at that position: a
                # poll that brings a level-1 (compacted) LTX file lays its pages over the
                # index without comparing TXIDs, so a compaction older than the level-0 files
                # already applied puts older pages back (litestream-vfs 0.5.17). Rebuilding
                # the index, as opening a connection does, applies the files in TXID order;
                # then check again.
                reader._conn.fetchone("PRAGMA litestream_time = 'latest'")
                if (now := reader.position()) >= position:
                    return
            if time.monotonic() > deadline:
                lag = int(reader._conn.fetchone("PRAGMA litestream_lag")[0])
                polled = "has not polled yet" if lag < 0 else f"last polled it {lag} s ago"
                raise PoolTimeout(
                    f"the replica did not reach position {position:016x} within {timeout} s "
                    f"(it reads at {now:016x}; the connection {polled}): is `litestream "
                    f"replicate` running on the primary, and can this host reach the replica?"
                )
            self._revive_if_stalled(reader._conn)
            time.sleep(0.02)

    def fetchone(self, sql: str, params: Any = ()) -> Any:
        """The first row of ``sql`` (or None), on a free replica connection."""
        with self.reader() as r:
            return r.fetchone(sql, params)

    def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of ``sql``, on a free replica connection."""
        with self.reader() as r:
            return r.fetchall(sql, params)

    def position(self) -> int:
        """The position (Litestream's TXID) a free connection of this pool reads at."""
        with self.reader() as r:
            return r.position()

    def wait_for(self, position: int | str, timeout: float = 30.0) -> int:
        """Wait until a connection of the pool reads at ``position`` or later; its position.

        For reads at that position use ``reader(at_least=position)``: each connection polls
        the replica on its own.
        """
        with self.reader(at_least=position, timeout=timeout) as r:
            return r.position()

    def lag(self) -> float | None:
        """Seconds since the VFS last polled the replica successfully (None: not yet).

        The VFS polls once a second; the replica itself trails the primary by Litestream's
        sync interval (1 s by default) plus the upload: docs/scale-out.md.
        """
        with self.reader() as r:
            value = int(r._conn.fetchone("PRAGMA litestream_lag")[0])
        return None if value < 0 else float(value)

    def stats(self) -> dict[str, Any]:
        """Counters and gauges: connections, checkouts, timeouts, position, lag, and
        ``index_rebuilds`` (connections whose stalled polls were freed by a rebuild)."""
        with self._lock:
            out: dict[str, Any] = {
                "readers": self._readers,
                "open_connections": self._opened,
                "idle": self._idle.qsize(),
                "checkouts": self._checkouts,
                "timeouts": self._timeouts,
                "index_rebuilds": self._rebuilds,
                "closed": self._closed,
            }
        if not self._closed:
            out["position"] = self.position()
            out["lag"] = self.lag()
        return out

    def execute(self, sql: str, params: Any = ()) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def executemany(self, sql: str, seq_of_params: Any) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def writer(self) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def transaction(self) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def close(self) -> None:
        """Close the idle connections; lent ones close as they come back."""
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            self._close_connection(conn)

    def _close_connection(self, conn: Connection) -> None:
        conn.close()
        self._opened_at.pop(conn, None)
        self._next_check.pop(conn, None)
        with self._lock:
            self._opened -= 1

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def __enter__(self) -> ReplicaPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<fastpool.ReplicaPool {self.replica_url!r} readers={self._readers} {state}>"


class AsyncReplicaPool(_ReplicaFacade):
    """``ReplicaPool`` for asyncio: the same reads, awaited (run on worker threads)."""

    def _open(self, o: _Options) -> None:
        self._pool = ReplicaPool(
            o.replica_url,
            o.readers,
            acquisition_timeout=o.acquisition_timeout,
            statement_cache_size=o.statement_cache_size,
            row_factory=o.row_factory,
        )

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        """The first row of ``sql`` (or None)."""
        return await asyncio.to_thread(self._pool.fetchone, sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """Every row of ``sql``."""
        return await asyncio.to_thread(self._pool.fetchall, sql, params)

    @asynccontextmanager
    async def reader(self, at_least: int | str | None = None, timeout: float = 30.0) -> Any:
        """Lend one connection (see ``ReplicaPool.reader``); its calls block, so run them
        with ``asyncio.to_thread`` when they are long."""
        manager = self._pool.reader(at_least, timeout)
        lent = await asyncio.to_thread(manager.__enter__)
        try:
            yield lent
        finally:
            await asyncio.to_thread(manager.__exit__, *sys.exc_info())

    async def position(self) -> int:
        """See ``ReplicaPool.position``."""
        return await asyncio.to_thread(self._pool.position)

    async def wait_for(self, position: int | str, timeout: float = 30.0) -> int:
        """See ``ReplicaPool.wait_for``."""
        return await asyncio.to_thread(self._pool.wait_for, position, timeout)

    async def lag(self) -> float | None:
        """See ``ReplicaPool.lag``."""
        return await asyncio.to_thread(self._pool.lag)

    async def stats(self) -> dict[str, Any]:
        """See ``ReplicaPool.stats``."""
        return await asyncio.to_thread(self._pool.stats)

    async def execute(self, sql: str, params: Any = ()) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    async def executemany(self, sql: str, seq_of_params: Any) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def writer(self) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    def transaction(self) -> NoReturn:
        """Refused: a replica is read-only (ReplicaReadOnlyError)."""
        raise ReplicaReadOnlyError(WRITE_HINT)

    async def close(self) -> None:
        """Close the pool (see ``ReplicaPool.close``)."""
        await asyncio.to_thread(self._pool.close)

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._pool.closed

    async def __aenter__(self) -> AsyncReplicaPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
