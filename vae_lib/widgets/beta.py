"""Chapter 4's widget: one model of a β sweep at a time, its reconstructions, prior samples and
place on the rate–distortion curve.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.figure import Figure

from ._base import _check_count, _figure, _finite, _pad, _Panel, DPI, Explorer, MAX_FRAMES
from ..device import model_device
from ..metrics import SweepPoint
from ..plots import jshtml_scrubber, plot_rate_distortion, tile_images

__all__ = ["beta_explorer", "beta_scrubber"]


@torch.no_grad()
def _beta_cache(points: Sequence[SweepPoint], x: torch.Tensor, n_images: int, n_samples: int, seed: int,
                where: str):
    """Per point, computed once: the tiles of inputs over reconstructions, and of prior samples."""
    _check_count(where, "n_images", n_images)
    _check_count(where, "n_samples", n_samples)
    pts = sorted(points, key=lambda p: p.beta)
    if not pts:
        raise ValueError(f"{where} needs at least one SweepPoint (e.g. from vl.beta_sweep)")
    x = x[:n_images].detach().cpu()
    out = []
    for p in pts:
        dev = model_device(p.model)
        recon = p.model.reconstruct(x.to(dev)).cpu()  # decoded posterior means, [n, C, H, W]
        g = torch.Generator(device=dev).manual_seed(seed)  # the same z ~ p(z) for every β (standard prior)
        samples = p.model.sample(n_samples, generator=g).cpu()
        mse = _finite(((recon - x) ** 2).mean())
        out.append((tile_images(torch.cat([x, recon]), x.shape[0]), tile_images(samples, math.ceil(n_samples / 2)), mse))
    return pts, out


class _BetaView:
    """Reconstructions and prior samples of the selected β, beside the rate–distortion curve."""

    def __init__(self, fig: Figure, pts: Sequence[SweepPoint], cache, gray: bool):
        self.pts, self.cache = pts, cache
        gs = fig.add_gridspec(2, 2, width_ratios=(1.25, 1))
        ax_r, ax_p, self.ax_rd = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[:, 1])
        kw = dict(cmap="gray_r" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        self.art_r = ax_r.imshow(cache[0][0], **kw)
        self.art_p = ax_p.imshow(cache[0][1], **kw)
        for a in (ax_r, ax_p):
            a.set_axis_off()
        self.ax_r, self.ax_p = ax_r, ax_p
        finite = [p for p in pts if math.isfinite(p.rate) and math.isfinite(p.distortion)]
        plot_rate_distortion(finite, ax=self.ax_rd)
        (self.mark,) = self.ax_rd.plot([], [], "o", ms=13, mfc="none", mec="tab:red", mew=2.2, zorder=5,
                                      scalex=False, scaley=False)
        self.dynamic = [self.art_r, self.art_p, self.mark, ax_r.title, ax_p.title, self.ax_rd.title]
        self.needs_full = False

    def update(self, beta: float) -> Dict[str, float]:
        betas = [p.beta for p in self.pts]
        k = int(np.argmin([abs(b - float(beta)) for b in betas]))
        p, (tile_r, tile_p, mse) = self.pts[k], self.cache[k]
        self.art_r.set_data(tile_r)
        self.art_p.set_data(tile_p)
        rate, dist = _finite(p.rate, float("nan")), _finite(p.distortion, float("nan"))
        self.mark.set_data([rate if math.isfinite(rate) else 0.0], [dist if math.isfinite(dist) else 0.0])
        self.mark.set_visible(math.isfinite(rate) and math.isfinite(dist))
        self.ax_r.set_title(f"β = {p.beta:g}: inputs (top), reconstructions (bottom)", fontsize=9)
        self.ax_p.set_title("prior samples z ~ p(z), decoded (same z for every β)", fontsize=9)
        self.ax_rd.set_title(f"β = {p.beta:g}: rate {rate:.3g}, distortion {dist:.4g} nats/image", fontsize=9)
        return {"beta": float(p.beta), "rate": _finite(p.rate), "distortion": _finite(p.distortion),
                "recon_mse": mse}


def _describe_beta(s: Dict[str, float]) -> str:
    return (f"β = <b>{s['beta']:g}</b>: rate KL = {s['rate']:.2f} nats/image, distortion −log p(x|z) = "
            f"{s['distortion']:.2f} nats/image; pixel MSE of the reconstructions shown {s['recon_mse']:.4f}")


def beta_explorer(points: Sequence[SweepPoint], x: torch.Tensor, beta: Optional[float] = None, n_images: int = 8,
                  n_samples: int = 16, seed: int = 0, figsize: Tuple[float, float] = (8.0, 3.6),
                  dpi: int = DPI) -> Explorer:
    """Pick β along a β sweep: reconstructions, prior samples and the rate–distortion curve (chapter 4).

    Everything is computed once when the widget is built (one reconstruction and one set of
    prior samples per trained model), so moving the slider only swaps pictures.

    Args:
        points: the sweep, :class:`vae_lib.SweepPoint` objects from :func:`vae_lib.beta_sweep`
            (each has ``beta``, ``model``, ``rate``, ``distortion``); β = 0 is fine.
        x: images ``[N, C, H, W]``; the first ``n_images`` are reconstructed.
        beta: the β shown first (the nearest point); default the one nearest 1.
        n_images: inputs reconstructed (at least 1).
        n_samples: prior samples ``z ~ p(z)`` decoded (the same ``z`` for every model; at least 1).
        seed: seeds the prior samples.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        An :class:`Explorer` with ``controls`` ``{"beta"}`` (a ``SelectionSlider`` whose values are the
        β floats) and ``state`` ``{"beta", "rate", "distortion", "recon_mse"}``.
    """
    pts, cache = _beta_cache(points, x, n_images, n_samples, seed, "beta_explorer")
    betas = [p.beta for p in pts]
    start = betas[int(np.argmin([abs(b - (1.0 if beta is None else float(beta))) for b in betas]))]
    fig = _figure(figsize, dpi)
    view = _BetaView(fig, pts, cache, x.shape[1] == 1)
    slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in betas], value=start, description="β",
                                     continuous_update=True, layout=widgets.Layout(width="420px"))
    return Explorer({"beta": slider}, {"main": _Panel(fig, view, ("beta",), dpi)}, _describe_beta)


def beta_scrubber(points: Sequence[SweepPoint], x: torch.Tensor, n_images: int = 8, n_samples: int = 16,
                  seed: int = 0, figsize: Tuple[float, float] = (8.0, 3.6), interval: int = 1000) -> HTML:
    """The kernel-free twin of :func:`beta_explorer`: one frame per β (at most 12, evenly picked).

    Args:
        points: the sweep, :class:`vae_lib.SweepPoint` objects.
        x: images ``[N, C, H, W]``; the first ``n_images`` are reconstructed.
        n_images, n_samples, seed: as for :func:`beta_explorer`.
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    pts, cache = _beta_cache(points, x, n_images, n_samples, seed, "beta_scrubber")
    keep = sorted(set(np.linspace(0, len(pts) - 1, min(len(pts), MAX_FRAMES)).round().astype(int).tolist()))

    def draw(fig: Figure, b) -> None:
        _BetaView(_pad(fig), pts, cache, x.shape[1] == 1).update(b)

    return jshtml_scrubber(draw, [pts[k].beta for k in keep], figsize, interval)
