"""Chapter 5's widget: move through the latent plane, traverse one dimension, or interpolate
between two inputs, and watch the decoded image.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ._base import (
    _check_count, _Codes, _figure, _finite, _float_slider, _image_axes, _int_slider, _nice_step, _pad, _Panel,
    _plane_limit, DPI, Explorer, MAX_FRAMES,
)
from ..device import model_device
from ..plots import jshtml_scrubber, latent_axes, tile_images

__all__ = ["latent_explorer", "latent_scrubber"]


class _Plane:
    """What the three latent views share: the model, the inputs, their cached codes and the plane drawn.

    Each view holds one (``view.plane``) instead of copying its attributes.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, codes: _Codes, dims: Tuple[int, int],
                 center: torch.Tensor):
        self.model, self.x, self.codes = model, x, codes
        self.mu = codes.mu  # [N, D] codes (posterior means) of every input
        self.dims, self.center = tuple(dims), center
        self.dev = model_device(model)

    def draw(self, ax: Axes, extent: float) -> None:
        """The cloud of codes on a square latent plane that holds ``[-extent, extent]²``."""
        self.codes.scatter(ax)
        latent_axes(ax, self.dims, max(float(extent), _plane_limit(self.codes.cloud)))
        ax.tick_params(labelsize=7)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode_mean(z.to(self.dev)).cpu()  # [B, C, H, W] in [0, 1]

    def index(self, i) -> int:
        return int(min(max(int(i), 0), self.x.shape[0] - 1))


class _MoveView:
    """(a) A point (z1, z2) on the plane of codes, decoded live."""

    def __init__(self, fig: Figure, plane: _Plane, extent: float):
        self.plane = plane
        gs = fig.add_gridspec(1, 2, width_ratios=(1.25, 1))
        self.ax, ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        plane.draw(self.ax, extent)
        self.mark = self.ax.scatter([0], [0], marker="*", s=180, c="tab:red", ec="black", lw=0.6, zorder=4)
        self.ax.set_title("codes of the data" + (" (colour = label)" if plane.codes.labels is not None else ""),
                          fontsize=9)
        self.art = _image_axes(ax_img, torch.zeros(1, *plane.x.shape[1:]), 1, "")
        self.ax_img = ax_img
        self.dynamic = [self.mark, self.art, ax_img.title]
        self.needs_full = False

    def update(self, z1: float, z2: float) -> Dict[str, float]:
        z1, z2 = _finite(z1), _finite(z2)
        p = self.plane
        z = p.center.clone()
        z[p.dims[0]], z[p.dims[1]] = z1, z2  # other dimensions stay at `center`
        img = p.decode(z[None])
        self.mark.set_offsets([[z1, z2]])
        self.art.set_data(tile_images(img, 1))
        self.ax_img.set_title(f"decoded z = ({z1:.2f}, {z2:.2f})", fontsize=9)
        return {"z1": z1, "z2": z2, "move_pixel_mean": _finite(img.mean())}


class _TraverseView:
    """(b) One latent dimension swept from −extent to extent, the others at an input's posterior mean."""

    def __init__(self, fig: Figure, plane: _Plane, extent: float, steps: int):
        self.plane, self.extent, self.steps = plane, float(extent), steps
        gs = fig.add_gridspec(1, 2, width_ratios=(1, 2.4))
        self.ax, self.ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        plane.draw(self.ax, extent)
        (self.path,) = self.ax.plot([0, 0], [0, 0], "-o", color="tab:red", ms=3, lw=1.5, zorder=4)
        self.art = _image_axes(self.ax_img, torch.zeros(steps, *plane.x.shape[1:]), steps, "")
        self.dynamic = [self.path, self.art, self.ax.title, self.ax_img.title]
        self.needs_full = False

    def update(self, dim: int, base: int) -> Dict[str, float]:
        p = self.plane
        d, i = int(dim), p.index(base)
        z = p.mu[i].clone().repeat(self.steps, 1)  # start from μ(x_base), [T, D]
        z[:, d] = torch.linspace(-self.extent, self.extent, self.steps)  # sweep z_d over the prior's range
        imgs = p.decode(z)
        self.path.set_data(z[:, p.dims[0]].numpy(), z[:, p.dims[1]].numpy())
        self.art.set_data(tile_images(imgs, self.steps))
        self.ax.set_title(f"path of z (input {i})", fontsize=9)
        self.ax_img.set_title(f"$z_{{{d + 1}}}$ from {-self.extent:g} to {self.extent:g}, other dimensions at μ(x)",
                              fontsize=9)
        return {"dim": float(d), "base": float(i), "traverse_pixel_mean": _finite(imgs.mean())}


class _InterpolateView:
    """(c) z(t) = (1 − t) μ(a) + t μ(b), decoded, between two inputs."""

    def __init__(self, fig: Figure, plane: _Plane, extent: float):
        self.plane = plane
        gs = fig.add_gridspec(1, 2, width_ratios=(1.1, 1.5))
        self.ax, self.ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        plane.draw(self.ax, extent)
        (self.seg,) = self.ax.plot([0, 0], [0, 0], "-", color="tab:red", lw=1.5, zorder=3)
        self.ends = self.ax.scatter([0, 0], [0, 0], s=40, c="tab:red", marker="s", zorder=4)
        self.mark = self.ax.scatter([0], [0], marker="*", s=180, c="gold", ec="black", lw=0.6, zorder=5)
        self.art = _image_axes(self.ax_img, torch.zeros(3, *plane.x.shape[1:]), 3, "")
        self.dynamic = [self.seg, self.ends, self.mark, self.art, self.ax.title, self.ax_img.title]
        self.needs_full = False

    def update(self, a: int, b: int, t: float) -> Dict[str, float]:
        pl = self.plane
        i, j, t = pl.index(a), pl.index(b), float(np.clip(_finite(t), 0.0, 1.0))
        za, zb = pl.mu[i], pl.mu[j]
        z = (1 - t) * za + t * zb  # z(t) = (1 − t)·μ(a) + t·μ(b), [D]
        img = pl.decode(z[None])
        p, q = pl.dims
        self.seg.set_data([float(za[p]), float(zb[p])], [float(za[q]), float(zb[q])])
        self.ends.set_offsets([[float(za[p]), float(za[q])], [float(zb[p]), float(zb[q])]])
        self.mark.set_offsets([[float(z[p]), float(z[q])]])
        self.art.set_data(tile_images(torch.cat([pl.x[i:i + 1], img, pl.x[j:j + 1]]), 3))
        self.ax.set_title(f"μ(a) → μ(b), t = {t:.2f}", fontsize=9)
        self.ax_img.set_title(f"input a = {i} | decoded z(t) | input b = {j}", fontsize=9)
        return {"a": float(i), "b": float(j), "t": t, "zt_1": float(z[p]), "zt_2": float(z[q]),
                "interp_pixel_mean": _finite(img.mean())}


def _latent_plane(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], dims: Tuple[int, int],
                  extent: float, steps: int, max_points: int, seed: int, center: Optional[torch.Tensor],
                  where: str) -> _Plane:
    _check_count(where, "steps", steps)
    if not (math.isfinite(float(extent)) and float(extent) > 0):
        raise ValueError(f"{where}: extent must be a finite number > 0 (the plane spans [-extent, extent]), "
                         f"got {extent}")
    x = model.check_input(x, where).detach().cpu()
    codes = _Codes(model, x, y, dims, max_points, seed, where)
    d = codes.mu.shape[1]
    if center is not None and center.numel() != d:
        raise ValueError(f"{where}: center must have latent_dim={d} values, got {center.numel()}")
    c = torch.zeros(d) if center is None else center.detach().float().cpu().reshape(-1).clone()
    return _Plane(model, x, codes, dims, c)


def _describe_latent(s: Dict[str, float]) -> str:
    return (f"(a) z = ({s['z1']:.2f}, {s['z2']:.2f}); (b) traversing z<sub>{int(s['dim']) + 1}</sub> "
            f"from input {int(s['base'])}; (c) t = {s['t']:.2f} between inputs {int(s['a'])} and {int(s['b'])}")


def latent_explorer(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    dims: Tuple[int, int] = (0, 1), extent: float = 3.0, steps: int = 9, a: int = 0, b: int = 1,
                    center: Optional[torch.Tensor] = None, max_points: int = 2000, seed: int = 0,
                    figsize: Tuple[float, float] = (7.0, 3.2), dpi: int = DPI) -> Explorer:
    """Three ways through the latent space, one tab each (chapter 5).

    * **move a point**: a point ``(z1, z2)`` in the plane ``dims`` (the other dimensions at
      ``center``), marked on the cloud of the data's codes and decoded live;
    * **traverse a dimension**: one chosen dimension swept from ``−extent`` to ``extent`` in
      ``steps`` images, the others held at the posterior mean of a chosen input;
    * **interpolate**: ``z(t) = (1 − t) μ(a) + t μ(b)`` between two chosen inputs.

    Args:
        model: a (trained) :class:`vae_lib.VAE` or :class:`vae_lib.Autoencoder`, latent size ≥ 2.
        x: images ``[N, C, H, W]`` in ``[0, 1]``; their codes are computed once.
        y: optional labels ``[N]`` to colour the cloud of codes.
        dims: the two latent dimensions of the plane.
        extent: the plane's slider range ``[−extent, extent]`` and the traversal's range (> 0).
        steps: images in a traversal (at least 1).
        a, b: the inputs interpolated between at first.
        center: ``[D]`` values of the dimensions the sliders of the first tab do not move; default zeros.
        max_points: at most this many codes in the cloud (a seeded subset, at least 1).
        seed: seeds that subset.
        figsize: size of each tab's figure in inches.
        dpi: resolution of the pictures.

    Returns:
        An :class:`Explorer` holding an ``ipywidgets.Tab``; ``controls`` ``{"z1", "z2", "dim", "base", "a", "b",
        "t"}``, ``images`` ``{"move", "traverse", "interpolate"}`` and ``state`` ``{"z1", "z2",
        "move_pixel_mean", "dim", "base", "traverse_pixel_mean", "a", "b", "t", "zt_1", "zt_2",
        "interp_pixel_mean"}``.
    """
    plane = _latent_plane(model, x, y, dims, extent, steps, max_points, seed, center, "latent_explorer")
    n, d = plane.x.shape[0], plane.mu.shape[1]
    figs = {k: _figure(figsize, dpi) for k in ("move", "traverse", "interpolate")}
    panels = {
        "move": _Panel(figs["move"], _MoveView(figs["move"], plane, extent), ("z1", "z2"), dpi),
        "traverse": _Panel(figs["traverse"], _TraverseView(figs["traverse"], plane, extent, steps), ("dim", "base"),
                           dpi),
        "interpolate": _Panel(figs["interpolate"], _InterpolateView(figs["interpolate"], plane, extent),
                              ("a", "b", "t"), dpi),
    }
    step = _nice_step(-extent, extent)
    controls = {
        "z1": _float_slider(f"z{dims[0] + 1}", 0.0, -extent, extent, step),
        "z2": _float_slider(f"z{dims[1] + 1}", 0.0, -extent, extent, step),
        "dim": widgets.Dropdown(options=[(f"z{k + 1}", k) for k in range(d)], value=dims[0], description="dimension"),
        "base": _int_slider("from input", a, 0, n - 1),
        "a": _int_slider("input a", a, 0, n - 1),
        "b": _int_slider("input b", b, 0, n - 1),
        "t": _float_slider("t", 0.5, 0.0, 1.0, 0.05),
    }
    tab = widgets.Tab(children=[
        widgets.VBox([controls["z1"], controls["z2"], panels["move"].image]),
        widgets.VBox([widgets.HBox([controls["dim"], controls["base"]]), panels["traverse"].image]),
        widgets.VBox([controls["a"], controls["b"], controls["t"], panels["interpolate"].image]),
    ], titles=("(a) move a point", "(b) traverse a dimension", "(c) interpolate"))
    return Explorer(controls, panels, _describe_latent, layout=[tab])


def latent_scrubber(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None, mode: str = "move",
                    values: Optional[Sequence] = None, dims: Tuple[int, int] = (0, 1), extent: float = 3.0,
                    steps: int = 9, a: int = 0, b: int = 1, center: Optional[torch.Tensor] = None,
                    max_points: int = 1000, seed: int = 0, figsize: Tuple[float, float] = (7.0, 3.2),
                    interval: int = 700) -> HTML:
    """The kernel-free twin of :func:`latent_explorer`, one tab at a time.

    Args:
        model: a (trained) :class:`vae_lib.VAE` or :class:`vae_lib.Autoencoder`.
        x: images ``[N, C, H, W]``.
        y: optional labels ``[N]``.
        mode: ``"move"`` (frames: points ``(z1, z2)``; default 12 points on a circle of radius
            ``0.7·extent``), ``"traverse"`` (frames: the dimension swept, from input ``a``; default
            every dimension, at most 12) or ``"interpolate"`` (frames: ``t`` from ``a`` to ``b``;
            default 11 steps from 0 to 1).
        values: the frames, as just described.
        dims, extent, steps, a, b, center, seed: as for :func:`latent_explorer`.
        max_points: at most this many codes in the cloud (fewer than the widget: smaller frames).
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    plane = _latent_plane(model, x, y, dims, extent, steps, max_points, seed, center, "latent_scrubber")
    if mode == "move":
        ang = np.linspace(0, 2 * math.pi, MAX_FRAMES, endpoint=False)
        vals = list(values) if values is not None else [(0.7 * extent * math.cos(t), 0.7 * extent * math.sin(t))
                                                        for t in ang]

        def draw(fig: Figure, v) -> None:
            _MoveView(_pad(fig), plane, extent).update(*v)
    elif mode == "traverse":
        vals = list(values) if values is not None else list(range(min(plane.mu.shape[1], MAX_FRAMES)))

        def draw(fig: Figure, v) -> None:
            _TraverseView(_pad(fig), plane, extent, steps).update(v, a)
    elif mode == "interpolate":
        vals = list(values) if values is not None else np.linspace(0, 1, 11).tolist()

        def draw(fig: Figure, v) -> None:
            _InterpolateView(_pad(fig), plane, extent).update(a, b, v)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose 'move', 'traverse' or 'interpolate'")
    return jshtml_scrubber(draw, vals, figsize, interval)
