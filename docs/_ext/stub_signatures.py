"""Sphinx extension: the signatures of fastpool's Cython core, typed, from its stub.

A compiled module has no annotations at run time: inspect.signature gives the names and
defaults (from ``__text_signature__``) but no types. ``src/fastpool/_core.pyi`` has the types,
and stubtest checks it against the built module in CI, so autodoc takes a core object's
signature from there. Everything else (the pure Python modules) keeps autodoc's own.
"""

from __future__ import annotations

import ast
import os
from typing import Any

import fastpool._core

_STUB = os.path.join(os.path.dirname(fastpool._core.__file__), "_core.pyi")


class _PublicNames(ast.NodeTransformer):
    """Write the core's classes by their public names (``Row`` -> ``fastpool.Row``,
    ``DBAPICursor`` -> ``fastpool.dbapi.Cursor``), so that each reference has one target."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        public = _public_name(node.id)
        return ast.Name(public, ast.Load()) if public else node


def _public_name(name: str) -> str | None:
    import fastpool
    import fastpool.dbapi

    obj = getattr(fastpool._core, name, None)
    if not isinstance(obj, type):
        return None
    for module in (fastpool, fastpool.dbapi):
        for exported in module.__all__:
            if getattr(module, exported) is obj:
                return f"{module.__name__}.{exported}"
    return None


def _signatures(tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """``{qualname: (args, return annotation)}`` for every function and method of the stub."""
    found: dict[str, tuple[str, str | None]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                if prefix and args.posonlyargs[:1] + args.args[:1]:  # drop self / cls
                    first = (args.posonlyargs or args.args)[0]
                    args.posonlyargs = [a for a in args.posonlyargs if a is not first]
                    args.args = [a for a in args.args if a is not first]
                ret = ast.unparse(node.returns) if node.returns else None
                found.setdefault(f"{prefix}{node.name}", (f"({ast.unparse(args)})", ret))

    visit(tree.body, "")
    return found


def _core_qualname(obj: Any, name: str) -> str | None:
    """The stub's name for ``obj`` when it lives in fastpool._core, else None."""
    owner = getattr(obj, "__objclass__", None)
    module = getattr(owner or obj, "__module__", None)
    if module != "fastpool._core":
        return None
    if isinstance(obj, type):
        return f"{obj.__name__}.__init__"
    if owner is not None:
        return f"{owner.__name__}.{obj.__name__}"
    # a Cython function or method (binding): its own qualified name, as the stub writes it
    return getattr(obj, "__qualname__", None) or name.rsplit(".", 1)[-1]


def setup(app: Any) -> dict[str, Any]:
    with open(_STUB, encoding="utf-8") as f:
        stubs = _signatures(_PublicNames().visit(ast.parse(f.read())))

    def process_signature(app, what, name, obj, options, signature, return_annotation):  # type: ignore[no-untyped-def]
        qualname = _core_qualname(obj, name)
        if qualname is None:
            return None
        if qualname not in stubs and qualname.endswith(".__init__"):
            qualname = qualname[: -len("__init__")] + "__new__"
        if qualname not in stubs:
            return None
        args, ret = stubs[qualname]
        return args, (None if what == "class" else ret)

    app.connect("autodoc-process-signature", process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
