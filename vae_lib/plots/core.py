"""Figure plumbing shared by every plot: pyplot-free figures, image tiling, inline display in
Jupyter, and the kernel-free JavaScript scrubber.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


__all__ = ["new_figure", "tile_images", "show_images", "image_grid", "jshtml_scrubber"]


def _register_notebook_display() -> None:
    """Show returned Figures inline in Jupyter even though pyplot is never imported.

    The inline backend registers its PNG formatter for ``Figure`` only when pyplot loads;
    we register it directly when a kernel is already running (never importing IPython).
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"})


_register_notebook_display()


def new_figure(figsize: Tuple[float, float] = (6.0, 4.0), **kw) -> Figure:
    """A pyplot-free Figure with an Agg canvas and constrained layout."""
    fig = Figure(figsize=figsize, layout=kw.pop("layout", "constrained"), **kw)
    FigureCanvasAgg(fig)
    return fig


def tile_images(images: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile ``images: [N, C, H, W]`` in ``[0, 1]`` into one array, ``nrow`` images per row, row-major.

    Returns ``[rows·(H+pad) − pad, nrow·(W+pad) − pad]`` for one channel (draw it with
    ``cmap="gray_r"``) or the same with a trailing ``3`` for RGB. The ``pad``-pixel gaps and
    the empty slots of the last row are white (0 under ``gray_r``, 1 in RGB). Values are
    clamped to ``[0, 1]``; no Python loop over images or pixels.
    """
    if images.dim() != 4:
        raise ValueError(f"tile_images expects images [N, C, H, W], got shape {tuple(images.shape)}")
    if nrow < 1 or pad < 0:
        raise ValueError(f"tile_images needs nrow >= 1 and pad >= 0, got nrow={nrow}, pad={pad}")
    x = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = x.shape
    rows = max(1, math.ceil(n / nrow))
    canvas = torch.full((rows * nrow, c, h + pad, w + pad), 0.0 if c == 1 else 1.0)  # white background
    canvas[:n, :, :h, :w] = x
    grid = canvas.reshape(rows, nrow, c, h + pad, w + pad).permute(0, 3, 1, 4, 2)  # rows, H, cols, W, C
    grid = grid.reshape(rows * (h + pad), nrow * (w + pad), c)[:rows * (h + pad) - pad, :nrow * (w + pad) - pad]
    return grid[..., 0].numpy() if c == 1 else grid.numpy()


def show_images(ax: Axes, images: torch.Tensor, nrow: int = 8, title: Optional[str] = None) -> Axes:
    """Draw a grid of images into an existing Axes (used by the figure functions and widgets)."""
    ax.imshow(tile_images(images, nrow), cmap="gray_r" if images.shape[1] == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def image_grid(images: torch.Tensor, nrow: int = 8, title: Optional[str] = None,
               scale: float = 0.6) -> Figure:
    """A grid of images, ``nrow`` per row. ``scale``: inches per image."""
    rows = math.ceil(images.shape[0] / nrow)
    fig = new_figure((max(2.0, nrow * scale), max(1.0, rows * scale + (0.3 if title else 0))))
    show_images(fig.add_subplot(), images, nrow, title)
    return fig


def jshtml_scrubber(draw: Callable[[Figure, object], None], values: Sequence, figsize=(6.0, 3.5),
                    interval: int = 400, label: Optional[Callable[[object], str]] = None):
    """A kernel-free twin of a widget: precompute one frame per value, return an HTML player.

    ``draw(fig, value)`` redraws the whole figure for one value (clear it first). The frames
    are PNGs embedded in JavaScript (matplotlib's ``to_jshtml``), so the slider works in the
    static book. Returns ``IPython.display.HTML``.
    """
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    values = list(values)
    if not values:
        raise ValueError("jshtml_scrubber needs at least one value (one frame each); got none")
    fig = new_figure(figsize, dpi=72)

    def frame(i):
        fig.clear()
        draw(fig, values[i])
        if label is not None:
            fig.suptitle(label(values[i]), fontsize=10)
        return []

    anim = FuncAnimation(fig, frame, frames=len(values), interval=interval, blit=False, repeat=True)
    html = anim.to_jshtml(default_mode="once")
    # to_jshtml links Font Awesome from a CDN for its buttons; the book's theme already
    # ships Font Awesome, so drop the link and the page fetches nothing from the network.
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    return HTML(html)
