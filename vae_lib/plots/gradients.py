"""Chapter 3's figures: the reparameterized computation graph and the variance of the two
gradient estimators.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import new_figure

__all__ = ["plot_reparam_graph", "plot_gradient_variance"]


def _graph_node(ax: Axes, xy: Tuple[float, float], text: str, kind: str = "det"):
    """One node of a computation-graph sketch: ``kind`` is 'param', 'noise', 'random' or 'det'."""
    style = {"param": ("round,pad=0.35", "#dbe9f6", "tab:blue"), "noise": ("round,pad=0.35", "#eeeeee", "grey"),
             "random": ("sawtooth,pad=0.4", "#fbe0dc", "tab:red"), "det": ("round,pad=0.35", "#e3f3e0", "tab:green")}
    box, face, edge = style[kind]
    return ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=10, zorder=3,
                   bbox=dict(boxstyle=box, fc=face, ec=edge, lw=1.4))


def _graph_edge(ax: Axes, a, b, color: str = "black", dashed: bool = False) -> None:
    """An arrow from node ``a`` to node ``b`` (Text objects from ``_graph_node``), clipped at their boxes."""
    ax.annotate("", xy=b.get_position(), xytext=a.get_position(), zorder=2, arrowprops=dict(
        arrowstyle="-|>", color=color, lw=1.3, ls="--" if dashed else "-", shrinkA=3, shrinkB=3,
        patchA=a.get_bbox_patch(), patchB=b.get_bbox_patch()))


def _graph_backward(ax: Axes, a: Tuple[float, float], b: Tuple[float, float], color: str, label: str,
                    offset: Tuple[float, float]) -> None:
    """A dashed backward-pass arrow from point ``a`` to point ``b`` with a label beside it."""
    ax.annotate("", xy=b, xytext=a, zorder=2, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2, ls="--"))
    ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], label, color=color, fontsize=9,
            ha="center", va="center")


def plot_reparam_graph() -> Figure:
    """Two computation graphs for ``L = f(z)``, ``z ~ N(μ, σ²)``: sampling as a node (left; the
    backward pass stops at it) and the reparameterized ``z = μ + σ·ε`` with ``ε ~ N(0, 1)`` an
    input (right; gradients reach μ and σ). Solid arrows: forward pass; dashed: backward pass.
    A schematic: no data, no units."""
    fig = new_figure((9.4, 3.6))
    axes = fig.subplots(1, 2)
    for ax in axes:
        ax.set_xlim(0, 4)
        ax.set_ylim(0, 3.1)
        ax.set_axis_off()
    pm, ps, pz, pf = (0.35, 2.3), (0.35, 0.7), (1.9, 1.5), (3.5, 1.5)
    ax = axes[0]
    ax.set_title("sampling inside the graph: .sample()", fontsize=10)
    m, s = _graph_node(ax, pm, "μ", "param"), _graph_node(ax, ps, "σ", "param")
    z, f = _graph_node(ax, pz, "z ~ N(μ, σ²)", "random"), _graph_node(ax, pf, "L = f(z)", "det")
    for node in (m, s):
        _graph_edge(ax, node, z)
    _graph_edge(ax, z, f)
    _graph_backward(ax, (3.3, 1.15), (2.3, 1.15), "tab:green", "∂L/∂z", (0, -0.17))
    for y in (2.0, 1.0):
        ax.text(0.95, y, "✗", color="tab:red", fontsize=18, ha="center", va="center", zorder=4)
    ax.text(2.0, 0.25, "∂z/∂μ, ∂z/∂σ: undefined for a fresh random draw,\nso the backward pass stops at z",
            color="tab:red", fontsize=9, ha="center", va="center")
    ax = axes[1]
    ax.set_title("reparameterized: z = μ + σ·ε, .rsample()", fontsize=10)
    m, s = _graph_node(ax, pm, "μ", "param"), _graph_node(ax, ps, "σ", "param")
    e = _graph_node(ax, (1.9, 2.8), "ε ~ N(0, 1)", "noise")
    z, f = _graph_node(ax, pz, "z = μ + σ·ε", "det"), _graph_node(ax, pf, "L = f(z)", "det")
    for node in (m, s):
        _graph_edge(ax, node, z)
    _graph_edge(ax, e, z, "grey")
    _graph_edge(ax, z, f)
    _graph_backward(ax, (3.3, 1.15), (2.5, 1.15), "tab:green", "∂L/∂z", (0, -0.17))
    _graph_backward(ax, (1.59, 1.86), (0.74, 2.3), "tab:green", "∂z/∂μ = 1", (0.15, 0.2))
    _graph_backward(ax, (1.59, 1.14), (0.74, 0.7), "tab:green", "∂z/∂σ = ε", (0.15, -0.2))
    ax.text(1.9, 0.25, "ε is an input, like the data: no gradient needed", color="grey", fontsize=9,
            ha="center", va="center")
    return fig


def plot_gradient_variance(rows: Sequence[Dict[str, float]], true_value: Optional[float] = None,
                           per_sample_var: Optional[Dict[str, float]] = None) -> Figure:
    """Left: variance of the two gradient estimators against the number of samples ``n`` (log-log);
    right: their means ± one standard deviation across trials, with the true gradient.

    Args:
        rows: :func:`vae_lib.gradient_variance_table` output, one dict per ``n`` with ``reparam_mean``,
            ``reparam_var``, ``score_mean``, ``score_var`` (units of the gradient, squared for variances).
        true_value: the exact gradient, drawn as a horizontal line on the right.
        per_sample_var: optional exact one-sample variances ``{"reparam": v1, "score": v2}``; drawn
            as the dotted lines ``v/n`` on the left.
    """
    n = np.array([r["n_samples"] for r in rows], dtype=float)
    fig = new_figure((9.0, 3.6))
    left, right = fig.subplots(1, 2)
    styles = {"reparam": ("tab:blue", "o", "reparameterization"), "score": ("tab:red", "s", "score function")}
    for key, (color, marker, name) in styles.items():
        var = np.array([r[f"{key}_var"] for r in rows])
        mean = np.array([r[f"{key}_mean"] for r in rows])
        left.loglog(n, var, marker=marker, color=color, label=name)
        if per_sample_var is not None and key in per_sample_var:
            left.loglog(n, per_sample_var[key] / n, ":", color=color, lw=1)
        shift = 1.06 if key == "score" else 1 / 1.06  # side by side, not on top of each other
        right.errorbar(n * shift, mean, yerr=np.sqrt(var), fmt=marker, color=color, capsize=3, ms=4, label=name)
    left.set_xlabel("samples per estimate, n")
    left.set_ylabel("variance of the estimate")
    left.set_title("variance falls like 1/n for both" + (" (dotted: exact)" if per_sample_var else ""),
                   fontsize=10)
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    right.set_xscale("log")
    if true_value is not None:
        right.axhline(true_value, color="black", lw=1, ls="--", label="true gradient")
    right.set_xlabel("samples per estimate, n")
    right.set_ylabel("estimate: mean ± 1 std")
    right.set_title("both are centred on the true gradient", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return fig
