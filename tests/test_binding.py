"""Parameter binding (qmark and named), value round-trips, and clear errors for bad input."""

from __future__ import annotations

import collections
import enum
import math
import re
from collections.abc import Mapping

import pytest

from fastpool import errors


class FrozenParams(Mapping):
    """A Mapping that is not a dict."""

    def __init__(self, **values):
        self._values = values

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


class Sequenceish:
    """An iterable that is neither tuple nor list."""

    def __init__(self, *values):
        self._values = values

    def __iter__(self):
        return iter(self._values)


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


class Mood(str, enum.Enum):
    HAPPY = "happy"


class Shouty(str):
    def __str__(self):
        return self.upper()


# -- parameter styles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        (1, "two"),
        [1, "two"],
        Sequenceish(1, "two"),
        (x for x in (1, "two")),
        collections.deque([1, "two"]),
    ],
    ids=["tuple", "list", "iterable", "generator", "deque"],
)
def test_qmark_sequences(conn, params):
    assert conn.fetchone("SELECT ?, ?", params) == (1, "two")


def test_numbered_qmark(conn):
    assert conn.fetchone("SELECT ?2, ?1, ?2", ("a", "b")) == ("b", "a", "b")


@pytest.mark.parametrize("style", [":", "@", "$"])
def test_named_parameters_with_a_dict(conn, style):
    sql = f"SELECT {style}a, {style}b, {style}a"
    assert conn.fetchone(sql, {"a": 1, "b": "x", "unused": None}) == (1, "x", 1)


def test_named_parameters_with_a_non_dict_mapping(conn):
    assert conn.fetchone("SELECT :x * :y", FrozenParams(x=6, y=7)) == (42,)
    assert conn.fetchall("SELECT :x", collections.ChainMap({"x": 1}, {"x": 2})) == [(1,)]


def test_no_parameters(conn):
    assert conn.fetchone("SELECT 1") == (1,)
    assert conn.fetchone("SELECT 1", ()) == (1,)
    assert conn.fetchone("SELECT 1", []) == (1,)
    assert conn.fetchone("SELECT 1", {}) == (1,)


def test_rebinding_a_cached_statement(conn):
    sql = "SELECT ?, ?"
    for i in range(5):
        assert conn.fetchone(sql, (i, str(i))) == (i, str(i))
    assert conn.cache_stats()["hits"] >= 4


# -- round trips -----------------------------------------------------------------------------


ROUND_TRIPS = [
    (None, None, "null"),
    (0, 0, "integer"),
    (-1, -1, "integer"),
    (2**63 - 1, 2**63 - 1, "integer"),
    (-(2**63), -(2**63), "integer"),
    (2**31, 2**31, "integer"),
    (True, 1, "integer"),
    (False, 0, "integer"),
    (Color.GREEN, 2, "integer"),
    (0.0, 0.0, "real"),
    (-2.5, -2.5, "real"),
    (1e308, 1e308, "real"),
    (5e-324, 5e-324, "real"),
    (math.inf, math.inf, "real"),
    (-math.inf, -math.inf, "real"),
    ("", "", "text"),
    ("plain ascii", "plain ascii", "text"),
    ("héllo wörld ñ", "héllo wörld ñ", "text"),
    ("日本語のテキスト", "日本語のテキスト", "text"),
    ("emoji 🐍🚀 and ZWJ 👩‍💻", "emoji 🐍🚀 and ZWJ 👩‍💻", "text"),
    ("embedded\x00nul", "embedded\x00nul", "text"),
    ("x" * 100_000, "x" * 100_000, "text"),
    (Mood.HAPPY, "happy", "text"),
    (Shouty("quiet"), "quiet", "text"),
    (b"", b"", "blob"),
    (b"\x00\x01\xff", b"\x00\x01\xff", "blob"),
    (bytearray(b"ba\x00"), b"ba\x00", "blob"),
    (bytearray(), b"", "blob"),
    (memoryview(b"memory"), b"memory", "blob"),
    (memoryview(b"0123456789")[2:5], b"234", "blob"),
    (bytes(range(256)) * 100, bytes(range(256)) * 100, "blob"),
]


@pytest.mark.parametrize(
    ("value", "expected", "sqltype"),
    ROUND_TRIPS,
    ids=[f"{i}-{r[2]}" for i, r in enumerate(ROUND_TRIPS)],
)
def test_round_trip_through_a_table(conn, value, expected, sqltype):
    conn.executescript("CREATE TABLE v(x)")  # no declared type: no affinity conversions
    conn.execute("INSERT INTO v VALUES (?)", (value,))
    got, kind = conn.fetchone("SELECT x, typeof(x) FROM v")
    assert kind == sqltype
    assert got == expected
    assert type(got) is type(expected)
    # The same value bound as a named parameter, straight back.
    assert conn.fetchone("SELECT :v", {"v": value}) == (expected,)


def test_nan_is_stored_as_null(conn):
    # SQLite has no NaN: it stores it as NULL (the stdlib sqlite3 module behaves the same).
    assert conn.fetchone("SELECT ?, typeof(?)", (math.nan, math.nan)) == (None, "null")


def test_negative_zero_and_float_subclass(conn):
    class Money(float):
        pass

    value = conn.fetchone("SELECT ?", (-0.0,))[0]
    assert value == 0.0 and math.copysign(1.0, value) == -1.0
    assert conn.fetchone("SELECT ?", (Money(1.25),)) == (1.25,)


def test_bound_bytearray_is_copied(conn):
    # SQLite gets its own copy when binding: mutating (even resizing) the bytearray while the
    # statement runs - here from a function called during the step - changes nothing stored.
    conn.executescript("CREATE TABLE v(x, y)")
    data = bytearray(b"original")

    def mutate():
        data[:] = b"MUTATED AND LONGER"
        return 1

    conn.create_function("mutate", 0, mutate)
    conn.execute("INSERT INTO v VALUES (?, mutate())", (data,))
    assert data == bytearray(b"MUTATED AND LONGER")
    assert conn.fetchone("SELECT x FROM v") == (b"original",)
    data[:] = b"again"
    assert conn.fetchone("SELECT x FROM v") == (b"original",)


def test_bound_memoryview_is_released(conn):
    data = bytearray(b"abc")
    view = memoryview(data)
    conn.fetchone("SELECT ?", (view,))
    view.release()
    data.extend(b"def")  # would raise BufferError if fastpool still held an export


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "expected", "given"),
    [
        ("SELECT ?, ?", (1,), 2, 1),
        ("SELECT ?", (1, 2, 3), 1, 3),
        ("SELECT ?", (), 1, 0),
        ("SELECT 1", (1,), 0, 1),
        ("SELECT ?, ?", [1, 2, 3], 2, 3),
    ],
)
def test_wrong_parameter_count(conn, sql, params, expected, given):
    pattern = rf"expects {expected} parameter\(s\) but {given} were given"
    with pytest.raises(errors.ProgrammingError, match=pattern):
        conn.fetchone(sql, params)
    with pytest.raises(errors.ProgrammingError, match=pattern):
        conn.execute(sql, params)


def test_missing_named_parameter_is_named(conn):
    with pytest.raises(errors.ProgrammingError, match=r"missing value for named parameter :second"):
        conn.fetchone("SELECT :first, :second", {"first": 1})
    with pytest.raises(errors.ProgrammingError, match=r":second"):
        conn.fetchone("SELECT :first, :second", FrozenParams(first=1))


def test_named_sql_needs_a_mapping(conn):
    with pytest.raises(errors.ProgrammingError, match=r"named parameters.*:a"):
        conn.fetchone("SELECT :a", (1,))


def test_qmark_sql_rejects_a_mapping_and_strings(conn):
    with pytest.raises(errors.ProgrammingError, match="tuple or list, not dict"):
        conn.fetchone("SELECT ?", {"a": 1})
    with pytest.raises(errors.ProgrammingError, match="not str"):
        conn.fetchone("SELECT ?", "a")
    with pytest.raises(errors.ProgrammingError, match="not bytes"):
        conn.fetchone("SELECT ?", b"a")


def test_mixed_parameter_styles(conn):
    with pytest.raises(errors.ProgrammingError, match="mixes"):
        conn.fetchone("SELECT ?, :a", {"a": 1})


def test_parameters_that_are_not_a_collection(conn):
    with pytest.raises(TypeError, match="not int"):
        conn.fetchone("SELECT ?", 5)
    with pytest.raises(TypeError, match="not NoneType"):
        conn.fetchone("SELECT ?", None)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (object(), "object"),
        (1j, "complex"),
        ([1, 2], "list"),
        ({"a": 1}, "dict"),
        (__import__("decimal").Decimal("1.5"), "Decimal"),
        (__import__("datetime").date(2024, 1, 1), "date"),
    ],
)
def test_unsupported_type_names_parameter_and_type(conn, value, type_name):
    with pytest.raises(TypeError, match=rf"parameter 2: unsupported type \S*{type_name}"):
        conn.fetchone("SELECT ?, ?", (1, value))
    with pytest.raises(TypeError, match=rf"parameter :val: unsupported type \S*{type_name}"):
        conn.fetchone("SELECT :ok, :val", {"ok": 1, "val": value})


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)])
def test_int_beyond_64_bits(conn, value):
    with pytest.raises(OverflowError, match=rf"parameter 1: {value} does not fit"):
        conn.fetchone("SELECT ?", (value,))
    with pytest.raises(OverflowError, match="parameter :n"):
        conn.fetchone("SELECT :n", {"n": value})


def test_lone_surrogate_in_a_value(conn):
    with pytest.raises(ValueError, match=r"parameter 1: str has a lone surrogate at position 3"):
        conn.fetchone("SELECT ?", ("abc\ud800def",))
    with pytest.raises(ValueError, match="parameter :s"):
        conn.fetchone("SELECT :s", {"s": "\udfff"})


def test_non_contiguous_memoryview_names_the_parameter(conn):
    with pytest.raises(BufferError, match=r"parameter 1: .*contiguous"):
        conn.fetchone("SELECT ?", (memoryview(b"abcdef")[::2],))


def test_nul_in_sql(conn):
    with pytest.raises(errors.ProgrammingError, match="NUL"):
        conn.fetchone("SELECT 1\x00")
    with pytest.raises(errors.ProgrammingError, match="NUL"):
        conn.execute("SELECT 1 \x00; DROP TABLE x")


def test_lone_surrogate_in_sql(conn):
    with pytest.raises(errors.ProgrammingError, match="surrogate"):
        conn.fetchone("SELECT '\ud800'")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "CREATE TABLE a(x); CREATE TABLE b(y)",
        "SELECT 1;SELECT 2;",
        "SELECT 1; garbage",
    ],
)
def test_two_statements_point_to_executescript(conn, sql):
    for call in (conn.execute, conn.fetchone, conn.fetchall):
        with pytest.raises(errors.ProgrammingError, match="executescript"):
            call(sql)
    assert conn.fetchone("SELECT count(*) FROM sqlite_master") == (0,)


def test_one_statement_with_trailing_semicolon_and_comment(conn):
    assert conn.fetchone("SELECT 1;") == (1,)
    assert conn.fetchone("SELECT 2;  -- trailing comment\n  ") == (2,)
    assert conn.fetchone("SELECT 3 /* c */ ;/* c */") == (3,)


@pytest.mark.parametrize(
    "sql", [b"SELECT 1", 1, None, ["SELECT 1"]], ids=["bytes", "int", "None", "list"]
)
def test_non_str_sql_is_a_type_error(conn, sql):
    for call in (conn.execute, conn.fetchone, conn.fetchall):
        with pytest.raises(TypeError, match="str"):
            call(sql)
    with pytest.raises(TypeError, match="str"):
        conn.executemany(sql, [])
    with pytest.raises(TypeError, match="str"):
        conn.executescript(sql)


def test_non_str_sql_without_a_cache(open_conn):
    conn = open_conn(statement_cache_size=0)
    with pytest.raises(TypeError, match="str"):
        conn.fetchone(None)


@pytest.mark.parametrize("sql", ["", "   ", "-- just a comment", "/* nothing */", ";"])
def test_empty_sql(conn, sql):
    with pytest.raises(errors.ProgrammingError, match="no statement"):
        conn.execute(sql)
    with pytest.raises(errors.ProgrammingError, match="no statement"):
        conn.fetchone(sql)


def test_bad_input_leaves_the_connection_usable(conn):
    conn.executescript("CREATE TABLE v(x)")
    bad = [
        ("INSERT INTO v VALUES (?)", (object(),)),
        ("INSERT INTO v VALUES (?)", (2**70,)),
        ("INSERT INTO v VALUES (?)", ("\ud800",)),
        ("INSERT INTO v VALUES (?)", ()),
        ("INSERT INTO v VALUES (:a)", {}),
    ]
    for sql, params in bad:
        with pytest.raises((TypeError, ValueError, OverflowError, errors.ProgrammingError)):
            conn.execute(sql, params)
    conn.execute("INSERT INTO v VALUES (?)", (1,))
    assert conn.fetchall("SELECT x FROM v") == [(1,)]
    assert not conn.in_transaction


def test_error_message_mentions_position_not_value_for_surrogates(conn):
    # The message is printable: it must not embed the unencodable string itself.
    with pytest.raises(ValueError) as info:
        conn.fetchone("SELECT ?", ("\ud800",))
    str(info.value).encode("utf-8")
    assert re.search(r"position \d+", str(info.value))
