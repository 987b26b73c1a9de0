"""Figures made of images: reconstructions, samples from the prior or a posterior,
interpolations, grids side by side, a β sweep's grid, and where the reconstruction nats go.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import torch
from matplotlib.figure import Figure

from .core import image_grid, new_figure, show_images
from ..device import model_device
from ..losses import reparameterize
from ..metrics import embed, posterior_stats

__all__ = [
    "plot_reconstructions", "plot_prior_samples", "plot_posterior_samples", "interpolation_images", "plot_interpolations",
    "plot_pixel_nats", "plot_image_grids", "plot_beta_grid",
]


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
    if int(n) < 1:
        raise ValueError(f"plot_posterior_samples needs n >= 1 draws z ~ q(z|x), got {n}")
    x = x[:1].to(model_device(model))
    mu, logvar = posterior_stats(model, x)  # [1, D] each
    if logvar is None:
        raise TypeError(f"plot_posterior_samples draws z ~ q(z|x), so it needs a VAE; {type(model).__name__} "
                        f"has no posterior variance")
    g = torch.Generator(device=mu.device).manual_seed(seed)
    z = reparameterize(mu[0], logvar[0], g, n_samples=n)  # z_k = μ + σ ⊙ ε_k, [n, D]
    imgs = torch.cat([x, model.decode_mean(mu), model.decode_mean(z)])
    return image_grid(imgs, nrow=n + 2, title="input | decoded mean | decoded samples z ~ q(z|x)")


@torch.no_grad()
def interpolation_images(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 9) -> torch.Tensor:
    """Decoded images along the straight line between the codes of ``x_a[p]`` and ``x_b[p]``.

    ``z_p(t) = (1 − t)·z(a_p) + t·z(b_p)`` for ``steps`` values of ``t`` evenly spaced from 0 to 1,
    where ``z(x)`` is the code of ``x`` (a VAE's posterior mean μ(x), an autoencoder's code), and
    each ``z_p(t)`` is decoded to its mean image.

    Args:
        model: a :class:`vae_lib.VAE` or :class:`vae_lib.Autoencoder`.
        x_a, x_b: ``[P, C, H, W]`` inputs in ``[0, 1]``, paired row by row.
        steps: points on each path, ``T >= 1`` (``t = 0`` and ``t = 1`` included when ``T >= 2``).

    Returns:
        ``[P, T, C, H, W]`` decoded mean images, on the model's device.
    """
    if int(steps) < 1:
        raise ValueError(f"interpolation_images needs steps >= 1 (points on each path), got {steps}")
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_a and x_b must be paired, got shapes {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    dev = model_device(model)
    za, zb = embed(model, x_a), embed(model, x_b)  # z(a), z(b): [P, D] each, on the model's device
    t = torch.linspace(0, 1, int(steps), device=dev)[None, :, None]  # [1, T, 1]
    z = (1 - t) * za[:, None] + t * zb[:, None]  # z(t) = (1 − t)·z(a) + t·z(b), [P, T, D]
    return model.decode_mean(z)  # [P, T, C, H, W]


@torch.no_grad()
def plot_interpolations(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> Figure:
    """One strip per pair: the input ``a``, then :func:`interpolation_images` (``steps`` decodings
    of ``(1−t)·μ(a) + t·μ(b)`` for ``t`` from 0 to 1), then the input ``b``."""
    imgs = interpolation_images(model, x_a, x_b, steps).cpu()  # [P, T, C, H, W]
    strip = torch.cat([x_a.cpu()[:, None], imgs, x_b.cpu()[:, None]], dim=1).flatten(0, 1)
    return image_grid(strip, nrow=steps + 2, title="input a | decoded path from μ(a) to μ(b) | input b")


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


def plot_image_grids(grids: Dict[str, torch.Tensor], nrow: int = 8, scale: float = 0.4) -> Figure:
    """Several image grids side by side, one titled panel per entry of ``grids`` (``{name: [N, C, H, W]}``
    in ``[0, 1]``), e.g. prior samples of several models. ``scale``: inches per image."""
    n = max(v.shape[0] for v in grids.values())
    rows = math.ceil(n / nrow)
    fig = new_figure((len(grids) * nrow * scale + 0.3, rows * scale + 0.4))
    for ax, (name, imgs) in zip(fig.subplots(1, len(grids), squeeze=False)[0], grids.items()):
        show_images(ax, imgs, nrow, name)
    return fig


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
