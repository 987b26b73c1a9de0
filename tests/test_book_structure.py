"""Fast checks of the book's shape; no build, no kernel.

- every _toc.yml entry exists, and every book/*.md and book/*.ipynb is in _toc.yml
  (as Pyro's tests/test_examples.py fails when an example is missing from its list);
- every chapter notebook follows the house shape (STYLE.md): learning goals, an
  "Open in Colab" badge, a hidden Colab install guard, `import vae_lib`, nbval-checked
  cells with stored outputs, a quiz, flashcards (FLASHCARD_CHAPTERS), a summary,
  exercises with folded solutions, and no error output;
- citations and the bibliography are consistent.

BOOK_DIR points the checks at another copy of the book (default: this repository).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK_DIR = Path(os.environ.get("BOOK_DIR", REPO)).resolve()
COLAB_PREFIX = "https://colab.research.google.com/github/vae-book/vae-book/blob/main/"

# Chapters whose notebook must end with a jupytercards deck (by number, "04_..." -> 4).
FLASHCARD_CHAPTERS = [1, 2, 4, 5]
# Every notebook in _toc.yml is a chapter notebook and gets the checks below.

REQUIRED_BIB_KEYS = [
    "kingma2014auto", "rezende2014stochastic", "higgins2017beta", "burda2016importance",
    "bowman2016generating", "kingma2016improved", "tomczak2018vae", "alemi2018fixing",
    "williams1992simple", "lecun1998gradient", "xiao2017fashion",
]


# --- the table of contents ----------------------------------------------------------

def toc_entries(book_dir: Path = BOOK_DIR) -> list[str]:
    """Every `root`/`file` of _toc.yml, as written (no extension)."""
    toc = yaml.safe_load((book_dir / "_toc.yml").read_text())
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return entries


def resolve(entry: str, book_dir: Path = BOOK_DIR) -> Path | None:
    for suffix in ("", ".md", ".ipynb"):
        path = book_dir / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


def test_toc_format():
    toc = yaml.safe_load((BOOK_DIR / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"
    captions = [p.get("caption") for p in toc.get("parts", [])]
    assert captions == ["Part I: What a VAE is", "Part II: VAEs at work", "Appendix"], captions
    chapters = [[c["file"] for c in p["chapters"]] for p in toc["parts"]]
    assert [int(f.split("/")[1][:2]) for f in chapters[0]] == [1, 2, 3, 4, 5]
    assert [int(f.split("/")[1][:2]) for f in chapters[1]] == [7, 8, 9, 10], "Part II: chapters 7 to 10"
    assert chapters[2][0] == "book/06_evaluation", "the appendix opens with the evaluation notebook"


def test_toc_has_no_duplicates():
    entries = [e.removesuffix(".md").removesuffix(".ipynb") for e in toc_entries()]
    assert len(entries) == len(set(entries)), entries


@pytest.mark.parametrize("entry", toc_entries())
def test_toc_entry_exists(entry):
    assert resolve(entry) is not None, f"_toc.yml lists {entry!r} but no {entry}.md/.ipynb exists"


def test_every_page_is_in_toc():
    listed = {e.removesuffix(".md").removesuffix(".ipynb") for e in toc_entries()}
    pages = sorted((BOOK_DIR / "book").glob("*.md")) + sorted((BOOK_DIR / "book").glob("*.ipynb"))
    missing = [str(p.relative_to(BOOK_DIR)) for p in pages
               if str(p.relative_to(BOOK_DIR).with_suffix("")) not in listed]
    assert not missing, f"pages not in _toc.yml (add them, or the build ignores them): {missing}"


# --- chapter notebooks --------------------------------------------------------------

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
NBVAL_MARK = re.compile(r"^\s*#\s*NBVAL_CHECK_OUTPUT\b", re.M)
IMPORT_LIB = re.compile(r"^\s*(import\s+vae_lib\b|from\s+vae_lib\b)", re.M)
FOLDED = re.compile(r"\{dropdown\}|:class:\s*[\w\s-]*\bdropdown\b|\{toggle\}|:class:\s*[\w\s-]*\btoggle\b")
FOLDING_TAGS = {"hide-input", "hide-output", "hide-cell", "dropdown"}
REMOVED_TAGS = {"remove-cell", "remove-input"}
EXTERNAL_IMG = re.compile(r"!\[[^\]]*\]\(\s*https?://|<img[^>]+src=[\"']https?://", re.I)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _headings(cells) -> list[tuple[int, str]]:
    return [(i, h.lower()) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
            for h in HEADING.findall(_source(c))]


def chapter_problems(path: Path, repo_path: str, flashcards: bool) -> list[str]:
    """Everything a chapter notebook at `path` lacks; empty when it has the house shape.

    repo_path: where the notebook lives in the repository ("book/01_x.ipynb"), for the
    Colab link. flashcards: whether a jupytercards deck is required.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    markdown = [c for c in cells if c["cell_type"] == "markdown"]
    headings = _headings(cells)
    problems = []

    if not any("learning goal" in h for _, h in headings):
        problems.append("no 'Learning goals' heading")

    colab_url = COLAB_PREFIX + repo_path
    badge = [c for c in markdown if colab_url in _source(c)
             and re.search(r"open\s+in\s+colab", _source(c), re.I)]
    if not badge:
        problems.append(f"no 'Open in Colab' badge linking to {colab_url}")
    for cell in badge:
        if EXTERNAL_IMG.search(_source(cell)) and not _tags(cell) & {"remove-cell"}:
            problems.append("the Colab badge loads its image from the internet, which the offline "
                            "book cannot show: put the badge in its own markdown cell tagged "
                            "remove-cell (the book has its own Colab button), or use a local image")

    guards = [c for c in code if "google.colab" in _source(c)]
    if not guards:
        problems.append("no install guard cell (a code cell checking for google.colab)")
    elif not any(_tags(c) & REMOVED_TAGS for c in guards):
        problems.append("the google.colab install guard is not tagged remove-cell or remove-input")

    if not any(IMPORT_LIB.search(_source(c)) for c in code):
        problems.append("no `import vae_lib` / `from vae_lib import ...`")

    checked = [c for c in code if NBVAL_MARK.search(_source(c)) or "nbval-check-output" in _tags(c)]
    if len(checked) < 2:
        problems.append(f"{len(checked)} cell(s) marked # NBVAL_CHECK_OUTPUT, need at least 2")
    for c in checked:
        if not c.get("outputs"):
            first = _source(c).strip().splitlines()[:2]
            problems.append(f"NBVAL_CHECK_OUTPUT cell without stored output (nbval would compare "
                            f"nothing; commit it executed): {' / '.join(first)!r}")

    if not any("display_quiz(" in _source(c) for c in code):
        problems.append("no jupyterquiz display_quiz(...) cell")
    if flashcards and not any("display_flashcards(" in _source(c) for c in code):
        problems.append("no jupytercards display_flashcards(...) cell")

    if not any(h.startswith("summary") or h.endswith("summary") for _, h in headings):
        problems.append("no 'Summary' heading")
    exercises = [i for i, h in headings if "exercise" in h]
    if not exercises:
        problems.append("no 'Exercises' heading")
    else:
        after = cells[exercises[0]:]
        if not any((c["cell_type"] == "markdown" and FOLDED.search(_source(c)))
                   or _tags(c) & FOLDING_TAGS for c in after):
            problems.append("exercises have no folded solution ({dropdown}, :class: dropdown, "
                            "{toggle}, or a cell tagged hide-input/hide-cell)")

    for c in code:
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"stored error output {out.get('ename')}: {out.get('evalue', '')[:80]!r}")
            elif (out.get("output_type") == "stream" and out.get("name") == "stderr"
                  and not _tags(c) & {"remove-stderr", "remove-output", "remove-cell"}):
                text = "".join(out.get("text", ""))
                problems.append("stored stderr output (the book shows it as an error box; fix the "
                                f"warning or tag the cell remove-stderr): {text.strip()[:80]!r}")
    return problems


def _chapter_number(entry: str) -> int | None:
    m = re.match(r"(?:.*/)?(\d+)_", entry)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("entry", [e for e in toc_entries() if re.match(r"book/\d\d_", e)])
def test_chapter_notebook_shape(entry):
    path = BOOK_DIR / f"{entry}.ipynb"
    assert path.is_file(), f"{entry}.ipynb does not exist yet"
    problems = chapter_problems(path, f"{entry}.ipynb",
                                flashcards=_chapter_number(entry) in FLASHCARD_CHAPTERS)
    assert not problems, f"{entry}.ipynb:\n  " + "\n  ".join(problems)


# --- configuration, citations and bibliography ----------------------------------------

def _config() -> dict:
    return yaml.safe_load((BOOK_DIR / "_config.yml").read_text())


def test_config_essentials():
    cfg = _config()
    assert cfg["title"] == "The VAE Book"
    assert str(cfg["copyright"]) == "2026"
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert "path_to_book" not in cfg["repository"], "path_to_book breaks the Colab links (/./)"
    assert cfg["repository"]["url"] == "https://github.com/vae-book/vae-book"
    for pattern in [".venv", "node_modules", "_build", ".pytest_cache", "tests", "benchmarks",
                    ".ci", "README.md", "**/.ipynb_checkpoints"]:
        assert pattern in cfg["exclude_patterns"], pattern


def test_offline_assets_are_local():
    """MathJax and the widget manager come from book/_offline, never from a CDN."""
    sphinx = _config()["sphinx"]["config"]
    assert sphinx["html_static_path"] == ["book/_offline"]
    assert not re.match(r"https?://", sphinx["mathjax_path"])
    assert all(not re.match(r"https?://", p) for p in sphinx["nb_ipywidgets_js"])
    assert os.access(BOOK_DIR / ".ci" / "fetch-offline-assets", os.X_OK)
    lock = json.loads((BOOK_DIR / ".ci" / "offline" / "package-lock.json").read_text())
    assert {"node_modules/mathjax", "node_modules/@jupyter-widgets/html-manager"} <= set(lock["packages"])


def _bib_keys() -> set[str]:
    return set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", (BOOK_DIR / "book" / "references.bib").read_text()))


def _pages_text() -> dict[str, str]:
    texts = {}
    for path in sorted((BOOK_DIR / "book").glob("*.md")):
        texts[path.name] = path.read_text(encoding="utf-8")
    for path in sorted((BOOK_DIR / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        texts[path.name] = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    return texts


def test_bibliography_has_required_entries():
    missing = sorted(set(REQUIRED_BIB_KEYS) - _bib_keys())
    assert not missing, f"references.bib lacks {missing}"


def test_every_citation_is_in_the_bibliography():
    keys = _bib_keys()
    unknown = []
    for name, text in _pages_text().items():
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            unknown += [f"{name}: {k.strip()}" for k in group.split(",") if k.strip() not in keys]
    assert not unknown, f"citations with no references.bib entry: {unknown}"


def test_bibliography_printed_once():
    """Only references.md prints the list, so {cite} links have one target."""
    where = [name for name, text in _pages_text().items() if re.search(r"[`:]\{bibliography\}", text)]
    assert where == ["references.md"], where


# --- The install guard: one cell, the same in every chapter, with one install source -------

def _guards() -> dict[str, str]:
    out = {}
    for entry in (e for e in toc_entries() if re.match(r"book/\d\d_", e)):
        nb = json.loads((BOOK_DIR / f"{entry}.ipynb").read_text(encoding="utf-8"))
        cells = [_source(c) for c in nb["cells"] if c["cell_type"] == "code" and "Install guard" in _source(c)]
        out[entry] = cells[0] if cells else ""
    return out


def test_every_chapter_has_the_same_install_guard_with_the_repository_as_its_source():
    guards = _guards()
    assert all(guards.values()), f"chapters without an '# Install guard' cell: {[k for k, v in guards.items() if not v]}"
    assert len(set(guards.values())) == 1, "the install-guard cells differ between chapters; keep one text"
    repo = re.search(r"^\s*url:\s*(\S+)", (BOOK_DIR / "_config.yml").read_text(), re.M).group(1)
    assert f'"vae_lib @ git+{repo}"' in next(iter(guards.values())), "the guard's VAE_LIB_SOURCE must be the repository"


import importlib.util  # noqa: E402
import subprocess  # noqa: E402

_FIND_SPEC = importlib.util.find_spec


def _run_guard(monkeypatch, capsys, missing, returncode):
    """Run the guard's code with ``missing`` packages hidden and pip replaced by a recorder."""
    calls = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else _FIND_SPEC(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, returncode))
    monkeypatch.delenv("VAE_LIB_SOURCE", raising=False)
    try:
        exec(next(iter(_guards().values())), {})
    finally:
        printed = capsys.readouterr().out
    return calls, printed


def test_the_guard_installs_only_what_is_missing_and_says_so(monkeypatch, capsys):
    calls, printed = _run_guard(monkeypatch, capsys, missing={"vae_lib", "jupytercards"}, returncode=0)
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "install"]
    assert "vae_lib @ git+https://github.com/vae-book/vae-book" in calls[0] and "jupytercards" in calls[0]
    assert "jupyterquiz" not in calls[0] and "installing vae_lib, jupytercards" in printed
    calls, printed = _run_guard(monkeypatch, capsys, missing=set(), returncode=0)
    assert calls == [] and printed == ""  # in the book's environment it does nothing


def test_a_failed_install_says_how_to_install_by_hand(monkeypatch, capsys):
    with pytest.raises(RuntimeError, match=r'(?s)install by hand.*pip install "vae_lib @ git\+'):
        _run_guard(monkeypatch, capsys, missing={"vae_lib"}, returncode=1)
