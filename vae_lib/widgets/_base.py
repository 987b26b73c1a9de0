"""What every explorer and scrubber shares: the limits on inputs, slider factories, the
picture panel, and the explorer box that redraws it when a control moves.
"""
from __future__ import annotations

import io
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ..plots.core import CMAP, _encode_means, new_figure, tile_images

SIGMA_MIN = 1e-3  # σ is floored here for densities and sampling (σ → 0 would divide by zero)
MU_MAX = 1e6  # |μ| is capped here so μ² and the score estimates stay finite in float32
DPI = 80  # resolution of the live pictures; figures are a few inches wide
MAX_FRAMES = 12  # default frame budget of a scrubber: a few hundred KB per page


def _encode_png(fig: Figure) -> bytes:
    """The canvas as drawn now, as PNG bytes (Pillow, fastest compression: the pictures are small)."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    rgb = PILImage.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")  # opaque figure: drop alpha
    rgb.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _figure(figsize: Tuple[float, float], dpi: int) -> Figure:
    """A pyplot-free figure (:func:`vae_lib.plots.new_figure`) with room for titles above equal-aspect axes."""
    return _pad(new_figure(figsize, dpi=dpi))


def _pad(fig: Figure) -> Figure:
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(h_pad=0.1, w_pad=0.1)  # room for titles over equal-aspect axes, and for tick labels
    return fig


def _finite(v: float, default: float = 0.0) -> float:
    v = float(v)
    return v if math.isfinite(v) else default


def _nice_step(lo: float, hi: float, n: int = 100) -> float:
    """A round slider step: the power of ten just below ``(hi − lo) / n``."""
    span = abs(hi - lo)
    return 10.0 ** math.floor(math.log10(span / n)) if span > 0 else 0.1


def _float_slider(name: str, value: float, lo: float, hi: float, step: Optional[float] = None,
                  fmt: str = ".2f") -> widgets.FloatSlider:
    lo, hi = min(lo, value), max(hi, value)  # never clamp the value the caller asked for
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step or _nice_step(lo, hi), description=name,
                               readout_format=fmt, continuous_update=True,
                               layout=widgets.Layout(width="420px"))


def _int_slider(name: str, value: int, lo: int, hi: int) -> widgets.IntSlider:
    return widgets.IntSlider(value=min(max(int(value), lo), hi), min=lo, max=hi, description=name,
                             continuous_update=True, layout=widgets.Layout(width="420px"))


class _Panel:
    """One figure, the object that redraws it, and the Image widget that shows it.

    ``view.update(**values) -> dict`` changes the artists' data in place (they are created
    once) and returns the numbers shown. ``names``: the controls the view reads.

    Blitting: a view may list in ``view.dynamic`` the artists that its updates change. The
    rest of the figure (axes, ticks, labels, the cloud of codes) is then drawn once and kept
    as a bitmap; an update pastes that bitmap back and draws only the dynamic artists, which
    is several times faster than a full draw. A view sets ``view.needs_full = True`` when an
    update changed something static too (axis limits): that update redraws everything.
    """

    def __init__(self, fig: Figure, view, names: Sequence[str], dpi: int):
        self.fig, self.view, self.names, self.dpi = fig, view, tuple(names), dpi
        self.image = widgets.Image(format="png")
        if fig.dpi != dpi:
            fig.set_dpi(dpi)
        self._background = None
        self._laid_out = False

    def render(self, values: Dict[str, object]) -> Dict[str, float]:
        state = self.view.update(**{k: values[k] for k in self.names})
        dynamic = getattr(self.view, "dynamic", None)
        canvas = self.fig.canvas
        if dynamic is None:
            canvas.draw()
        else:
            if self._background is None or getattr(self.view, "needs_full", False):
                for a in dynamic:
                    a.set_animated(True)  # left out of the full draw: the background is clean
                canvas.draw()
                self._background = canvas.copy_from_bbox(self.fig.bbox)
            else:
                canvas.restore_region(self._background)
            for a in dynamic:
                self.fig.draw_artist(a)
        self.image.value = _encode_png(self.fig)
        if not self._laid_out:  # lay out once (constrained layout), then keep the axes where they are
            with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
                self.fig.set_layout_engine(None)
            self._laid_out = True
        return state


class _Explorer(widgets.VBox):
    """A VBox of controls and pictures that redraws the pictures when a control changes.

    Attributes:
        controls: ``{name: widget}``; set ``controls[name].value`` to move a control.
        images: ``{name: ipywidgets.Image}``, the pictures; ``image`` is the first one.
        text: the ``ipywidgets.HTML`` line with the numbers shown.
        state: ``{name: float}``, the numbers currently shown.
        figures: ``{name: Figure}``, the matplotlib figures behind ``images``.
    """

    def __init__(self, controls: Dict[str, widgets.Widget], panels: Dict[str, _Panel],
                 describe: Callable[[Dict[str, float]], str], layout: Optional[List[widgets.Widget]] = None):
        self.controls = controls
        self.panels = panels
        self.images = {k: p.image for k, p in panels.items()}
        self.image = next(iter(self.images.values()))
        self.figures = {k: p.fig for k, p in panels.items()}
        self.text = widgets.HTML()
        self._describe = describe
        self._parts: Dict[str, Dict[str, float]] = {}
        self.state: Dict[str, float] = {}
        if layout is None:
            layout = [widgets.VBox(list(controls.values())), *self.images.values()]
        super().__init__([*layout, self.text])
        for name, c in controls.items():
            c.observe(lambda change, name=name: self._changed(name), names="value")
        self.refresh()

    def _values(self) -> Dict[str, object]:
        return {k: c.value for k, c in self.controls.items()}

    def _changed(self, name: str) -> None:
        values = self._values()
        for key, p in self.panels.items():
            if name in p.names:
                self._parts[key] = p.render(values)
        self._publish()

    def refresh(self) -> None:
        """Redraw every picture from the controls' current values."""
        values = self._values()
        self._parts = {key: p.render(values) for key, p in self.panels.items()}
        self._publish()

    def _publish(self) -> None:
        state: Dict[str, float] = {}
        for part in self._parts.values():
            state.update(part)
        self.state = state
        self.text.value = self._describe(state)


def _set_tile(artist, images: torch.Tensor, nrow: int) -> None:
    """Put a tiled grid of ``[N, C, H, W]`` images into an existing ``AxesImage``."""
    artist.set_data(tile_images(images, nrow))


def _image_axes(ax: Axes, images: torch.Tensor, nrow: int, title: str = ""):
    """Draw a tiled grid once and return its ``AxesImage`` (updated later with ``_set_tile``)."""
    art = ax.imshow(tile_images(images, nrow), cmap="gray_r" if images.shape[1] == 1 else None, vmin=0, vmax=1,
                    interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return art


def _scatter_codes(ax: Axes, mu2: np.ndarray, colours: Optional[np.ndarray], alpha: float = 0.35):
    """The faint cloud of posterior means (or autoencoder codes) in the plane shown."""
    c = colours if colours is not None else "tab:blue"
    return ax.scatter(mu2[:, 0], mu2[:, 1], c=c, cmap=CMAP if colours is not None else None, s=3, alpha=alpha,
                      vmin=-0.5 if colours is not None else None, vmax=9.5 if colours is not None else None,
                      linewidths=0, rasterized=True)


def _plane_limit(mu2: np.ndarray, at_least: float = 3.0) -> float:
    """A finite, symmetric axis limit that holds the prior's 2σ circle and nearly all codes."""
    if mu2.size == 0:
        return at_least
    q = float(np.quantile(np.abs(mu2), 0.995))
    return max(at_least, 1.08 * q) if math.isfinite(q) else at_least


def _codes(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], dims: Tuple[int, int], max_points: int,
           seed: int):
    """Posterior means (and log-variances) of every ``x`` once, on the CPU, plus the subset drawn as a cloud."""
    mu, logvar = _encode_means(model, x)  # [N, D] each (logvar None for an autoencoder)
    d = mu.shape[1]
    if d < 2:
        raise ValueError(f"this widget draws a latent plane: it needs latent_dim >= 2, got {d}")
    if not (0 <= dims[0] < d and 0 <= dims[1] < d):
        raise ValueError(f"dims {tuple(dims)} out of range for latent_dim={d}")
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(mu.shape[0], generator=g)[:max_points]
    cloud = mu[keep][:, list(dims)].numpy()
    colours = y.detach().cpu()[keep].numpy() if y is not None else None
    return mu, logvar, cloud, colours


def _sticky(old: Optional[Tuple[float, float]], lo: float, hi: float, margin: float = 0.15):
    """Axis limits that hold ``[lo, hi]``: the old ones while they hold it and are less than twice
    its width, else new ones with a ``margin`` each side (so that small moves keep the axes)."""
    if old is not None and old[0] <= lo and hi <= old[1] and (hi - lo) >= 0.5 * (old[1] - old[0]):
        return old
    pad = margin * (hi - lo)
    return (lo - pad, hi + pad)
