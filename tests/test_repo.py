"""The project's promises about itself: the README's quick start is what CI runs, and the
package pulls only what `import vae_lib` needs."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md needs a '## Quick start' section with a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_quick_start_is_two_commands_and_ci_runs_them():
    cmds = _quick_start()
    assert len(cmds) == 2, cmds
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.splitlines()]
    for cmd in cmds:
        assert cmd in ci_lines, f".ci/run does not run the README command {cmd!r}"
    assert "rm -rf .venv" in ci, ".ci/run must build a fresh environment"


def test_package_dependencies_are_only_runtime_ones():
    toml = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"dependencies = \[(.*?)\]", toml, re.S).group(1)
    for tool in ("jupyter-book", "nbval", "pytest", "playwright", "jupyterquiz", "jupytercards", "sphinx"):
        assert tool not in deps, f"{tool} belongs in requirements.txt, not the package"
    assert re.search(r'"torch>=[\d.]+,<\d+"', deps), "torch must be a range (keeps Colab's torch)"
    assert "build-system" in toml and "torch" not in toml.split("[project]")[0]


def test_every_subpackage_is_packaged():
    """A plain (non-editable) install, as on Colab, ships only the packages pyproject lists."""
    toml = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(vae_lib[\w.]*)"', re.search(r"^packages = \[(.*?)\]", toml, re.M).group(1)))
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vae_lib").rglob("__init__.py")}
    assert listed == on_disk


def test_requirements_pin_jupyter_book_1():
    req = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^jupyter-book>=1\.0\.4,<2$", req, re.M)
    assert re.search(r"^torch>=[\d.]+,<\d+$", req, re.M)


def test_import_vae_lib_does_not_import_book_tools():
    code = ("import sys, vae_lib; bad = [m for m in ('ipywidgets', 'jupyter_book', 'nbval', 'IPython') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import vae_lib pulled in {out}"


@pytest.mark.parametrize("name", ["DATASETS", "load_dataset", "VAE", "reparameterize", "kl_standard_normal",
                                  "iwae_log_likelihood", "active_units", "train", "save_checkpoint",
                                  "load_checkpoint", "default_device"])
def test_public_api(name):
    import vae_lib
    assert hasattr(vae_lib, name) and name in vae_lib.__all__
