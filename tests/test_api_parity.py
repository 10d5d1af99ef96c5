"""fastpool.Pool and fastpool.AsyncPool offer the same API, one blocking, one awaitable.

The constructor is written once (``fastpool._facade.PoolFacade``); the methods are defined
twice, by nature: the core's C methods (which ``Pool`` inherits) and ``AsyncPool``'s
coroutines. Users switch between the two facades, so both must offer the same public names
with the same parameters; a method added to one and not the other fails here.
"""

from __future__ import annotations

import inspect

import pytest

import fastpool
from fastpool._core import PoolCore
from fastpool._facade import PoolFacade

# Pool's context-manager protocol has its async twin.
PROTOCOL_TWINS = {"__enter__": "__aenter__", "__exit__": "__aexit__"}

# Methods that run SQL or wait for a connection are awaitable in AsyncPool.
AWAITABLE = {"fetchone", "fetchall", "execute", "executemany", "checkpoint", "close"}

# Pool's hot methods: the core's own C methods, so a query costs one Python-level call.
HOT = ["reader", "writer", "fetchone", "fetchall", "execute", "executemany"]


def public_names(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def params(func: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    # `self` is positional-only in methods compiled without binding (the hot ones): the same
    # call either way.
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


def test_one_constructor():
    assert fastpool.Pool.__init__ is PoolFacade.__init__
    assert fastpool.AsyncPool.__init__ is PoolFacade.__init__
    sig = inspect.signature(fastpool.Pool)
    assert sig == inspect.signature(fastpool.AsyncPool)
    assert list(sig.parameters)[:2] == ["path", "readers"]
    assert "defensive" in sig.parameters and "Args:" in (PoolFacade.__init__.__doc__ or "")


@pytest.mark.parametrize("cls", [fastpool.Pool, fastpool.AsyncPool])
def test_constructor_validates_before_opening(cls, tmp_path):
    with pytest.raises(ValueError, match="readers"):
        cls(str(tmp_path / "x.db"), readers=0)
    assert not (tmp_path / "x.db").exists()


def test_pool_is_the_core():
    assert issubclass(fastpool.Pool, PoolCore)
    for name in HOT:
        assert getattr(fastpool.Pool, name) is getattr(PoolCore, name), name


def test_same_public_names():
    assert public_names(fastpool.Pool) == public_names(fastpool.AsyncPool)
    for sync_name, async_name in PROTOCOL_TWINS.items():
        assert hasattr(fastpool.Pool, sync_name) and hasattr(fastpool.AsyncPool, async_name)


@pytest.mark.parametrize("name", sorted(public_names(fastpool.Pool)))
def test_same_parameters(name):
    sync_attr = getattr(fastpool.Pool, name)
    async_attr = getattr(fastpool.AsyncPool, name)
    if not callable(sync_attr):
        # A data attribute of the Cython core: AsyncPool offers it as a property.
        assert isinstance(inspect.getattr_static(fastpool.AsyncPool, name), property), name
        return
    assert params(sync_attr) == params(async_attr), name
    assert inspect.iscoroutinefunction(async_attr) == (name in AWAITABLE), name
    assert async_attr.__doc__, f"AsyncPool.{name} has no docstring"
    assert sync_attr.__doc__, f"Pool.{name} has no docstring"
