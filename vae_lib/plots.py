"""Figures for the book. Every function returns a ``matplotlib.figure.Figure`` (never calls
``plt.show()``), built without pyplot so nothing leaks between notebook cells.

Images are ``[N, C, H, W]`` tensors in ``[0, 1]``; models are :class:`vae_lib.VAE` or
:class:`vae_lib.Autoencoder`.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from .device import model_device

__all__ = [
    "new_figure",
    "show_images",
    "image_grid",
    "plot_reconstructions",
    "plot_prior_samples",
    "plot_posterior_samples",
    "plot_latent_scatter",
    "plot_latent_manifold",
    "plot_interpolations",
    "plot_loss_curves",
    "plot_rate_distortion",
    "jshtml_scrubber",
    "plot_reparam_graph",
    "plot_gradient_variance",
    "plot_posteriors_over_prior",
    "plot_kl_landscape",
    "plot_mc_convergence",
    "plot_elbo_vs_iwae",
    "plot_encode_sample_decode",
    "plot_posterior_width",
    "plot_pixel_nats",
    "plot_history_comparison",
    "plot_bound_vs_k",
    "plot_aggregate_posterior",
    "plot_kl_per_dim",
    "plot_image_grids",
    "plot_beta_grid",
]

CMAP = "tab10"


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


def _tile(images: torch.Tensor, nrow: int, pad: int = 1) -> np.ndarray:
    """``[N, C, H, W]`` -> one ``[rows*(H+pad), nrow*(W+pad)(, 3)]`` array (no Python loop over pixels)."""
    x = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = x.shape
    rows = math.ceil(n / nrow)
    # Gaps between images show as background: white, which is 0 under gray_r and 1 in RGB.
    canvas = torch.full((rows * nrow, c, h + pad, w + pad), 0.0 if c == 1 else 1.0)
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
    x = x[:n].to(model_device(model))
    recon = model.reconstruct(x)
    return image_grid(torch.cat([x, recon]), nrow=x.shape[0], title=title)


@torch.no_grad()
def plot_prior_samples(model, n: int = 64, nrow: int = 8, seed: int = 0, title: str = "samples: z ~ p(z), decoded"
                       ) -> Figure:
    """New images: ``z ~ p(z)`` through the decoder (mean images)."""
    g = torch.Generator(device=model_device(model)).manual_seed(seed)
    return image_grid(model.sample(n, generator=g), nrow=nrow, title=title)


@torch.no_grad()
def plot_posterior_samples(model, x: torch.Tensor, n: int = 15, seed: int = 0) -> Figure:
    """One input, its decoded posterior mean, and ``n`` decodings of ``z ~ q(z|x)`` around it."""
    x = x[:1].to(model_device(model))
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
            out = model.encode(x[i:i + batch_size].to(model_device(model)))
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
    imgs = model.decode_mean(z.to(model_device(model)))
    fig = image_grid(imgs, nrow=n, scale=0.42)
    ax = fig.axes[0]
    ax.set_title(f"decoded grid: $z_{{{dims[0] + 1}}}$, $z_{{{dims[1] + 1}}}$ from {-extent:g} to {extent:g}",
                 fontsize=10)
    return fig


@torch.no_grad()
def plot_interpolations(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> Figure:
    """One strip per pair: decode ``(1−t)·μ(a) + t·μ(b)`` for ``t`` from 0 to 1 (ends are the inputs)."""
    dev = model_device(model)
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
    # to_jshtml links Font Awesome from a CDN for its buttons; the book's theme already
    # ships Font Awesome, so drop the link and the page fetches nothing from the network.
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    return HTML(html)


# --- used by chapter 3 (the reparameterization trick)
def _graph_node(ax: Axes, xy: Tuple[float, float], text: str, kind: str = "det"):
    """One node of a computation-graph sketch: ``kind`` is 'param', 'noise', 'random' or 'det'."""
    style = {"param": ("round,pad=0.35", "#dbe9f6", "tab:blue"), "noise": ("round,pad=0.35", "#eeeeee", "grey"),
             "random": ("sawtooth,pad=0.4", "#fbe0dc", "tab:red"), "det": ("round,pad=0.35", "#e3f3e0", "tab:green")}
    box, face, edge = style[kind]
    return ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=10, zorder=3,
                   bbox=dict(boxstyle=box, fc=face, ec=edge, lw=1.4))


def _graph_edge(ax: Axes, a, b, color: str = "black", dashed: bool = False) -> None:
    """An arrow from node ``a`` to node ``b`` (Text objects from ``_graph_node``), clipped at their boxes."""
    ax.annotate("", xy=b.get_position(), xytext=a.get_position(), zorder=2, arrowprops=dict(
        arrowstyle="-|>", color=color, lw=1.3, ls="--" if dashed else "-", shrinkA=3, shrinkB=3,
        patchA=a.get_bbox_patch(), patchB=b.get_bbox_patch()))


def _graph_backward(ax: Axes, a: Tuple[float, float], b: Tuple[float, float], color: str, label: str,
                    offset: Tuple[float, float]) -> None:
    """A dashed backward-pass arrow from point ``a`` to point ``b`` with a label beside it."""
    ax.annotate("", xy=b, xytext=a, zorder=2, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2, ls="--"))
    ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], label, color=color, fontsize=9,
            ha="center", va="center")


def plot_reparam_graph() -> Figure:
    """Two computation graphs for ``L = f(z)``, ``z ~ N(μ, σ²)``: sampling as a node (left; the
    backward pass stops at it) and the reparameterized ``z = μ + σ·ε`` with ``ε ~ N(0, 1)`` an
    input (right; gradients reach μ and σ). Solid arrows: forward pass; dashed: backward pass.
    A schematic: no data, no units."""
    fig = new_figure((9.4, 3.6))
    axes = fig.subplots(1, 2)
    for ax in axes:
        ax.set_xlim(0, 4)
        ax.set_ylim(0, 3.1)
        ax.set_axis_off()
    pm, ps, pz, pf = (0.35, 2.3), (0.35, 0.7), (1.9, 1.5), (3.5, 1.5)
    ax = axes[0]
    ax.set_title("sampling inside the graph: .sample()", fontsize=10)
    m, s = _graph_node(ax, pm, "μ", "param"), _graph_node(ax, ps, "σ", "param")
    z, f = _graph_node(ax, pz, "z ~ N(μ, σ²)", "random"), _graph_node(ax, pf, "L = f(z)", "det")
    for node in (m, s):
        _graph_edge(ax, node, z)
    _graph_edge(ax, z, f)
    _graph_backward(ax, (3.3, 1.15), (2.3, 1.15), "tab:green", "∂L/∂z", (0, -0.17))
    for y in (2.0, 1.0):
        ax.text(0.95, y, "✗", color="tab:red", fontsize=18, ha="center", va="center", zorder=4)
    ax.text(2.0, 0.25, "∂z/∂μ, ∂z/∂σ: undefined for a fresh random draw,\nso the backward pass stops at z",
            color="tab:red", fontsize=9, ha="center", va="center")
    ax = axes[1]
    ax.set_title("reparameterized: z = μ + σ·ε, .rsample()", fontsize=10)
    m, s = _graph_node(ax, pm, "μ", "param"), _graph_node(ax, ps, "σ", "param")
    e = _graph_node(ax, (1.9, 2.8), "ε ~ N(0, 1)", "noise")
    z, f = _graph_node(ax, pz, "z = μ + σ·ε", "det"), _graph_node(ax, pf, "L = f(z)", "det")
    for node in (m, s):
        _graph_edge(ax, node, z)
    _graph_edge(ax, e, z, "grey")
    _graph_edge(ax, z, f)
    _graph_backward(ax, (3.3, 1.15), (2.5, 1.15), "tab:green", "∂L/∂z", (0, -0.17))
    _graph_backward(ax, (1.59, 1.86), (0.74, 2.3), "tab:green", "∂z/∂μ = 1", (0.15, 0.2))
    _graph_backward(ax, (1.59, 1.14), (0.74, 0.7), "tab:green", "∂z/∂σ = ε", (0.15, -0.2))
    ax.text(1.9, 0.25, "ε is an input, like the data: no gradient needed", color="grey", fontsize=9,
            ha="center", va="center")
    return fig


def plot_gradient_variance(rows: Sequence[Dict[str, float]], true_value: Optional[float] = None,
                           per_sample_var: Optional[Dict[str, float]] = None) -> Figure:
    """Left: variance of the two gradient estimators against the number of samples ``n`` (log-log);
    right: their means ± one standard deviation across trials, with the true gradient.

    Args:
        rows: :func:`vae_lib.gradient_variance_table` output, one dict per ``n`` with ``reparam_mean``,
            ``reparam_var``, ``score_mean``, ``score_var`` (units of the gradient, squared for variances).
        true_value: the exact gradient, drawn as a horizontal line on the right.
        per_sample_var: optional exact one-sample variances ``{"reparam": v1, "score": v2}``; drawn
            as the dotted lines ``v/n`` on the left.
    """
    n = np.array([r["n"] for r in rows], dtype=float)
    fig = new_figure((9.0, 3.6))
    left, right = fig.subplots(1, 2)
    styles = {"reparam": ("tab:blue", "o", "reparameterization"), "score": ("tab:red", "s", "score function")}
    for key, (color, marker, name) in styles.items():
        var = np.array([r[f"{key}_var"] for r in rows])
        mean = np.array([r[f"{key}_mean"] for r in rows])
        left.loglog(n, var, marker=marker, color=color, label=name)
        if per_sample_var is not None and key in per_sample_var:
            left.loglog(n, per_sample_var[key] / n, ":", color=color, lw=1)
        shift = 1.06 if key == "score" else 1 / 1.06  # side by side, not on top of each other
        right.errorbar(n * shift, mean, yerr=np.sqrt(var), fmt=marker, color=color, capsize=3, ms=4, label=name)
    left.set_xlabel("samples per estimate, n")
    left.set_ylabel("variance of the estimate")
    left.set_title("variance falls like 1/n for both" + (" (dotted: exact)" if per_sample_var else ""),
                   fontsize=10)
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    right.set_xscale("log")
    if true_value is not None:
        right.axhline(true_value, color="black", lw=1, ls="--", label="true gradient")
    right.set_xlabel("samples per estimate, n")
    right.set_ylabel("estimate: mean ± 1 std")
    right.set_title("both are centred on the true gradient", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return fig


# --- used by chapter 2 (the posterior vs the prior)


def _prior_background(ax: Axes, extent: float) -> None:
    """Shade the density of the standard prior ``N(0, I)`` over ``[-extent, extent]²`` and
    draw its 1σ, 2σ and 3σ circles (radii 1, 2, 3)."""
    g = np.linspace(-extent, extent, 201)
    zz1, zz2 = np.meshgrid(g, g)
    dens = np.exp(-0.5 * (zz1 ** 2 + zz2 ** 2)) / (2 * np.pi)  # N(z; 0, I) in 2-D
    ax.contourf(zz1, zz2, dens, levels=12, cmap="Greys", alpha=0.35, zorder=0)
    t = np.linspace(0, 2 * np.pi, 200)
    for r in (1, 2, 3):
        ax.plot(r * np.cos(t), r * np.sin(t), ls="--", lw=0.9, color="0.35", zorder=1)
        ax.annotate(f"{r}σ", (r / np.sqrt(2), -r / np.sqrt(2)), fontsize=7, color="0.3",
                    xytext=(2, -8), textcoords="offset points")


@torch.no_grad()
def plot_posteriors_over_prior(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, highlight: int = 6,
                               n_std: float = 2.0, extent: float = 3.5, marginal: bool = True) -> Figure:
    """Posteriors ``q(z|x)`` of a 2-D latent VAE drawn over the prior ``p(z) = N(0, I)``.

    Left: the prior's density (grey shading, dashed 1σ/2σ/3σ circles), every input's posterior
    mean ``μ(x)`` (dots, coloured by label ``y``) and, for ``highlight`` inputs, the ``n_std``-σ
    ellipse of ``q(z|x)`` with the input image beside it. Right (``marginal=True``): along ``z_1``,
    the prior density ``p(z_1)``, the highlighted posteriors ``q(z_1|x)`` and their average over
    all of ``x``, the aggregate posterior ``q(z_1) = 1/N Σ_n q(z_1|x_n)``.

    Args:
        model: a VAE with ``latent_dim == 2`` (only dimensions 0 and 1 are drawn otherwise).
        x: ``[N, C, H, W]`` inputs in ``[0, 1]``; ``y``: optional ``[N]`` labels.
        highlight: how many inputs get an ellipse and a thumbnail (spread evenly over ``x``).
        extent: half-width of the plotted square, in prior standard deviations.
    """
    from matplotlib import colormaps
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    fig = new_figure((10.0, 4.4) if marginal else (5.6, 4.6))
    ax = fig.add_subplot(1, 2, 1) if marginal else fig.add_subplot()
    _prior_background(ax, extent)
    plot_latent_scatter(model, x, y, ellipses=0, ax=ax)
    mu, logvar = _encode_means(model, x)
    std = torch.exp(0.5 * logvar)
    if y is not None and highlight > 0:  # one input per label, labels spread over those present
        labels = torch.unique(y.cpu())
        picks = labels[torch.linspace(0, len(labels) - 1, min(highlight, len(labels))).round().long()]
        idx = torch.stack([(y.cpu() == lab).nonzero()[0, 0] for lab in picks])
    else:
        idx = torch.linspace(0, x.shape[0] - 1, highlight).round().long() if highlight > 0 else torch.zeros(0).long()
    cmap = colormaps[CMAP]
    colors = [cmap(int(y[k]) % 10) if y is not None else cmap(n % 10) for n, k in enumerate(idx.tolist())]
    for c, k in zip(colors, idx.tolist()):
        m1, m2 = float(mu[k, 0]), float(mu[k, 1])
        ax.add_patch(Ellipse((m1, m2), 2 * n_std * float(std[k, 0]), 2 * n_std * float(std[k, 1]),
                             fill=True, fc=(*c[:3], 0.25), ec=c, lw=1.8, zorder=3))
        img = OffsetImage(x[k, 0].detach().cpu().numpy(), cmap="gray_r", zoom=0.9)
        r = math.hypot(m1, m2) or 1.0
        away = (34 * m1 / r, 34 * m2 / r) if math.hypot(m1, m2) > 1e-6 else (0.0, 34.0)  # thumbnail points outward
        ab = AnnotationBbox(img, (m1, m2), xybox=away, boxcoords="offset points", frameon=True,
                            bboxprops=dict(ec=c, lw=1.5), arrowprops=dict(arrowstyle="-", color=c, lw=1),
                            pad=0.1, zorder=4)
        ax.add_artist(ab)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(f"prior N(0, I) (grey) and posteriors q(z|x) ({n_std:g}σ ellipses)", fontsize=10)
    if marginal:
        ax2 = fig.add_subplot(1, 2, 2)
        g = torch.linspace(-extent, extent, 400)
        prior = torch.exp(-0.5 * g ** 2) / math.sqrt(2 * math.pi)  # p(z_1) = N(0, 1)
        dens = torch.exp(-0.5 * ((g[None] - mu[:, :1]) / std[:, :1]) ** 2) / (std[:, :1] * math.sqrt(2 * math.pi))
        aggregate = dens.mean(0)  # q(z_1) = 1/N Σ_n q(z_1|x_n), [G]
        ax2.fill_between(g.numpy(), aggregate.numpy(), color="tab:gray", alpha=0.35,
                         label="average of all q(z₁|x): aggregate")
        scale = float(prior.max()) / float(dens[idx].max()) if len(idx) else 1.0
        for c, k in zip(colors, idx.tolist()):
            ax2.plot(g.numpy(), (dens[k] * scale).numpy(), color=c, lw=1.4)
        if len(idx):
            ax2.plot([], [], color=colors[0], lw=1.4, label=f"q(z₁|x) of the {len(idx)} inputs (scaled ×{scale:.2f})")
        ax2.plot(g.numpy(), prior.numpy(), "k--", lw=2, label="prior p(z₁) = N(0, 1)")
        ax2.set_xlabel("$z_1$")
        ax2.set_ylabel("density")
        ax2.set_xlim(-extent, extent)
        ax2.set_title("along $z_1$: narrow posteriors, one wide prior", fontsize=10)
        ax2.legend(fontsize=7, loc="upper left")
        ax2.grid(alpha=0.3)
    return fig


def plot_kl_landscape(mu: Optional[torch.Tensor] = None, logvar: Optional[torch.Tensor] = None,
                      mu_max: float = 3.0, sigma_max: float = 2.0) -> Figure:
    """The per-dimension ``KL(N(μ, σ²) || N(0, 1)) = ½(μ² + σ² − 1 − log σ²)`` in nats, as a
    contour map over ``μ ∈ [−mu_max, mu_max]`` and ``σ ∈ (0, sigma_max]``; the minimum (0 nats)
    sits at ``μ = 0, σ = 1``. Optionally overlays posteriors: ``mu``, ``logvar`` ``[N, D]``, one
    dot per input and dimension."""
    fig = new_figure((5.6, 4.0))
    ax = fig.add_subplot()
    if mu is not None:  # widen the map so every overlaid posterior mean is inside it
        mu_max = max(mu_max, float(mu.detach().abs().max()) * 1.05)
    m = np.linspace(-mu_max, mu_max, 241)
    s = np.linspace(0.02, sigma_max, 241)
    mm, ss = np.meshgrid(m, s)
    kl = 0.5 * (mm ** 2 + ss ** 2 - 1 - np.log(ss ** 2))  # ½(μ² + σ² − 1 − log σ²)
    levels = [0.05, 0.25, 0.5, 1, 2, 3, 4]
    cf = ax.contourf(mm, ss, kl, levels=[0, *levels], cmap="viridis_r", alpha=0.85, extend="max")
    cs = ax.contour(mm, ss, kl, levels=levels, colors="k", linewidths=0.6)
    ax.clabel(cs, fmt="%g", fontsize=7)
    fig.colorbar(cf, ax=ax, label="KL per dimension [nats]")
    if mu is not None and logvar is not None:
        sd = torch.exp(0.5 * logvar.detach().float().cpu()).flatten().numpy()
        ax.scatter(mu.detach().float().cpu().flatten().numpy(), sd, s=3, c="tab:red", alpha=0.5,
                   label="trained encoder: (μ, σ) per input and dim")
        ax.legend(fontsize=7, loc="upper right")
    ax.plot([0], [1], marker="*", ms=12, color="white", mec="k", label="prior: μ = 0, σ = 1")
    ax.set_xlabel("posterior mean μ")
    ax.set_ylabel("posterior std σ")
    ax.set_ylim(0, sigma_max)
    ax.set_title("KL(N(μ, σ²) || N(0, 1)): zero only at the prior ★", fontsize=10)
    return fig


def plot_mc_convergence(ns: Sequence[int], estimates: torch.Tensor, exact: float,
                        title: str = "Monte Carlo KL estimate") -> Figure:
    """How a Monte Carlo estimate approaches a closed-form value as the sample count grows.

    Args:
        ns: ``[M]`` sample counts ``n`` (increasing).
        estimates: ``[M, T]`` the estimate with ``ns[i]`` samples, for ``T`` independent trials (nats).
        exact: the closed-form value (nats).

    Left: every trial's estimate against ``n`` (log axis), with the exact value and the
    ±1 std band. Right: root-mean-square error against ``n`` on log–log axes with a
    ``c/√n`` reference line (slope −½).
    """
    ns_a = np.asarray(list(ns), dtype=float)
    est = estimates.detach().double().cpu().numpy()
    fig = new_figure((10.0, 3.8))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for t in range(min(est.shape[1], 30)):
        left.plot(ns_a, est[:, t], color="tab:blue", alpha=0.15, lw=0.8)
    mean, sd = est.mean(1), est.std(1)
    left.fill_between(ns_a, mean - sd, mean + sd, color="tab:blue", alpha=0.2, label="mean ± 1 std over trials")
    left.axhline(exact, color="k", ls="--", lw=1.5, label=f"closed form = {exact:.4f} nats")
    left.set_xscale("log")
    left.set_xlabel("number of samples n")
    left.set_ylabel("estimate of KL [nats]")
    left.set_title(title, fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    rmse = np.sqrt(((est - exact) ** 2).mean(1))
    right.loglog(ns_a, rmse, "o-", color="tab:blue", label="RMS error over trials")
    right.loglog(ns_a, rmse[0] * np.sqrt(ns_a[0] / ns_a), "k--", lw=1, label="c / √n (slope −½)")
    right.set_xlabel("number of samples n")
    right.set_ylabel("RMS error [nats]")
    right.set_title("error shrinks like 1/√n", fontsize=10)
    right.legend(fontsize=8)
    right.grid(alpha=0.3, which="both")
    return fig


def plot_elbo_vs_iwae(elbo: torch.Tensor, iwae: torch.Tensor, k: Optional[int] = None) -> Figure:
    """Per-image ELBO against an importance-weighted bound (both ``[B]``, nats per image):
    points above the diagonal are images where the IWAE estimate of ``log p(x)`` is higher,
    i.e. where the ELBO is the looser bound. Right: histogram of the gap ``IWAE − ELBO``."""
    e = elbo.detach().double().cpu().numpy()
    w = iwae.detach().double().cpu().numpy()
    fig = new_figure((9.0, 3.8))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    lab = f"IWAE, k = {k}" if k is not None else "IWAE"
    left.scatter(e, w, s=10, alpha=0.7, color="tab:purple")
    lo, hi = float(min(e.min(), w.min())), float(max(e.max(), w.max()))
    left.plot([lo, hi], [lo, hi], "k--", lw=1, label="IWAE = ELBO")
    left.set_xlabel("ELBO [nats/image]")
    left.set_ylabel(f"{lab} [nats/image]")
    left.set_title("one point per image: above the diagonal = ELBO lower", fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    gap = w - e
    right.hist(gap, bins=20, color="tab:purple", alpha=0.8)
    right.axvline(0, color="k", ls="--", lw=1)
    right.set_xlabel(f"{lab} − ELBO [nats/image]")
    right.set_ylabel("images")
    right.set_title(f"gap: mean {gap.mean():.2f} nats, {int((gap > 0).sum())}/{gap.size} positive", fontsize=10)
    right.grid(alpha=0.3)
    return fig


# --- used by chapter 1 (probabilistic latent variables)
def _latent_background(ax: Axes, model, background: Optional[torch.Tensor], background_y: Optional[torch.Tensor],
                       dims: Tuple[int, int]) -> None:
    """Faint scatter of the latent means of ``background: [N, C, H, W]`` images (coloured by ``background_y``)."""
    if background is None:
        return
    mu, _ = _encode_means(model, background)
    c = background_y.cpu().numpy() if background_y is not None else "0.6"
    ax.scatter(mu[:, dims[0]].numpy(), mu[:, dims[1]].numpy(), c=c, cmap=CMAP, vmin=-0.5, vmax=9.5, s=4,
               alpha=0.25, zorder=1)


def _framed(ax: Axes) -> Axes:
    """A thin grey frame around an image drawn by :func:`show_images` (white digits on white need it)."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.6")
    return ax


@torch.no_grad()
def plot_encode_sample_decode(model, x: torch.Tensor, n_samples: int = 4, seed: int = 0, n_std: float = 2.0,
                              zoom: float = 4.0, dims: Tuple[int, int] = (0, 1),
                              background: Optional[torch.Tensor] = None,
                              background_y: Optional[torch.Tensor] = None) -> Figure:
    """The VAE's forward pass drawn with real numbers, for ONE input ``x[:1]: [1, C, H, W]``.

    Left: the input. Middle: the encoder's output in the latent plane ``dims``: the mean
    ``μ(x)`` (black dot), the ``n_std``-σ ellipse of ``q(z|x) = N(μ(x), diag σ²(x))`` and
    ``n_samples`` draws ``z_k ~ q(z|x)`` (numbered crosses); the view spans
    ``μ ± zoom·max(σ)``, with the means of ``background`` images (``[N, C, H, W]``,
    optional, coloured by ``background_y``) for context. Right: each ``z_k`` decoded,
    titled with its reconstruction error ``−log p(x|z_k)`` in nats per image.
    """
    dev = model_device(model)
    x = x[:1].to(dev)
    mu, logvar = model.encode(x)  # [1, D] each
    std = torch.exp(0.5 * logvar)  # σ = exp(½ log σ²)
    g = torch.Generator(device=dev).manual_seed(seed)
    z = mu + std * torch.randn(n_samples, mu.shape[1], generator=g, device=dev)  # z_k = μ + σ ⊙ ε_k, [K, D]
    out = model.decode(z)  # [K, C, H, W]
    nll = (-model.log_likelihood(out, x)).cpu()  # −log p(x|z_k), [K] nats
    imgs = model.mean_image(out).cpu()
    i, j = dims
    m, s, zc = mu[0].cpu(), std[0].cpu(), z.cpu()

    fig = new_figure((7.6, max(3.2, 1.0 * n_samples)))
    gs = fig.add_gridspec(n_samples, 3, width_ratios=[1.0, 2.4, 1.0])
    _framed(show_images(fig.add_subplot(gs[:, 0]), x.cpu(), nrow=1, title="input x"))
    ax = fig.add_subplot(gs[:, 1])
    half = zoom * float(max(s[i], s[j]))
    _latent_background(ax, model, background, background_y, dims)
    ax.add_patch(Ellipse((float(m[i]), float(m[j])), 2 * n_std * float(s[i]), 2 * n_std * float(s[j]),
                         fill=True, fc="tab:blue", alpha=0.15, ec="tab:blue", lw=1.5, zorder=2))
    ax.plot([float(m[i])], [float(m[j])], "ko", ms=6, zorder=3)
    ax.annotate("μ(x)", (float(m[i]), float(m[j])), textcoords="offset points", xytext=(6, -12), fontsize=9)
    for k in range(n_samples):
        ax.plot([float(zc[k, i])], [float(zc[k, j])], "x", color="tab:red", ms=8, mew=2, zorder=4)
        ax.annotate(f"$z_{k + 1}$", (float(zc[k, i]), float(zc[k, j])), textcoords="offset points",
                    xytext=(5, 4), fontsize=9, color="tab:red")
    ax.set_xlim(float(m[i]) - half, float(m[i]) + half)
    ax.set_ylim(float(m[j]) - half, float(m[j]) + half)
    ax.set_aspect("equal")
    ax.set_xlabel(f"$z_{{{i + 1}}}$")
    ax.set_ylabel(f"$z_{{{j + 1}}}$")
    ax.set_title(f"encoder: μ = ({float(m[i]):.2f}, {float(m[j]):.2f}), σ = ({float(s[i]):.3f}, "
                 f"{float(s[j]):.3f})\nshaded: {n_std:g}σ region of q(z|x); ×: samples", fontsize=9)
    ax.grid(alpha=0.3)
    for k in range(n_samples):
        _framed(show_images(fig.add_subplot(gs[k, 2]), imgs[k:k + 1], nrow=1,
                            title=f"decode($z_{k + 1}$): {float(nll[k]):.0f} nats"))
    return fig


@torch.no_grad()
def plot_posterior_width(model, x_a: torch.Tensor, x_b: torch.Tensor,
                         labels: Tuple[str, str] = ("input", "altered input"), n_std: float = 2.0,
                         dims: Tuple[int, int] = (0, 1), background: Optional[torch.Tensor] = None,
                         background_y: Optional[torch.Tensor] = None) -> Figure:
    """Posterior ellipses of paired inputs: how ``q(z|x)`` widens when the input is less clear.

    ``x_a, x_b: [K, C, H, W]`` are K pairs (e.g. a digit and the same digit half erased).
    Left: the images, ``x_a`` on the top row and ``x_b`` below. Right: in the latent plane
    ``dims``, the ``n_std``-σ ellipse of ``q(z|x_a)`` (solid blue) and of ``q(z|x_b)``
    (dashed red) for each pair, numbered, joined by a grey line, over the faint means of
    ``background`` images (optional, coloured by ``background_y``). The title gives the
    median over the pairs of the geometric-mean σ, ``(∏_d σ_d)^{1/D}``, for each row.
    """
    dev = model_device(model)
    x_a, x_b = x_a.to(dev), x_b.to(dev)
    (mu_a, lv_a), (mu_b, lv_b) = model.encode(x_a), model.encode(x_b)  # [K, D] each
    sd_a, sd_b = torch.exp(0.5 * lv_a).cpu(), torch.exp(0.5 * lv_b).cpu()  # σ, [K, D]
    mu_a, mu_b = mu_a.cpu(), mu_b.cpu()
    gm_a = sd_a.log().mean(-1).exp().median().item()  # median geometric-mean σ
    gm_b = sd_b.log().mean(-1).exp().median().item()
    k_pairs = x_a.shape[0]
    i, j = dims

    fig = new_figure((9.0, 4.8))
    gs = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.35])
    left = fig.add_subplot(gs[0, 0])
    show_images(left, torch.cat([x_a, x_b]).cpu(), nrow=k_pairs)
    left.set_title(f"pairs 1–{k_pairs}, left to right\ntop: {labels[0]}\nbottom: {labels[1]}", fontsize=9)
    ax = fig.add_subplot(gs[0, 1])
    _latent_background(ax, model, background, background_y, dims)
    for k in range(k_pairs):
        a, b = (float(mu_a[k, i]), float(mu_a[k, j])), (float(mu_b[k, i]), float(mu_b[k, j]))
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.5", lw=0.8, zorder=2)
        ax.add_patch(Ellipse(a, 2 * n_std * float(sd_a[k, i]), 2 * n_std * float(sd_a[k, j]), fill=False,
                             ec="tab:blue", lw=1.6, zorder=3))
        ax.add_patch(Ellipse(b, 2 * n_std * float(sd_b[k, i]), 2 * n_std * float(sd_b[k, j]), fill=False,
                             ec="tab:red", lw=1.6, ls="--", zorder=3))
        ax.annotate(str(k + 1), a, textcoords="offset points", xytext=(4, 4), fontsize=8, color="tab:blue")
        ax.annotate(str(k + 1), b, textcoords="offset points", xytext=(4, 4), fontsize=8, color="tab:red")
    ax.plot([], [], color="tab:blue", lw=1.6, label=f"{labels[0]}: median σ {gm_a:.3f}")
    ax.plot([], [], color="tab:red", lw=1.6, ls="--", label=f"{labels[1]}: median σ {gm_b:.3f}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    mus, sds = torch.cat([mu_a, mu_b])[:, [i, j]], torch.cat([sd_a, sd_b])[:, [i, j]]
    lo, hi = (mus - n_std * sds).min(0).values, (mus + n_std * sds).max(0).values  # ellipses' bounding box
    centre, half = (lo + hi) / 2, 0.6 * float((hi - lo).max())  # square view, 20 % margin
    ax.set_xlim(float(centre[0]) - half, float(centre[0]) + half)
    ax.set_ylim(float(centre[1]) - half, float(centre[1]) + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"$z_{{{i + 1}}}$")
    ax.set_ylabel(f"$z_{{{j + 1}}}$")
    ax.set_title(f"{n_std:g}σ ellipses of q(z|x): σ grows ×{gm_b / gm_a:.1f}", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


# --- used by the appendix (evaluating a VAE honestly)
def plot_pixel_nats(per_pixel: torch.Tensor, title: str = "where the reconstruction nats go") -> Figure:
    """How ``−log p(x|z)`` splits over pixels and over images.

    Args:
        per_pixel: ``[N, C, H, W]`` nats, one value per pixel of each image (e.g. the
            unreduced binary cross-entropy of Bernoulli logits against binary targets).

    Left: the mean over the ``N`` images as a heat map (nats per pixel). Right: histogram
    of the per-image totals ``Σ_pixels`` (nats per image), with their mean marked: results
    are reported per image, not per pixel.
    """
    nats = per_pixel.detach().double().cpu()
    n, c, h, w = nats.shape
    mean_map = nats.mean(dim=(0, 1)).numpy()  # [H, W] nats per pixel
    totals = nats.flatten(start_dim=1).sum(dim=1).numpy()  # [N] nats per image
    fig = new_figure((9.0, 3.6))
    gs = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.3])
    left, right = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    im = left.imshow(mean_map, cmap="magma", interpolation="nearest")
    left.set_axis_off()
    fig.colorbar(im, ax=left, shrink=0.85, label="nats per pixel")
    left.set_title(f"mean over {n} images: {mean_map.mean():.3f} nats/pixel", fontsize=10)
    right.hist(totals, bins=30, color="tab:purple", alpha=0.8)
    right.axvline(float(totals.mean()), color="k", ls="--", lw=1.5,
                  label=f"mean = {totals.mean():.1f} nats/image (= {c * h * w} × {totals.mean() / (c * h * w):.3f})")
    right.set_xlabel("−log p(x|z) per image [nats]")
    right.set_ylabel("images")
    right.set_ylim(top=right.get_ylim()[1] * 1.18)  # headroom for the legend
    right.set_title(title, fontsize=10)
    right.legend(fontsize=8, loc="upper right")
    right.grid(alpha=0.3)
    return fig


def plot_history_comparison(histories: Dict[str, object], keys: Sequence[str] = ("train_loss", "val_loss"),
                            title: str = "training runs compared", zoom_from: Optional[int] = None) -> Figure:
    """Overlay per-epoch curves of several runs (nats per image).

    Args:
        histories: ``{run name: History}``, one colour per run.
        keys: the :class:`vae_lib.History` fields to draw, one line style per key
            (solid, dashed, dotted, ...).
        zoom_from: if given, a second panel repeats the curves from this epoch (1-based)
            on, with its own y-range, so late differences between runs are visible.
    """
    from matplotlib.ticker import MaxNLocator

    styles = ["-", "--", ":", "-."]
    fig = new_figure((10.0, 3.8) if zoom_from else (6.0, 3.8))
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)] if zoom_from else [fig.add_subplot()]
    for a, ax in enumerate(axes):
        start = 1 if a == 0 else int(zoom_from)
        for r, (name, hist) in enumerate(histories.items()):
            for s, key in enumerate(keys):
                vals = hist[key]
                if not vals:
                    continue
                ax.plot(range(start, len(vals) + 1), vals[start - 1:], ls=styles[s % len(styles)], color=f"C{r}",
                        lw=1.6, marker="o" if a else None, ms=3, label=f"{name}: {key} (last {vals[-1]:.1f})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("−ELBO [nats/image]")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_title(title, fontsize=10)
    axes[-1].legend(fontsize=8)
    if zoom_from:
        axes[1].set_title(f"zoom: epochs {int(zoom_from)} and later", fontsize=10)
    return fig


def plot_bound_vs_k(ks: Sequence[int], neg_iwae: torch.Tensor, neg_elbo: torch.Tensor) -> Figure:
    """The importance-weighted bound tightening with the number of samples ``k``.

    Args:
        ks: ``[M]`` sample counts, increasing (e.g. ``(1, 10, 100, 1000)``).
        neg_iwae: ``[M, B]`` ``−IWAE_k`` for each ``k`` and each of ``B`` images (nats per image).
        neg_elbo: ``[B]`` ``−ELBO`` of the same images (nats per image).

    Left: the mean over images against ``k`` (log axis), with the ``−ELBO`` line; lower
    is a tighter estimate of ``−log p(x)``. Right: per image, the gap
    ``−ELBO − (−IWAE_k)`` in nats, one box per ``k`` (median, quartiles, 5–95 % whiskers).
    """
    ks_a = [int(k) for k in ks]
    iw = neg_iwae.detach().double().cpu().numpy()
    el = neg_elbo.detach().double().cpu().numpy()
    means = iw.mean(axis=1)
    fig = new_figure((10.0, 3.8))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot(ks_a, means, "o-", color="tab:purple", label="−IWAE$_k$ (mean over images)")
    for k, m in zip(ks_a, means):
        left.annotate(f"{m:.2f}", (k, m), textcoords="offset points", xytext=(4, 6), fontsize=8)
    left.axhline(float(el.mean()), color="k", ls="--", lw=1.2, label=f"−ELBO = {el.mean():.2f}")
    left.set_xscale("log")
    left.set_xlabel("importance samples k")
    left.set_ylabel("nats per image")
    left.set_title("the bound tightens as k grows", fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3, which="both")
    gaps = [el - iw[m] for m in range(len(ks_a))]
    right.boxplot(gaps, whis=(5, 95), showfliers=False)
    right.set_xticks(range(1, len(ks_a) + 1), [f"k = {k}" for k in ks_a])
    right.axhline(0.0, color="k", ls="--", lw=1)
    right.set_ylabel("−ELBO − (−IWAE$_k$) [nats/image]")
    right.set_title(f"per-image gap; mean at k = {ks_a[-1]}: {gaps[-1].mean():.2f} nats", fontsize=10)
    right.grid(alpha=0.3, axis="y")
    return fig


# --- used by chapter 5: the aggregate posterior against the prior, per-unit KL, sample grids side by side
def plot_aggregate_posterior(models, x: torch.Tensor, y: Optional[torch.Tensor] = None, extent: float = 4.0,
                             n_grid: int = 101, n_points: int = 1500, seed: int = 0) -> Figure:
    """Where the data's codes go, against where the prior puts its mass (2-D latent models only).

    One row per model (``models``: one model, or a ``{name: model}`` dict). Left: one draw
    ``z ~ q(z|x_n)`` for (at most ``n_points`` of) the inputs ``x: [N, C, H, W]``, coloured by the
    labels ``y: [N]``, over the contours of the prior ``p(z)``. Right: the aggregate posterior
    ``q(z) = 1/N Σ_n q(z|x_n)`` as a density image on an ``n_grid × n_grid`` grid over
    ``[-extent, extent]²``, with the same prior contours: prior mass where ``q`` is pale is a hole.
    Contours are drawn at the prior density of its 1σ, 2σ and 3σ circles (their levels for ``N(0, I)``).
    """
    from .metrics import _log_aggregate, posterior_stats

    if not isinstance(models, dict):
        models = {"": models}
    fig = new_figure((8.6, 3.9 * len(models)))
    axes = fig.subplots(len(models), 2, squeeze=False)
    g = torch.linspace(-extent, extent, n_grid)
    zz = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)  # [G², 2], rows: z2, cols: z1
    levels = [math.exp(-0.5 * r * r) / (2 * math.pi) for r in (3.0, 2.0, 1.0)]  # N(0, I) density at r = 3σ, 2σ, 1σ
    for row, (name, model) in zip(axes, models.items()):
        if model.latent_dim != 2:
            raise ValueError(f"plot_aggregate_posterior needs latent_dim=2, got {model.latent_dim}")
        dev = model_device(model)
        with torch.no_grad():
            mu, logvar = posterior_stats(model, x)  # [N, 2] each
            gen = torch.Generator(device=dev).manual_seed(seed)
            idx = torch.randperm(mu.shape[0], generator=gen, device=dev)[:n_points]
            z = mu[idx] + torch.exp(0.5 * logvar[idx]) * torch.randn(idx.shape[0], 2, generator=gen, device=dev)
            log_p = model.prior_log_prob(zz.to(dev)).cpu().reshape(n_grid, n_grid)  # log p(z) on the grid
            log_q = _log_aggregate(zz.to(dev), mu, logvar).cpu().reshape(n_grid, n_grid)  # log q(z) on the grid
        p, q = log_p.exp().numpy(), log_q.exp().numpy()
        box = (-extent, extent, -extent, extent)
        ax = row[0]
        c = y[idx.cpu()].cpu().numpy() if y is not None else "tab:blue"
        sc = ax.scatter(z[:, 0].cpu().numpy(), z[:, 1].cpu().numpy(), c=c, cmap=CMAP, s=3, alpha=0.5,
                        vmin=-0.5, vmax=9.5)
        ax.contour(g.numpy(), g.numpy(), p, levels=levels, colors="black", linewidths=1.0)
        ax.set_title(f"{name + ': ' if name else ''}codes z ~ q(z|x), contours of p(z)", fontsize=9)
        ax2 = row[1]
        im = ax2.imshow(q, origin="lower", extent=box, cmap="magma", vmin=0, vmax=max(float(q.max()), float(p.max())))
        ax2.contour(g.numpy(), g.numpy(), p, levels=levels, colors="white", linewidths=1.0)
        ax2.set_title(f"{name + ': ' if name else ''}density of q(z), contours of p(z)", fontsize=9)
        fig.colorbar(im, ax=ax2, label="density")
        if y is not None:
            fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
        for a in row:
            a.set_xlim(-extent, extent)
            a.set_ylim(-extent, extent)
            a.set_aspect("equal")
            a.set_xlabel("$z_1$")
            a.set_ylabel("$z_2$")
    return fig


def plot_kl_per_dim(kls: Dict[str, torch.Tensor], sort: bool = True, threshold: Optional[float] = None,
                    title: str = "KL per latent unit") -> Figure:
    """Bar chart of each latent unit's KL (nats per image), one colour per model.

    ``kls``: ``{name: [D] tensor}``, e.g. ``model.elbo(x).kl_per_dim.mean(0)``. With ``sort`` the
    units of each model are ranked from most to least KL (the x axis is then a rank, not a unit
    index). ``threshold`` (nats) draws a dashed line, e.g. the free-bits floor.
    """
    fig = new_figure((7.0, 3.2))
    ax = fig.add_subplot()
    k = len(kls)
    width = 0.8 / max(k, 1)
    for i, (name, kl) in enumerate(kls.items()):
        v = kl.detach().float().cpu()
        v = v.sort(descending=True).values if sort else v
        pos = np.arange(v.shape[0]) + (i - (k - 1) / 2) * width
        ax.bar(pos, v.numpy(), width=width, label=name, color=f"C{i}")
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"{threshold:g} nats")
    ax.set_xlabel("latent unit" + (" (ranked by KL)" if sort else ""))
    ax.set_ylabel("KL(q(z_u|x) || p(z_u))  [nats/image]")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def plot_image_grids(grids: Dict[str, torch.Tensor], nrow: int = 8, scale: float = 0.4) -> Figure:
    """Several image grids side by side, one titled panel per entry of ``grids`` (``{name: [N, C, H, W]}``
    in ``[0, 1]``), e.g. prior samples of several models. ``scale``: inches per image."""
    n = max(v.shape[0] for v in grids.values())
    rows = math.ceil(n / nrow)
    fig = new_figure((len(grids) * nrow * scale + 0.3, rows * scale + 0.4))
    for ax, (name, imgs) in zip(fig.subplots(1, len(grids), squeeze=False)[0], grids.items()):
        show_images(ax, imgs, nrow, name)
    return fig


# --- used by chapter 4: reconstructions and prior samples across a β sweep
@torch.no_grad()
def plot_beta_grid(points: Sequence, x: torch.Tensor, n: int = 8, seed: int = 0) -> Figure:
    """One row per model of a β sweep: reconstructions of ``x`` (left) and prior samples (right).

    Args:
        points: :class:`vae_lib.SweepPoint` objects (each has ``.beta`` and a trained ``.model``),
            drawn in the order given.
        x: ``[N, C, H, W]`` inputs in ``[0, 1]``; the first ``n`` are shown in the top row and
            reconstructed from their posterior means ``μ(x)`` by every model.
        n: images per row (inputs, reconstructions and samples alike).
        seed: seed of the ``z ~ p(z)`` draws, the same for every model.

    Returns:
        A ``Figure`` with ``len(points) + 1`` rows and two columns of image strips.
    """
    rows = len(points) + 1
    fig = new_figure((2 * n * 0.5 + 1.0, rows * 0.62 + 0.5))
    axes = fig.subplots(rows, 2)
    x = x[:n]
    show_images(axes[0, 0], x, nrow=n, title="inputs (top row) and their reconstructions from μ(x)")
    axes[0, 0].text(-0.03, 0.5, "input", transform=axes[0, 0].transAxes, ha="right", va="center", fontsize=9)
    axes[0, 1].set_axis_off()
    axes[0, 1].text(0.5, 0.1, "samples: z ~ p(z), decoded", transform=axes[0, 1].transAxes,
                    ha="center", va="bottom", fontsize=10)
    for row, p in enumerate(points, start=1):
        model = p.model
        dev = model_device(model)
        g = torch.Generator(device=dev).manual_seed(seed)  # the same draws for every β
        show_images(axes[row, 0], model.reconstruct(x.to(dev)), nrow=n)
        show_images(axes[row, 1], model.sample(n, generator=g), nrow=n)
        axes[row, 0].text(-0.03, 0.5, f"β = {p.beta:g}", transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=9)
    return fig
