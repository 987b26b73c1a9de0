"""Sphinx extension: the prose's short targets ``vae_lib.X`` link to where X is documented.

The chapters write {py:func}`vl.load_dataset <vae_lib.load_dataset>`: the name a learner
types. The API page documents each object once, in its defining module
(``vae_lib.data.load_dataset``). When Sphinx finds no object called ``vae_lib.X``, this
handler imports ``vae_lib``, follows the attribute path, and retries with the defining
module's name. A target that still does not resolve stays missing, so ``-n`` fails on it.
"""
from __future__ import annotations

import importlib
import inspect


def _candidates(target: str):
    """Full names under which the object ``target`` (a ``vae_lib.`` path) may be documented."""
    parts = target.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return []
    owner = None
    for name in parts[1:]:
        owner, obj = obj, getattr(obj, name, None)
        if obj is None:
            return []
    out = []
    if inspect.ismodule(obj):
        out.append(obj.__name__)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname and "<" not in qualname:
        out.append(f"{module}.{qualname}")
    if inspect.isclass(owner):  # a method reached through a public class: Class.method
        out.append(f"{owner.__module__}.{owner.__qualname__}.{parts[-1]}")
    return out


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py" or not node.get("reftarget", "").startswith("vae_lib."):
        return None
    domain = env.get_domain("py")
    for full in _candidates(node["reftarget"]):
        if full in domain.objects or full in domain.modules:
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], full, node, contnode)
    return None


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
