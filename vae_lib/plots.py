"""Figures for the book. Every function returns a ``matplotlib.figure.Figure`` (never calls
``plt.show()``), built without pyplot so nothing leaks between notebook cells.

Images are ``[N, C, H, W]`` tensors in ``[0, 1]``; models are :class:`vae_lib.VAE` or
:class:`vae_lib.Autoencoder`.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

__all__ = [
    "new_figure", "image_grid", "show_images", "plot_reconstructions", "plot_prior_samples",
    "plot_posterior_samples", "plot_latent_scatter", "plot_latent_manifold", "plot_interpolations",
    "plot_loss_curves", "plot_rate_distortion", "jshtml_scrubber",
]

CMAP = "tab10"


def new_figure(figsize: Tuple[float, float] = (6.0, 4.0), **kw) -> Figure:
    """A pyplot-free Figure with an Agg canvas and constrained layout."""
    fig = Figure(figsize=figsize, layout=kw.pop("layout", "constrained"), **kw)
    FigureCanvasAgg(fig)
    return fig


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _tile(images: torch.Tensor, nrow: int, pad: int = 1) -> np.ndarray:
    """``[N, C, H, W]`` -> one ``[rows*(H+pad), nrow*(W+pad)(, 3)]`` array (no Python loop over pixels)."""
    x = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = x.shape
    rows = math.ceil(n / nrow)
    canvas = torch.ones(rows * nrow, c, h + pad, w + pad)
    canvas[:n, :, :h, :w] = x
    grid = canvas.reshape(rows, nrow, c, h + pad, w + pad).permute(0, 3, 1, 4, 2)  # rows, H, cols, W, C
    grid = grid.reshape(rows * (h + pad), nrow * (w + pad), c)[:-pad, :-pad]
    return grid[..., 0].numpy() if c == 1 else grid.numpy()


def show_images(ax: Axes, images: torch.Tensor, nrow: int = 8, title: Optional[str] = None) -> Axes:
    """Draw a grid of images into an existing Axes (used by the figure functions and widgets)."""
    ax.imshow(_tile(images, nrow), cmap="gray_r" if images.shape[1] == 1 else None, vmin=0, vmax=1,
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


@torch.no_grad()
def plot_reconstructions(model, x: torch.Tensor, n: int = 10, title: str = "top: input, bottom: reconstruction"
                         ) -> Figure:
    """Inputs (top row) and their reconstructions from the posterior mean (bottom row)."""
    x = x[:n].to(_device(model))
    recon = model.reconstruct(x)
    return image_grid(torch.cat([x, recon]), nrow=x.shape[0], title=title)


@torch.no_grad()
def plot_prior_samples(model, n: int = 64, nrow: int = 8, seed: int = 0, title: str = "samples: z ~ p(z), decoded"
                       ) -> Figure:
    """New images: ``z ~ p(z)`` through the decoder (mean images)."""
    g = torch.Generator(device=_device(model)).manual_seed(seed)
    return image_grid(model.sample(n, generator=g), nrow=nrow, title=title)


@torch.no_grad()
def plot_posterior_samples(model, x: torch.Tensor, n: int = 15, seed: int = 0) -> Figure:
    """One input, its decoded posterior mean, and ``n`` decodings of ``z ~ q(z|x)`` around it."""
    x = x[:1].to(_device(model))
    mu, logvar = model.encode(x)
    g = torch.Generator(device=mu.device).manual_seed(seed)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, mu.shape[1], generator=g, device=mu.device)
    imgs = torch.cat([x, model.decode_mean(mu), model.decode_mean(z)])
    return image_grid(imgs, nrow=n + 2, title="input | decoded mean | decoded samples z ~ q(z|x)")


def _encode_means(model, x: torch.Tensor, batch_size: int = 1000):
    """Posterior means and log-variances (VAE) or codes and ``None`` (autoencoder), on the CPU."""
    mus, lvs = [], []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            out = model.encode(x[i:i + batch_size].to(_device(model)))
            mu, lv = out if isinstance(out, tuple) else (out, None)
            mus.append(mu.cpu())
            lvs.append(lv.cpu() if lv is not None else None)
    return torch.cat(mus), (torch.cat(lvs) if lvs[0] is not None else None)


def plot_latent_scatter(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, dims: Tuple[int, int] = (0, 1),
                        ellipses: int = 12, n_std: float = 2.0, ax: Optional[Axes] = None,
                        title: Optional[str] = None) -> Figure:
    """Each input's latent mean (coloured by label), and for ``ellipses`` of them the
    ``n_std``-σ ellipse of ``q(z|x)``: a region of latent space, not a point.

    For an :class:`~vae_lib.Autoencoder` only points are drawn (it has no variance).
    """
    mu, logvar = _encode_means(model, x)
    i, j = dims
    fig = ax.figure if ax is not None else new_figure((5.2, 4.6))
    ax = ax if ax is not None else fig.add_subplot()
    c = y.cpu().numpy() if y is not None else "tab:blue"
    sc = ax.scatter(mu[:, i].numpy(), mu[:, j].numpy(), c=c, cmap=CMAP, s=4, alpha=0.6, vmin=-0.5, vmax=9.5)
    if logvar is not None and ellipses > 0:
        std = torch.exp(0.5 * logvar)
        step = max(1, mu.shape[0] // ellipses)
        for k in range(0, min(mu.shape[0], step * ellipses), step):
            ax.add_patch(Ellipse((float(mu[k, i]), float(mu[k, j])), 2 * n_std * float(std[k, i]),
                                 2 * n_std * float(std[k, j]), fill=False, lw=1.2, ec="black", alpha=0.8))
    if y is not None:
        fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel(f"$z_{{{i + 1}}}$")
    ax.set_ylabel(f"$z_{{{j + 1}}}$")
    ax.set_title(title or ("latent means with {:g}σ posterior ellipses".format(n_std) if logvar is not None
                           else "latent codes (one point per input)"), fontsize=10)
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
    imgs = model.decode_mean(z.to(_device(model)))
    fig = image_grid(imgs, nrow=n, scale=0.42)
    ax = fig.axes[0]
    ax.set_title(f"decoded grid: $z_{{{dims[0] + 1}}}$, $z_{{{dims[1] + 1}}}$ from {-extent:g} to {extent:g}",
                 fontsize=10)
    return fig


@torch.no_grad()
def plot_interpolations(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> Figure:
    """One strip per pair: decode ``(1−t)·μ(a) + t·μ(b)`` for ``t`` from 0 to 1 (ends are the inputs)."""
    dev = _device(model)
    x_a, x_b = x_a.to(dev), x_b.to(dev)
    za, zb = (model.encode(x_a), model.encode(x_b))
    za, zb = (za[0], zb[0]) if isinstance(za, tuple) else (za, zb)
    t = torch.linspace(0, 1, steps, device=dev)[None, :, None]  # [1, T, 1]
    z = (1 - t) * za[:, None] + t * zb[:, None]  # [P, T, D]
    imgs = model.decode_mean(z)  # [P, T, C, H, W]
    strip = torch.cat([x_a[:, None], imgs, x_b[:, None]], dim=1).flatten(0, 1)
    return image_grid(strip, nrow=steps + 2, title="input a | decoded path from μ(a) to μ(b) | input b")


def plot_loss_curves(history, keys: Optional[Sequence[str]] = None, title: str = "training") -> Figure:
    """Per-epoch curves from a :class:`vae_lib.History` (nats per image)."""
    keys = list(keys) if keys is not None else [k for k in ("train_loss", "val_loss", "recon", "kl")
                                                if getattr(history, k, None)]
    fig = new_figure((5.5, 3.4))
    ax = fig.add_subplot()
    for k in keys:
        vals = history[k]
        ax.plot(range(1, len(vals) + 1), vals, marker="o", ms=3, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_rate_distortion(points: Sequence, ax: Optional[Axes] = None, annotate: bool = True) -> Figure:
    """Distortion ``−log p(x|z)`` against rate ``KL`` (nats per image), one point per β.

    ``points``: :class:`vae_lib.SweepPoint` objects or ``(beta, rate, distortion)`` tuples.
    """
    pts = [(p.beta, p.rate, p.distortion) if hasattr(p, "rate") else tuple(p) for p in points]
    pts.sort(key=lambda p: p[1])
    fig = ax.figure if ax is not None else new_figure((5.0, 3.8))
    ax = ax if ax is not None else fig.add_subplot()
    ax.plot([p[1] for p in pts], [p[2] for p in pts], "-o", color="tab:purple")
    if annotate:
        for b, r, d in pts:
            ax.annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("rate: KL(q(z|x) || p(z))  [nats/image]")
    ax.set_ylabel("distortion: −log p(x|z)  [nats/image]")
    ax.set_title("rate–distortion trade-off", fontsize=10)
    ax.grid(alpha=0.3)
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

    fig = new_figure(figsize, dpi=72)
    values = list(values)

    def frame(i):
        fig.clear()
        draw(fig, values[i])
        if label is not None:
            fig.suptitle(label(values[i]), fontsize=10)
        return []

    anim = FuncAnimation(fig, frame, frames=len(values), interval=interval, blit=False, repeat=True)
    html = anim.to_jshtml(default_mode="once")
    return HTML(html)
