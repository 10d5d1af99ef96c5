"""The side-by-side comparison behind ``python -m fastpool bench`` (and ``bench/compare.py``).

- ``data``: the database, its pragmas, seeded keys and plans (shared with bench/'s suites);
- ``systems``: fastpool and the alternatives, each written the way its users write it;
- ``workloads``: what is measured, and how one timed round runs;
- ``suite``: every system on one database, interleaved round by round; medians and ratios;
- ``report``: machine, versions, markdown tables, acceptance lines;
- ``plot``: PNG charts (matplotlib);
- ``compare``: the command line.
"""

from fastpool._bench.compare import main

__all__ = ["main"]
