"""What every explorer and scrubber shares: the limits on inputs, slider factories, the
picture panel, and the explorer box that redraws it when a control moves.
"""
from __future__ import annotations

import io
import math
import operator
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ..metrics import posterior_stats
from ..plots import class_scatter, new_figure, tile_images

SIGMA_MIN = 1e-3  # σ is floored here for densities and sampling (σ → 0 would divide by zero)
MU_MAX = 1e6  # |μ| is capped here so μ² and the score estimates stay finite in float32
DPI = 80  # resolution of the live pictures; figures are a few inches wide
MAX_FRAMES = 12  # default frame budget of a scrubber: a few hundred KB per page


def _check_count(where: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or a ``ValueError`` that names the argument and the smallest value allowed."""
    try:
        n = operator.index(value)  # ints (and NumPy ints) only: 2.5 or "3" are mistakes, not counts
    except TypeError:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}") from None
    if n < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {n}")
    return n


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


@runtime_checkable
class View(Protocol):
    """What a widget's picture must provide: the contract between an explorer and its views.

    A view draws its figure's artists once, when it is built, and then changes their data in
    place. Every view in :mod:`vae_lib.widgets` is one; a teacher's own view needs only these
    three members to be shown by an explorer.

    Attributes:
        dynamic: the artists that :meth:`update` changes, or ``None``. With a list, the rest of
            the figure (axes, ticks, labels, the cloud of codes) is drawn once and kept as a
            bitmap; an update pastes that bitmap back and draws only these artists, several
            times faster than a full draw. With ``None`` every update draws the whole figure.
        needs_full: set to ``True`` by an update that changed something static too (axis
            limits): that update draws the whole figure and takes a new bitmap.
    """

    dynamic: Optional[Sequence[Artist]]
    needs_full: bool

    def update(self, **values) -> Dict[str, float]:
        """Move the artists to the controls' ``values`` (by name); return the numbers shown, as floats."""
        ...


class _Panel:
    """One figure, the :class:`View` that redraws it, and the Image widget that shows it.

    ``names``: the controls the view reads; ``view.update`` is called with those values only.
    """

    def __init__(self, fig: Figure, view: View, names: Sequence[str], dpi: int):
        if not isinstance(view, View):
            raise TypeError(f"{type(view).__name__} is not a widget View: it needs update(**values) -> dict and "
                            f"the attributes dynamic (a list of artists, or None) and needs_full (bool)")
        self.fig, self.view, self.names, self.dpi = fig, view, tuple(names), dpi
        self.image = widgets.Image(format="png")
        if fig.dpi != dpi:
            fig.set_dpi(dpi)
        self._background = None
        self._laid_out = False

    def render(self, values: Dict[str, object]) -> Dict[str, float]:
        state = self.view.update(**{k: values[k] for k in self.names})
        dynamic = self.view.dynamic
        canvas = self.fig.canvas
        if dynamic is None:
            canvas.draw()
        else:
            if self._background is None or self.view.needs_full:
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


class Explorer(widgets.VBox):
    """What every ``*_explorer`` returns: an ``ipywidgets.VBox`` of controls and pictures that
    redraws the pictures when a control changes.

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


# Documented, and cross-referenced from the factories' return types, as vae_lib.widgets.X.
Explorer.__module__ = View.__module__ = "vae_lib.widgets"


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


class _Codes:
    """Every input's code, computed once, and the seeded subset drawn as a faint cloud.

    Attributes:
        mu: ``[N, D]`` posterior means (an autoencoder's codes), on the CPU.
        logvar: ``[N, D]`` posterior log-variances, or ``None`` for an autoencoder.
        cloud: ``[M, 2]`` the plane ``dims`` of at most ``max_points`` of the codes.
        labels: ``[M]`` their labels, or ``None``; ``n_classes`` of the whole ``y``.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], dims: Tuple[int, int],
                 max_points: int, seed: int, where: str):
        _check_count(where, "max_points", max_points)
        mu, logvar = posterior_stats(model, x)  # [N, D] each (logvar None for an autoencoder), on the model's device
        self.mu, self.logvar = mu.cpu(), (logvar.cpu() if logvar is not None else None)
        d = mu.shape[1]
        if d < 2:
            raise ValueError(f"{where} draws a latent plane: it needs latent_dim >= 2, got {d}")
        if not (0 <= dims[0] < d and 0 <= dims[1] < d):
            raise ValueError(f"{where}: dims {tuple(dims)} out of range for latent_dim={d}")
        keep = torch.randperm(mu.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]
        self.cloud = self.mu[keep][:, list(dims)].numpy()
        self.labels = y.detach().cpu()[keep].numpy() if y is not None else None
        self.n_classes = int(y.max()) + 1 if y is not None and len(y) else None

    def scatter(self, ax: Axes, alpha: float = 0.35):
        """The faint cloud of codes in the plane shown (:func:`vae_lib.plots.class_scatter`)."""
        return class_scatter(ax, self.cloud, self.labels, n_classes=self.n_classes, s=3, alpha=alpha,
                             linewidths=0, rasterized=True)


def _plane_limit(mu2: np.ndarray, at_least: float = 3.0) -> float:
    """A finite, symmetric axis limit that holds the prior's 2σ circle and nearly all codes."""
    if mu2.size == 0:
        return at_least
    q = float(np.quantile(np.abs(mu2), 0.995))
    return max(at_least, 1.08 * q) if math.isfinite(q) else at_least


def _sticky(old: Optional[Tuple[float, float]], lo: float, hi: float, margin: float = 0.15):
    """Axis limits that hold ``[lo, hi]``: the old ones while they hold it and are less than twice
    its width, else new ones with a ``margin`` each side (so that small moves keep the axes)."""
    if old is not None and old[0] <= lo and hi <= old[1] and (hi - lo) >= 0.5 * (old[1] - old[0]):
        return old
    pad = margin * (hi - lo)
    return (lo - pad, hi + pad)
