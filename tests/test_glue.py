"""vl.glue writes exactly what myst_nb.glue writes, so the book's {glue:text} roles read it.

Both are run in a real kernel (nbclient) and their outputs compared field by field; then
MyST-NB's own extractor reads vl.glue's output and formats it as the prose would.
"""
import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

import vae_lib as vl
from vae_lib.glue import GLUE_PREFIX


def _run(code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb.cells[0].outputs


@pytest.mark.parametrize("display", [False, True])
def test_vl_glue_output_equals_myst_nb_glue(display):
    outs = _run("import torch, numpy as np, vae_lib as vl\nfrom myst_nb import glue\n"
                f"for v in (136.25, 3, 'text'):\n    glue('k', v, display={display})\n    vl.glue('k', v, display={display})\n"
                f"vl.glue('t', torch.tensor(2.5), display={display}); glue('t', 2.5, display={display})\n"
                f"vl.glue('n', np.float32(1.5), display={display}); glue('n', 1.5, display={display})")
    assert len(outs) == 10
    for mine, theirs in zip(outs[0::2], outs[1::2]):
        assert mine == theirs  # same output type, MIME bundle and scrapbook metadata


def test_myst_nb_reads_and_formats_vl_glue():
    from myst_nb.core.variables import format_plain_text
    from myst_nb.ext.glue import extract_glue_data_cell

    cell = nbformat.v4.new_code_cell("")
    cell.outputs = _run("import torch, vae_lib as vl\nvl.glue('rate', torch.tensor(12.3456))\nvl.glue('n', 7)")
    data = dict(extract_glue_data_cell(cell))
    assert set(data) == {"rate", "n"}
    assert format_plain_text(data["rate"].data["text/plain"], ".1f") == "12.3"
    assert format_plain_text(data["n"].data["text/plain"], ",d") == "7"
    assert all(k.startswith(GLUE_PREFIX) for out in cell.outputs for k in out["data"])


def test_values_become_plain_python_numbers():
    from vae_lib.glue import _plain

    assert _plain(torch.tensor(1.25)) == 1.25 and type(_plain(torch.tensor(3))) is int
    assert type(_plain(np.float64(2.0))) is float and type(_plain(np.int64(4))) is int
    assert _plain("a b") == "a b" and _plain(True) is True
    assert vl.glue("x", 1.0) is None  # outside IPython: nothing to display, no error
