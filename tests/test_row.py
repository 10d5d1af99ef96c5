"""Result values and rows: SQLite types to Python, invalid text, and fastpool.Row."""

from __future__ import annotations

import copy
import pickle

import pytest

import fastpool
from fastpool import errors

# -- result types ----------------------------------------------------------------------------


def test_each_storage_class_maps_to_its_python_type(conn):
    conn.executescript(
        "CREATE TABLE v(i INTEGER, r REAL, t TEXT, b BLOB, n);"
        "INSERT INTO v VALUES (42, 2.5, 'text ✓', x'00ff10', NULL);"
    )
    row = conn.fetchone("SELECT i, r, t, b, n FROM v")
    assert row == (42, 2.5, "text ✓", b"\x00\xff\x10", None)
    assert [type(v) for v in row] == [int, float, str, bytes, type(None)]
    assert type(row) is tuple


def test_values_follow_the_stored_type_not_the_declared_one(conn):
    conn.executescript("CREATE TABLE v(x);INSERT INTO v VALUES (1), (1.0), ('1'), (x'31'), (NULL);")
    assert conn.fetchall("SELECT x FROM v ORDER BY rowid") == [
        (1,),
        (1.0,),
        ("1",),
        (b"1",),
        (None,),
    ]
    assert [type(r[0]) for r in conn.fetchall("SELECT x FROM v ORDER BY rowid")] == [
        int,
        float,
        str,
        bytes,
        type(None),
    ]


def test_expressions_and_empty_values(conn):
    assert conn.fetchone("SELECT 1 + 1, 7 / 2.0, '', x'', zeroblob(3), -9223372036854775808") == (
        2,
        3.5,
        "",
        b"",
        b"\x00\x00\x00",
        -(2**63),
    )


def test_integer_edges_in_a_table(conn):
    conn.executescript(
        "CREATE TABLE v(x INTEGER);"
        "INSERT INTO v VALUES (9223372036854775807), (-9223372036854775808), (0);"
    )
    assert conn.fetchall("SELECT x FROM v ORDER BY x") == [(-(2**63),), (0,), (2**63 - 1,)]


def test_invalid_utf8_text_is_a_data_error(conn):
    conn.executescript("CREATE TABLE v(id, t TEXT)")
    conn.execute("INSERT INTO v VALUES (1, CAST(x'ff' AS TEXT))")
    conn.execute("INSERT INTO v VALUES (2, CAST(x'61c3' AS TEXT))")  # truncated sequence
    assert conn.fetchone("SELECT typeof(t) FROM v WHERE id = 1") == ("text",)
    with pytest.raises(errors.DataError, match=r"column 0 \(t\).*not valid UTF-8"):
        conn.fetchone("SELECT t FROM v WHERE id = 1")
    with pytest.raises(errors.DataError, match="UTF-8"):
        conn.fetchall("SELECT id, t FROM v ORDER BY id")
    with pytest.raises(errors.DataError):
        conn.execute("SELECT t FROM v WHERE id = 2").fetchone()
    # The message's advice works, and the connection is fine.
    assert conn.fetchall("SELECT CAST(t AS BLOB) FROM v ORDER BY id") == [(b"\xff",), (b"a\xc3",)]
    assert conn.fetchone("SELECT 1") == (1,)


def test_invalid_utf8_through_row_factory(open_conn):
    conn = open_conn(row_factory=fastpool.Row)
    with pytest.raises(errors.DataError):
        conn.fetchone("SELECT CAST(x'c0' AS TEXT) AS bad")


# -- fastpool.Row ----------------------------------------------------------------------------


@pytest.fixture
def rconn(open_conn):
    conn = open_conn(row_factory=fastpool.Row)
    conn.executescript(
        "CREATE TABLE people(id INTEGER PRIMARY KEY, Name TEXT, age INTEGER);"
        "INSERT INTO people(Name, age) VALUES ('ada', 36), ('alan', 41);"
    )
    return conn


def test_row_factory_rows(rconn):
    row = rconn.fetchone("SELECT id, Name, age FROM people WHERE id = 1")
    assert type(row) is fastpool.Row
    assert row[0] == 1 and row[1] == "ada" and row[2] == 36
    assert row[-1] == 36
    assert row[0:2] == (1, "ada")
    assert row["id"] == 1
    assert row["Name"] == "ada"
    assert row["name"] == "ada"  # case-insensitive fallback
    assert row["AGE"] == 36
    assert row.keys() == ["id", "Name", "age"]
    assert len(row) == 3
    assert list(row) == [1, "ada", 36]
    assert tuple(row) == (1, "ada", 36)
    assert "ada" in row and "Name" not in row  # membership is over values, like a tuple


def test_row_factory_everywhere(rconn):
    rows = rconn.fetchall("SELECT id, Name FROM people ORDER BY id")
    assert [r["Name"] for r in rows] == ["ada", "alan"]
    cur = rconn.execute("SELECT age FROM people ORDER BY id")
    assert cur.fetchone()["age"] == 36
    assert [r["age"] for r in cur] == [41]
    assert [r["id"] for r in rconn.execute("SELECT id FROM people").fetchmany(5)] == [1, 2]


def test_row_missing_column_and_index(rconn):
    row = rconn.fetchone("SELECT id, Name FROM people")
    with pytest.raises(KeyError, match=r"no column named 'nope'.*\['id', 'Name'\]"):
        row["nope"]
    with pytest.raises(IndexError):
        row[2]
    with pytest.raises(TypeError):
        row[1.5]


def test_row_duplicate_names_first_wins(rconn):
    row = rconn.fetchone("SELECT 1 AS x, 2 AS x, 3 AS X")
    assert row["x"] == 1
    assert row["X"] == 3  # an exact match beats the case-insensitive one
    assert row.keys() == ["x", "x", "X"]


def test_row_equality_and_hash(rconn):
    a = rconn.fetchone("SELECT id, Name FROM people WHERE id = 1")
    b = rconn.fetchone("SELECT id, Name FROM people WHERE id = 1")
    c = rconn.fetchone("SELECT id, Name FROM people WHERE id = 2")
    renamed = rconn.fetchone("SELECT id AS ident, Name FROM people WHERE id = 1")
    assert a == b
    assert (a != b) is False
    assert hash(a) == hash(b)
    assert a != c
    assert a != renamed  # same values, other names
    assert a != (1, "ada")  # not equal to a plain tuple
    assert len({a, b, c}) == 2
    assert a == fastpool.Row(["id", "Name"], [1, "ada"])


def test_row_repr(rconn):
    row = rconn.fetchone("SELECT id, Name, NULL AS none_, x'00' AS data FROM people WHERE id = 1")
    assert repr(row) == "Row(id=1, Name='ada', none_=None, data=b'\\x00')"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_row_pickles(rconn, protocol):
    row = rconn.fetchone("SELECT id, Name, age FROM people WHERE id = 2")
    clone = pickle.loads(pickle.dumps(row, protocol))
    assert clone == row
    assert clone["name"] == "alan"
    assert clone.keys() == row.keys()


def test_row_copies(rconn):
    row = rconn.fetchone("SELECT id, Name FROM people WHERE id = 1")
    assert copy.copy(row) == row
    assert copy.deepcopy(row) == row


def test_row_constructor():
    row = fastpool.Row(("a", "b"), (1, 2))
    assert row["b"] == 2
    with pytest.raises(ValueError, match="one name per value"):
        fastpool.Row(["a"], [1, 2])
    with pytest.raises(TypeError, match="names must be str"):
        fastpool.Row([1], [1])


def test_row_is_immutable(rconn):
    row = rconn.fetchone("SELECT id FROM people WHERE id = 1")
    with pytest.raises(TypeError):
        row[0] = 5  # type: ignore[index]
    with pytest.raises(AttributeError):
        row.extra = 1  # type: ignore[attr-defined]


def test_rows_survive_a_schema_change(rconn):
    sql = "SELECT * FROM people WHERE id = 1"
    before = rconn.fetchone(sql)
    rconn.executescript("ALTER TABLE people ADD COLUMN email TEXT DEFAULT 'x@y'")
    after = rconn.fetchone(sql)
    assert after.keys() == ["id", "Name", "age", "email"]
    assert after["email"] == "x@y"
    # A row made before the change keeps its own columns.
    assert before.keys() == ["id", "Name", "age"]
    with pytest.raises(KeyError):
        before["email"]
