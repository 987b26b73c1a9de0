"""Chapter 1's widget: a posterior N(μ, σ²) against the prior N(0, 1), with its samples and
KL(q || p).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from IPython.display import HTML
from matplotlib.figure import Figure

from ._base import (
    _check_count, _figure, _finite, _float_slider, _pad, _Panel, _sticky, DPI, Explorer, MU_MAX, SIGMA_MIN,
)
from ..losses import kl_standard_normal, reparameterize
from ..plots import jshtml_scrubber

__all__ = ["mu_sigma_explorer", "mu_sigma_scrubber"]


def _normal_pdf(z: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # N(z; μ, σ²)


def _kl_1d(mu: float, sigma: float) -> float:
    """``KL(N(μ, σ²) || N(0, 1))`` in nats, through the library's closed form."""
    m = torch.tensor([[mu]], dtype=torch.float64)
    logvar = torch.tensor([[2.0 * math.log(sigma)]], dtype=torch.float64)  # log σ²
    return float(kl_standard_normal(m, logvar)[0])  # ½(μ² + σ² − 1 − log σ²)


class _MuSigmaView:
    """q = N(μ, σ²) against p = N(0, 1): densities, a histogram of z = μ + σ ε, and the KL."""

    # Heights of the density axis: the smallest one above 1.3 × q's peak is used, so that small
    # moves of σ keep the axes (and the update only redraws the curves); above 4.5, q is cut.
    Y_TOPS = (0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5)

    def __init__(self, fig: Figure, n_samples: int, seed: int, x_range: Tuple[float, float], bins: int = 60):
        self.n_samples, self.seed = n_samples, seed
        self.x_range, self.bins = (float(x_range[0]), float(x_range[1])), bins
        self.ax = ax = fig.add_subplot()
        zero = np.zeros(2)
        self.hist = ax.stairs(np.zeros(bins), np.linspace(0, 1, bins + 1), fill=True, alpha=0.3, color="tab:blue",
                              label="samples z = μ + σ ε")
        (self.prior,) = ax.plot(zero, zero, "--", color="0.35", lw=1.5, label="prior p(z) = N(0, 1)")
        (self.q,) = ax.plot(zero, zero, color="tab:blue", lw=2, label="q(z) = N(μ, σ²)")
        self.peak = ax.text(0.02, 0.95, "", transform=ax.transAxes, fontsize=8, va="top", color="tab:blue")
        ax.set_xlabel("z")
        ax.set_ylabel("density")
        legend = ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
        self.dynamic = [self.hist, self.q, self.peak, legend, ax.title]  # redrawn each update (see _Panel)
        self.needs_full, self._limits = True, None

    def update(self, mu: float, sigma: float) -> Dict[str, float]:
        mu = float(np.clip(_finite(mu), -MU_MAX, MU_MAX))
        sigma = max(_finite(sigma, 1.0), SIGMA_MIN)  # σ → 0 would make the density infinite
        lo, hi = min(self.x_range[0], mu - 4 * sigma), max(self.x_range[1], mu + 4 * sigma)
        if (lo, hi) != self.x_range:  # q reaches past x_range: widen, in steps that small moves keep
            prev = self._limits[:2] if self._limits is not None and self._limits[:2] != self.x_range else None
            lo, hi = _sticky(prev, lo, hi)
        grid = np.sort(np.concatenate([np.linspace(lo, hi, 400), mu + sigma * np.linspace(-4, 4, 81)]))
        q_pdf = _normal_pdf(grid, mu, sigma)
        self.prior.set_data(grid, _normal_pdf(grid, 0.0, 1.0))
        self.q.set_data(grid, q_pdf)
        g = torch.Generator().manual_seed(self.seed)  # the same ε every time, so the histogram slides
        m, logvar = torch.tensor(mu, dtype=torch.float64), torch.tensor(2.0 * math.log(sigma), dtype=torch.float64)
        z = reparameterize(m, logvar, g, n_samples=self.n_samples).numpy()  # z = μ + σ ε, [S]
        edges = np.linspace(lo, hi, self.bins + 1)
        counts, _ = np.histogram(z, bins=edges)
        dens = counts / (len(z) * (edges[1] - edges[0]))  # a density, comparable with the curves
        self.hist.set_data(dens, edges)
        q_peak = 1.0 / (sigma * math.sqrt(2 * math.pi))
        top = next((t for t in self.Y_TOPS if t >= 1.3 * q_peak), self.Y_TOPS[-1])
        self.peak.set_text(f"q peaks at {q_peak:.3g} (off the chart)" if q_peak > top else "")
        self.needs_full = (lo, hi, top) != self._limits  # new limits: axes and prior must be redrawn
        self._limits = (lo, hi, top)
        self.ax.set_xlim(lo, hi)
        self.ax.set_ylim(0, top)
        kl = _kl_1d(mu, sigma)
        self.ax.set_title(f"μ = {mu:.3g}, σ = {sigma:.3g}:   KL(q ‖ p) = {kl:.4g} nats", fontsize=10)
        return {"mu": mu, "sigma": sigma, "kl": kl, "sample_mean": float(z.mean()), "sample_std": float(z.std()),
                "q_peak": q_peak}


def _describe_mu_sigma(s: Dict[str, float]) -> str:
    return (f"KL(q ‖ p) = <b>{s['kl']:.4g} nats</b> &nbsp; (μ = {s['mu']:.3g}, σ = {s['sigma']:.3g}; "
            f"samples: mean {s['sample_mean']:.3g}, std {s['sample_std']:.3g})")


def mu_sigma_explorer(mu: float = 0.0, sigma: float = 1.0, mu_range: Tuple[float, float] = (-3.0, 3.0),
                      sigma_range: Tuple[float, float] = (0.05, 3.0), n_samples: int = 2000, seed: int = 0,
                      x_range: Tuple[float, float] = (-6.0, 6.0), figsize: Tuple[float, float] = (6.0, 3.2),
                      dpi: int = DPI) -> Explorer:
    """A 1-D posterior ``q(z) = N(μ, σ²)`` against the prior ``p(z) = N(0, 1)`` (chapter 1).

    Shows both densities, a histogram of ``n_samples`` draws ``z = μ + σ ε`` (the same ``ε``
    at every setting, so the histogram slides and stretches instead of flickering) and the
    closed-form ``KL(q ‖ p)`` in nats (:func:`vae_lib.kl_standard_normal`).

    Args:
        mu: initial μ.
        sigma: initial σ (floored at ``SIGMA_MIN`` = 1e-3 for the maths).
        mu_range: ``(min, max)`` of the μ slider.
        sigma_range: ``(min, max)`` of the σ slider; a minimum of 0 is allowed (σ is floored).
        n_samples: draws in the histogram (at least 1).
        seed: seeds the fixed ``ε``.
        x_range: the z-axis shown; it widens on its own when ``μ ± 4σ`` leaves it.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        An :class:`Explorer` with ``controls`` ``{"mu", "sigma"}`` and ``state`` ``{"mu", "sigma", "kl",
        "sample_mean", "sample_std", "q_peak"}`` (see the module docstring).

    Raises:
        ValueError: if ``n_samples < 1``.
    """
    fig = _figure(figsize, dpi)
    view = _MuSigmaView(fig, _check_count("mu_sigma_explorer", "n_samples", n_samples), seed, x_range)
    controls = {"mu": _float_slider("μ", mu, *mu_range), "sigma": _float_slider("σ", sigma, *sigma_range)}
    return Explorer(controls, {"main": _Panel(fig, view, ("mu", "sigma"), dpi)}, _describe_mu_sigma)


def _tour_mu_sigma() -> List[Tuple[float, float]]:
    """12 frames: q slides away from the prior, then narrows, then widens."""
    return [(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (0.0, 1.0),
            (0.0, 0.6), (0.0, 0.3), (0.0, 0.1), (0.0, 1.5), (0.0, 2.5), (1.5, 0.4)]


def mu_sigma_scrubber(values: Optional[Sequence[Tuple[float, float]]] = None, n_samples: int = 2000, seed: int = 0,
                      x_range: Tuple[float, float] = (-6.0, 6.0), figsize: Tuple[float, float] = (6.0, 3.2),
                      interval: int = 700) -> HTML:
    """The kernel-free twin of :func:`mu_sigma_explorer`: one precomputed frame per ``(μ, σ)``.

    Args:
        values: the ``(μ, σ)`` pairs, one frame each; default a 12-frame tour (q slides away
            from the prior at σ = 1, then narrows and widens at μ = 0).
        n_samples: draws in the histogram (at least 1).
        seed: seeds the fixed ``ε``.
        x_range: the z-axis shown (widens when needed).
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player (works without a kernel).
    """
    _check_count("mu_sigma_scrubber", "n_samples", n_samples)

    def draw(fig: Figure, v) -> None:
        _MuSigmaView(_pad(fig), n_samples, seed, x_range).update(*v)

    return jshtml_scrubber(draw, list(values) if values is not None else _tour_mu_sigma(), figsize, interval)
