"""Chapter 10's figures: codebook usage, a VQ-VAE's code atlas, and two diagrams (latent diffusion's
pipeline, a hierarchical VAE's stack of latents with its rate split over layers).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import new_figure, show_images
from ..device import model_device

__all__ = ["plot_codebook_usage", "plot_code_atlas", "plot_ldm_pipeline", "plot_hierarchy_diagram"]


def plot_codebook_usage(counts: Dict[str, torch.Tensor], log: bool = True) -> Figure:
    """One panel per model: how often each code is chosen, codes sorted from most to least used.

    ``counts``: ``{name: [K] counts}`` (the third value of :func:`vae_lib.vq.codebook_usage`). Each
    panel's title gives the perplexity and the number of codes used; codes never chosen (dead)
    are the empty tail on the right.
    """
    if not counts:
        raise ValueError("plot_codebook_usage needs at least one {name: counts} entry")
    fig = new_figure((3.2 * len(counts), 2.6))
    for ax, (name, c) in zip(fig.subplots(1, len(counts), squeeze=False)[0], counts.items()):
        c = c.detach().cpu().double()
        p = c / c.sum()
        ppl = math.exp(float(-(p[p > 0] * p[p > 0].log()).sum()))  # exp(entropy), as in codebook_usage
        srt = c.sort(descending=True).values
        ax.bar(range(len(srt)), srt.numpy(), width=1.0, color="tab:blue")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("code (sorted by use)")
        ax.set_ylabel("times chosen")
        ax.set_title(f"{name}\nperplexity {ppl:.1f}, {int((c > 0).sum())} of {len(c)} used", fontsize=9)
        ax.set_xlim(-0.5, len(srt) - 0.5)
    return fig


@torch.no_grad()
def plot_code_atlas(model, indices: torch.Tensor, positions: Sequence[int], codes: Sequence[int],
                    scale: float = 0.55) -> Figure:
    """What one code position does: decode ``indices`` with position ``j`` set to code ``k``.

    Args:
        model: a trained :class:`vae_lib.vq.VQVAE`.
        indices: ``[n]`` long, one image's code sequence (e.g. ``model.encode_indices(x)[0]``).
        positions: the positions ``j`` to vary, one row each.
        codes: the codes ``k`` to put there, one column each.
        scale: inches per image.

    Returns:
        A ``Figure``: row ``j``, column ``k`` is the decoded mean image of the sequence with
        ``c_j = k`` and every other position unchanged; the left column is the original decoding.
    """
    if indices.dim() != 1:
        raise ValueError(f"plot_code_atlas: indices must be one sequence [n], got shape {list(indices.shape)}")
    device = model_device(model)
    base = indices.to(device)
    seqs = base.repeat(len(positions), len(codes), 1)  # [P, K', n]
    for r, j in enumerate(positions):
        seqs[r, :, j] = torch.as_tensor(list(codes), device=device)
    imgs = model.mean_image(model.decode_indices(seqs.reshape(-1, base.shape[0])))  # [P·K', C, H, W]
    orig = model.mean_image(model.decode_indices(base[None])).expand(len(positions), -1, -1, -1)
    grid = torch.cat([orig[:, None], imgs.reshape(len(positions), len(codes), *imgs.shape[1:])], dim=1)
    fig = new_figure(((len(codes) + 1) * scale + 0.9, len(positions) * scale + 0.5))
    ax = fig.add_subplot()
    show_images(ax, grid.flatten(0, 1), nrow=len(codes) + 1,
                title="left: the image's own code; then position j set to code k = " + ", ".join(map(str, codes)))
    h = grid.shape[-2] + 1
    for r, j in enumerate(positions):
        ax.text(-2, r * h + h / 2, f"j = {j}", ha="right", va="center", fontsize=8)
    return fig


def _box(ax: Axes, xy: Tuple[float, float], text: str, color: str, w: float = 0.16, h: float = 0.2) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0.01",
                                fc=color, ec="black", lw=1.0))
    ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=8)


def _arrow(ax: Axes, a: Tuple[float, float], b: Tuple[float, float], color: str = "black",
           label: Optional[str] = None, dashed: bool = False) -> None:
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color=color, lw=1.2,
                                                    ls="--" if dashed else "-"))
    if label:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.06, label, ha="center", va="bottom", fontsize=7, color=color)


def plot_ldm_pipeline(f: int = 8, channels: int = 4, size: int = 256) -> Figure:
    """Latent diffusion (Rombach et al., 2022) as a diagram: a VAE compresses, a diffusion model
    learns the prior over its latents, the VAE's decoder paints the pixels.

    ``f``: the downsampling factor; ``channels``: latent channels; ``size``: image side in pixels.
    The shapes written on the boxes are computed from these.
    """
    s = size // f
    fig = new_figure((7.5, 2.6))
    ax = fig.add_subplot()
    ax.set_xlim(0, 1.5)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    _box(ax, (0.1, 0.72), f"image x\n{size}×{size}×3", "#eeeeee")
    _box(ax, (0.38, 0.72), "VAE encoder\nq(z|x)", "#dbe9f6")
    _box(ax, (0.7, 0.72), f"latent z\n{s}×{s}×{channels}", "#fbe0dc")
    _box(ax, (1.02, 0.72), "VAE decoder\np(x|z)", "#dbe9f6")
    _box(ax, (1.32, 0.72), f"image x̂\n{size}×{size}×3", "#eeeeee")
    _box(ax, (0.7, 0.22), "diffusion model\n(the prior over z,\ntext-conditioned)", "#e3f3e0", w=0.26, h=0.26)
    _arrow(ax, (0.18, 0.72), (0.3, 0.72))
    _arrow(ax, (0.46, 0.72), (0.62, 0.72))
    ax.text(0.7, 0.9, "stage 1: train encoder and decoder as an autoencoder", ha="center", fontsize=7)
    _arrow(ax, (0.78, 0.72), (0.94, 0.72))
    _arrow(ax, (1.1, 0.72), (1.24, 0.72))
    _arrow(ax, (0.66, 0.61), (0.66, 0.36), color="tab:green", label="")
    _arrow(ax, (0.74, 0.36), (0.74, 0.61), color="tab:green", dashed=True)
    ax.text(0.6, 0.48, "stage 2: learn\np(z) on frozen\nencoder's latents", ha="right", va="center", fontsize=7,
            color="tab:green")
    ax.text(0.8, 0.48, "sample: denoise\nnoise into z", ha="left", va="center", fontsize=7, color="tab:green")
    ax.set_title(f"latent diffusion: the VAE is the compressor (f = {f}, {channels} latent channels)", fontsize=10)
    return fig


def plot_hierarchy_diagram(n_layers: int = 3) -> Figure:
    """A top-down hierarchical VAE (ladder VAE, NVAE, VDVAE) as a diagram with ``n_layers`` latent layers.

    Left: the generative path ``z_L → … → z_1 → x``, each layer's prior conditioned on the layers
    above. Right: the inference path (a bottom-up pass over ``x``, then top-down posteriors that
    share the generative path). Between them, each layer's own rate ``KL_l``.
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"plot_hierarchy_diagram: n_layers must be an int >= 1, got {n_layers!r}")
    n = n_layers
    fig = new_figure((6.0, 3.4))
    ax = fig.add_subplot()
    ax.set_xlim(0, 1.15)
    ax.set_ylim(-0.05, 1.05)
    ax.set_axis_off()
    ys = [0.92 - 0.68 * i / max(1, n - 1) for i in range(n)]  # z_L at the top ... z_1 at the bottom
    for i, y in enumerate(ys):
        name = f"z{n - i}"
        _box(ax, (0.3, y), f"p({name} | z>{n - i})" if i else f"p({name})", "#fbe0dc", w=0.2, h=0.12)
        _box(ax, (0.8, y), f"q({name} | x, z>{n - i})", "#dbe9f6", w=0.22, h=0.12)
        ax.annotate("", xy=(0.69, y), xytext=(0.4, y), arrowprops=dict(arrowstyle="<->", color="tab:purple"))
        ax.text(0.545, y + 0.03, f"rate KL{n - i}", ha="center", va="bottom", fontsize=8, color="tab:purple")
        if i < n - 1:
            _arrow(ax, (0.3, y - 0.06), (0.3, ys[i + 1] + 0.06))
            _arrow(ax, (0.8, y - 0.06), (0.8, ys[i + 1] + 0.06), color="tab:blue")
    _box(ax, (0.3, -0.0), "p(x | z1)", "#eeeeee", w=0.2, h=0.1)
    _box(ax, (0.8, -0.0), "x → bottom-up features", "#eeeeee", w=0.3, h=0.1)
    _arrow(ax, (0.3, ys[-1] - 0.06), (0.3, 0.05))
    ax.annotate("", xy=(1.0, ys[0]), xytext=(1.0, 0.05), arrowprops=dict(arrowstyle="->", color="grey", lw=1.0))
    ax.text(1.02, 0.5, "bottom-up\npass", fontsize=7, color="grey", va="center")
    ax.text(0.3, 1.03, "generative (top-down)", ha="center", fontsize=8)
    ax.text(0.8, 1.03, "inference (shares the top-down path)", ha="center", fontsize=8)
    ax.set_title("a hierarchical VAE: −ELBO = E[−log p(x|z1)] + Σ_l E[KL_l]  (distortion + rate of every layer)",
                 fontsize=9)
    return fig
