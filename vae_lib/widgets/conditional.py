"""Chapter 7 widget: one style code z decoded with every label, and its kernel-free twin.

:func:`style_explorer` moves a code along two latent dimensions (the others held at ``center``)
and shows the digit a :class:`vae_lib.conditional.ConditionalVAE` paints for the chosen label,
large, beside the same code decoded with every label. :func:`style_scrubber` precomputes the same
picture for a few codes and plays them without a kernel.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.figure import Figure
from torch import nn

from ._base import _check_count, _figure, _finite, _float_slider, _image_axes, _nice_step, _pad, _Panel, DPI, \
    Explorer, MAX_FRAMES
from ..conditional import decode_every_label, style_statistics
from ..device import model_device
from ..plots import jshtml_scrubber, tile_images

__all__ = ["style_explorer", "style_scrubber"]


class _Style:
    """The model, the plane of two dimensions moved, and the code the other dimensions are held at."""

    def __init__(self, model: nn.Module, dims: Tuple[int, int], extent: float, center: Optional[torch.Tensor],
                 where: str):
        if not getattr(model, "conditional", False) or not hasattr(model, "n_classes"):
            raise TypeError(f"{where} needs a conditional model with n_classes (such as "
                            f"vae_lib.conditional.ConditionalVAE), got {type(model).__name__}")
        d = model.latent_dim
        dims = tuple(int(k) for k in dims)
        if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= k < d for k in dims):
            raise ValueError(f"{where}: dims must be two different latent dimensions in [0, {d}), got {dims}")
        if not (math.isfinite(float(extent)) and float(extent) > 0):
            raise ValueError(f"{where}: extent must be a finite number > 0 (the sliders span [-extent, extent]), "
                             f"got {extent}")
        if center is not None and center.numel() != d:
            raise ValueError(f"{where}: center must have latent_dim={d} values, got {center.numel()}")
        self.model, self.dims, self.extent = model, dims, float(extent)
        self.n_classes = int(model.n_classes)
        self.center = torch.zeros(d) if center is None else center.detach().float().cpu().reshape(-1).clone()
        self.dev = model_device(model)

    def code(self, z1: float, z2: float) -> torch.Tensor:
        z = self.center.clone()
        z[self.dims[0]], z[self.dims[1]] = _finite(z1), _finite(z2)  # move two dimensions, hold the rest
        return z

    def label(self, value) -> int:
        return int(min(max(int(value), 0), self.n_classes - 1))


class _EveryLabelView:
    """The chosen label's digit at ``z``, large, and ``z`` decoded with every label."""

    def __init__(self, fig: Figure, style: _Style):
        self.style = style
        gs = fig.add_gridspec(1, 2, width_ratios=(1, 3.2))
        self.ax_one, self.ax_all = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        shape = style.model.input_shape
        self.one = _image_axes(self.ax_one, torch.zeros(1, *shape), 1, "")
        k = style.n_classes
        self.nrow = k if k <= 5 else math.ceil(k / 2)  # one or two rows of labels
        self.all = _image_axes(self.ax_all, torch.zeros(k, *shape), self.nrow, "")
        self.dynamic = [self.one, self.all, self.ax_one.title, self.ax_all.title]
        self.needs_full = False

    @torch.no_grad()
    def update(self, z1: float, z2: float, label: int) -> Dict[str, float]:
        st = self.style
        z = st.code(z1, z2)
        lab = st.label(label)
        imgs = decode_every_label(st.model, z[None].to(st.dev))[0].cpu()  # [K, C, H, W]
        self.one.set_data(tile_images(imgs[lab:lab + 1], 1))
        self.all.set_data(tile_images(imgs, self.nrow))
        d1, d2 = st.dims
        self.ax_one.set_title(f"label {lab}", fontsize=9)
        self.ax_all.set_title(f"the same z, every label: z{d1 + 1} = {z[d1]:.2f}, z{d2 + 1} = {z[d2]:.2f}",
                              fontsize=9)
        state = {"z1": float(z[d1]), "z2": float(z[d2]), "label": float(lab)}
        if imgs.shape[1] == 1:
            s = style_statistics(imgs[lab:lab + 1])
            state.update(slant=_finite(s["slant"][0]), ink=_finite(s["ink"][0]))
        return state


def _describe_style(s: Dict[str, float]) -> str:
    text = f"z = ({s['z1']:.2f}, {s['z2']:.2f}), label {int(s['label'])}"
    if "slant" in s:
        text += f": slant {s['slant']:.2f} columns per row, ink {s['ink']:.1f} pixels"
    return text


def style_explorer(model: nn.Module, dims: Tuple[int, int] = (0, 1), extent: float = 3.0, label: int = 0,
                   center: Optional[torch.Tensor] = None, figsize: Tuple[float, float] = (7.0, 2.6),
                   dpi: int = DPI) -> Explorer:
    """Move a style code and watch every digit follow it (chapter 7).

    Two sliders set ``z`` along the latent dimensions ``dims`` (the others at ``center``); a
    dropdown picks the label shown large on the left. On the right the same ``z`` is decoded with
    every label: if ``z`` holds the style, all of them lean and thicken together.

    Args:
        model: a (trained) :class:`vae_lib.conditional.ConditionalVAE`.
        dims: the two latent dimensions the sliders move (different, in ``[0, latent_dim)``).
        extent: the sliders span ``[−extent, extent]`` (> 0); the prior's ±3σ by default.
        label: the label shown large at first.
        center: ``[D]`` values of the other dimensions; default zeros (the prior's mean).
        figsize: size of the figure in inches.
        dpi: resolution of the picture.

    Returns:
        An :class:`Explorer`; ``controls`` ``{"z1", "z2", "label"}``, ``images`` ``{"style"}`` and
        ``state`` ``{"z1", "z2", "label", "slant", "ink"}`` (slant and ink of the large digit, from
        :func:`vae_lib.conditional.style_statistics`; grey images only).
    """
    style = _Style(model, dims, extent, center, "style_explorer")
    fig = _figure(figsize, dpi)
    panels = {"style": _Panel(fig, _EveryLabelView(fig, style), ("z1", "z2", "label"), dpi)}
    step = _nice_step(-extent, extent)
    d1, d2 = style.dims
    controls = {
        "z1": _float_slider(f"z{d1 + 1}", float(style.center[d1]), -extent, extent, step),
        "z2": _float_slider(f"z{d2 + 1}", float(style.center[d2]), -extent, extent, step),
        "label": widgets.Dropdown(options=[(str(k), k) for k in range(style.n_classes)], value=style.label(label),
                                  description="label"),
    }
    return Explorer(controls, panels, _describe_style)


def style_scrubber(model: nn.Module, values: Optional[Sequence[Tuple[float, float]]] = None,
                   n_frames: int = MAX_FRAMES, dims: Tuple[int, int] = (0, 1), extent: float = 3.0, label: int = 0,
                   center: Optional[torch.Tensor] = None, figsize: Tuple[float, float] = (7.0, 2.6),
                   interval: int = 600) -> HTML:
    """The kernel-free twin of :func:`style_explorer`: one precomputed frame per code.

    Args:
        model: a (trained) :class:`vae_lib.conditional.ConditionalVAE`.
        values: the frames, as ``(z1, z2)`` pairs along ``dims``; default ``n_frames`` points on a
            circle of radius ``0.7·extent`` around ``center``.
        n_frames: frames of the default circle (at least 1; the default keeps the page small).
        dims, extent, label, center: as for :func:`style_explorer`.
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    style = _Style(model, dims, extent, center, "style_scrubber")
    if values is None:
        n = _check_count("style_scrubber", "n_frames", n_frames)
        ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
        c1, c2 = float(style.center[style.dims[0]]), float(style.center[style.dims[1]])
        values = [(c1 + 0.7 * extent * math.cos(t), c2 + 0.7 * extent * math.sin(t)) for t in ang]
    values = [tuple(v) for v in values]
    if not values or any(len(v) != 2 for v in values):
        raise ValueError(f"style_scrubber: values must be a non-empty list of (z1, z2) pairs, got {values!r}")

    def draw(fig: Figure, v) -> None:
        _EveryLabelView(_pad(fig), style).update(v[0], v[1], label)

    return jshtml_scrubber(draw, values, figsize, interval)
