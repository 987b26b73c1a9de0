"""Chapter 3's widget: reparameterization against the score function, z = μ + σε and the
spread of both gradient estimators.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.figure import Figure

from ._base import (
    _check_count, _figure, _finite, _float_slider, _pad, _Panel, _sticky, DPI, Explorer, MU_MAX, SIGMA_MIN,
)
from ..estimators import gradient_estimates
from ..plots import jshtml_scrubber

__all__ = ["reparam_explorer", "reparam_scrubber"]


class _LibraryDraws:
    """The seeded ``ε`` that :func:`vae_lib.gradient_estimates` draws, per sample count ``n``.

    Run once per ``n`` at ``μ = 0, σ = 1``, where ``z = ε``, with an ``f`` that records ``z``; only
    the per-trial moments of ``ε`` are kept. For ``f(z) = z²`` both estimators are polynomials in
    ``μ``, ``σ`` and those moments, so any ``(μ, σ)`` then costs ``O(trials)`` however large ``n``
    is, and gives the numbers ``gradient_estimates(μ, σ, n, trials, ..., seed=seed)`` gives.
    """

    def __init__(self, trials: int, seed: int, where: str):
        self.trials, self.seed = _check_count(where, "trials", trials, minimum=2), seed  # a variance needs 2
        self._cache: Dict[int, Dict[str, np.ndarray]] = {}

    def _draws(self, n: int, estimator: str) -> torch.Tensor:
        seen: List[torch.Tensor] = []

        def record(z: torch.Tensor) -> torch.Tensor:
            seen.append(z.detach())
            return z * z

        gradient_estimates(0.0, 1.0, n, self.trials, estimator, f=record, seed=self.seed)
        return seen[0][..., 0].double()  # ε, [n, trials]

    def __call__(self, n: int) -> Dict[str, np.ndarray]:
        if n not in self._cache:
            er, es = self._draws(n, "reparam"), self._draws(n, "score")
            self._cache[n] = {"m1_r": er.mean(0).numpy(), "m1_s": es.mean(0).numpy(),  # per-trial (1/n) Σ ε^k
                              "m2_s": es.pow(2).mean(0).numpy(), "m3_s": es.pow(3).mean(0).numpy(),
                              "eps": er[:1000, 0].numpy()}  # the first trial's draws, shown mapped to z
        return self._cache[n]

    def estimates(self, mu: float, sigma: float, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """``trials`` estimates of ``∂/∂μ E[z²]`` from each estimator: ``([trials], [trials])``."""
        m = self(n)
        reparam = 2 * mu + 2 * sigma * m["m1_r"]  # (1/n) Σ ∂/∂μ (μ + σ ε)² = (1/n) Σ 2(μ + σ ε)
        # (1/n) Σ z² ∂/∂μ log q(z) = (1/n) Σ z² (z − μ)/σ² with z = μ + σ ε, expanded in moments of ε:
        score = mu * mu * m["m1_s"] / sigma + 2 * mu * m["m2_s"] + sigma * m["m3_s"]
        return reparam, score


class _ReparamView:
    """Left: the map ε → z = μ + σ ε with the draws. Right: estimates of ∂/∂μ E[z²] from both estimators."""

    def __init__(self, fig: Figure, draws: _LibraryDraws, z_range: Tuple[float, float], bins: int = 40):
        self.draws, self.bins = draws, bins
        self.z_range = (float(z_range[0]), float(z_range[1]))
        gs = fig.add_gridspec(1, 2, width_ratios=(1, 1.5))
        self.ax_map, self.ax_h = ax, ah = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        e = np.array([-3.5, 3.5])
        (self.line,) = ax.plot(e, e, color="tab:green", lw=1.5, label="z = μ + σ ε")
        self.dots = ax.scatter(np.zeros(1), np.zeros(1), s=10, c="tab:green", alpha=0.7, zorder=3)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlim(-3.5, 3.5)
        ax.set_xlabel("ε ~ N(0, 1)")
        ax.set_ylabel("z")
        ax.grid(alpha=0.3)
        edges = np.linspace(0, 1, bins + 1)
        self.h_r = ah.stairs(np.zeros(bins), edges, fill=True, alpha=0.55, color="tab:green", label="reparam")
        self.h_s = ah.stairs(np.zeros(bins), edges, fill=True, alpha=0.45, color="tab:orange", label="score")
        self.truth = ah.axvline(0, color="black", ls="--", lw=1.5, label="true 2μ")
        ah.set_xlabel("estimate of ∂/∂μ E[z²]")
        ah.set_ylabel(f"trials (of {draws.trials})")
        ah.grid(alpha=0.3)
        self.legend = ah.legend(fontsize=7, loc="upper left")  # its texts are rewritten by each update
        # Blitting (see _Panel): the map's axes stay in the background (its z-limits are fixed by
        # the slider ranges); the histogram's limits follow the estimates, so that Axes is redrawn whole.
        self.dynamic = [self.line, self.dots, ax.title, ah]
        self.needs_full = True
        self._zlim: Optional[Tuple[float, float]] = None
        self._xlim: Optional[Tuple[float, float]] = None
        self._ylim: Optional[Tuple[float, float]] = None

    def update(self, mu: float, sigma: float, n_samples: int) -> Dict[str, float]:
        mu = float(np.clip(_finite(mu), -MU_MAX, MU_MAX))
        sigma = max(_finite(sigma, 1.0), SIGMA_MIN)
        n = _check_count("reparam_explorer", "n_samples", n_samples)
        shown = self.draws(n)["eps"]
        self.line.set_ydata([mu - 3.5 * sigma, mu + 3.5 * sigma])
        self.dots.set_offsets(np.column_stack([shown, mu + sigma * shown]))  # z = μ + σ ε
        zlim = (min(self.z_range[0], mu - 3.6 * sigma), max(self.z_range[1], mu + 3.6 * sigma))
        if zlim != self.z_range:  # only beyond the slider ranges (a μ or σ set from code)
            zlim = _sticky(self._zlim if self._zlim != self.z_range else None, *zlim)
        self.ax_map.set_title(f"{len(shown)} of n = {n} draws: z = μ + σ ε", fontsize=9)
        r, s = self.draws.estimates(mu, sigma, n)
        truth = 2.0 * mu  # ∂/∂μ (μ² + σ²)
        a, b = np.quantile(np.concatenate([r, s]), [0.01, 0.99])
        a, b = min(a, truth, float(r.min())), max(b, truth, float(r.max()))
        if not b > a:  # all estimates equal (σ at its floor and n large): any finite window
            a, b = truth - max(1.0, abs(truth)) * 0.5, truth + max(1.0, abs(truth)) * 0.5
        xlim = _sticky(self._xlim, float(a), float(b))
        edges = np.linspace(*xlim, self.bins + 1)
        cr, _ = np.histogram(np.clip(r, *xlim), bins=edges)  # outliers pile up at the edges
        cs, _ = np.histogram(np.clip(s, *xlim), bins=edges)
        peak = float(max(int(cr.max()), int(cs.max()), 1))
        ylim = self._ylim if self._ylim is not None and 0.5 * self._ylim[1] <= peak <= self._ylim[1] / 1.04 \
            else (0.0, 1.25 * peak)
        self.needs_full = zlim != self._zlim  # the map's axes changed: redraw the whole figure
        self._zlim, self._xlim, self._ylim = zlim, xlim, ylim
        self.ax_map.set_ylim(*zlim)
        self.ax_h.set_xlim(*xlim)
        self.ax_h.set_ylim(*ylim)
        self.h_r.set_data(cr, edges)
        self.h_s.set_data(cs, edges)
        self.truth.set_xdata([truth, truth])
        rv, sv = (float(r.var(ddof=1)), float(s.var(ddof=1))) if len(r) > 1 else (0.0, 0.0)
        for text, label in zip(self.legend.get_texts(), (f"reparameterization: var {rv:.3g}",
                                                        f"score function: var {sv:.3g}",
                                                        f"true gradient 2μ = {truth:.3g}")):
            text.set_text(label)
        self.ax_h.set_title(f"{self.draws.trials} trials, n = {n} samples each", fontsize=9)
        return {"mu": mu, "sigma": sigma, "n_samples": float(n), "true_grad": truth, "reparam_mean": float(r.mean()),
                "reparam_var": rv, "score_mean": float(s.mean()), "score_var": sv,
                "ratio": sv / max(rv, 1e-30)}


def _describe_reparam(s: Dict[str, float]) -> str:
    return (f"true ∂/∂μ E[z²] = 2μ = {s['true_grad']:.3g}. &nbsp; "
            f"reparameterization: mean {s['reparam_mean']:.3g}, "
            f"variance <b>{s['reparam_var']:.3g}</b>; score function: mean {s['score_mean']:.3g}, "
            f"variance <b>{s['score_var']:.3g}</b> ({s['ratio']:.3g}× larger), n = {int(s['n_samples'])}")


def _sample_counts(where: str, sample_counts: Sequence[int], n_samples: Optional[int] = None) -> List[int]:
    """The sample counts, sorted and checked (each at least 1), with ``n_samples`` added."""
    extra = [] if n_samples is None else [n_samples]
    counts = sorted({_check_count(where, "every sample count", c) for c in [*sample_counts, *extra]})
    if not counts:
        raise ValueError(f"{where}: sample_counts is empty; give at least one sample count, e.g. (1, 10, 100)")
    return counts


def _counts_slider(n_samples: int, counts: Sequence[int]) -> widgets.SelectionSlider:
    return widgets.SelectionSlider(options=list(counts), value=n_samples, description="n", continuous_update=True,
                                   layout=widgets.Layout(width="420px"))


def reparam_explorer(mu: float = 0.5, sigma: float = 1.0, n_samples: int = 10,
                     sample_counts: Sequence[int] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), trials: int = 1000,
                     mu_range: Tuple[float, float] = (-2.0, 2.0), sigma_range: Tuple[float, float] = (0.05, 3.0),
                     seed: int = 0, figsize: Tuple[float, float] = (7.6, 3.2), dpi: int = DPI) -> Explorer:
    """The two gradient estimators of ``∂/∂μ E_{z ~ N(μ, σ²)}[z²]`` side by side (chapter 3).

    Left: ``n = n_samples`` draws ``ε`` mapped to ``z = μ + σ ε`` (at most 1000 drawn). Right: histograms of
    ``trials`` independent estimates from :func:`vae_lib.gradient_estimates`, reparameterization
    against score function, with their variances and the true gradient ``2μ`` marked.

    The numbers are exactly those of ``gradient_estimates(μ, σ, n, trials, estimator, seed=seed)``.
    Its seeded draws are taken once per ``n`` when the widget is built (about a second for
    the default ``sample_counts``); for ``f(z) = z²`` both estimators are polynomials in ``μ``,
    ``σ`` and the per-trial moments of ``ε``, so an update then costs ``O(trials)``.

    Args:
        mu: initial μ.
        sigma: initial σ (floored at 1e-3).
        n_samples: initial samples per estimate, ``n`` (added to ``sample_counts`` if missing).
        sample_counts: the values of the ``n`` slider (each at least 1).
        trials: independent estimates per histogram (at least 2: each histogram reports a variance).
        mu_range: ``(min, max)`` of the μ slider.
        sigma_range: ``(min, max)`` of the σ slider.
        seed: seeds the draws (the same ``ε`` at every setting).
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        An :class:`Explorer` with ``controls`` ``{"mu", "sigma", "n_samples"}`` and ``state`` ``{"mu", "sigma", "n_samples",
        "true_grad", "reparam_mean", "reparam_var", "score_mean", "score_var", "ratio"}``.
    """
    n_samples = _check_count("reparam_explorer", "n_samples", n_samples)
    counts = _sample_counts("reparam_explorer", sample_counts, n_samples)
    draws = _LibraryDraws(trials, seed, "reparam_explorer")
    for c in counts:
        draws(c)  # every n's draws now, so that no later update waits for them
    fig = _figure(figsize, dpi)
    s_max = max(sigma_range[1], sigma)
    z_range = (min(mu_range[0], mu) - 3.6 * s_max, max(mu_range[1], mu) + 3.6 * s_max)  # every slider setting fits
    view = _ReparamView(fig, draws, z_range)
    controls = {"mu": _float_slider("μ", mu, *mu_range), "sigma": _float_slider("σ", sigma, *sigma_range),
                "n_samples": _counts_slider(n_samples, counts)}
    return Explorer(controls, {"main": _Panel(fig, view, ("mu", "sigma", "n_samples"), dpi)}, _describe_reparam)


def reparam_scrubber(mu: float = 0.5, sigma: float = 1.0, sample_counts: Sequence[int] = (1, 3, 10, 30, 100, 300, 1000),
                     trials: int = 1000, seed: int = 0, figsize: Tuple[float, float] = (7.6, 3.2),
                     interval: int = 900) -> HTML:
    """The kernel-free twin of :func:`reparam_explorer`: one frame per sample count ``n``.

    Args:
        mu, sigma: the Gaussian ``N(μ, σ²)``, fixed for all frames.
        sample_counts: the values of ``n``, one frame each.
        trials: independent estimates per histogram.
        seed: seeds the draws.
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    counts = _sample_counts("reparam_scrubber", sample_counts)
    draws = _LibraryDraws(trials, seed, "reparam_scrubber")

    def draw(fig: Figure, n) -> None:
        z = 3.6 * sigma + abs(mu)
        _ReparamView(_pad(fig), draws, (-z, z)).update(mu, sigma, n)

    return jshtml_scrubber(draw, counts, figsize, interval)
