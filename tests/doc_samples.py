"""The code samples of README.md and docs/*.md, and how tests/test_doc_samples.py runs them.

A page's ```python blocks run in order in one namespace, as a reader typing them into one
interpreter session would, in a fresh empty directory (so ``"app.db"`` is a new file). A block
that starts with ``>>>`` is a doctest and its outputs are checked. A block may use ``await`` at
its top level, as in ``python -m asyncio``: the page's blocks share one event loop. What a block
needs (a table, an import) comes from an earlier block of the same page that the reader sees.

tests/test_doc_samples.py runs each page in a process of its own (``python
tests/doc_samples.py PAGE BUILD``): a sample may change the process, as
``fastpool.install_as_sqlite3()`` does.

Samples whose output depends on how fastpool was built carry a marker on the line before the
fence, an HTML comment that renders as nothing (the text around the sample says which build):
``<!-- sample: bundled-sqlite -->`` runs only on a build with the pinned SQLite compiled in
(wheels, ``FASTPOOL_SQLITE_AMALGAMATION``: FASTPOOL_EXPECT_BUNDLED_SQLITE=1 in .ci/run and the
wheel builds), ``<!-- sample: system-sqlite -->`` only on a build linking the system's
libsqlite3. .ci/run runs the suite on both, so each is checked on the build it describes.

A sample that needs more than one process (a Litestream replica host) is an excerpt of an
example that its own test runs: ``<!-- sample: excerpt examples/NAME.py -->`` checks that the
block's lines are lines of that file, in order and contiguous (indentation aside).
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import os
import pathlib
import re
import sys
import types
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILDS = ("bundled-sqlite", "system-sqlite")

_MARK = r"<!-- sample: ([\w-]+)(?: (\S+))? -->"
_FENCE = re.compile(rf"^(?P<marks>(?:{_MARK}\n)*)```python\n(?P<code>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Sample:
    page: str
    line: int
    code: str
    build: str | None  # one of BUILDS, or None: every build
    excerpt_of: str | None = None  # a file under the project root


def pages() -> list[pathlib.Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def samples(path: pathlib.Path) -> list[Sample]:
    """The page's ```python blocks, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for m in _FENCE.finditer(text):
        marks = re.findall(_MARK, m["marks"])
        line = text.count("\n", 0, m.start("code")) + 1
        if not marks:
            found.append(Sample(path.name, line, m["code"], None))
        elif len(marks) == 1 and marks[0][0] in BUILDS and not marks[0][1]:
            found.append(Sample(path.name, line, m["code"], marks[0][0]))
        elif len(marks) == 1 and marks[0][0] == "excerpt" and marks[0][1]:
            found.append(Sample(path.name, line, m["code"], None, marks[0][1]))
        else:
            raise ValueError(f"{path.name}:{line}: unknown or repeated sample markers {marks}")
    return found


def this_build() -> str:
    bundled = os.environ.get("FASTPOOL_EXPECT_BUNDLED_SQLITE") == "1"
    return "bundled-sqlite" if bundled else "system-sqlite"


def run_page(path: pathlib.Path, build: str) -> int:
    """Run the page's samples for ``build`` in the current directory; the number run."""
    # A module of its own (SQLAlchemy resolves a model's annotations through sys.modules).
    module = types.ModuleType("__sample__")
    module.__file__ = os.path.abspath("sample.py")
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    loop = asyncio.new_event_loop()
    ran = 0
    try:
        for sample in samples(path):
            if sample.build not in (None, build):
                continue
            where = f"{sample.page}:{sample.line}"
            if sample.excerpt_of:
                _check_excerpt(sample.code, ROOT / sample.excerpt_of, where)
            elif sample.code.lstrip().startswith(">>>"):
                _run_doctest(sample.code, namespace, where)
            else:
                _run_block(sample.code, namespace, where, loop)
            ran += 1
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return ran


def _run_block(
    code: str, namespace: dict[str, object], where: str, loop: asyncio.AbstractEventLoop
) -> None:
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:
        loop.run_until_complete(eval(compiled, namespace))
    else:
        exec(compiled, namespace)


def _check_excerpt(code: str, source: pathlib.Path, where: str) -> None:
    want = [line.strip() for line in code.splitlines() if line.strip()]
    have = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    if not any(have[i : i + len(want)] == want for i in range(len(have))):
        raise AssertionError(f"{where}: not an excerpt of {source.relative_to(ROOT)}")


def _run_doctest(code: str, namespace: dict[str, object], where: str) -> None:
    test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    if runner.failures:
        raise AssertionError(f"{where}: doctest failed\n" + "".join(report))


if __name__ == "__main__":
    print(run_page(pathlib.Path(sys.argv[1]), sys.argv[2]))
