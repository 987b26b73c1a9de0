"""Interactive widgets for the chapters, and their kernel-free twins.

Every ``*_explorer`` function returns an ``ipywidgets`` box: sliders on top, a picture
below it, and a line of text with the numbers in the picture. When a control moves, the
picture is redrawn: a small pyplot-free matplotlib figure rendered to PNG bytes inside an
``ipywidgets.Image``. Because the picture is an ordinary widget value, the last one drawn
is saved with the notebook's widget state, and the static web book shows it (its sliders
move, but with no kernel they redraw nothing).

Every ``*_scrubber`` function is the same picture precomputed for a handful of values
(at most about 12 frames, 72 dpi) and played by a JavaScript slider
(:func:`vae_lib.plots.jshtml_scrubber`). It needs no kernel, so it works on the web page.

============================  ============================  =======
widget                        kernel-free twin              chapter
============================  ============================  =======
``mu_sigma_explorer``         ``mu_sigma_scrubber``         1
``posterior_prior_explorer``  ``posterior_prior_scrubber``  2
``reparam_explorer``          ``reparam_scrubber``          3
``beta_explorer``             ``beta_scrubber``             4
``latent_explorer``           ``latent_scrubber``           5
============================  ============================  =======

An explorer exposes what it shows, so that tests and teachers can drive it from Python::

    w = mu_sigma_explorer()
    w.controls["sigma"].value = 0.2   # any control, by name; the picture is redrawn at once
    w.state["kl"]                     # the numbers shown (floats), here KL(q || p) in nats
    w.image.value                     # the PNG bytes shown (w.images: every picture, by name)
    w.text.value                      # the text line under the picture

Extreme values are clamped, never passed on to the maths: σ is floored at ``SIGMA_MIN``
and ``|μ|`` capped at ``MU_MAX`` for the densities, plot limits are always finite.

Colab: ipywidgets 8 needs Colab's custom widget manager. Run
``from google.colab import output; output.enable_custom_widget_manager()`` once per
session (the chapters' install guard does this), or the widgets do not appear.
"""
from __future__ import annotations

import io
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse
from torch import nn

from .device import model_device
from .estimators import gradient_estimates
from .losses import gaussian_log_prob, kl_standard_normal
from .metrics import SweepPoint
from .model import VAE
from .plots import CMAP, _encode_means, _tile, jshtml_scrubber, new_figure, plot_rate_distortion

__all__ = [
    "mu_sigma_explorer", "mu_sigma_scrubber",
    "posterior_prior_explorer", "posterior_prior_scrubber",
    "reparam_explorer", "reparam_scrubber",
    "beta_explorer", "beta_scrubber",
    "latent_explorer", "latent_scrubber",
]

SIGMA_MIN = 1e-3  # σ is floored here for densities and sampling (σ → 0 would divide by zero)
MU_MAX = 1e6  # |μ| is capped here so μ² and the score estimates stay finite in float32
DPI = 80  # resolution of the live pictures; figures are a few inches wide
MAX_FRAMES = 12  # default frame budget of a scrubber: a few hundred KB per page


# --------------------------------------------------------------------------- machinery
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
    artist.set_data(_tile(images, nrow))


def _image_axes(ax: Axes, images: torch.Tensor, nrow: int, title: str = ""):
    """Draw a tiled grid once and return its ``AxesImage`` (updated later with ``_set_tile``)."""
    art = ax.imshow(_tile(images, nrow), cmap="gray_r" if images.shape[1] == 1 else None, vmin=0, vmax=1,
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


# ----------------------------------------------------------------- chapter 1: N(μ, σ²) vs N(0, 1)
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

    def __init__(self, fig: Figure, eps: np.ndarray, x_range: Tuple[float, float], bins: int = 60):
        self.eps, self.x_range, self.bins = eps, (float(x_range[0]), float(x_range[1])), bins
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
        z = mu + sigma * self.eps  # z = μ + σ ε, the same ε every time so the histogram slides
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


def _fixed_eps(n: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=torch.float64).numpy()  # ε ~ N(0, 1), [n]


def mu_sigma_explorer(mu: float = 0.0, sigma: float = 1.0, mu_range: Tuple[float, float] = (-3.0, 3.0),
                      sigma_range: Tuple[float, float] = (0.05, 3.0), n_samples: int = 2000, seed: int = 0,
                      x_range: Tuple[float, float] = (-6.0, 6.0), figsize: Tuple[float, float] = (6.0, 3.2),
                      dpi: int = DPI) -> widgets.VBox:
    """A 1-D posterior ``q(z) = N(μ, σ²)`` against the prior ``p(z) = N(0, 1)`` (chapter 1).

    Shows both densities, a histogram of ``n_samples`` draws ``z = μ + σ ε`` (the same ``ε``
    at every setting, so the histogram slides and stretches instead of flickering) and the
    closed-form ``KL(q ‖ p)`` in nats (:func:`vae_lib.kl_standard_normal`).

    Args:
        mu: initial μ.
        sigma: initial σ (floored at ``SIGMA_MIN`` = 1e-3 for the maths).
        mu_range: ``(min, max)`` of the μ slider.
        sigma_range: ``(min, max)`` of the σ slider; a minimum of 0 is allowed (σ is floored).
        n_samples: draws in the histogram.
        seed: seeds the fixed ``ε``.
        x_range: the z-axis shown; it widens on its own when ``μ ± 4σ`` leaves it.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        A ``VBox`` with ``controls`` ``{"mu", "sigma"}`` and ``state`` ``{"mu", "sigma", "kl",
        "sample_mean", "sample_std", "q_peak"}`` (see the module docstring).
    """
    fig = _figure(figsize, dpi)
    view = _MuSigmaView(fig, _fixed_eps(n_samples, seed), x_range)
    controls = {"mu": _float_slider("μ", mu, *mu_range), "sigma": _float_slider("σ", sigma, *sigma_range)}
    return _Explorer(controls, {"main": _Panel(fig, view, ("mu", "sigma"), dpi)}, _describe_mu_sigma)


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
        n_samples: draws in the histogram.
        seed: seeds the fixed ``ε``.
        x_range: the z-axis shown (widens when needed).
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player (works without a kernel).
    """
    eps = _fixed_eps(n_samples, seed)

    def draw(fig: Figure, v) -> None:
        _MuSigmaView(_pad(fig), eps, x_range).update(*v)

    return jshtml_scrubber(draw, list(values) if values is not None else _tour_mu_sigma(), figsize, interval)


# ------------------------------------------------------- chapter 2: one input's posterior vs the prior
class _PosteriorView:
    """The latent plane (prior circles, cloud of means, one q(z|x) with samples) beside x and decodings."""

    def __init__(self, fig: Figure, model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor],
                 mu: torch.Tensor, logvar: torch.Tensor, kl: torch.Tensor, cloud: np.ndarray,
                 colours: Optional[np.ndarray], dims: Tuple[int, int], n_samples: int):
        self.model, self.x, self.y, self.mu, self.logvar, self.kl = model, x, y, mu, logvar, kl
        self.dims, self.n_samples = tuple(dims), n_samples
        gs = fig.add_gridspec(2, 2, width_ratios=(1.45, 1), height_ratios=(1, 1))
        self.ax = ax = fig.add_subplot(gs[:, 0])
        ax_x, ax_s = fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
        _scatter_codes(ax, cloud, colours, alpha=0.25)
        for r, lab in ((1, "p(z): 1σ and 2σ"), (2, None)):
            ax.add_patch(Circle((0, 0), r, fill=False, ls="--", lw=1.2, ec="0.3", label=lab))
        self.ell = [Ellipse((0, 0), 1, 1, fill=False, lw=2, ec="tab:red",
                            label="q(z|x): 1σ and 2σ" if k == 1 else None) for k in (1, 2)]
        for e in self.ell:
            ax.add_patch(e)
        self.samples = ax.scatter(np.zeros(n_samples), np.zeros(n_samples), marker="x", s=30, c="black", lw=1.2,
                                  label="z ~ q(z|x)", zorder=3)
        self.centre = ax.scatter([0], [0], marker="o", s=25, c="tab:red", zorder=4)
        lim = _plane_limit(cloud)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel(f"$z_{{{dims[0] + 1}}}$")
        ax.set_ylabel(f"$z_{{{dims[1] + 1}}}$")
        ax.legend(fontsize=7, loc="upper right")
        c = x.shape[1]
        blank = torch.zeros(1, c, *x.shape[2:])
        self.art_x = _image_axes(ax_x, blank, 1, "input x")
        self.art_s = _image_axes(ax_s, torch.zeros(n_samples, c, *x.shape[2:]), math.ceil(n_samples / 2),
                                 "decoded z ~ q(z|x)")
        self.eps_seed: Optional[int] = None
        self.eps: Optional[torch.Tensor] = None
        self.dynamic = [*self.ell, self.samples, self.centre, self.art_x, self.art_s, ax.title]

    @torch.no_grad()
    def update(self, index: int, seed: int) -> Dict[str, float]:
        i = int(min(max(int(index), 0), self.mu.shape[0] - 1))
        if seed != self.eps_seed:  # fixed ε per seed: moving the index keeps the same draws
            g = torch.Generator().manual_seed(int(seed))
            self.eps = torch.randn(self.n_samples, self.mu.shape[1], generator=g)  # ε ~ N(0, I), [S, D]
            self.eps_seed = seed
        mu, std = self.mu[i], torch.exp(0.5 * self.logvar[i])  # [D] each
        z = mu + std * self.eps  # z = μ + σ ⊙ ε, [S, D]
        imgs = self.model.decode_mean(z.to(model_device(self.model))).cpu()  # [S, C, H, W]
        a, b = self.dims
        for k, e in zip((1, 2), self.ell):
            e.set_center((float(mu[a]), float(mu[b])))
            e.width, e.height = 2 * k * float(std[a]), 2 * k * float(std[b])
        self.samples.set_offsets(z[:, [a, b]].numpy())
        self.centre.set_offsets([[float(mu[a]), float(mu[b])]])
        self.art_x.set_data(_tile(self.x[i:i + 1], 1))
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
                     max_points: int, seed: int):
    """Means, log-variances and KL of every input, computed once (the slider only indexes them)."""
    mu, logvar, cloud, colours = _codes(model, x, y, dims, max_points, seed)
    if logvar is None:
        raise TypeError("posterior_prior_explorer needs a VAE (an Autoencoder has no q(z|x) to draw)")
    if getattr(model, "prior_name", "standard") == "standard":
        kl = kl_standard_normal(mu, logvar)  # closed form, [N] nats
    else:  # a learned prior: Monte Carlo KL = E_q[log q(z|x) − log p(z)], 64 seeded draws per input
        g = torch.Generator().manual_seed(seed)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(64, *mu.shape, generator=g)  # [64, N, D]
        dev = model_device(model)
        log_p = torch.cat([model.prior_log_prob(z[:, s:s + 500].to(dev)).cpu() for s in range(0, mu.shape[0], 500)], 1)
        kl = (gaussian_log_prob(z, mu, logvar) - log_p).mean(0)
    return mu, logvar, kl, cloud, colours


def _describe_posterior(s: Dict[str, float]) -> str:
    lab = f" (label {int(s['label'])})" if "label" in s else ""
    return (f"input {int(s['index'])}{lab}: KL(q(z|x) ‖ p(z)) = <b>{s['kl']:.3f} nats</b>; "
            f"average over all inputs {s['mean_kl']:.3f} nats. "
            f"q(z|x) in this plane: μ = ({s['mu_1']:.2f}, {s['mu_2']:.2f}), "
            f"σ = ({s['sigma_1']:.3f}, {s['sigma_2']:.3f})")


def posterior_prior_explorer(model: VAE, x: torch.Tensor, y: Optional[torch.Tensor] = None, index: int = 0,
                             dims: Tuple[int, int] = (0, 1), n_samples: int = 8, max_points: int = 2000,
                             seed: int = 0, figsize: Tuple[float, float] = (7.2, 3.8), dpi: int = DPI) -> widgets.VBox:
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
        n_samples: draws ``z ~ q(z|x)`` shown and decoded.
        max_points: at most this many means in the cloud (a seeded subset).
        seed: seeds the subset and the first ``ε``.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        A ``VBox`` with ``controls`` ``{"index", "seed"}`` (``seed`` redraws ``ε``) and ``state``
        ``{"index", "kl", "mean_kl", "mu_1", "mu_2", "sigma_1", "sigma_2", "sample_pixel_mean"}``
        (plus ``"label"`` when ``y`` is given).
    """
    x = model.check_input(x, "posterior_prior_explorer").detach().cpu()
    mu, logvar, kl, cloud, colours = _posterior_cache(model, x, y, dims, max_points, seed)
    fig = _figure(figsize, dpi)
    view = _PosteriorView(fig, model, x, y, mu, logvar, kl, cloud, colours, dims, n_samples)
    controls = {"index": _int_slider("input", index, 0, x.shape[0] - 1), "seed": _int_slider("ε seed", seed, 0, 99)}
    return _Explorer(controls, {"main": _Panel(fig, view, ("index", "seed"), dpi)}, _describe_posterior)


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
    x = model.check_input(x, "posterior_prior_scrubber").detach().cpu()
    cache = _posterior_cache(model, x, y, dims, max_points, seed)
    idx = list(indices) if indices is not None else _spread_indices(x.shape[0], y)

    def draw(fig: Figure, i) -> None:
        _PosteriorView(_pad(fig), model, x, y, *cache, dims, n_samples).update(i, seed)

    return jshtml_scrubber(draw, idx, figsize, interval)


# ---------------------------------------------- chapter 3: reparameterization vs score function
class _LibraryDraws:
    """The seeded ``ε`` that :func:`vae_lib.gradient_estimates` draws, per sample count ``n``.

    Run once per ``n`` at ``μ = 0, σ = 1``, where ``z = ε``, with an ``f`` that records ``z``; only
    the per-trial moments of ``ε`` are kept. For ``f(z) = z²`` both estimators are polynomials in
    ``μ``, ``σ`` and those moments, so any ``(μ, σ)`` then costs ``O(trials)`` however large ``n``
    is, and gives the numbers ``gradient_estimates(μ, σ, n, trials, ..., seed=seed)`` gives.
    """

    def __init__(self, trials: int, seed: int):
        self.trials, self.seed = trials, seed
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

    def update(self, mu: float, sigma: float, n: int) -> Dict[str, float]:
        mu = float(np.clip(_finite(mu), -MU_MAX, MU_MAX))
        sigma = max(_finite(sigma, 1.0), SIGMA_MIN)
        n = max(int(n), 1)
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
        return {"mu": mu, "sigma": sigma, "n": float(n), "true_grad": truth, "reparam_mean": float(r.mean()),
                "reparam_var": rv, "score_mean": float(s.mean()), "score_var": sv,
                "ratio": sv / max(rv, 1e-30)}


def _describe_reparam(s: Dict[str, float]) -> str:
    return (f"true ∂/∂μ E[z²] = 2μ = {s['true_grad']:.3g}. &nbsp; "
            f"reparameterization: mean {s['reparam_mean']:.3g}, "
            f"variance <b>{s['reparam_var']:.3g}</b>; score function: mean {s['score_mean']:.3g}, "
            f"variance <b>{s['score_var']:.3g}</b> ({s['ratio']:.3g}× larger), n = {int(s['n'])}")


def _counts_slider(n: int, sample_counts: Sequence[int]) -> widgets.SelectionSlider:
    opts = sorted({int(c) for c in sample_counts} | {int(n)})
    return widgets.SelectionSlider(options=opts, value=int(n), description="n", continuous_update=True,
                                   layout=widgets.Layout(width="420px"))


def reparam_explorer(mu: float = 0.5, sigma: float = 1.0, n: int = 10,
                     sample_counts: Sequence[int] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), trials: int = 1000,
                     mu_range: Tuple[float, float] = (-2.0, 2.0), sigma_range: Tuple[float, float] = (0.05, 3.0),
                     seed: int = 0, figsize: Tuple[float, float] = (7.6, 3.2), dpi: int = DPI) -> widgets.VBox:
    """The two gradient estimators of ``∂/∂μ E_{z ~ N(μ, σ²)}[z²]`` side by side (chapter 3).

    Left: ``n`` draws ``ε`` mapped to ``z = μ + σ ε`` (at most 1000 drawn). Right: histograms of
    ``trials`` independent estimates from :func:`vae_lib.gradient_estimates`, reparameterization
    against score function, with their variances and the true gradient ``2μ`` marked.

    The numbers are exactly those of ``gradient_estimates(μ, σ, n, trials, estimator, seed=seed)``.
    Its seeded draws are taken once per ``n`` when the widget is built (about a second for
    the default ``sample_counts``); for ``f(z) = z²`` both estimators are polynomials in ``μ``,
    ``σ`` and the per-trial moments of ``ε``, so an update then costs ``O(trials)``.

    Args:
        mu: initial μ.
        sigma: initial σ (floored at 1e-3).
        n: initial samples per estimate (added to ``sample_counts`` if missing).
        sample_counts: the values of the ``n`` slider.
        trials: independent estimates per histogram.
        mu_range: ``(min, max)`` of the μ slider.
        sigma_range: ``(min, max)`` of the σ slider.
        seed: seeds the draws (the same ``ε`` at every setting).
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        A ``VBox`` with ``controls`` ``{"mu", "sigma", "n"}`` and ``state`` ``{"mu", "sigma", "n",
        "true_grad", "reparam_mean", "reparam_var", "score_mean", "score_var", "ratio"}``.
    """
    draws = _LibraryDraws(trials, seed)
    for c in sorted({int(c) for c in sample_counts} | {int(n)}):
        draws(c)  # every n's draws now, so that no later update waits for them
    fig = _figure(figsize, dpi)
    s_max = max(sigma_range[1], sigma)
    z_range = (min(mu_range[0], mu) - 3.6 * s_max, max(mu_range[1], mu) + 3.6 * s_max)  # every slider setting fits
    view = _ReparamView(fig, draws, z_range)
    controls = {"mu": _float_slider("μ", mu, *mu_range), "sigma": _float_slider("σ", sigma, *sigma_range),
                "n": _counts_slider(n, sample_counts)}
    return _Explorer(controls, {"main": _Panel(fig, view, ("mu", "sigma", "n"), dpi)}, _describe_reparam)


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
    draws = _LibraryDraws(trials, seed)

    def draw(fig: Figure, n) -> None:
        z = 3.6 * sigma + abs(mu)
        _ReparamView(_pad(fig), draws, (-z, z)).update(mu, sigma, n)

    return jshtml_scrubber(draw, [int(c) for c in sample_counts], figsize, interval)


# ------------------------------------------------------------------ chapter 4: the β trade-off
@torch.no_grad()
def _beta_cache(points: Sequence[SweepPoint], x: torch.Tensor, n_images: int, n_prior: int, seed: int):
    """Per point, computed once: the tiles of inputs over reconstructions, and of prior samples."""
    pts = sorted(points, key=lambda p: p.beta)
    if not pts:
        raise ValueError("beta_explorer needs at least one SweepPoint")
    x = x[:n_images].detach().cpu()
    out = []
    for p in pts:
        dev = model_device(p.model)
        recon = p.model.reconstruct(x.to(dev)).cpu()  # decoded posterior means, [n, C, H, W]
        g = torch.Generator(device=dev).manual_seed(seed)  # the same z ~ p(z) for every β (standard prior)
        samples = p.model.sample(n_prior, generator=g).cpu()
        mse = _finite(((recon - x) ** 2).mean())
        out.append((_tile(torch.cat([x, recon]), x.shape[0]), _tile(samples, math.ceil(n_prior / 2)), mse))
    return pts, out


class _BetaView:
    """Reconstructions and prior samples of the selected β, beside the rate–distortion curve."""

    def __init__(self, fig: Figure, pts: Sequence[SweepPoint], cache, gray: bool):
        self.pts, self.cache = pts, cache
        gs = fig.add_gridspec(2, 2, width_ratios=(1.25, 1))
        ax_r, ax_p, self.ax_rd = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[:, 1])
        kw = dict(cmap="gray_r" if gray else None, vmin=0, vmax=1, interpolation="nearest")
        self.art_r = ax_r.imshow(cache[0][0], **kw)
        self.art_p = ax_p.imshow(cache[0][1], **kw)
        for a in (ax_r, ax_p):
            a.set_axis_off()
        self.ax_r, self.ax_p = ax_r, ax_p
        finite = [p for p in pts if math.isfinite(p.rate) and math.isfinite(p.distortion)]
        plot_rate_distortion(finite, ax=self.ax_rd)
        (self.mark,) = self.ax_rd.plot([], [], "o", ms=13, mfc="none", mec="tab:red", mew=2.2, zorder=5,
                                      scalex=False, scaley=False)
        self.dynamic = [self.art_r, self.art_p, self.mark, ax_r.title, ax_p.title, self.ax_rd.title]

    def update(self, beta: float) -> Dict[str, float]:
        betas = [p.beta for p in self.pts]
        k = int(np.argmin([abs(b - float(beta)) for b in betas]))
        p, (tile_r, tile_p, mse) = self.pts[k], self.cache[k]
        self.art_r.set_data(tile_r)
        self.art_p.set_data(tile_p)
        rate, dist = _finite(p.rate, float("nan")), _finite(p.distortion, float("nan"))
        self.mark.set_data([rate if math.isfinite(rate) else 0.0], [dist if math.isfinite(dist) else 0.0])
        self.mark.set_visible(math.isfinite(rate) and math.isfinite(dist))
        self.ax_r.set_title(f"β = {p.beta:g}: inputs (top), reconstructions (bottom)", fontsize=9)
        self.ax_p.set_title("prior samples z ~ p(z), decoded (same z for every β)", fontsize=9)
        self.ax_rd.set_title(f"β = {p.beta:g}: rate {rate:.3g}, distortion {dist:.4g} nats/image", fontsize=9)
        return {"beta": float(p.beta), "rate": _finite(p.rate), "distortion": _finite(p.distortion),
                "recon_mse": mse}


def _describe_beta(s: Dict[str, float]) -> str:
    return (f"β = <b>{s['beta']:g}</b>: rate KL = {s['rate']:.2f} nats/image, distortion −log p(x|z) = "
            f"{s['distortion']:.2f} nats/image; pixel MSE of the reconstructions shown {s['recon_mse']:.4f}")


def beta_explorer(points: Sequence[SweepPoint], x: torch.Tensor, beta: Optional[float] = None, n_images: int = 8,
                  n_prior: int = 16, seed: int = 0, figsize: Tuple[float, float] = (8.0, 3.6),
                  dpi: int = DPI) -> widgets.VBox:
    """Pick β along a β sweep: reconstructions, prior samples and the rate–distortion curve (chapter 4).

    Everything is computed once when the widget is built (one reconstruction and one set of
    prior samples per trained model), so moving the slider only swaps pictures.

    Args:
        points: the sweep, :class:`vae_lib.SweepPoint` objects from :func:`vae_lib.beta_sweep`
            (each has ``beta``, ``model``, ``rate``, ``distortion``); β = 0 is fine.
        x: images ``[N, C, H, W]``; the first ``n_images`` are reconstructed.
        beta: the β shown first (the nearest point); default the one nearest 1.
        n_images: inputs reconstructed.
        n_prior: prior samples decoded (the same ``z`` for every model).
        seed: seeds the prior samples.
        figsize: figure size in inches.
        dpi: resolution of the picture.

    Returns:
        A ``VBox`` with ``controls`` ``{"beta"}`` (a ``SelectionSlider`` whose values are the
        β floats) and ``state`` ``{"beta", "rate", "distortion", "recon_mse"}``.
    """
    pts, cache = _beta_cache(points, x, n_images, n_prior, seed)
    betas = [p.beta for p in pts]
    start = betas[int(np.argmin([abs(b - (1.0 if beta is None else float(beta))) for b in betas]))]
    fig = _figure(figsize, dpi)
    view = _BetaView(fig, pts, cache, x.shape[1] == 1)
    slider = widgets.SelectionSlider(options=[(f"{b:g}", b) for b in betas], value=start, description="β",
                                     continuous_update=True, layout=widgets.Layout(width="420px"))
    return _Explorer({"beta": slider}, {"main": _Panel(fig, view, ("beta",), dpi)}, _describe_beta)


def beta_scrubber(points: Sequence[SweepPoint], x: torch.Tensor, n_images: int = 8, n_prior: int = 16,
                  seed: int = 0, figsize: Tuple[float, float] = (8.0, 3.6), interval: int = 1000) -> HTML:
    """The kernel-free twin of :func:`beta_explorer`: one frame per β (at most 12, evenly picked).

    Args:
        points: the sweep, :class:`vae_lib.SweepPoint` objects.
        x: images ``[N, C, H, W]``; the first ``n_images`` are reconstructed.
        n_images, n_prior, seed: as for :func:`beta_explorer`.
        figsize: figure size in inches.
        interval: milliseconds per frame when playing.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player.
    """
    pts, cache = _beta_cache(points, x, n_images, n_prior, seed)
    keep = sorted(set(np.linspace(0, len(pts) - 1, min(len(pts), MAX_FRAMES)).round().astype(int).tolist()))

    def draw(fig: Figure, b) -> None:
        _BetaView(_pad(fig), pts, cache, x.shape[1] == 1).update(b)

    return jshtml_scrubber(draw, [pts[k].beta for k in keep], figsize, interval)


# ---------------------------------------------- chapter 5: moving through the latent space
class _LatentBase:
    """Shared by the three latent views: the model, the cached codes and the plane they are drawn in."""

    def __init__(self, model: nn.Module, x: torch.Tensor, mu: torch.Tensor, cloud: np.ndarray,
                 colours: Optional[np.ndarray], dims: Tuple[int, int], center: torch.Tensor):
        self.model, self.x, self.mu, self.cloud, self.colours = model, x, mu, cloud, colours
        self.dims, self.center = tuple(dims), center
        self.dev = model_device(model)

    def plane(self, ax: Axes, extent: float) -> None:
        _scatter_codes(ax, self.cloud, self.colours)
        lim = max(float(extent), _plane_limit(self.cloud))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel(f"$z_{{{self.dims[0] + 1}}}$")
        ax.set_ylabel(f"$z_{{{self.dims[1] + 1}}}$")
        ax.tick_params(labelsize=7)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode_mean(z.to(self.dev)).cpu()  # [B, C, H, W] in [0, 1]

    def index(self, i) -> int:
        return int(min(max(int(i), 0), self.x.shape[0] - 1))


class _MoveView(_LatentBase):
    """(a) A point (z1, z2) on the plane of codes, decoded live."""

    def __init__(self, fig: Figure, base: _LatentBase, extent: float):
        self.__dict__.update(base.__dict__)
        gs = fig.add_gridspec(1, 2, width_ratios=(1.25, 1))
        self.ax, ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        self.plane(self.ax, extent)
        self.mark = self.ax.scatter([0], [0], marker="*", s=180, c="tab:red", ec="black", lw=0.6, zorder=4)
        self.ax.set_title("codes of the data" + (" (colour = label)" if self.colours is not None else ""), fontsize=9)
        self.art = _image_axes(ax_img, torch.zeros(1, *self.x.shape[1:]), 1, "")
        self.ax_img = ax_img
        self.dynamic = [self.mark, self.art, ax_img.title]

    def update(self, z1: float, z2: float) -> Dict[str, float]:
        z1, z2 = _finite(z1), _finite(z2)
        z = self.center.clone()
        z[self.dims[0]], z[self.dims[1]] = z1, z2  # other dimensions stay at `center`
        img = self.decode(z[None])
        self.mark.set_offsets([[z1, z2]])
        self.art.set_data(_tile(img, 1))
        self.ax_img.set_title(f"decoded z = ({z1:.2f}, {z2:.2f})", fontsize=9)
        return {"z1": z1, "z2": z2, "move_pixel_mean": _finite(img.mean())}


class _TraverseView(_LatentBase):
    """(b) One latent dimension swept from −extent to extent, the others at an input's posterior mean."""

    def __init__(self, fig: Figure, base: _LatentBase, extent: float, steps: int):
        self.__dict__.update(base.__dict__)
        self.extent, self.steps = float(extent), steps
        gs = fig.add_gridspec(1, 2, width_ratios=(1, 2.4))
        self.ax, self.ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        self.plane(self.ax, extent)
        (self.path,) = self.ax.plot([0, 0], [0, 0], "-o", color="tab:red", ms=3, lw=1.5, zorder=4)
        self.art = _image_axes(self.ax_img, torch.zeros(steps, *self.x.shape[1:]), steps, "")
        self.dynamic = [self.path, self.art, self.ax.title, self.ax_img.title]

    def update(self, dim: int, base: int) -> Dict[str, float]:
        d, i = int(dim), self.index(base)
        z = self.mu[i].clone().repeat(self.steps, 1)  # start from μ(x_base), [T, D]
        z[:, d] = torch.linspace(-self.extent, self.extent, self.steps)  # sweep z_d over the prior's range
        imgs = self.decode(z)
        self.path.set_data(z[:, self.dims[0]].numpy(), z[:, self.dims[1]].numpy())
        self.art.set_data(_tile(imgs, self.steps))
        self.ax.set_title(f"path of z (input {i})", fontsize=9)
        self.ax_img.set_title(f"$z_{{{d + 1}}}$ from {-self.extent:g} to {self.extent:g}, other dimensions at μ(x)",
                              fontsize=9)
        return {"dim": float(d), "base": float(i), "traverse_pixel_mean": _finite(imgs.mean())}


class _InterpolateView(_LatentBase):
    """(c) z(t) = (1 − t) μ(a) + t μ(b), decoded, between two inputs."""

    def __init__(self, fig: Figure, base: _LatentBase, extent: float):
        self.__dict__.update(base.__dict__)
        gs = fig.add_gridspec(1, 2, width_ratios=(1.1, 1.5))
        self.ax, self.ax_img = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        self.plane(self.ax, extent)
        (self.seg,) = self.ax.plot([0, 0], [0, 0], "-", color="tab:red", lw=1.5, zorder=3)
        self.ends = self.ax.scatter([0, 0], [0, 0], s=40, c="tab:red", marker="s", zorder=4)
        self.mark = self.ax.scatter([0], [0], marker="*", s=180, c="gold", ec="black", lw=0.6, zorder=5)
        self.art = _image_axes(self.ax_img, torch.zeros(3, *self.x.shape[1:]), 3, "")
        self.dynamic = [self.seg, self.ends, self.mark, self.art, self.ax.title, self.ax_img.title]

    def update(self, a: int, b: int, t: float) -> Dict[str, float]:
        i, j, t = self.index(a), self.index(b), float(np.clip(_finite(t), 0.0, 1.0))
        za, zb = self.mu[i], self.mu[j]
        z = (1 - t) * za + t * zb  # z(t) = (1 − t)·μ(a) + t·μ(b), [D]
        img = self.decode(z[None])
        p, q = self.dims
        self.seg.set_data([float(za[p]), float(zb[p])], [float(za[q]), float(zb[q])])
        self.ends.set_offsets([[float(za[p]), float(za[q])], [float(zb[p]), float(zb[q])]])
        self.mark.set_offsets([[float(z[p]), float(z[q])]])
        self.art.set_data(_tile(torch.cat([self.x[i:i + 1], img, self.x[j:j + 1]]), 3))
        self.ax.set_title(f"μ(a) → μ(b), t = {t:.2f}", fontsize=9)
        self.ax_img.set_title(f"input a = {i} | decoded z(t) | input b = {j}", fontsize=9)
        return {"a": float(i), "b": float(j), "t": t, "zt_1": float(z[p]), "zt_2": float(z[q]),
                "interp_pixel_mean": _finite(img.mean())}


def _latent_base(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], dims: Tuple[int, int],
                 max_points: int, seed: int, center: Optional[torch.Tensor]) -> _LatentBase:
    x = model.check_input(x, "latent_explorer").detach().cpu()
    mu, _, cloud, colours = _codes(model, x, y, dims, max_points, seed)
    c = torch.zeros(mu.shape[1]) if center is None else center.detach().float().cpu().reshape(-1).clone()
    return _LatentBase(model, x, mu, cloud, colours, dims, c)


def _describe_latent(s: Dict[str, float]) -> str:
    return (f"(a) z = ({s['z1']:.2f}, {s['z2']:.2f}); (b) traversing z<sub>{int(s['dim']) + 1}</sub> "
            f"from input {int(s['base'])}; (c) t = {s['t']:.2f} between inputs {int(s['a'])} and {int(s['b'])}")


def latent_explorer(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                    dims: Tuple[int, int] = (0, 1), extent: float = 3.0, steps: int = 9, a: int = 0, b: int = 1,
                    center: Optional[torch.Tensor] = None, max_points: int = 2000, seed: int = 0,
                    figsize: Tuple[float, float] = (7.0, 3.2), dpi: int = DPI) -> widgets.VBox:
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
        extent: the plane's slider range ``[−extent, extent]`` and the traversal's range.
        steps: images in a traversal.
        a, b: the inputs interpolated between at first.
        center: ``[D]`` values of the dimensions the sliders of the first tab do not move; default zeros.
        max_points: at most this many codes in the cloud (a seeded subset).
        seed: seeds that subset.
        figsize: size of each tab's figure in inches.
        dpi: resolution of the pictures.

    Returns:
        A ``VBox`` holding an ``ipywidgets.Tab``; ``controls`` ``{"z1", "z2", "dim", "base", "a", "b",
        "t"}``, ``images`` ``{"move", "traverse", "interpolate"}`` and ``state`` ``{"z1", "z2",
        "move_pixel_mean", "dim", "base", "traverse_pixel_mean", "a", "b", "t", "zt_1", "zt_2",
        "interp_pixel_mean"}``.
    """
    base = _latent_base(model, x, y, dims, max_points, seed, center)
    n, d = base.x.shape[0], base.mu.shape[1]
    figs = {k: _figure(figsize, dpi) for k in ("move", "traverse", "interpolate")}
    panels = {
        "move": _Panel(figs["move"], _MoveView(figs["move"], base, extent), ("z1", "z2"), dpi),
        "traverse": _Panel(figs["traverse"], _TraverseView(figs["traverse"], base, extent, steps), ("dim", "base"),
                           dpi),
        "interpolate": _Panel(figs["interpolate"], _InterpolateView(figs["interpolate"], base, extent),
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
    return _Explorer(controls, panels, _describe_latent, layout=[tab])


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
    base = _latent_base(model, x, y, dims, max_points, seed, center)
    if mode == "move":
        ang = np.linspace(0, 2 * math.pi, MAX_FRAMES, endpoint=False)
        vals = list(values) if values is not None else [(0.7 * extent * math.cos(t), 0.7 * extent * math.sin(t))
                                                        for t in ang]

        def draw(fig: Figure, v) -> None:
            _MoveView(_pad(fig), base, extent).update(*v)
    elif mode == "traverse":
        vals = list(values) if values is not None else list(range(min(base.mu.shape[1], MAX_FRAMES)))

        def draw(fig: Figure, v) -> None:
            _TraverseView(_pad(fig), base, extent, steps).update(v, a)
    elif mode == "interpolate":
        vals = list(values) if values is not None else np.linspace(0, 1, 11).tolist()

        def draw(fig: Figure, v) -> None:
            _InterpolateView(_pad(fig), base, extent).update(a, b, v)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose 'move', 'traverse' or 'interpolate'")
    return jshtml_scrubber(draw, vals, figsize, interval)
