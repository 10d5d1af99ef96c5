"""Sphinx extension: the API reference's names, and the check that every public name has one.

The public names are those of the ``__all__`` of every public module (PUBLIC_MODULES). A
class or function counts as documented when the reference has an entry for it under any
public name (``fastpool.dbapi.Error`` is ``fastpool.Error``); a constant needs its own entry.
At the end of a build, each public name without an entry is a warning, so ``-W`` fails the
build. ``tests/test_api_reference.py`` runs the same check on docs/api.md's directives,
without Sphinx.

Constants: autodoc documents a module's data only where its source has a doc comment, so
``.. module-constants:: fastpool.dbapi`` (after that module's ``automodule``) gives every other
constant of its ``__all__`` an entry with its value (the stdlib's ``SQLITE_*`` codes).

Classes exported under another name than their own (``fastpool.dbapi.Connection`` is the
core's ``DBAPIConnection``), which autodoc would show as a bare "alias of", are documented in
full under the exported name by ``.. autorenamedclass::``.

Two more jobs that keep the strict build quiet without hiding anything: references to the
core's internal class names (``fastpool._core.DBAPIConnection``) resolve to the public name
they are exported as (``fastpool.dbapi.Connection``), and the private bases of a public class
(``PoolFacade``, ``PoolCore``) are left out of its "Bases:" line.
"""

from __future__ import annotations

import importlib
import re
import types
from collections.abc import Iterable, Iterator
from typing import Any

PUBLIC_MODULES = (
    "fastpool",
    "fastpool.dbapi",
    "fastpool.replica",
    "fastpool.sqlalchemy",
    "fastpool.django.base",
    "fastpool.django.pool",
    "fastpool.django.client",
    "fastpool.django.creation",
)

# Documented under the name on the right: classes the core defines under another name.
PUBLIC_ALIASES = {
    "fastpool._core.DBAPIConnection": "fastpool.dbapi.Connection",
    "fastpool._core.DBAPICursor": "fastpool.dbapi.Cursor",
    "fastpool._core.DBAPIRow": "fastpool.dbapi.Row",
}


def public_names() -> Iterator[tuple[str, object]]:
    """``(module.name, object)`` for every name in the ``__all__`` of PUBLIC_MODULES."""
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            yield f"{modname}.{name}", getattr(module, name)


def _by_identity(obj: object) -> bool:
    return isinstance(obj, type) or callable(obj)


def missing(documented: Iterable[str]) -> list[str]:
    """The public names that have no entry among the ``documented`` full names."""
    names = set(documented)
    objects = set()
    for name in names:
        modname, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(modname), attr)
        except (ImportError, AttributeError):
            continue
        if _by_identity(obj):
            objects.add(id(obj))
    return [
        name
        for name, obj in public_names()
        if name not in names and not (_by_identity(obj) and id(obj) in objects)
    ]


_DIRECTIVE = re.compile(r"^\.\. (?:auto)?(\w+|module-constants):: (\S+)\n((?:   .*\n)*)", re.M)


def constants(module: object) -> list[str]:
    """The names in ``module.__all__`` that are neither classes nor callables."""
    return [n for n in module.__all__ if not _by_identity(getattr(module, n))]  # type: ignore[attr-defined]


def documented_in(text: str) -> set[str]:
    """The full names that the autodoc directives of a page's text document.

    ``automodule`` with ``:members:`` documents the classes and functions in the module's
    ``__all__`` but those of ``:exclude-members:``; ``module-constants`` its constants; the
    others document the name they are given.
    """
    found: set[str] = set()
    for kind, target, options in _DIRECTIVE.findall(text):
        if kind == "module-constants":
            module = importlib.import_module(target)
            found.update(f"{target}.{n}" for n in constants(module))
            continue
        if kind != "module":
            found.add(target)
            continue
        if ":members:" not in options:
            continue
        excluded = re.search(r":exclude-members: (.*)", options)
        skip = {n.strip() for n in excluded.group(1).split(",")} if excluded else set()
        module = importlib.import_module(target)
        # autodoc documents a constant only where the module's source has a doc comment for
        # it; counted here as documented are the classes and functions.
        names = [n for n in module.__all__ if _by_identity(getattr(module, n))]
        found.update(f"{target}.{n}" for n in names if n not in skip)
    return found


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.ext.autodoc import ClassDocumenter
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import make_refnode, nested_parse_with_titles

    log = logging.getLogger(__name__)

    class ModuleConstants(SphinxDirective):
        """A ``py:data`` entry with its value for each constant not documented yet."""

        required_arguments = 1

        def run(self) -> list[nodes.Node]:
            modname = self.arguments[0]
            module = importlib.import_module(modname)
            known = self.env.get_domain("py").objects
            lines = []
            for name in constants(module):
                if f"{modname}.{name}" not in known:
                    value = getattr(module, name)
                    lines += [f".. py:data:: {name}", f"   :module: {modname}"]
                    lines += [f"   :value: {value!r}", ""]
            node = nodes.section()
            node.document = self.state.document
            nested_parse_with_titles(self.state, StringList(lines, source=modname), node)
            return node.children

    app.add_directive("module-constants", ModuleConstants)

    class RenamedClassDocumenter(ClassDocumenter):
        """A class with its members under the name it is exported as, not as an alias."""

        objtype = "renamedclass"
        directivetype = "class"

        @classmethod
        def can_document_member(cls, member, membername, isattr, parent):  # type: ignore[no-untyped-def]
            return False  # only where a page asks for it

        def format_args(self, **kwargs: Any) -> str | None:
            # fastpool.dbapi.Connection's __signature__ is an instance property (the signature
            # of calling a connection), which inspect.signature rejects on the class: leave
            # the signature to the stub (stub_signatures.py).
            if isinstance(
                vars(self.object).get("__signature__"), property | types.GetSetDescriptorType
            ):
                return None
            return super().format_args(**kwargs)

        def import_object(self, raiseerror: bool = False) -> bool:
            imported: bool = super().import_object(raiseerror)
            self.doc_as_attr = False
            return imported

    app.add_autodocumenter(RenamedClassDocumenter)

    def resolve_alias(app, env, node, contnode):  # type: ignore[no-untyped-def]
        target = node.get("reftarget", "")
        public = PUBLIC_ALIASES.get(target)
        if public is None and target.startswith("fastpool._core."):
            public = "fastpool." + target.rsplit(".", 1)[1]
        if public is None:
            return None
        entry = env.get_domain("py").objects.get(public)
        if entry is None:
            return None
        return make_refnode(app.builder, node["refdoc"], entry.docname, public, contnode, public)

    def drop_private_bases(app, name, obj, options, bases):  # type: ignore[no-untyped-def]
        bases[:] = [
            b
            for b in bases
            if not any(p.startswith("_") for p in f"{b.__module__}.{b.__qualname__}".split("."))
            and b.__name__ not in ("PoolFacade", "PoolCore")
        ]

    def check_coverage(app, env):  # type: ignore[no-untyped-def]
        documented = env.get_domain("py").objects
        for name in missing(documented):
            log.warning("public name %s has no entry in the API reference (docs/api.md)", name)

    app.connect("missing-reference", resolve_alias)
    app.connect("autodoc-process-bases", drop_private_bases)
    app.connect("env-check-consistency", check_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
