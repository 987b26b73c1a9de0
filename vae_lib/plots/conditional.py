"""Figures of chapter 7 (conditional VAEs): one code decoded with every label, and how a
style statistic of the same code agrees across labels."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.figure import Figure

from .core import new_figure, tile_images

__all__ = ["plot_every_label", "plot_style_pairs"]


def plot_every_label(images: torch.Tensor, labels: Optional[Sequence] = None, row_names: Optional[Sequence] = None,
                     title: Optional[str] = None, scale: float = 0.55) -> Figure:
    """A grid with one row per code and one column per label: ``images: [B, L, C, H, W]`` in ``[0, 1]``
    (from :func:`vae_lib.conditional.decode_every_label`).

    Args:
        labels: the ``L`` column headings (default ``0 .. L−1``).
        row_names: optional ``B`` row headings (say "z₁", or the input a code came from).
        title: the figure's title.
        scale: inches per image.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 5:
        raise ValueError(f"plot_every_label: images must be [B, L, C, H, W], got "
                         f"{list(getattr(images, 'shape', [])) or type(images).__name__}")
    b, n_lab, c, h, w = images.shape
    labels = list(range(n_lab)) if labels is None else list(labels)
    if len(labels) != n_lab or (row_names is not None and len(row_names) != b):
        raise ValueError(f"plot_every_label: {len(labels)} labels and "
                         f"{len(row_names) if row_names is not None else b} row names for a {b} x {n_lab} grid")
    fig = new_figure((max(2.0, n_lab * scale + (0.5 if row_names else 0)), max(1.0, b * scale + 0.5)))
    ax = fig.add_subplot()
    ax.imshow(tile_images(images.reshape(b * n_lab, c, h, w), n_lab), cmap="gray_r" if c == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([(w + 1) * j + (w - 1) / 2 for j in range(n_lab)], [str(v) for v in labels], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([(h + 1) * i + (h - 1) / 2 for i in range(b)], list(row_names) if row_names else [""] * b,
                  fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("label y given to the decoder", fontsize=8)
    ax.xaxis.set_label_position("top")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_style_pairs(stats: dict, pair: Tuple[int, int] = (1, 7), shuffle_seed: int = 0,
                     figsize: Tuple[float, float] = (7.0, 3.0)) -> Figure:
    """For each statistic (one panel each), its value for code ``z`` decoded with label ``a`` against the
    same code decoded with label ``b``; grey: the codes of column ``b`` shuffled (the pairing broken).

    ``stats``: ``{name: [B, L]}`` (from :func:`vae_lib.conditional.style_statistics`); ``pair``: the labels ``(a, b)``.
    """
    if not stats:
        raise ValueError("plot_style_pairs: stats is empty; pass {name: [B, L] tensor}")
    a, b = pair
    fig = new_figure(figsize)
    rng = np.random.default_rng(shuffle_seed)
    for k, (name, stat) in enumerate(stats.items()):
        s = stat.detach().cpu().double().numpy()
        if s.ndim != 2 or not (0 <= a < s.shape[1] and 0 <= b < s.shape[1]):
            raise ValueError(f"plot_style_pairs: {name} must be [B, L] with labels {pair} in range, got {s.shape}")
        ax = fig.add_subplot(1, len(stats), k + 1)
        shuffled = s[rng.permutation(s.shape[0]), b]
        ax.scatter(s[:, a], shuffled, s=6, color="0.7", label=f"shuffled (r = {np.corrcoef(s[:, a], shuffled)[0, 1]:.2f})")
        ax.scatter(s[:, a], s[:, b], s=6, color="tab:blue", label=f"same z (r = {np.corrcoef(s[:, a], s[:, b])[0, 1]:.2f})")
        ax.set_xlabel(f"{name} of z decoded as {a}", fontsize=8)
        ax.set_ylabel(f"{name} of z decoded as {b}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="best")
    return fig
