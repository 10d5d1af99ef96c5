"""Fuzzed inputs (hypothesis): parameters of every Python type, random SQL text, random pragmas
and constructor arguments, through a real Pool on a real file.

The promise under test: never an interpreter crash, never a leaked lease, and every failure is
a documented exception: a ``fastpool.Error`` subclass, or ``TypeError``/``ValueError`` for
arguments of the wrong type or value, ``OverflowError`` for an int beyond 64 bits. Values that
SQLite can store come back unchanged.

CI runs 10,200 examples in all (a fixed seed per test: reproducible, and bounded in time);
FASTPOOL_LONG=1 runs ten times as many with random seeds.
"""

from __future__ import annotations

import datetime
import decimal
import math
import os
import string
import uuid

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import fastpool

LONG = os.environ.get("FASTPOOL_LONG") == "1"
SCALE = 10 if LONG else 1
# OverflowError: an int beyond 64 bits (README, "Errors"; the sqlite3 module does the same).
DOCUMENTED = (fastpool.Error, TypeError, ValueError, OverflowError)

# The long run takes about 10 minutes per test on 2 cores.
pytestmark = pytest.mark.timeout(3600 if LONG else 300)


def examples(n: int):
    """Settings for n examples (n * SCALE with FASTPOOL_LONG=1), no per-example deadline."""
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        database=None,
        derandomize=not LONG,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    p = fastpool.Pool(path, readers=2, acquisition_timeout=5.0)
    p.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c)")
    yield p
    p.close()


def no_lease_out(pool) -> None:
    stats = pool.stats()
    assert stats["readers_in_use"] == 0, stats
    assert not stats["writer_busy"], stats
    assert stats["waiting_readers"] == 0 and stats["waiting_writers"] == 0


# -- values -----------------------------------------------------------------------------------

any_char = st.characters(blacklist_categories=())  # includes lone surrogates
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: far beyond 64 bits
    st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 10**100, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(any_char, max_size=40),
    st.binary(max_size=64),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.sampled_from([1_000_000, 1_500_001]).map(lambda n: "x" * n),  # huge text
    st.sampled_from([1_000_000, 1_500_001]).map(lambda n: b"\x00" * n),  # huge blob
    st.sampled_from(["\ud800", "a\udfffb", "\x00in\x00", "\U0010ffff"]),
    st.sampled_from(
        [
            object(),
            1j,
            decimal.Decimal("1.5"),
            datetime.date(2020, 1, 2),
            uuid.UUID(int=5),
            Ellipsis,
            NotImplemented,
            type,
            print,
            range(3),
            frozenset({1}),
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=6,
)

STORABLE = (type(None), int, float, str, bytes)


def storable(value) -> bool:
    if type(value) is int:
        return -(2**63) <= value < 2**63
    if type(value) is float:
        return not math.isnan(value)
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    return type(value) in STORABLE


def expected_back(value):
    if type(value) in (bytearray, memoryview):
        return bytes(value)
    if type(value) is bool:
        return int(value)
    return value


@given(value=scalars)
@examples(2500)
@seed(1)
def test_one_value_round_trips_or_fails_documented(pool, value):
    try:
        row = pool.fetchone("SELECT ?", (value,))
    except DOCUMENTED:
        assert not (storable(value) or type(value) in (bool, bytearray, memoryview))
    else:
        if storable(value) or type(value) in (bool, bytearray, memoryview):
            assert row == (expected_back(value),)
    no_lease_out(pool)


SQLS = [
    "SELECT ?",
    "SELECT ?, ?",
    "SELECT ?1, ?2, ?1",
    "SELECT :a, :b",
    "SELECT @a || $b",
    "SELECT 1",
    "INSERT INTO t(a, b, c) VALUES (?, ?, ?)",
    "INSERT INTO t(a, b, c) VALUES (:a, :b, :c)",
    "UPDATE t SET a = ? WHERE id = ?",
    "SELECT count(*) FROM t WHERE a = :a",
    "SELECT ?, :a",
]
param_sets = st.one_of(
    st.lists(values, max_size=4),
    st.lists(values, max_size=4).map(tuple),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "", "a b"]), values, max_size=4),
    st.dictionaries(st.one_of(st.integers(), st.none(), st.binary(max_size=2)), values, max_size=2),
    values,
)


@given(
    sql=st.sampled_from(SQLS),
    params=param_sets,
    how=st.sampled_from(["fetchone", "fetchall", "execute", "reader", "writer", "many"]),
)
@examples(3800)
@seed(2)
def test_any_parameters_through_every_entry_point(pool, sql, params, how):
    try:
        if how == "fetchone":
            pool.fetchone(sql, params)
        elif how == "fetchall":
            pool.fetchall(sql, params)
        elif how == "execute":
            pool.execute(sql, params)
        elif how == "reader":
            with pool.reader() as r:
                r.execute(sql, params).fetchall()
        elif how == "writer":
            with pool.writer() as w:
                w.execute(sql, params).fetchall()
        else:
            pool.executemany(sql, [params, params])
    except DOCUMENTED:
        pass
    no_lease_out(pool)


# -- SQL text ---------------------------------------------------------------------------------

# Words that cannot write outside the database file (no ATTACH, VACUUM INTO) or loop for ever
# (no WITH RECURSIVE).
TOKENS = (
    "SELECT INSERT UPDATE DELETE FROM WHERE INTO VALUES SET t a b c id ( ) , ; * ? ?1 :a @b $c "
    "1 -1 0x7fffffffffffffff 1e999 'x' '' NULL AND OR NOT IN LIKE GLOB ORDER BY LIMIT OFFSET "
    "GROUP HAVING JOIN ON AS CREATE TABLE INDEX DROP IF EXISTS BEGIN COMMIT ROLLBACK SAVEPOINT "
    "RELEASE PRAGMA user_version = max( min( count( length( zeroblob( randomblob( abs( "
    "typeof( CAST INTEGER TEXT BLOB REAL -- /* */ || + - / % << >> & | ~ != == < > "
).split()

sql_text = st.one_of(
    st.text(any_char, max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join),
    st.text(string.printable, max_size=60),
)


@given(sql=sql_text, on=st.sampled_from(["fetchall", "execute", "script"]))
@examples(3500)
@seed(3)
def test_random_sql_text(pool, sql, on):
    try:
        if on == "fetchall":
            pool.fetchall(sql)
        elif on == "execute":
            pool.execute(sql)
        else:
            with pool.writer() as w:
                w.executescript(sql)
    except DOCUMENTED:
        pass
    no_lease_out(pool)
    # The pool is still usable: the writer can write and a reader can read.
    pool.execute("INSERT INTO t(a) VALUES (1)") if pool.fetchone(
        "SELECT count(*) FROM sqlite_schema WHERE name = 't'"
    ) == (1,) else None


# -- pragmas and constructor arguments --------------------------------------------------------

# Pragmas that change the whole process (every connection of every pool), not one connection.
PROCESS_WIDE = {
    "soft_heap_limit",
    "hard_heap_limit",
    "temp_store_directory",
    "data_store_directory",
    "threads",
    "shrink_memory",
}
_probe = fastpool.Connection(":memory:")
PRAGMA_NAMES = sorted({name for (name,) in _probe.fetchall("PRAGMA pragma_list")} - PROCESS_WIDE)
_probe.close()

pragma_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(any_char, max_size=12),
    st.sampled_from(["wal", "delete", "off", "normal", "full", "memory", "exclusive", "1", "-1"]),
    st.none(),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
)
pragma_names = st.one_of(
    st.sampled_from(PRAGMA_NAMES),
    st.text(any_char, max_size=12),
    st.integers(),
    st.sampled_from(["Journal_Mode", " synchronous ", ""]),
)
odd = st.sampled_from(
    [
        None,
        -1,
        0,
        1,
        2,
        3,
        True,
        False,
        1.5,
        float("nan"),
        float("inf"),
        -0.0,
        "2",
        b"2",
        2**24 + 1,
        2**63,
        2**100,
        [],
        {},
        object(),
    ]
)


ARG_NAMES = [
    "readers",
    "statement_cache_size",
    "acquisition_timeout",
    "max_lifetime",
    "idle_timeout",
    "min_readers",
    "debug",
    "writer_lock",
]
good_args = st.fixed_dictionaries(
    {},
    optional={
        "readers": st.integers(1, 3),
        "statement_cache_size": st.sampled_from([0, 1, 128]),
        "acquisition_timeout": st.sampled_from([None, 0.5, 5.0]),
        "max_lifetime": st.sampled_from([None, 0.01, 60.0]),
        "idle_timeout": st.sampled_from([None, 0.01, 60.0]),
        "min_readers": st.sampled_from([None, 0, 1]),
        "debug": st.booleans(),
        "writer_lock": st.booleans(),
    },
)
bad_args = st.dictionaries(st.sampled_from(ARG_NAMES), odd, max_size=2)


@given(
    pragmas=st.one_of(
        st.dictionaries(pragma_names, pragma_values, max_size=4),
        st.dictionaries(st.sampled_from(PRAGMA_NAMES), pragma_values, max_size=3),
        odd,
    ),
    good=good_args,
    bad=bad_args,
)
@examples(400)
@seed(4)
def test_random_pragmas_and_constructor_arguments(tmp_path_factory, pragmas, good, bad):
    if isinstance(pragmas, dict):
        # Keep lock waits short: a pragma such as locking_mode=exclusive makes readers wait.
        pragmas = {**pragmas, "busy_timeout": 20}
    path = tmp_path_factory.mktemp("ctor") / "x.db"
    try:
        pool = fastpool.Pool(path, pragmas=pragmas, **{**good, **bad})
    except DOCUMENTED:
        return
    CONSTRUCTED.append(1)
    try:
        try:
            pool.execute("CREATE TABLE IF NOT EXISTS t(v)")
            pool.execute("INSERT INTO t VALUES (1)")
            with pool.reader() as r:
                r.fetchall("SELECT * FROM t")
            pool.fetchall("SELECT * FROM t")
        except DOCUMENTED:
            pass
        no_lease_out(pool)
    finally:
        pool.close(timeout=5)


CONSTRUCTED: list[int] = []


def test_constructor_fuzz_built_real_pools():
    # Runs after the fuzz test above (file order): enough examples got past validation to
    # exercise real pools with random pragmas, not only argument checks.
    assert len(CONSTRUCTED) >= 40 * SCALE, len(CONSTRUCTED)
