"""``fastpool.Pool``: the blocking facade; it *is* the Cython pool core.

``Pool`` inherits ``PoolCore``, so its hot methods (``reader``, ``writer``, ``fetchone``,
``fetchall``, ``execute``, ``executemany``) are the core's own C methods, unchanged: a query
costs one Python-level call. Its constructor is ``PoolFacade.__init__`` (``_facade.py``, shared
with ``AsyncPool``, which *has* a core instead); ``_start`` hands it the validated options.
This module adds only the finalizer's warning and the repr.
"""

from __future__ import annotations

import warnings
from typing import Any

from fastpool._core import PoolCore
from fastpool._facade import PoolFacade
from fastpool._options import PoolOptions

__all__ = ["Pool"]


class Pool(PoolFacade, PoolCore):
    """A SQLite connection pool: one writer, handed out in FIFO order, and N readers.

    ``Pool(path, readers=4, *, ...)``: see ``__init__`` for the arguments. The writer is
    opened at once, so a bad path, pragma or permission fails there.
    """

    def _start(self, options: PoolOptions) -> None:
        PoolCore.__init__(self, options)

    def __del__(self, _warn: Any = warnings.warn, _category: type = ResourceWarning) -> None:
        # Defaults bind what the finalizer needs: at interpreter shutdown module globals such
        # as ``warnings`` may already be None.
        try:
            if self.closed:
                return
            _warn(
                "a fastpool.Pool was garbage-collected without close(); use 'with Pool(...) "
                "as pool:' or call pool.close()",
                _category,
                stacklevel=2,
            )
        except Exception:
            pass
        try:
            self.close(timeout=0)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fastpool.Pool readers={self.stats()['readers']} {state}>"
