"""The benchmark database, its pragmas, and the seeded keys and plans every system runs.

Shared by the comparison runner (``python -m fastpool bench``) and by the pytest-benchmark
suites in ``bench/``, so that both measure the same work on the same data.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# -- the database -------------------------------------------------------------------------------

ROWS = 10_000
#: Orders per user: the heavier read joins ``users`` with ``orders``.
ORDERS_PER_USER = 5
SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL)"
ORDERS_SCHEMA = (
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
    "amount REAL NOT NULL, status TEXT NOT NULL)"
)
ORDERS_INDEX = "CREATE INDEX orders_user ON orders (user_id)"
KEEPER_SCHEMA = "CREATE TABLE keeper (at REAL)"

SELECT = "SELECT id, name, email, score FROM users WHERE id = ?"
INSERT = "INSERT INTO users (name, email, score) VALUES (?, ?, ?)"
UPDATE = "UPDATE users SET score = score + 1 WHERE id = ?"

#: Users covered by one heavier read: JOIN_USERS * ORDERS_PER_USER joined rows (3,000).
JOIN_USERS = 600
JOIN = (
    "SELECT u.id % 16 AS bucket, o.status, count(*), sum(o.amount), avg(u.score) "
    "FROM users AS u JOIN orders AS o ON o.user_id = u.id "
    f"WHERE u.id BETWEEN ? AND ? + {JOIN_USERS - 1} "
    "GROUP BY bucket, o.status ORDER BY bucket, o.status"
)

#: The pragmas every system runs with: exactly fastpool.Pool's defaults. ``journal_mode`` is
#: stored in the database file (set once when it is made); the others are set on every new
#: connection of every system (see ``connection_pragmas``).
PRAGMAS: dict[str, object] = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 5000,
    "foreign_keys": "on",
    "journal_size_limit": 64 * 1024 * 1024,
    "wal_autocheckpoint": 1000,
}

#: Connections of every pool that has a fixed size (fastpool's readers, the queue.Queue pool,
#: SQLAlchemy's QueuePool, DBUtils' PooledDB).
POOL_SIZE = 4

#: busy timeout in seconds, as sqlite3.connect's ``timeout`` (= PRAGMAS["busy_timeout"]).
BUSY_TIMEOUT = 5.0

SEED = 20240601


def connection_pragmas() -> list[str]:
    """The ``PRAGMA name=value`` statements a new connection runs (all but journal_mode)."""
    return [f"PRAGMA {name}={value}" for name, value in PRAGMAS.items() if name != "journal_mode"]


def row_values(i: int) -> tuple[str, str, float]:
    """The ``(name, email, score)`` of user ``i``."""
    return (f"user{i}", f"user{i}@example.com", i * 0.5)


def _orders(rows: int) -> Iterator[tuple[int, int, float, str]]:
    statuses = ("new", "paid", "shipped", "returned")
    rng = random.Random(SEED)
    order_id = 0
    for user in range(1, rows + 1):
        for _ in range(ORDERS_PER_USER):
            order_id += 1
            yield (order_id, user, round(rng.uniform(1, 500), 2), statuses[order_id % 4])


def make_database(path: str | os.PathLike[str], rows: int = ROWS) -> str:
    """Create the benchmark database at ``path`` (WAL; ``rows`` users, ``ORDERS_PER_USER``
    orders each) and return its path as a str."""
    path = os.fspath(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={PRAGMAS['journal_mode']}")
        for statement in connection_pragmas():
            conn.execute(statement)
        conn.execute(SCHEMA)
        conn.execute(ORDERS_SCHEMA)
        conn.execute(KEEPER_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO users (id, name, email, score) VALUES (?, ?, ?, ?)",
            ((i, *row_values(i)) for i in range(1, rows + 1)),
        )
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", _orders(rows))
        conn.execute("COMMIT")
        conn.execute(ORDERS_INDEX)
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return path


@contextlib.contextmanager
def live_database(
    path: str | os.PathLike[str],
    rows: int = ROWS,
    connect: Callable[[str], Any] | None = None,
) -> Iterator[str]:
    """``make_database``, then hold it in the state of a database in service: a WAL with
    committed frames not yet checkpointed, kept alive by one idle connection (``Keeper``'s,
    opened with ``connect`` when given: a SQLite copy of its own keeps its own database).

    Without it the last connection to close (e.g. per-thread connections at the end of a
    round) checkpoints and deletes the WAL, and readers then run in the other state (reading
    the main file, read mark 0), which costs SQLite one more fstat() per read transaction, for
    every system alike, and would change between rounds.
    """
    path = make_database(path, rows)
    with Keeper(path, connect):
        yield path


class Keeper:
    """One idle stdlib connection that keeps a database open (so its WAL is never deleted)
    and puts it back into the same state between two systems' turns (``reset``)."""

    def __init__(self, path: str, connect: Callable[[str], Any] | None = None) -> None:
        if connect is None:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        else:  # a system with its own copy of SQLite keeps its own database (see systems.py)
            self.conn = connect(path)
        self.checkpoint_busy = 0
        self.touch()

    def touch(self) -> None:
        """Commit one small change, so the WAL holds frames that are not checkpointed."""
        self.conn.execute("INSERT INTO keeper VALUES (julianday('now'))")

    def reset(self) -> None:
        """Checkpoint the whole WAL and rewind it (TRUNCATE), then ``touch``: every turn
        starts with the same small log, whoever wrote before."""
        deadline = time.monotonic() + 2.0
        # Busy at once while another connection (fastpool's checkpointer) is checkpointing.
        while self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0][0]:
            if time.monotonic() > deadline:
                self.checkpoint_busy += 1
                break
            time.sleep(0.005)
        self.touch()

    def count_and_scores(self) -> tuple[int, float]:
        """``(count(*), total(score))`` of ``users``, to check what the writers did."""
        row = self.conn.execute("SELECT count(*), total(score) FROM users").fetchone()
        return int(row[0]), float(row[1])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def initial_scores(rows: int = ROWS) -> float:
    """``total(score)`` of a fresh database (each UPDATE commit adds 1 to it)."""
    return sum(row_values(i)[2] for i in range(1, rows + 1))


def point_keys(count: int, seed: int = SEED, rows: int = ROWS) -> list[tuple[int]]:
    """``count`` random primary keys, as ready-made 1-tuples, from a fixed seed."""
    rng = random.Random(seed)
    return [(rng.randint(1, rows),) for _ in range(count)]


def point_lookups(execute: Callable[..., Any], keys: Sequence[tuple[int]]) -> Callable[[], Any]:
    """A function that looks every key up with ``execute(SELECT, key).fetchone()`` (the
    sqlite3 idiom) and returns the last row."""

    def run() -> Any:
        row = None
        for key in keys:
            row = execute(SELECT, key).fetchone()
        return row

    return run


def join_ranges(count: int, seed: int = SEED, rows: int = ROWS) -> list[tuple[int, int]]:
    """``count`` parameter pairs for ``JOIN`` (the first user of a range, twice)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        lo = rng.randint(1, max(1, rows - JOIN_USERS + 1))
        out.append((lo, lo))
    return out


def mix_plan(
    count: int, write_fraction: float, seed: int, rows: int = ROWS
) -> list[tuple[bool, tuple[int]]]:
    """``count`` operations ``(is_write, (key,))``, exactly ``write_fraction`` of them writes,
    in a seeded random order."""
    rng = random.Random(seed)
    writes = round(count * write_fraction)
    kinds = [True] * writes + [False] * (count - writes)
    rng.shuffle(kinds)
    return [(kind, (rng.randint(1, rows),)) for kind in kinds]


def insert_rows(count: int, worker: int) -> list[tuple[str, str, float]]:
    """``count`` new users for worker ``worker`` (names never collide between workers)."""
    return [row_values(1_000_000 * (worker + 1) + j) for j in range(count)]


def stdlib_connect(path: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A stdlib connection the way services usually open one: default (deferred, implicit)
    transactions, busy timeout 5 s, and the ``PRAGMAS``."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, check_same_thread=check_same_thread)
    for statement in connection_pragmas():
        conn.execute(statement)
    return conn


def is_locked(exc: BaseException) -> bool:
    """True for SQLITE_BUSY / SQLITE_LOCKED ('database is locked'), from any of the modules."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    kind = type(exc).__name__
    return kind in {"BusyError", "LockedError"} or "locked" in str(exc) or "busy" in str(exc)


def percentile(values: Sequence[int] | Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))])
