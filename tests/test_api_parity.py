"""fastpool.Pool and fastpool.AsyncPool must not drift apart.

Same public names, same parameters (names, kinds, defaults, order), the same docstrings up to
the words that make one blocking and the other awaitable, and AsyncPool's query methods are
coroutine functions. A method added to one facade and not the other fails here.
"""

from __future__ import annotations

import inspect
import re

import pytest

import fastpool

# Words that differ because one facade blocks and the other awaits; applied to AsyncPool's
# docstrings before comparing them with Pool's. Nothing else may differ.
AWAITABLE_WORDING = [
    ("fastpool.AsyncPool", "fastpool.Pool"),
    ("AsyncPool", "Pool"),
    ("an AsyncLease", "a Lease"),
    ("AsyncLease", "Lease"),
    ("AsyncCursor", "Cursor"),
    ("pool for asyncio: ", "pool: "),
    ("``async with apool.", "``with pool."),
    ("``async with ", "``with "),
    ("'async with ", "'with "),
    ("``await ", "``"),
    ("an ``apool.", "a ``pool."),
    ("``apool.", "``pool."),
    ("in the same task", "on the same thread"),
    ("in this task", "on this thread"),
    ("the calling task", "the calling thread"),
]

# Pool's context-manager protocol has its async twin.
PROTOCOL_TWINS = {"__enter__": "__aenter__", "__exit__": "__aexit__"}

# Methods that run SQL or wait for a connection are awaitable in AsyncPool.
AWAITABLE = {"fetchone", "fetchall", "execute", "executemany", "checkpoint", "close"}


def public_names(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


# Cython puts the signature on the first line of a docstring (embedsignature).
EMBEDDED_SIGNATURE = re.compile(r"^\w+\.\w+\(.*\)( -> .*)?\n")


def normalise(doc: str | None, wording: list[tuple[str, str]]) -> str:
    doc = EMBEDDED_SIGNATURE.sub("", inspect.cleandoc(doc or ""), count=1)
    for old, new in wording:
        doc = doc.replace(old, new)
    return re.sub(r"\s+", " ", doc).strip()


def params(func: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    # `self` is positional-only in methods compiled without binding (the hot ones): the same
    # call either way.
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


def test_same_public_names():
    assert public_names(fastpool.Pool) == public_names(fastpool.AsyncPool)
    for sync_name, async_name in PROTOCOL_TWINS.items():
        assert hasattr(fastpool.Pool, sync_name) and hasattr(fastpool.AsyncPool, async_name)


@pytest.mark.parametrize("name", sorted(public_names(fastpool.Pool)))
def test_same_parameters_and_docstrings(name):
    sync_attr = inspect.getattr_static(fastpool.Pool, name, None)
    if sync_attr is None:  # inherited from the Cython core
        sync_attr = getattr(fastpool.Pool, name)
    async_attr = getattr(fastpool.AsyncPool, name)
    if not callable(getattr(fastpool.Pool, name)):
        # A data attribute of the Cython core (a getset descriptor: no docstring of its own):
        # AsyncPool offers it as a property.
        assert isinstance(inspect.getattr_static(fastpool.AsyncPool, name), property), name
        if not getattr(fastpool.Pool, name).__doc__:
            return
    else:
        assert params(getattr(fastpool.Pool, name)) == params(async_attr), name
        assert inspect.iscoroutinefunction(async_attr) == (name in AWAITABLE), name
    sync_doc = normalise(getattr(fastpool.Pool, name).__doc__, [])
    async_doc = normalise(async_attr.__doc__, AWAITABLE_WORDING)
    assert sync_doc, f"Pool.{name} has no docstring"
    assert async_doc == sync_doc, name


def test_constructor_and_class_docstring():
    sync_sig = inspect.signature(fastpool.Pool.__init__)
    async_sig = inspect.signature(fastpool.AsyncPool.__init__)
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values())
    assert normalise(fastpool.AsyncPool.__doc__, AWAITABLE_WORDING) == normalise(
        fastpool.Pool.__doc__, []
    )


def test_the_check_can_fail():
    # The normalisation must not make unrelated texts equal.
    assert normalise("Run a query on a writer.", AWAITABLE_WORDING) != normalise(
        "Run a query on a reader.", []
    )
