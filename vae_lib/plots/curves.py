"""Curves and bars: training histories, the rate–distortion curve, per-unit KL, the KL
landscape, Monte Carlo convergence, and ELBO against IWAE bounds.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import new_figure

__all__ = [
    "plot_loss_curves", "plot_rate_distortion", "plot_kl_landscape", "plot_mc_convergence",
    "plot_elbo_vs_iwae", "plot_history_comparison", "plot_bound_vs_k", "plot_kl_per_dim",
]


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
