"""``fastpool.Pool``: the blocking facade; it *is* the Cython pool core.

``Pool`` inherits ``PoolCore``, so its hot methods (``reader``, ``writer``, ``fetchone``,
``fetchall``, ``execute``, ``executemany``) are the core's own C methods, unchanged: a query
costs one Python-level call. Its constructor is ``PoolFacade.__init__`` (``_facade.py``, shared
with ``AsyncPool``, which *has* a core instead); ``_start`` hands it the validated options.
This module adds only the repr.
"""

from __future__ import annotations

from fastpool._core import PoolCore
from fastpool._facade import PoolFacade
from fastpool._options import PoolOptions

__all__ = ["Pool"]


class Pool(PoolFacade, PoolCore):
    """A SQLite connection pool: one writer, handed out in FIFO order, and N readers.

    ``Pool(path, readers=4, *, ...)``: see ``__init__`` for the arguments. The writer is
    opened at once, so a bad path, pragma or permission fails there.

    Attributes:
        debug (bool): the ``debug`` argument: leases record where they were checked out.
        holders (dict): with ``debug=True``, the leases out: ``(role, slot) -> (thread
            name, since, stack)`` (``since`` on ``time.monotonic()``'s clock, ``stack`` where
            it was checked out), as ``PoolTimeout`` messages show them; empty otherwise.
    """

    def _start(self, options: PoolOptions) -> None:
        PoolCore.__init__(self, options)

    _NAME = "Pool"
    _CLOSE_HINT = "'with Pool(...) as pool:' or call pool.close()"

    def _pool_core(self) -> PoolCore:
        return self

    def _close_now(self) -> None:
        self.close(timeout=0)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fastpool.Pool readers={self.stats()['readers']} {state}>"
