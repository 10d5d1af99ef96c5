"""fastpool.dbapi's converters: a statement keeps the ones it found for its columns, and finds
them again whenever the registry or the statement's columns change (sqlite3.converters may be
changed through register_converter or as the dict it is)."""

from __future__ import annotations

import pickle
from unittest import mock

import pytest

import fastpool.dbapi as sqlite3

SQL = "SELECT n FROM t"


@pytest.fixture
def conn(tmp_path):
    conn = sqlite3.connect(tmp_path / "c.db", detect_types=sqlite3.PARSE_DECLTYPES)
    conn.execute("CREATE TABLE t (n POINT)")
    conn.execute("INSERT INTO t VALUES ('1;2')")
    conn.commit()
    yield conn
    conn.close()
    sqlite3.converters.pop("POINT", None)
    sqlite3.converters.pop("TWICE", None)


def point(raw: bytes) -> tuple[int, ...]:
    return tuple(int(x) for x in raw.split(b";"))


def test_a_converter_registered_after_a_statement_ran_applies_to_it(conn):
    assert conn.execute(SQL).fetchone() == ("1;2",)  # cached, no converter yet
    sqlite3.register_converter("point", point)
    assert conn.execute(SQL).fetchone() == ((1, 2),)
    assert conn.execute(SQL).fetchone() == ((1, 2),)  # found once, kept


def test_changes_through_the_dict_itself_apply(conn):
    sqlite3.converters["POINT"] = point
    assert conn.execute(SQL).fetchone() == ((1, 2),)
    sqlite3.converters["POINT"] = lambda raw: raw.decode()[::-1]
    assert conn.execute(SQL).fetchone() == ("2;1",)
    del sqlite3.converters["POINT"]
    assert conn.execute(SQL).fetchone() == ("1;2",)
    sqlite3.converters.update(POINT=point)
    assert conn.execute(SQL).fetchone() == ((1, 2),)
    sqlite3.converters.clear()
    assert conn.execute(SQL).fetchone() == ("1;2",)
    assert sqlite3.converters.setdefault("POINT", point) is point
    assert conn.execute(SQL).fetchone() == ((1, 2),)
    assert sqlite3.converters.popitem() == ("POINT", point)
    assert conn.execute(SQL).fetchone() == ("1;2",)
    sqlite3.converters |= {"POINT": point}
    assert conn.execute(SQL).fetchone() == ((1, 2),)
    assert sqlite3.converters.pop("POINT") is point
    assert conn.execute(SQL).fetchone() == ("1;2",)


def test_mock_patch_dict_applies_and_restores(conn):
    # CPython's own test_sqlite3 changes the registry this way.
    with mock.patch.dict(sqlite3.converters, {"POINT": point}):
        assert conn.execute(SQL).fetchone() == ((1, 2),)
    assert "POINT" not in sqlite3.converters
    assert conn.execute(SQL).fetchone() == ("1;2",)


def test_a_schema_change_gives_a_statement_its_new_columns_converters(conn):
    sqlite3.register_converter("point", point)
    sqlite3.register_converter("twice", lambda raw: int(raw) * 2)
    star = "SELECT * FROM t"
    assert conn.execute(star).fetchone() == ((1, 2),)
    conn.execute("ALTER TABLE t ADD COLUMN m TWICE DEFAULT 21")
    conn.commit()
    assert conn.execute(star).fetchone() == ((1, 2), 42)


def test_the_registry_is_a_dict_and_pickles_as_one():
    assert isinstance(sqlite3.converters, dict)
    copy = pickle.loads(pickle.dumps(sqlite3.converters))
    assert type(copy) is dict and copy == dict(sqlite3.converters)
