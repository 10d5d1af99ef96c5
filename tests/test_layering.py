"""Dependencies point down only (docs/ARCHITECTURE.md, "Layers"). Reads the sources; imports
none of them.

pool.py, pool_async.py,       facades                      import anything below; never cimport
_async_lease.py
_options.py, errors.py        pure-Python leaves           errors: no fastpool module;
                                                           _options: only fastpool.errors
_core (.pyx, .pxi, .pxd)      the one Cython extension     imports only fastpool.errors;
                                                           cimports only _sqlite3, _csrc, _core
_sqlite3.pxd, _csrc.pxd       declarations: doors to C     no fastpool import or cimport
csrc/*.c, *.h                 pure C                       includes neither Python.h nor sqlite3.h
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "fastpool"
CSRC = ROOT / "csrc"

FACADES = {"pool.py", "pool_async.py", "_async_lease.py", "_facade.py"}
# The package surface and the demo app behind `python -m fastpool` may import anything.
TOP = FACADES | {"__init__.py", "__main__.py", "_demo.py"}
CORE_IMPORTS = {"fastpool.errors"}
CORE_CIMPORTS = {"fastpool._sqlite3", "fastpool._csrc", "fastpool._core"}


# -- extracting dependencies -----------------------------------------------------------------


def resolve(module: str, level: int) -> str:
    """Absolute name of an import written in fastpool's own package (level = leading dots)."""
    if level == 0:
        return module
    return "fastpool" + (f".{module}" if module else "")


def is_submodule(name: str) -> bool:
    """Whether fastpool.<name> is a module of the package (rather than a name in __init__)."""
    return (
        any((PKG / f"{name}{ext}").exists() for ext in (".py", ".pyx", ".pxd"))
        or any(PKG.glob(f"{name}.*.so"))
        or name in {"_core", "pool", "pool_async"}
    )


def python_imports(path: Path) -> set[str]:
    """The modules a .py file imports, as absolute names.

    ``from fastpool import errors`` is fastpool.errors; ``from fastpool import Pool`` and
    ``import fastpool`` are the package itself, ``fastpool``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module or "", node.level)
            if base == "fastpool":
                for alias in node.names:
                    found.add(f"fastpool.{alias.name}" if is_submodule(alias.name) else "fastpool")
            else:
                found.add(base)
    return found


_STRINGS = re.compile(
    r'"""(?:.|\n)*?"""|\'\'\'(?:.|\n)*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''
)
_COMMENTS = re.compile(r"#[^\n]*")
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+(c?import)\b[ \t]*\(?([^\n)]*)", re.M)
_PLAIN = re.compile(r"^[ \t]*(c?import)[ \t]+([\w.]+(?:[ \t]*,[ \t]*[\w.]+)*)", re.M)


def cython_dependencies(path: Path) -> tuple[set[str], set[str]]:
    """(imports, cimports) of a .pyx/.pxi/.pxd file, found with regular expressions.

    Strings and comments are blanked first, so a docstring example is not an import; the
    newlines stay, so ``^`` still means the start of a line.
    """
    text = path.read_text(encoding="utf-8")
    text = _STRINGS.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = _COMMENTS.sub("", text)
    imports: set[str] = set()
    cimports: set[str] = set()
    for dots, module, kind, names in _FROM.findall(text):
        base = resolve(module, len(dots))
        target = cimports if kind == "cimport" else imports
        target.add(base)
        for name in re.split(r"[ \t]*,[ \t]*", names.strip()):
            name = name.split(" as ")[0].strip()
            if name and name != "*" and re.fullmatch(r"\w+", name):
                target.add(f"{base}.{name}")
    for kind, modules in _PLAIN.findall(text):
        target = cimports if kind == "cimport" else imports
        target.update(m.strip() for m in modules.split(","))
    return imports, cimports


def fastpool_modules(names: set[str]) -> set[str]:
    """The fastpool modules among ``names`` (``fastpool.errors.Error`` -> ``fastpool.errors``)."""
    modules = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "fastpool" and len(parts) > 1:
            modules.add(".".join(parts[:2]))
    return modules


def fastpool_python_deps(path: Path) -> set[str]:
    """The fastpool modules a .py file imports; ``fastpool`` alone means the package top."""
    names = python_imports(path)
    return fastpool_modules(names) | ({"fastpool"} & names)


# The units' declaration files, included by _core.pxd (textually: none is a module of its own).
UNIT_PXD = {
    "_statement.pxd",
    "_connection.pxd",
    "_cursor.pxd",
    "_row.pxd",
    "_dbapi.pxd",
    "_wal.pxd",
    "_writer.pxd",
    "_snapshot.pxd",
    "_pool.pxd",
    "_lease.pxd",
    "_async_jobs.pxd",
    "_async_waiters.pxd",
    "_async.pxd",
}


def core_files() -> list[Path]:
    units = sorted(PKG / name for name in UNIT_PXD)
    files = [PKG / "_core.pyx", PKG / "_core.pxd", *units, *sorted(PKG.glob("*.pxi"))]
    return [f for f in files if f.exists()]


def declaration_files() -> list[Path]:
    return [f for f in (PKG / "_sqlite3.pxd", PKG / "_csrc.pxd") if f.exists()]


# -- the extractors work (so the rules below cannot pass by finding nothing) -----------------


def test_extractors_find_known_dependencies(tmp_path):
    sample = tmp_path / "sample.pyx"
    sample.write_text(
        '"""Docstring: from fastpool.pool import Pool  (not an import)"""\n'
        "cimport cython\n"
        "from fastpool._sqlite3 cimport *\n"
        "from . cimport _csrc\n"
        "from .errors import (\n    Error,\n)\n"
        "import os, fastpool._options\n"
        "x = 'import fastpool.pool'  # from fastpool.pool import Pool\n"
        "    from fastpool.pool_async cimport thing as other\n",
        encoding="utf-8",
    )
    imports, cimports = cython_dependencies(sample)
    assert fastpool_modules(imports) == {"fastpool.errors", "fastpool._options"}
    assert fastpool_modules(cimports) == {
        "fastpool._sqlite3",
        "fastpool._csrc",
        "fastpool.pool_async",
    }
    assert "cython" in cimports

    sample_py = tmp_path / "sample.py"
    sample_py.write_text(
        "from . import errors\nfrom ._core import Connection\nimport fastpool.pool\nimport os\n"
    )
    assert fastpool_python_deps(sample_py) == {"fastpool.errors", "fastpool._core", "fastpool.pool"}
    sample_py.write_text("from fastpool import Connection\n")
    assert fastpool_python_deps(sample_py) == {"fastpool"}


def test_core_pxd_includes_every_unit_pxd():
    # A unit .pxd is never cimported: it is part of _core.pxd, or it declares nothing at all.
    text = (PKG / "_core.pxd").read_text(encoding="utf-8")
    included = set(re.findall(r'^include "([^"]+)"', text, re.M))
    assert included == UNIT_PXD


def test_the_core_sources_are_found_and_parsed():
    names = {f.name for f in core_files()}
    assert {"_core.pyx", "_core.pxd", "_connection.pxi", "_cursor.pxi"} <= names
    imports, cimports = cython_dependencies(PKG / "_core.pyx")
    assert "fastpool._sqlite3" in fastpool_modules(cimports)
    assert "fastpool.errors" in fastpool_modules(imports)


# -- the rules -------------------------------------------------------------------------------


def test_errors_imports_no_fastpool_module():
    assert fastpool_python_deps(PKG / "errors.py") == set()


def test_options_imports_only_errors():
    path = PKG / "_options.py"
    if path.exists():  # added by the pool work; the rule holds from the day it lands
        assert fastpool_python_deps(path) <= {"fastpool.errors"}


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_imports_only_errors_and_cimports_only_declarations(path):
    imports, cimports = cython_dependencies(path)
    assert fastpool_modules(imports) <= CORE_IMPORTS, f"{path.name} imports upward"
    assert "fastpool" not in imports, f"{path.name} imports the fastpool package"
    assert fastpool_modules(cimports) <= CORE_CIMPORTS, f"{path.name} cimports upward"


@pytest.mark.parametrize("path", declaration_files(), ids=lambda p: p.name)
def test_declaration_files_depend_on_no_fastpool_module(path):
    imports, cimports = cython_dependencies(path)
    assert fastpool_modules(imports) == set()
    assert fastpool_modules(cimports) == set()
    assert not imports, f"{path.name} is declarations only, yet imports {imports}"


def test_no_stray_cython_modules():
    # One extension: any other .pyx would be a second door around the layering.
    assert sorted(p.name for p in PKG.glob("*.pyx")) == ["_core.pyx"]
    allowed_pxd = {"_core.pxd", "_sqlite3.pxd", "_csrc.pxd"} | UNIT_PXD
    assert {p.name for p in PKG.glob("*.pxd")} <= allowed_pxd


@pytest.mark.parametrize("name", sorted(FACADES))
def test_facades_never_cimport(name):
    path = PKG / name
    if not path.exists():  # the pool facades come with the pool work
        return
    ast.parse(path.read_text(encoding="utf-8"))  # plain Python
    _, cimports = cython_dependencies(path)
    assert not cimports, f"{name} cimports {cimports}"


def test_nothing_below_the_facades_imports_them():
    lower = [p for p in PKG.glob("*.py") if p.name not in TOP]
    for path in lower:
        assert not fastpool_python_deps(path) & {
            "fastpool",
            "fastpool.pool",
            "fastpool.pool_async",
        }, path.name
    for path in core_files() + declaration_files():
        imports, cimports = cython_dependencies(path)
        upward = fastpool_modules(imports | cimports) & {
            "fastpool.pool",
            "fastpool.pool_async",
            "fastpool._options",
        }
        assert not upward, f"{path.name} depends on {upward}"


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"]+)[>"]', re.M)


def c_sources() -> list[Path]:
    return sorted([*CSRC.glob("*.c"), *CSRC.glob("*.h")])


def test_csrc_includes_neither_python_nor_sqlite():
    for path in c_sources():
        text = re.sub(r"/\*(?:.|\n)*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"))
        includes = {Path(inc).name.lower() for inc in _INCLUDE.findall(text)}
        assert not includes & {"python.h", "sqlite3.h", "sqlite3ext.h"}, f"{path.name}: {includes}"


DJANGO_PKG = PKG / "django"


def test_only_the_django_backend_imports_django():
    # Django stays optional: nothing outside fastpool/django may import it.
    for path in [*PKG.glob("*.py"), *PKG.glob("_bench/*.py")]:
        assert not any(n.split(".")[0] == "django" for n in python_imports(path)), path.name
    for path in core_files():
        imports, cimports = cython_dependencies(path)
        assert not any(n.split(".")[0] == "django" for n in imports | cimports), path.name


def test_the_django_backend_is_a_facade_on_fastpool_dbapi():
    # It uses fastpool's public Python API (the dbapi module, errors), never the core.
    files = sorted(DJANGO_PKG.glob("*.py"))
    assert {p.name for p in files} >= {"__init__.py", "base.py", "pool.py"}
    for path in files:
        ours = {n for n in python_imports(path) if n.split(".")[0] == "fastpool"}
        assert ours <= {"fastpool.dbapi", "fastpool.errors", "fastpool.django"} | {
            f"fastpool.django.{p.stem}" for p in files
        }, f"{path.name} imports {ours}"
        _, cimports = cython_dependencies(path)
        assert not cimports, f"{path.name} cimports {cimports}"
