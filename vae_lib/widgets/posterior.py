"""Chapter 2's widget: one input's posterior q(z|x) over the prior in a trained model's latent
plane, with its KL and the decoded posterior mean.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from IPython.display import HTML
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import nn

from ._base import (
    _check_count, _Codes, _figure, _finite, _image_axes, _int_slider, _pad, _Panel, _plane_limit, _set_tile, DPI,
    Explorer,
)
from ..device import model_device
from ..losses import gaussian_log_prob, kl_standard_normal, reparameterize
from ..model import VAE
from ..plots import add_posterior_ellipses, jshtml_scrubber, latent_axes, tile_images

__all__ = ["posterior_prior_explorer", "posterior_prior_scrubber"]


class _PosteriorView:
    """The latent plane (prior circles, cloud of means, one q(z|x) with samples) beside x and decodings."""

    def __init__(self, fig: Figure, model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], codes: _Codes,
                 kl: torch.Tensor, dims: Tuple[int, int], n_samples: int):
        self.model, self.x, self.y, self.kl = model, x, y, kl
        self.mu, self.logvar = codes.mu, codes.logvar  # [N, D] each
        self.dims, self.n_samples = tuple(dims), n_samples
        gs = fig.add_gridspec(2, 2, width_ratios=(1.45, 1), height_ratios=(1, 1))
        self.ax = ax = fig.add_subplot(gs[:, 0])
        ax_x, ax_s = fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
        codes.scatter(ax, alpha=0.25)
        for r, lab in ((1, "p(z): 1σ and 2σ"), (2, None)):
            ax.add_patch(Circle((0, 0), r, fill=False, ls="--", lw=1.2, ec="0.3", label=lab))
        # the 1σ and 2σ ellipses of q(z|x), moved to the chosen input by each update
        self.ell = [add_posterior_ellipses(ax, self.mu[0], self.logvar[0], self.dims, k, colors="tab:red", lw=2,
                                           label="q(z|x): 1σ and 2σ" if k == 1 else None)[0] for k in (1, 2)]
        self.samples = ax.scatter(np.zeros(n_samples), np.zeros(n_samples), marker="x", s=30, c="black", lw=1.2,
                                  label="z ~ q(z|x)", zorder=3)
        self.centre = ax.scatter([0], [0], marker="o", s=25, c="tab:red", zorder=4)
        latent_axes(ax, self.dims, _plane_limit(codes.cloud))
        ax.legend(fontsize=7, loc="upper right")
        c = x.shape[1]
        blank = torch.zeros(1, c, *x.shape[2:])
        self.art_x = _image_axes(ax_x, blank, 1, "input x")
        self.art_s = _image_axes(ax_s, torch.zeros(n_samples, c, *x.shape[2:]), math.ceil(n_samples / 2),
                                 "decoded z ~ q(z|x)")
        self.dynamic = [*self.ell, self.samples, self.centre, self.art_x, self.art_s, ax.title]
        self.needs_full = False

    @torch.no_grad()
    def update(self, index: int, seed: int) -> Dict[str, float]:
        i = int(min(max(int(index), 0), self.mu.shape[0] - 1))
        g = torch.Generator().manual_seed(int(seed))  # the same ε per seed: moving the index keeps the draws
        mu, std = self.mu[i], torch.exp(0.5 * self.logvar[i])  # [D] each
        z = reparameterize(mu, self.logvar[i], g, n_samples=self.n_samples)  # z = μ + σ ⊙ ε, [S, D]
        imgs = self.model.decode_mean(z.to(model_device(self.model))).cpu()  # [S, C, H, W]
        a, b = self.dims
        for k, e in zip((1, 2), self.ell):
            e.set_center((float(mu[a]), float(mu[b])))
            e.width, e.height = 2 * k * float(std[a]), 2 * k * float(std[b])
        self.samples.set_offsets(z[:, [a, b]].numpy())
        self.centre.set_offsets([[float(mu[a]), float(mu[b])]])
        self.art_x.set_data(tile_images(self.x[i:i + 1], 1))
        _set_tile(self.art_s, imgs, math.ceil(self.n_samples / 2))
        kl = _finite(self.kl[i])
        label = f", label {int(self.y[i])}" if self.y is not None else ""
        self.ax.set_title(f"input {i}{label}: KL(q(z|x) ‖ p(z)) = {kl:.2f} nats", fontsize=9)
        state = {"index": float(i), "kl": kl, "mean_kl": _finite(self.kl.mean()),
                 "mu_1": float(mu[a]), "mu_2": float(mu[b]), "sigma_1": float(std[a]), "sigma_2": float(std[b]),
                 "sample_pixel_mean": _finite(imgs.mean())}
        if self.y is not None:
            state["label"] = float(self.y[i])
        return state


@torch.no_grad()
def _posterior_cache(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], dims: Tuple[int, int],
                     max_points: int, seed: int, where: str) -> Tuple[_Codes, torch.Tensor]:
    """Means, log-variances and KL of every input, computed once (the slider only indexes them)."""
    codes = _Codes(model, x, y, dims, max_points, seed, where)
    mu, logvar = codes.mu, codes.logvar
    if logvar is None:
        raise TypeError(f"{where} needs a VAE (an Autoencoder has no q(z|x) to draw)")
    if getattr(model, "prior_name", "standard") == "standard":
        kl = kl_standard_normal(mu, logvar)  # closed form, [N] nats
    else:  # a learned prior: Monte Carlo KL = E_q[log q(z|x) − log p(z)], 64 seeded draws per input
        g = torch.Generator().manual_seed(seed)
        z = reparameterize(mu, logvar, g, n_samples=64)  # z = μ + σ ⊙ ε, [64, N, D]
        dev = model_device(model)
        log_p = torch.cat([model.prior_log_prob(z[:, s:s + 500].to(dev)).cpu() for s in range(0, mu.shape[0], 500)], 1)
        kl = (gaussian_log_prob(z, mu, logvar) - log_p).mean(0)
    return codes, kl


def _describe_posterior(s: Dict[str, float]) -> str:
    lab = f" (label {int(s['label'])})" if "label" in s else ""
    return (f"input {int(s['index'])}{lab}: KL(q(z|x) ‖ p(z)) = <b>{s['kl']:.3f} nats</b>; "
            f"average over all inputs {s['mean_kl']:.3f} nats. "
            f"q(z|x) in this plane: μ = ({s['mu_1']:.2f}, {s['mu_2']:.2f}), "
            f"σ = ({s['sigma_1']:.3f}, {s['sigma_2']:.3f})")


def posterior_prior_explorer(model: VAE, x: torch.Tensor, y: Optional[torch.Tensor] = None, index: int = 0,
                             dims: Tuple[int, int] = (0, 1), n_samples: int = 8, max_points: int = 2000,
                             seed: int = 0, figsize: Tuple[float, float] = (7.2, 3.8), dpi: int = DPI) -> Explorer:
    """One input's posterior ``q(z|x)`` against the prior ``p(z)`` in the latent plane (chapter 2).

    Left: the prior's 1σ and 2σ circles, the faint cloud of every input's posterior mean
    (coloured by ``y``), the chosen input's 1σ/2σ ellipse of ``q(z|x)`` and ``n_samples``
    draws ``z ~ q(z|x)``. Right: the input and the decoded draws. The text gives
    ``KL(q(z|x) ‖ p(z))`` in nats (closed form for the standard prior, a 64-sample Monte
    Carlo estimate for a learned one; the circles are those of ``N(0, I)``).

    Args:
        model: a (trained) :class:`vae_lib.VAE`; any latent size, two dimensions are drawn.
        x: images ``[N, C, H, W]`` in ``[0, 1]``, e.g. ``vl.load_dataset("mnist-5k", "val")[0]``.
        y: optional labels ``[N]`` (0–9) to colour the cloud of means.
        index: the input shown first.
        dims: the two latent dimensions drawn (the others still count in the KL).
        n_samples: draws ``z ~ q(z|x)`` shown and decoded (at least 1).
        max_points: at most this many means in the cloud (a seeded subset, at least 1).
        seed: seeds the subset and the first ``ε``.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        An :class:`Explorer` with ``controls`` ``{"index", "seed"}`` (``seed`` redraws ``ε``) and
        ``state`` ``{"index", "kl", "mean_kl", "mu_1", "mu_2", "sigma_1", "sigma_2", "sample_pixel_mean"}``
        (plus ``"label"`` when ``y`` is given).

    Raises:
        ValueError: if ``n_samples`` or ``max_points`` is below 1, or the model's latent size is below 2.
        TypeError: for an :class:`~vae_lib.Autoencoder` (it has no ``q(z|x)``).
    """
    _check_count("posterior_prior_explorer", "n_samples", n_samples)
    x = model.check_input(x, "posterior_prior_explorer").detach().cpu()
    codes, kl = _posterior_cache(model, x, y, dims, max_points, seed, "posterior_prior_explorer")
    fig = _figure(figsize, dpi)
    view = _PosteriorView(fig, model, x, y, codes, kl, dims, n_samples)
    controls = {"index": _int_slider("input", index, 0, x.shape[0] - 1), "seed": _int_slider("ε seed", seed, 0, 99)}
    return Explorer(controls, {"main": _Panel(fig, view, ("index", "seed"), dpi)}, _describe_posterior)


def _spread_indices(n: int, y: Optional[torch.Tensor], k: int = 10) -> List[int]:
    """The first input of each of up to ``k`` classes, or ``k`` evenly spaced inputs."""
    if y is not None:
        out, seen = [], set()
        for i, lab in enumerate(y.tolist()):
            if lab not in seen:
                seen.add(lab)
                out.append(i)
            if len(out) == k:
                break
        return out
    return sorted(set(np.linspace(0, n - 1, min(k, n)).astype(int).tolist()))


def posterior_prior_scrubber(model: VAE, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                             indices: Optional[Sequence[int]] = None, dims: Tuple[int, int] = (0, 1),
                             n_samples: int = 8, max_points: int = 1000, seed: int = 0,
                             figsize: Tuple[float, float] = (6.4, 3.4), interval: int = 900) -> HTML:
    """The kernel-free twin of :func:`posterior_prior_explorer`: one frame per input.

    Args:
        model: a (trained) :class:`vae_lib.VAE`.
        x: images ``[N, C, H, W]``.
        y: optional labels ``[N]``.
        indices: the inputs, one frame each; default the first input of each class (up to 10),
            or 10 evenly spaced inputs when ``y`` is ``None``.
        dims, n_samples, seed: as for :func:`posterior_prior_explorer`.
        max_points: at most this many means in the cloud (fewer than the widget: smaller frames).
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    _check_count("posterior_prior_scrubber", "n_samples", n_samples)
    x = model.check_input(x, "posterior_prior_scrubber").detach().cpu()
    codes, kl = _posterior_cache(model, x, y, dims, max_points, seed, "posterior_prior_scrubber")
    idx = list(indices) if indices is not None else _spread_indices(x.shape[0], y)

    def draw(fig: Figure, i) -> None:
        _PosteriorView(_pad(fig), model, x, y, codes, kl, dims, n_samples).update(i, seed)

    return jshtml_scrubber(draw, idx, figsize, interval)
