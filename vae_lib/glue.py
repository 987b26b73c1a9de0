"""Glue measured numbers into the book's prose, with or without the book toolchain.

A chapter measures a number in a code cell and the text quotes it with MyST-NB's
``{glue:text}`` role, so re-running the notebook on another machine changes the prose
with the outputs (the two cannot drift apart)::

    vl.glue("rate", rate)                       # in the code cell that measured it
    The rate is {glue:text}`rate:.1f` nats.      # in a markdown cell

:func:`glue` writes exactly the output that ``myst_nb.glue(name, value, display=False)``
writes (a ``display_data`` whose MIME types carry MyST-NB's ``application/papermill.record/``
prefix and whose metadata names the key), but needs only IPython. So a learner on Colab or
in a plain virtual environment runs the chapter without installing jupyter-book.
``tests/test_glue.py`` checks the two outputs are identical.
"""
from __future__ import annotations

import numbers
from typing import Any

__all__ = ["glue", "GLUE_PREFIX"]

#: MIME-type prefix MyST-NB reads glued values from (``myst_nb.ext.glue.GLUE_PREFIX``).
GLUE_PREFIX = "application/papermill.record/"


def _plain(value: Any) -> Any:
    """A one-element tensor or a NumPy scalar as a Python ``int``/``float``, so that
    ``{glue:text}`key:.1f``` can format it (MyST-NB formats the value's ``text/plain``)."""
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() == 1:  # torch.Tensor
        value = value.item()
    elif type(value).__module__ == "numpy" and getattr(value, "size", 0) == 1:  # np.float32(1.5), np.array(2)
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for MyST-NB's ``{glue:text}`` role.

    Args:
        name: the glue key, unique within the notebook (a duplicate fails the ``-W`` build).
        value: a number (Python, NumPy or a one-element tensor: converted to ``int``/``float``
            so that format specs like ``:.1f`` work), a string, or any object IPython can display.
        display: also show the value in the cell's output (as ``myst_nb.glue`` does).

    Returns ``None``, as ``myst_nb.glue`` does (so a last-line call shows no ``Out[]``).
    Outside IPython (a plain script) it does nothing.
    """
    value = _plain(value)
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import publish_display_data
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return
    if get_ipython() is None:
        return
    mimebundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    publish_display_data({prefix + k: v for k, v in mimebundle.items()}, metadata=metadata)
