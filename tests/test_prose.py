"""The prose quotes only what the code measured, and names library code as a link.

1. Numbers. A number in a markdown cell followed by a unit or a comparison word (nats,
   bits, %, ×, images/s, s, ms, "times"), or after "about", must come from a code cell
   through MyST-NB's glue (``{glue:text}`key:.1f```), so that re-executing a notebook on
   another machine changes the text with the outputs. The only literal ones allowed are
   the set-up constants and exact values listed in ``ALLOWED`` below, each with its reason.
   Solution dropdowns are scanned too: a solution quotes no measured number (its code does
   not run when the book is built).
2. Glue keys. Every ``{glue:...}`` key a notebook's prose uses is glued by that notebook
   (the ``-W`` build fails on a missing key too; this says which one without building).
3. Library names. Every ``vl.name`` the prose mentions is a MyST cross-reference
   (``{py:func}`vl.train <vae_lib.train.train>```), so the reader is one click from its API
   entry; ``-n`` fails the build on one that does not resolve.
"""
import re
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
PAGES = sorted(BOOK.glob("*.md"))  # intro, widgets page, API page, references

# A number (1,000 / 3.5 / −0.2 / 1e-3), optionally followed by a space, then a unit or a
# comparison word. "about N" is flagged whatever follows it.
NUMBER = r"[−\-+±]?\d[\d,]*(?:\.\d+)?(?:[eE][−\-]?\d+)?"
UNIT = r"(?:nats?\b|bits?\b|%|×|x\b|images?/s|samples?/s|steps?/s|ms\b|seconds?\b|minutes?\b|times\b)"
# "12 s" is seconds, but "the 1s and 7s" are digits: a bare "s" counts only after a space.
MEASURED = re.compile(rf"(?<![\w.{{}}])({NUMBER})(?:\s?{UNIT}|\ss\b)|\babout\s+({NUMBER})\b")

# Literal numbers the prose may state: (notebook stem or "*", exact matched text, why).
# Keep this short; a measured number is glued, never added here.
ALLOWED = [
    ("*", "90 s", "the per-chapter execution budget of the book, a set-up constant"),
]

GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")  # {cite}`...`, {py:func}`...`, {glue:text}`...`, {numref}`...`
FENCE = re.compile(r"^(```|~~~|:::).*?^\1", re.S | re.M)  # fenced code and directive bodies' code
INLINE_CODE = re.compile(r"`[^`\n]*`")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
URL = re.compile(r"\(https?://[^)]*\)|https?://\S+")
VL_NAME = re.compile(r"(?<![\w.<])vl\.[A-Za-z_][\w.]*")


def _markdown(path):
    if path.suffix == ".md":
        return [(0, path.read_text(encoding="utf-8"))], None
    nb = nbformat.read(path, as_version=4)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"], nb


def _strip(text):
    """Prose only: no code blocks, inline code, roles, maths or links."""
    text = re.sub(r"^```python\n.*?^```", " ", text, flags=re.S | re.M)
    text = re.sub(r"^```\{code-cell\}.*?^```", " ", text, flags=re.S | re.M)
    text = re.sub(r"^```\s*\n.*?^```", " ", text, flags=re.S | re.M)
    text = ROLE.sub(" ", text)
    text = INLINE_CODE.sub(" ", text)
    text = MATH.sub(" ", text)
    return URL.sub(" ", text)


def unglued_numbers(path):
    """``[(cell index, matched text)]`` of measured-looking numbers not glued nor allowed."""
    allowed = {text for stem, text, _ in ALLOWED if stem in ("*", path.stem)}
    cells, _ = _markdown(path)
    return [(i, m.group(0)) for i, src in cells for m in MEASURED.finditer(_strip(src))
            if m.group(0).strip() not in allowed]


def glued_keys(nb):
    keys = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                keys.add(name)
    return keys


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_measured_number_in_the_prose_is_glued(path):
    offenders = unglued_numbers(path)
    assert not offenders, (
        f"{path.name}: numbers with a unit in the prose that are not glued "
        f"(glue them from the cell that measured them, or drop them): {offenders}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_glue_key_used_is_glued_by_the_notebook(path):
    cells, nb = _markdown(path)
    used = {m.group(1).split(":")[0].strip() for _, src in cells for m in GLUE_ROLE.finditer(src)}
    missing = used - glued_keys(nb)
    assert not missing, f"{path.name}: the prose uses glue keys no cell output defines: {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_library_names_in_prose_are_cross_references(path):
    cells, _ = _markdown(path)
    bare = []
    for i, src in cells:
        text = re.sub(r"^```.*?^```", " ", src, flags=re.S | re.M)  # code blocks may use vl. freely
        text = ROLE.sub(" ", text)  # {py:func}`vl.train <vae_lib.train.train>` is the linked form
        bare += [(i, m.group(0)) for m in VL_NAME.finditer(text)]
    assert not bare, (f"{path.name}: write these as cross-references, e.g. "
                      f"{{py:func}}`vl.train <vae_lib.train.train>`: {bare}")


def test_the_scanner_catches_what_it_should():
    cases = {"the loss is 136.4 nats": True, "about 30,000 images": True, "2.8× faster": True,
             "18 % of codes": True, "it took 12 s": True, "3 times larger": True, "0.5 bits": True, "the 1s and 7s": False,
             "Chapter 4 shows": False, "784 pixels": False, "batch 128": False, "k = 1000 samples": False,
             "{glue:text}`rate:.1f` nats": False, "`0.5 nats` in code": False, "$0.69$ nats": False}
    for text, flagged in cases.items():
        assert bool(MEASURED.search(_strip(text))) is flagged, text
