"""No vae_lib module reaches into another module's private names through its imports.

Every module's imports are read with ``ast`` (module-level and in-function alike). A module
may not import a private name (``_name``, not a dunder) or a private module from another
package, or from a sibling top-level module of ``vae_lib``. The one exception: the modules
of a subpackage may import their own package's private base module and its private names
(``vae_lib/widgets/*`` from ``vae_lib/widgets/_base.py``), and nothing else private. Reaching a private name through
an imported module (``from . import core`` then ``core._tile``) counts as importing it.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "vae_lib"


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, module: Optional[str], level: int) -> str:
    """The absolute module an ``import``/``from ... import`` names (relative imports resolved)."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _allowed(importer_pkg: str, target: str, top: str) -> bool:
    """Whether every private part of ``target`` is the importer's own subpackage's private base module.

    ``target`` is a dotted path, module and name (``vae_lib.widgets._base._Panel``). Its first
    private part must be a module sitting directly in the importer's subpackage, and that
    subpackage must not be the top package (top-level modules share no private base).
    """
    parts = target.split(".")
    i = next((j for j, p in enumerate(parts) if _private(p)), None)
    if i is None:
        return True
    base = ".".join(parts[:i + 1])
    return importer_pkg != top and ".".join(parts[:i]) == importer_pkg and _is_module(base, top)


def violations(source: str, importer: str, is_package: bool = False, top: str = "vae_lib") -> List[str]:
    """Private names or modules that the module ``importer`` (source text ``source``) imports against the rule."""
    importer_pkg = importer if is_package else importer.rpartition(".")[0]
    found: List[str] = []
    module_aliases: Dict[str, str] = {}  # local name -> the absolute module it is bound to

    def check(target: str, where: int, what: str) -> None:
        if not _allowed(importer_pkg, target, top):
            found.append(f"{importer}:{where}: {what}")

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                check(a.name, node.lineno, f"import {a.name}")
                module_aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(importer, is_package, node.module, node.level)
            for a in node.names:
                if a.name == "*":
                    continue
                check(f"{src}.{a.name}", node.lineno, f"from {'.' * node.level}{node.module or ''} import {a.name}")
                module_aliases[a.asname or a.name] = f"{src}.{a.name}"  # may be a submodule; checked below
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr)
                and node.value.id in module_aliases):
            target = module_aliases[node.value.id]
            if _is_module(target, top):
                check(f"{target}.{node.attr}", node.lineno, f"{node.value.id}.{node.attr}")
    return found


def _is_module(name: str, top: str) -> bool:
    """Whether ``name`` is a module of the package ``top`` (only vae_lib's own modules are tracked for attributes)."""
    if not (name == top or name.startswith(top + ".")):
        return False
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE_DIR / rel).with_suffix(".py").is_file() or (PACKAGE_DIR / rel / "__init__.py").is_file()


def all_violations() -> List[str]:
    out: List[str] = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        out += violations(path.read_text(encoding="utf-8"), _module_name(path, PACKAGE_DIR),
                          is_package=path.name == "__init__.py")
    return out


# The rule itself, on small made-up modules.
@pytest.mark.parametrize("importer,is_pkg,src,bad", [
    ("vae_lib.metrics", False, "from .train import _helper", True),  # sibling top-level module
    ("vae_lib.metrics", False, "from .train import helper", False),
    ("vae_lib.plots.latent", False, "from ..metrics import _log_aggregate", True),  # another package
    ("vae_lib.plots.latent", False, "def f():\n    from ..metrics import _x", True),  # in a function too
    ("vae_lib.widgets.beta", False, "from ._base import _Panel, DPI", False),  # own subpackage's base
    ("vae_lib.widgets", True, "from ._base import DPI", False),  # the subpackage's __init__
    ("vae_lib.widgets.beta", False, "from . import _base", False),
    ("vae_lib.widgets._base", False, "from ..plots.core import _encode_means", True),
    ("vae_lib.plots.images", False, "from .core import _tile", True),  # same subpackage, but not its base
    ("vae_lib.widgets.beta", False, "from ._missing import x", True),  # a private base must be a module
    ("vae_lib.widgets._base", False, "from ..plots import _core", True),  # a private module elsewhere
    ("vae_lib.plots.images", False, "from ..widgets._base import DPI", True),
    ("vae_lib.model", False, "from ._impl import thing", True),  # top-level modules share no private base
    ("vae_lib.fused", False, "from torch.optim.adam import _single_tensor_adam", True),  # another package
    ("vae_lib.fused", False, "import torch._dynamo", True),
    ("vae_lib.fused", False, "from torch.optim.adam import adam", False),
    ("vae_lib", True, "from .glue import glue\n__version__ = '1'", False),
    ("vae_lib.model", False, "from __future__ import annotations", False),
    ("vae_lib.widgets.beta", False, "from ..plots import core\ncore._tile(1)", True),  # reached through a module
    ("vae_lib.widgets.beta", False, "from ..plots import core\ncore.tile_images(1)", False),
    ("vae_lib.fused", False, "x = object()\nx._private", False),  # attributes of objects are not imports
])
def test_the_rule(importer, is_pkg, src, bad):
    assert bool(violations(src, importer, is_pkg)) == bad, violations(src, importer, is_pkg)


def test_no_module_imports_another_modules_private_names():
    found = all_violations()
    assert not found, "private names imported across modules (make them public, or keep them in one module):\n" + \
        "\n".join(found)
