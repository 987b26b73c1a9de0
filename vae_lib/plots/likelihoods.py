"""Figures of Part II, chapter 9 (grey-level likelihoods): per-pixel pmfs, and samples x ~ p(x|z) beside means."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from matplotlib.figure import Figure

from ..device import eval_mode
from ..likelihoods import N_LEVELS, log_pmf_table, to_levels
from .core import new_figure, show_images

__all__ = ["pixel_pmfs", "plot_pixel_pmfs", "plot_samples_vs_means"]


@torch.no_grad()
def pixel_pmfs(models: Dict[str, torch.nn.Module], x: torch.Tensor,
               pixels: Sequence[Tuple[int, int]]) -> Dict[str, torch.Tensor]:
    """``{name: [P, 256]}``: each grey-level model's pmf ``P(level | z = μ(x))`` at the given pixels of one image.

    ``x``: ``[1, 1, H, W]`` one image on the 1/255 grid; ``pixels``: ``(row, col)`` pairs. The
    code is the posterior mean, so the pmfs are what the decoder predicts for this image.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"pixel_pmfs: expected one image [1, C, H, W], got {list(x.shape)}")
    if not pixels:
        raise ValueError("pixel_pmfs: give at least one (row, col) pixel")
    rows = torch.tensor([r for r, _ in pixels])
    cols = torch.tensor([c for _, c in pixels])
    out = {}
    for name, m in models.items():
        with eval_mode(m) as device:
            params = m.decode(m.encode(x.to(device))[0])  # parameters of p(x|z) at z = μ(x)
            table = log_pmf_table(lambda lv: m.pixel_log_prob(params, lv), tuple(x.shape), device=device)
            out[name] = table[:, 0, 0][:, rows, cols].exp().T.cpu()  # [P, 256]
    return out


def plot_pixel_pmfs(models: Dict[str, torch.nn.Module], x: torch.Tensor, pixels: Sequence[Tuple[int, int]],
                    log_scale: bool = True, title: Optional[str] = None) -> Figure:
    """One panel per pixel: each model's 256-bin pmf at that pixel of image ``x`` ``[1, 1, H, W]``, the
    true level marked; a thumbnail of ``x`` with the pixels circled on the left.

    ``log_scale=True`` draws probabilities on a log axis, so the tails and the edge bins at 0 and
    255 show. Pixels are ``(row, col)``.
    """
    pmfs = pixel_pmfs(models, x, pixels)
    levels = to_levels(x)[0, 0]
    fig = new_figure((2.0 + 2.8 * len(pixels), 2.8))
    axes = fig.subplots(1, len(pixels) + 1, gridspec_kw={"width_ratios": [0.7] + [1.0] * len(pixels)})
    show_images(axes[0], x.cpu(), nrow=1, title="image")
    grid = torch.arange(N_LEVELS)
    for i, ((r, c), ax) in enumerate(zip(pixels, axes[1:])):
        axes[0].scatter([c], [r], s=60, facecolors="none", edgecolors=f"C{i}", linewidths=1.5)
        axes[0].annotate(str(i + 1), (c, r), color=f"C{i}", fontsize=8, xytext=(3, -3), textcoords="offset points")
        for j, (name, p) in enumerate(pmfs.items()):
            ax.step(grid, p[i], where="mid", lw=1.0, label=name, color=f"C{j + 3}")
        ax.axvline(int(levels[r, c]), color="black", ls="--", lw=0.8, label="true level")
        ax.set_xlim(-3, N_LEVELS + 2)
        if log_scale:
            ax.set_yscale("log")
            ax.set_ylim(1e-6, 1.5)
        ax.set_xlabel("grey level")
        ax.set_title(f"pixel {i + 1} (row {r}, col {c})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].set_ylabel("P(level | z = μ(x))")
    axes[-1].legend(fontsize=7, loc="upper center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


@torch.no_grad()
def plot_samples_vs_means(models: Dict[str, torch.nn.Module], n: int = 8, seed: int = 0,
                          scale: float = 0.45) -> Figure:
    """Two rows per model: means ``E[x|z]`` and samples ``x ~ p(x|z)`` at the same codes ``z ~ p(z)``.

    Uses each model's :meth:`~vae_lib.VAE.sample_images` with one seeded generator per model
    (on the model's device), so every model sees fresh codes drawn the same way.
    """
    if n < 1:
        raise ValueError(f"plot_samples_vs_means: n must be >= 1, got {n}")
    fig = new_figure((n * scale + 1.6, len(models) * 2 * scale + 0.5))
    axes = fig.subplots(len(models), 1, squeeze=False)[:, 0]
    for ax, (name, m) in zip(axes, models.items()):
        with eval_mode(m) as device:
            g = torch.Generator(device=device).manual_seed(seed)
            xs, mean = m.sample_images(n, g)
        show_images(ax, torch.cat([mean, xs]).cpu(), nrow=n)
        ax.set_title(name, fontsize=9)
        ax.text(-2, 14, "mean", ha="right", va="center", fontsize=8)
        ax.text(-2, 43, "sample", ha="right", va="center", fontsize=8)
    return fig
