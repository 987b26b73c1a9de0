"""Figures of posteriors ``q(z|x)``: inputs' posteriors over the prior, one input's
encode–sample–decode pass, how a posterior widens for an unclear input, and the aggregate
posterior ``q(z) = 1/N Σ_n q(z|x_n)`` against the prior. Every one needs a VAE (a model with a
posterior variance); the codes come from :func:`vae_lib.posterior_stats`.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import new_figure, show_images
from .primitives import add_posterior_ellipses, class_colormap, class_scatter, latent_axes
from ..device import model_device
from ..losses import reparameterize
from ..metrics import embed, log_aggregate_posterior, posterior_stats

__all__ = ["plot_posteriors_over_prior", "plot_encode_sample_decode", "plot_posterior_width", "plot_aggregate_posterior"]


def _vae_stats(model, x: torch.Tensor, where: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)`` of ``q(z|x)``, ``[N, D]`` each on the model's device; a clear error for a model without a variance."""
    mu, logvar = posterior_stats(model, x)
    if logvar is None:
        raise TypeError(f"{where} draws q(z|x), so it needs a VAE; {type(model).__name__} has no posterior variance")
    return mu, logvar


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
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    fig = new_figure((10.0, 4.4) if marginal else (5.6, 4.6))
    ax = fig.add_subplot(1, 2, 1) if marginal else fig.add_subplot()
    _prior_background(ax, extent)
    mu, logvar = (t.cpu() for t in _vae_stats(model, x, "plot_posteriors_over_prior"))  # [N, D] each
    std = torch.exp(0.5 * logvar)  # σ = exp(½ log σ²), [N, D]
    sc = class_scatter(ax, mu[:, :2], y, colorbar=y is not None, s=4, alpha=0.6)
    if y is not None and highlight > 0:  # one input per label, labels spread over those present
        labels = torch.unique(y.cpu())
        picks = labels[torch.linspace(0, len(labels) - 1, min(highlight, len(labels))).round().long()]
        idx = torch.stack([(y.cpu() == lab).nonzero()[0, 0] for lab in picks])
    else:
        idx = torch.linspace(0, x.shape[0] - 1, highlight).round().long() if highlight > 0 else torch.zeros(0).long()
    # each highlighted input in its class's colour, or in colours of its own without labels
    cmap = sc.cmap if y is not None else class_colormap(max(1, len(idx)))
    colors = [cmap(int(y[k]) if y is not None else n) for n, k in enumerate(idx.tolist())]
    add_posterior_ellipses(ax, mu[idx], logvar[idx], (0, 1), n_std, colors=colors, face_alpha=0.25, lw=1.8, zorder=3)
    for c, k in zip(colors, idx.tolist()):
        m1, m2 = float(mu[k, 0]), float(mu[k, 1])
        img = OffsetImage(x[k, 0].detach().cpu().numpy(), cmap="gray_r", zoom=0.9)
        r = math.hypot(m1, m2) or 1.0
        away = (34 * m1 / r, 34 * m2 / r) if math.hypot(m1, m2) > 1e-6 else (0.0, 34.0)  # thumbnail points outward
        ab = AnnotationBbox(img, (m1, m2), xybox=away, boxcoords="offset points", frameon=True,
                            bboxprops=dict(ec=c, lw=1.5), arrowprops=dict(arrowstyle="-", color=c, lw=1),
                            pad=0.1, zorder=4)
        ax.add_artist(ab)
    latent_axes(ax, (0, 1), extent, title=f"prior N(0, I) (grey) and posteriors q(z|x) ({n_std:g}σ ellipses)")
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


def _latent_background(ax: Axes, model, background: Optional[torch.Tensor], background_y: Optional[torch.Tensor],
                       dims: Tuple[int, int]) -> None:
    """Faint scatter of the latent means of ``background: [N, C, H, W]`` images (coloured by ``background_y``)."""
    if background is None:
        return
    mu = embed(model, background).cpu()  # [N, D]
    class_scatter(ax, mu[:, list(dims)], background_y, color="0.6", s=4, alpha=0.25, zorder=1)


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
    if int(n_samples) < 1:
        raise ValueError(f"plot_encode_sample_decode needs n_samples >= 1 draws z ~ q(z|x), got {n_samples}")
    dev = model_device(model)
    x = x[:1].to(dev)
    mu, logvar = _vae_stats(model, x, "plot_encode_sample_decode")  # [1, D] each
    std = torch.exp(0.5 * logvar)  # σ = exp(½ log σ²)
    g = torch.Generator(device=dev).manual_seed(seed)
    z = reparameterize(mu[0], logvar[0], g, n_samples=n_samples)  # z_k = μ + σ ⊙ ε_k, [K, D]
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
    add_posterior_ellipses(ax, mu, logvar, dims, n_std, colors="tab:blue", face_alpha=0.15, lw=1.5, zorder=2)
    ax.plot([float(m[i])], [float(m[j])], "ko", ms=6, zorder=3)
    ax.annotate("μ(x)", (float(m[i]), float(m[j])), textcoords="offset points", xytext=(6, -12), fontsize=9)
    for k in range(n_samples):
        ax.plot([float(zc[k, i])], [float(zc[k, j])], "x", color="tab:red", ms=8, mew=2, zorder=4)
        ax.annotate(f"$z_{k + 1}$", (float(zc[k, i]), float(zc[k, j])), textcoords="offset points",
                    xytext=(5, 4), fontsize=9, color="tab:red")
    ax.set_xlim(float(m[i]) - half, float(m[i]) + half)
    ax.set_ylim(float(m[j]) - half, float(m[j]) + half)
    latent_axes(ax, dims)
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
    (mu_a, lv_a), (mu_b, lv_b) = (tuple(t.cpu() for t in _vae_stats(model, xs, "plot_posterior_width"))
                                  for xs in (x_a, x_b))  # [K, D] each
    sd_a, sd_b = torch.exp(0.5 * lv_a), torch.exp(0.5 * lv_b)  # σ, [K, D]
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
    add_posterior_ellipses(ax, mu_a, lv_a, dims, n_std, colors="tab:blue", lw=1.6, zorder=3)
    add_posterior_ellipses(ax, mu_b, lv_b, dims, n_std, colors="tab:red", lw=1.6, ls="--", zorder=3)
    for k in range(k_pairs):
        a, b = (float(mu_a[k, i]), float(mu_a[k, j])), (float(mu_b[k, i]), float(mu_b[k, j]))
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.5", lw=0.8, zorder=2)
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
    latent_axes(ax, dims, title=f"{n_std:g}σ ellipses of q(z|x): σ grows ×{gm_b / gm_a:.1f}")
    ax.grid(alpha=0.3)
    return fig


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
            mu, logvar = _vae_stats(model, x, "plot_aggregate_posterior")  # [N, 2] each
            gen = torch.Generator(device=dev).manual_seed(seed)
            idx = torch.randperm(mu.shape[0], generator=gen, device=dev)[:n_points]
            z = reparameterize(mu[idx], logvar[idx], gen)  # one z ~ q(z|x_n) per shown input, [n, 2]
            log_p = model.prior_log_prob(zz.to(dev)).cpu().reshape(n_grid, n_grid)  # log p(z) on the grid
            log_q = log_aggregate_posterior(zz.to(dev), mu, logvar).cpu().reshape(n_grid, n_grid)  # log q(z) on the grid
        p, q = log_p.exp().numpy(), log_q.exp().numpy()
        box = (-extent, extent, -extent, extent)
        ax = row[0]
        labels = y.cpu()[idx.cpu()] if y is not None else None
        class_scatter(ax, z.cpu(), labels, n_classes=int(y.max()) + 1 if y is not None else None,
                      colorbar=y is not None, s=3, alpha=0.5)
        ax.contour(g.numpy(), g.numpy(), p, levels=levels, colors="black", linewidths=1.0)
        ax.set_title(f"{name + ': ' if name else ''}codes z ~ q(z|x), contours of p(z)", fontsize=9)
        ax2 = row[1]
        im = ax2.imshow(q, origin="lower", extent=box, cmap="magma", vmin=0, vmax=max(float(q.max()), float(p.max())))
        ax2.contour(g.numpy(), g.numpy(), p, levels=levels, colors="white", linewidths=1.0)
        ax2.set_title(f"{name + ': ' if name else ''}density of q(z), contours of p(z)", fontsize=9)
        fig.colorbar(im, ax=ax2, label="density")
        for a in row:
            latent_axes(a, (0, 1), extent)
    return fig
