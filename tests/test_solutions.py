"""Every exercise solution in the book runs.

Solutions sit in dropdown admonitions (markdown cells), so nbval never executes them. Here
each chapter runs in a fresh kernel with its solutions' code appended as extra cells, after
the chapter's own cells; a solution that raises fails the test and names its markdown cell.
"""
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def solution_code(nb):
    """``(markdown cell index, code)`` for every fenced Python block in a Solution dropdown."""
    return [(i, code) for i, cell in enumerate(nb.cells)
            if cell.cell_type == "markdown" and ":class: dropdown" in cell.source and "Solution" in cell.source
            for code in CODE_BLOCK.findall(cell.source)]


def test_the_book_has_solutions_with_code():
    counts = {p.stem: len(solution_code(nbformat.read(p, as_version=4))) for p in NOTEBOOKS}
    assert len(counts) == 10, counts
    assert sum(counts.values()) >= 20, counts
    assert all(counts.values()), f"chapters without solution code: {[k for k, v in counts.items() if not v]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_runs(path):
    nb = nbformat.read(path, as_version=4)
    solutions = solution_code(nb)
    if not solutions:
        pytest.skip("no solution code in this chapter")
    for i, code in solutions:
        nb.cells.append(nbformat.v4.new_code_cell(f"# the solution in markdown cell {i}\n{code}"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}})
    client.execute()  # raises CellExecutionError, quoting the cell, on the first error
