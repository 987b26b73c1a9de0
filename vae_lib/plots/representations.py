"""Figures of Part II, chapter 8 (representations and anomaly scores): probe accuracy against
the number of labels, anomaly-score histograms, example tiles of each input set, ROC curves,
and the frames of a threshold scrubber.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import new_figure, show_images

__all__ = ["plot_probe_curve", "plot_score_histograms", "plot_input_sets", "plot_roc_curves", "draw_threshold"]


def plot_probe_curve(rows: Sequence, title: str = "linear probe on few labels") -> Figure:
    """Test accuracy against the number of labels (log axis), one line per representation.

    ``rows``: :class:`vae_lib.probes.ProbeRow` objects (``name``, ``n_labels``, ``mean``,
    ``se``); the error bars are ± one standard error over seeds.
    """
    if not rows:
        raise ValueError("plot_probe_curve: no rows to draw; pass the output of vl.probes.probe_curve")
    fig = new_figure((5.4, 3.6))
    ax = fig.add_subplot()
    names = list(dict.fromkeys(r.name for r in rows))
    for i, name in enumerate(names):
        mine = sorted((r for r in rows if r.name == name), key=lambda r: r.n_labels)
        x = np.array([r.n_labels for r in mine], dtype=float) * (1 + 0.04 * (i - (len(names) - 1) / 2))  # dodge
        ax.errorbar(x, [100 * r.mean for r in mine], yerr=[100 * r.se for r in mine], marker="o", ms=4,
                    capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _numpy(s) -> np.ndarray:
    return s.detach().cpu().double().numpy() if isinstance(s, torch.Tensor) else np.asarray(s, dtype=float)


def plot_score_histograms(scores: Mapping[str, torch.Tensor], xlabel: str = "−log p(x)  [nats per image]",
                          reference: Optional[str] = None, bins: int = 40, log_x: bool = False,
                          ax: Optional[Axes] = None, title: Optional[str] = None) -> Figure:
    """One step histogram per input set of its scores (``{name: [N]}``), on shared bins.

    ``reference`` names the in-distribution set, drawn filled in grey. ``log_x`` uses a log
    axis (and log-spaced bins) for scores spanning orders of magnitude; it needs positive scores.
    """
    if not scores:
        raise ValueError("plot_score_histograms: no scores to draw")
    arrays = {k: _numpy(v) for k, v in scores.items()}
    every = np.concatenate(list(arrays.values()))
    if log_x and every.min() <= 0:
        raise ValueError("plot_score_histograms: log_x needs positive scores")
    edges = (np.geomspace(every.min(), every.max(), bins + 1) if log_x
             else np.linspace(every.min(), every.max(), bins + 1))
    fig = ax.figure if ax is not None else new_figure((6.4, 3.6))
    ax = ax if ax is not None else fig.add_subplot()
    for name, a in arrays.items():
        if name == reference:
            ax.hist(a, bins=edges, color="0.6", alpha=0.6, label=f"{name} (in-distribution)")
        else:
            ax.hist(a, bins=edges, histtype="step", lw=1.4, label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def plot_input_sets(sets: Mapping[str, torch.Tensor], n: int = 8, scale: float = 0.45) -> Figure:
    """The first ``n`` images of every set (``{name: [N, 1, H, W]}``), one labelled row per set."""
    if not sets or n < 1:
        raise ValueError("plot_input_sets: pass a non-empty dict of image sets and n >= 1")
    fig = new_figure((n * scale + 1.6, len(sets) * scale + 0.2))
    axes = fig.subplots(len(sets), 1, squeeze=False)[:, 0]
    for ax, (name, x) in zip(axes, sets.items()):
        show_images(ax, x[:n], nrow=n)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    return fig


def plot_roc_curves(curves: Mapping[str, tuple], title: str = "ROC curves") -> Figure:
    """ROC curves ``{name: (fpr, tpr)}`` (from :func:`vae_lib.anomaly.roc_points`) with the chance diagonal."""
    if not curves:
        raise ValueError("plot_roc_curves: no curves to draw")
    fig = new_figure((4.2, 3.9))
    ax = fig.add_subplot()
    for name, (fpr, tpr) in curves.items():
        ax.plot(_numpy(fpr), _numpy(tpr), lw=1.4, label=name)
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1)
    ax.set_xlabel("false-alarm rate (held-out digits flagged)")
    ax.set_ylabel("detection rate (anomalies flagged)")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    return fig


def draw_threshold(fig: Figure, threshold: float, scores: Mapping[str, torch.Tensor],
                   xlabel: str = "−log p(x)  [nats per image]") -> None:
    """Redraw ``fig`` as the share of each set flagged at ``threshold`` (score ≥ threshold), as bars.

    A frame of a threshold scrubber (:func:`vae_lib.plots.jshtml_scrubber`) or the body of a
    widget callback: clears ``fig`` first, draws one horizontal bar per set of ``scores``.
    """
    fig.clear()
    ax = fig.add_subplot()
    names = list(scores)
    shares = [100 * float((_numpy(scores[k]) >= threshold).mean()) for k in names]
    ax.barh(range(len(names)), shares, color=["0.6" if i == 0 else "tab:red" for i in range(len(names))])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"flagged as anomalous [%]  ({xlabel} ≥ {threshold:.0f})")
    for i, s in enumerate(shares):
        ax.text(min(s + 1, 88), i, f"{s:.0f}%", va="center", fontsize=7)
    ax.grid(alpha=0.3, axis="x")
