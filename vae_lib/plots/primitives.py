"""Drawing pieces that the figures and the widgets share: the axes of a latent plane, a scatter
of points coloured by class (any number of classes), and the ellipses of posteriors ``q(z|x)``.

Each one draws into an ``Axes`` it is given and returns what it drew, so a figure function can
compose them and a widget can keep the artists and update them in place.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import ListedColormap
from matplotlib.patches import Ellipse

__all__ = ["latent_axes", "class_colormap", "class_scatter", "add_posterior_ellipses"]

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]


def _numpy(a: ArrayLike) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def latent_axes(ax: Axes, dims: Tuple[int, int] = (0, 1), limit: Optional[float] = None, equal: bool = True,
                title: Optional[str] = None) -> Axes:
    """Make ``ax`` a latent plane: axis labels ``z_{i+1}``, ``z_{j+1}`` for ``dims = (i, j)`` (0-based).

    Args:
        ax: the Axes to set up.
        dims: the two latent dimensions drawn, 0-based (labelled from 1, as in the text).
        limit: if given, both axes span ``[-limit, limit]`` (a finite, positive number).
        equal: equal aspect, so that a circle of the prior looks round.
        title: optional title (font size 10).

    Returns:
        ``ax``.
    """
    i, j = dims
    ax.set_xlabel(f"$z_{{{i + 1}}}$")
    ax.set_ylabel(f"$z_{{{j + 1}}}$")
    if limit is not None:
        if not (np.isfinite(limit) and limit > 0):
            raise ValueError(f"latent_axes: limit must be a finite positive number, got {limit}")
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    if equal:
        ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def class_colormap(n_classes: int) -> ListedColormap:
    """A colormap of exactly ``n_classes`` colours, ``cmap(k)`` the colour of class ``k``.

    tab10's colours up to 10 classes (class k gets tab10's colour k, as in every figure of the
    book), tab20's up to 20, and evenly spaced hues of ``turbo`` beyond.
    """
    from matplotlib import colormaps

    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"class_colormap: n_classes must be a positive integer, got {n_classes!r}")
    n_classes = int(n_classes)
    if n_classes <= 10:
        colours = colormaps["tab10"].colors[:n_classes]
    elif n_classes <= 20:
        colours = colormaps["tab20"].colors[:n_classes]
    else:
        colours = colormaps["turbo"](np.linspace(0.05, 0.95, n_classes))
    return ListedColormap(colours, name=f"classes{n_classes}")


def class_scatter(ax: Axes, points: ArrayLike, labels: Optional[ArrayLike] = None, n_classes: Optional[int] = None,
                  colorbar: bool = False, colorbar_label: str = "digit", color: str = "tab:blue", s: float = 4,
                  alpha: float = 0.6, **kw) -> PathCollection:
    """Scatter ``points: [N, 2]`` coloured by their integer class ``labels: [N]`` (any number of classes).

    Class ``k`` gets colour ``k`` of a discrete colormap with exactly ``n_classes`` colours
    (default ``max(labels) + 1``): tab10's colours for up to 10 classes, so digits keep the
    colours they have everywhere in the book (:func:`class_colormap`); ``sc.cmap(k)`` is class
    ``k``'s colour.

    Args:
        ax: where to draw.
        points: ``[N, 2]`` coordinates (tensor or array).
        labels: optional ``[N]`` non-negative integer classes; without them every point is ``color``.
        n_classes: how many classes the colours are for (at least ``max(labels) + 1``).
        colorbar: add a colour bar with one tick per class (up to 20 classes) labelled ``colorbar_label``.
        color: the colour of every point when ``labels`` is None.
        s, alpha: marker size and opacity; other keyword arguments go to ``Axes.scatter``.

    Returns:
        The ``PathCollection`` drawn.
    """
    pts = _numpy(points).reshape(-1, 2)
    if labels is None:
        return ax.scatter(pts[:, 0], pts[:, 1], c=color, s=s, alpha=alpha, **kw)
    lab = _numpy(labels).reshape(-1)
    if lab.shape[0] != pts.shape[0]:
        raise ValueError(f"class_scatter: {pts.shape[0]} points but {lab.shape[0]} labels; pass one label per point")
    if lab.size and (np.any(lab < 0) or np.any(lab != np.round(lab))):
        raise ValueError("class_scatter: labels must be non-negative integers (class indices 0, 1, 2, ...)")
    lab = lab.astype(np.int64)
    needed = int(lab.max()) + 1 if lab.size else 1
    n = needed if n_classes is None else int(n_classes)
    if n < needed:
        raise ValueError(f"class_scatter: n_classes={n_classes} but the labels go up to {needed - 1}; "
                         f"pass n_classes >= {needed} or leave it None")
    sc = ax.scatter(pts[:, 0], pts[:, 1], c=lab, cmap=class_colormap(n), vmin=-0.5, vmax=n - 0.5, s=s,
                    alpha=alpha, **kw)
    if colorbar:
        cb = ax.figure.colorbar(sc, ax=ax, label=colorbar_label)
        if n <= 20:
            cb.set_ticks(range(n))
    return sc


def add_posterior_ellipses(ax: Axes, mu: ArrayLike, logvar: ArrayLike, dims: Tuple[int, int] = (0, 1),
                           n_std: float = 2.0, colors: Union[str, Sequence] = "black",
                           face_alpha: Optional[float] = None, **kw) -> List[Ellipse]:
    """The ``n_std``-σ ellipse of each posterior ``q(z|x_k) = N(μ_k, diag σ_k²)`` in the plane ``dims``.

    Ellipse ``k`` is centred on ``(μ_k[i], μ_k[j])`` with full width ``2·n_std·σ_k[i]`` and
    height ``2·n_std·σ_k[j]``, ``σ = exp(½ log σ²)``.

    Args:
        ax: where to draw.
        mu: ``[K, D]`` posterior means (or ``[D]`` for one posterior).
        logvar: ``[K, D]`` posterior log-variances ``log σ²``, the same shape as ``mu``.
        dims: the two latent dimensions drawn, 0-based.
        n_std: the ellipses' half-axes in standard deviations.
        colors: one edge colour for all, or one per ellipse.
        face_alpha: if given, fill each ellipse with its edge colour at this opacity.
        **kw: passed to every ``matplotlib.patches.Ellipse`` (``lw``, ``ls``, ``zorder``, ``label``, ...).

    Returns:
        The ``K`` ellipses, in order (move one later with ``set_center``, ``width``, ``height``).
    """
    from matplotlib.colors import to_rgba

    m, lv = _numpy(mu), _numpy(logvar)
    if m.shape != lv.shape:
        raise ValueError(f"add_posterior_ellipses: mu and logvar must have the same shape, got {m.shape} and "
                         f"{lv.shape}")
    m, lv = m.reshape(-1, m.shape[-1]), lv.reshape(-1, lv.shape[-1])  # [K, D]
    i, j = dims
    if not (0 <= i < m.shape[1] and 0 <= j < m.shape[1]):
        raise ValueError(f"add_posterior_ellipses: dims {tuple(dims)} out of range for latent_dim={m.shape[1]}")
    std = np.exp(0.5 * lv)  # σ = exp(½ log σ²), [K, D]
    one = isinstance(colors, str) or all(isinstance(c, (int, float, np.number)) for c in colors)  # "k" or an RGB(A)
    cols = [colors] * m.shape[0] if one else list(colors)
    if len(cols) != m.shape[0]:
        raise ValueError(f"add_posterior_ellipses: {len(cols)} colours for {m.shape[0]} ellipses")
    out = []
    for k in range(m.shape[0]):
        face = dict(fill=True, fc=to_rgba(cols[k], face_alpha)) if face_alpha is not None else dict(fill=False)
        e = Ellipse((float(m[k, i]), float(m[k, j])), 2 * n_std * float(std[k, i]), 2 * n_std * float(std[k, j]),
                    ec=cols[k], **face, **kw)
        ax.add_patch(e)
        out.append(e)
    return out
