"""Figures of the latent space as a whole: every input's code (with posterior ellipses) and the
decoded manifold. Figures of posteriors ``q(z|x)`` are in :mod:`vae_lib.plots.posteriors`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import image_grid, new_figure
from .primitives import add_posterior_ellipses, class_scatter, latent_axes
from ..device import model_device
from ..metrics import posterior_stats

__all__ = ["plot_latent_scatter", "plot_latent_manifold"]


def plot_latent_scatter(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, dims: Tuple[int, int] = (0, 1),
                        ellipses: int = 12, n_std: float = 2.0, ax: Optional[Axes] = None,
                        title: Optional[str] = None) -> Figure:
    """Each input's latent mean (coloured by label), and for ``ellipses`` of them the
    ``n_std``-σ ellipse of ``q(z|x)``: a region of latent space, not a point.

    For an :class:`~vae_lib.Autoencoder` only points are drawn (it has no variance).
    """
    mu, logvar = (t.cpu() if t is not None else None for t in posterior_stats(model, x))  # [N, D]; None for an AE
    i, j = dims
    fig = ax.figure if ax is not None else new_figure((5.2, 4.6))
    ax = ax if ax is not None else fig.add_subplot()
    class_scatter(ax, mu[:, [i, j]], y, colorbar=y is not None, s=4, alpha=0.6)
    if logvar is not None and ellipses > 0:
        step = max(1, mu.shape[0] // ellipses)
        every = slice(0, min(mu.shape[0], step * ellipses), step)  # ``ellipses`` inputs spread over x
        add_posterior_ellipses(ax, mu[every], logvar[every], dims, n_std, colors="black", lw=1.2, alpha=0.8)
    latent_axes(ax, dims, equal=False,
                title=title or ("latent means with {:g}σ posterior ellipses".format(n_std) if logvar is not None
                                else "latent codes (one point per input)"))
    return fig


@torch.no_grad()
def plot_latent_manifold(model, n: int = 15, extent: float = 3.0, dims: Tuple[int, int] = (0, 1),
                         center: Optional[torch.Tensor] = None) -> Figure:
    """Decode an ``n × n`` grid of latent points over ``[-extent, extent]²`` in ``dims``
    (other dimensions held at ``center``, default 0)."""
    d = model.latent_dim
    grid = torch.linspace(-extent, extent, n)
    z = (center.clone().float().cpu() if center is not None else torch.zeros(d)).repeat(n * n, 1)
    z[:, dims[0]] = grid.repeat(n)  # columns: z_i grows to the right
    z[:, dims[1]] = grid.flip(0).repeat_interleave(n)  # rows: z_j grows upwards
    imgs = model.decode_mean(z.to(model_device(model)))
    fig = image_grid(imgs, nrow=n, scale=0.42)
    ax = fig.axes[0]
    ax.set_title(f"decoded grid: $z_{{{dims[0] + 1}}}$, $z_{{{dims[1] + 1}}}$ from {-extent:g} to {extent:g}",
                 fontsize=10)
    return fig
