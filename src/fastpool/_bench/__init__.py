"""The benchmark harness: the side-by-side comparison behind ``python -m fastpool bench`` (and
``bench/compare.py``), and what the pytest-benchmark suites in ``bench/`` measure with.
``import fastpool`` never imports it.

- ``data``: the database, its pragmas, seeded keys and plans;
- ``systems``: fastpool and the alternatives, each written the way its users write it;
- ``workloads``: what is measured, on which data, and the check after the writes;
- ``rounds``: how one timed round runs (threads, asyncio tasks, checkout loops);
- ``suite``: every system on one database, interleaved round by round; medians and ratios;
- ``report``: machine, versions, markdown tables, acceptance lines;
- ``plot``: PNG charts (matplotlib);
- ``compare``: the command line.
"""

from fastpool._bench.compare import main

__all__ = ["main"]
