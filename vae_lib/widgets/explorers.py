"""Browser explorers: the trained model runs in the reader's page, with no kernel.

Each factory exports a small MLP VAE's weights (float16 or float32, with shapes and
checksums) and returns a :class:`BrowserExplorer`. Shown in a notebook, its
``_repr_html_`` is one ``text/html`` output: a ``<div>``, the settings and weights as a
``<script type="application/json">`` block, and ``static/explorer.js`` inlined as a plain
script. The same output runs in Jupyter, JupyterLab, VS Code and Colab, and in the built
book, offline: nothing is fetched from the network and nothing but that module is executed
(the weights are parsed with ``JSON.parse``, never evaluated).

============================  =======================================================  ===========
factory                       what the reader does                                     needs
============================  =======================================================  ===========
``browser_latent_explorer``   moves over the 2-D plane and sees E[x|z]; clicks a path  a decoder
``browser_draw_digit``        draws a digit: q(z|x) over the prior, samples decoded    a VAE
``browser_reparam_explorer``  moves μ and σ: density, ε, z = μ + σ ⊙ ε and the KL      (a decoder)
============================  =======================================================  ===========

The explorers draw a 2-D latent plane, so the model must be ``VAE(latent_dim=2,
arch="mlp")`` (the draw-a-digit and reparameterization explorers also need the standard
normal prior their circles and KL show). Anything else is refused with an error that says
what is needed. A page carries at most ``PAGE_BUDGET_BYTES`` per explorer: with float16
weights a ``hidden=(256,)`` model is about 0.55 MB per network in the page.

Accuracy: the page computes in float32 from the shipped weights, so it matches PyTorch
run on the same (float16-rounded) weights to about 1e-6 in probability
(:func:`vae_lib.widgets.weights.decode_exported` is that reference). float16 rounding itself (a relative 2^-11 per
weight) moved the probabilities of the book's 784-256-2 model by about 2e-4 from the float32
model (``benchmarks/bench_explorers.py``; tests/test_browser.py holds it to 1e-3). Pass
``dtype="float32"`` (twice the bytes) for a page within about 1e-6 of the trained model.

A teacher with no internet saves a page and opens it in any browser::

    vl.widgets.browser_latent_explorer(model, x, y).save("latent.html")
"""
from __future__ import annotations

import hashlib
import html as _html
import itertools
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ._base import _check_count
# The weight export lives in .weights; its names stay importable from here too.
from .weights import (check_model, decode_exported, encode_exported, export_model, export_tensor,  # noqa: F401
                      fnv1a32, import_tensor)

__all__ = [
    "BrowserExplorer",
    "PAGE_BUDGET_BYTES",
    "browser_latent_explorer",
    "browser_draw_digit",
    "browser_reparam_explorer",
]

PAGE_BUDGET_BYTES = 1_500_000  # bytes of HTML per explorer (weights, points and script)
JS_PATH = Path(__file__).with_name("static") / "explorer.js"
_CSS = (".vl-explorer{font:13px/1.4 sans-serif;color:#222;background:#fff;padding:8px;border:1px solid #ddd;"
        "border-radius:4px;max-width:100%;overflow-x:auto}"
        ".vl-explorer .vl-row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
        ".vl-explorer .vl-col{display:flex;flex-direction:column;gap:6px}"
        ".vl-explorer .vl-plane{position:relative;border:1px solid #bbb}"
        ".vl-explorer .vl-plane canvas{position:absolute;left:0;top:0;width:100%;height:100%}"
        ".vl-explorer .vl-plane canvas:last-child{cursor:crosshair;touch-action:none}"
        ".vl-explorer canvas{image-rendering:pixelated}"
        ".vl-explorer .vl-pad{border:1px solid #888;cursor:crosshair;touch-action:none}"
        ".vl-explorer figure{margin:0;text-align:center;font-size:11px}"
        ".vl-explorer .vl-strip{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}"
        ".vl-explorer .vl-controls label{margin-right:12px;white-space:nowrap}"
        ".vl-explorer button{margin:2px;font-size:12px}"
        ".vl-explorer .vl-title{font-weight:bold;margin-bottom:4px}"
        ".vl-explorer .vl-hint{color:#555;font-size:12px;margin:6px 0 0}"
        ".vl-explorer .vl-error{color:#b00}")
_ids = itertools.count()


# --- weights: export and the reference that reads them back ------------------------------

class BrowserExplorer:
    """A browser explorer: ``spec`` (settings and weights) and the HTML that runs it.

    Displayed in a notebook it renders itself (``_repr_html_``); ``html`` is that output,
    ``nbytes`` its size, ``save(path)`` writes a standalone page that works offline.
    """

    def __init__(self, kind: str, spec: Dict[str, Any], budget_bytes: int = PAGE_BUDGET_BYTES):
        self.kind = kind
        self.spec = dict(spec, kind=kind)
        payload = json.dumps(self.spec, separators=(",", ":"), sort_keys=True)
        self.element_id = f"vl-{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}-{next(_ids)}"
        self.html = self._render(payload)
        self.nbytes = len(self.html.encode("utf-8"))
        if self.nbytes > budget_bytes:
            raise ValueError(f"{kind} explorer: the page would carry {self.nbytes / 1e6:.2f} MB, over the "
                             f"{budget_bytes / 1e6:.2f} MB budget. Use dtype='float16', a smaller model "
                             "(hidden=(256,)), fewer points (max_points), or raise budget_bytes")

    def _render(self, payload: str) -> str:
        js = JS_PATH.read_text(encoding="utf-8")
        if "</script" in js.lower():
            raise RuntimeError(f"{JS_PATH} must not contain '</script'")
        payload = payload.replace("</", "<\\/")  # JSON inside <script>: no early close tag
        uid = self.element_id
        return (f'<div class="vl-explorer" id="{uid}" data-kind="{self.kind}"></div>\n'
                f"<style>{_CSS}</style>\n"
                f'<script type="application/json" id="{uid}-spec">{payload}</script>\n'
                f"<script>(function () {{\n{js}\n"
                # the output's own document (a notebook may render outputs in a shadow root)
                f"const doc = document.currentScript ? document.currentScript.getRootNode() : document;\n"
                f"const byId = (id) => (doc.getElementById && doc.getElementById(id)) || document.getElementById(id);\n"
                f"vlMountExplorer(byId(\"{uid}\"), JSON.parse(byId(\"{uid}-spec\").textContent));\n}})();</script>\n")

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"BrowserExplorer(kind={self.kind!r}, {self.nbytes / 1e3:.0f} kB)"

    def save(self, path: Union[str, Path]) -> Path:
        """Write a standalone HTML page (no network needed) and return its path."""
        path = Path(path)
        title = _html.escape(self.spec.get("title") or f"{self.kind} explorer")
        path.write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
                        f"<body>\n{self.html}</body></html>\n", encoding="utf-8")
        return path


# --- the factories ----------------------------------------------------------------------------

def _check_extent(extent: Sequence[float]) -> List[float]:
    e = [float(v) for v in extent]
    if len(e) != 4 or not all(np.isfinite(e)) or e[0] >= e[1] or e[2] >= e[3]:
        raise ValueError(f"extent must be (z1_min, z1_max, z2_min, z2_max), finite and increasing; got {extent!r}")
    return e


def _points(model: nn.Module, x: Optional[torch.Tensor], labels: Optional[torch.Tensor], max_points: int,
            seed: int) -> Tuple[Dict[str, Any], Optional[np.ndarray]]:
    """Encoded means of (a seeded subset of) ``x`` for the plane's background, with class colours."""
    if x is None:
        return {}, None
    from ..metrics import embed
    from ..plots import class_colormap
    n = len(x)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points] if n > max_points \
        else torch.arange(n)
    z = embed(model, x[idx]).detach().cpu().float()  # encoded means, [N, 2]
    out: Dict[str, Any] = {"points": export_tensor("points", z, "float16")}
    if labels is not None:
        lab = torch.as_tensor(labels)[idx].long()
        if lab.numel() and lab.min() < 0:
            raise ValueError("labels must be non-negative class indices")
        n_classes = int(lab.max()) + 1 if lab.numel() else 1
        cmap = class_colormap(n_classes)
        out["labels"] = lab.tolist()
        out["colors"] = ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in cmap(k)[:3]) for k in range(n_classes)]
    return out, z.numpy()


def _auto_extent(z: Optional[np.ndarray], default: float = 3.0) -> List[float]:
    """A square plane holding 99% of the points (and the prior's 2σ), with a margin."""
    r = default
    if z is not None and len(z):
        r = max(2.0, float(np.quantile(np.abs(z), 0.99)) * 1.15)
    return [-r, r, -r, r]


def browser_latent_explorer(model: nn.Module, x: Optional[torch.Tensor] = None,
                            labels: Optional[torch.Tensor] = None, *, max_points: int = 2000,
                            extent: Optional[Sequence[float]] = None, steps: int = 9, start=(0.0, 0.0),
                            dtype: str = "float16", plane_px: int = 320, image_scale: int = 5,
                            title: Optional[str] = None, seed: int = 0,
                            budget_bytes: int = PAGE_BUDGET_BYTES) -> BrowserExplorer:
    """Drag a point over the 2-D latent plane and see its decoding ``E[x|z]``, in the page.

    Args:
        model: a ``VAE`` or ``Autoencoder`` with ``latent_dim=2`` and ``arch="mlp"``.
        x: images ``[N, C, H, W]`` whose encoded means are drawn on the plane (optional).
        labels: ``[N]`` class indices for the points' colours (optional).
        max_points: at most this many points (a seeded subset), 2 bytes per coordinate.
        extent: ``(z1_min, z1_max, z2_min, z2_max)``; default: 99% of the points, at least ±2.
        steps: images in the interpolation strip between two clicked points (>= 2).
        start: the first ``z`` decoded.
        dtype: ``"float16"`` (half the bytes) or ``"float32"`` weights.
        plane_px, image_scale: the plane's size in pixels, the decoded image's magnification.
    """
    where = "browser_latent_explorer"
    check_model(model, where, need_vae=False, need_standard_prior=False)
    steps = _check_count(where, "steps", steps, 2)
    max_points = _check_count(where, "max_points", max_points, 1)
    pts, z = _points(model, x, labels, max_points, seed)
    spec = {"model": export_model(model, dtype), "extent": _check_extent(extent) if extent else _auto_extent(z),
            "steps": steps, "start": [float(v) for v in start], "plane_px": _check_count(where, "plane_px", plane_px, 64),
            "image_scale": _check_count(where, "image_scale", image_scale, 1), "title": title, "prior_contours": False,
            **pts}
    return BrowserExplorer("latent", spec, budget_bytes)


def browser_draw_digit(model: nn.Module, x: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None,
                       *, n_samples: int = 8, n_examples: int = 10, max_points: int = 1000,
                       extent: Sequence[float] = (-4.0, 4.0, -4.0, 4.0), dtype: str = "float16",
                       plane_px: int = 300, pad_scale: int = 8, title: Optional[str] = None, seed: int = 0,
                       budget_bytes: int = PAGE_BUDGET_BYTES) -> BrowserExplorer:
    """Draw a digit; the encoder runs in the page and q(z|x)'s ellipse appears over the prior.

    The plane shows the prior N(0, I) (circles at 1, 2, 3 σ), the posterior's 1σ and 2σ
    ellipses, ``n_samples`` draws ``z = μ + σ ⊙ ε`` (decoded in a strip) and KL(q ‖ p) in nats.

    Args:
        model: a ``VAE`` with ``latent_dim=2``, ``arch="mlp"`` and the standard normal prior.
        x, labels: images and classes; the encoded means of up to ``max_points`` of them are
            drawn faintly, and the first image of each of up to ``n_examples`` classes becomes
            an "example" button (stored as 8-bit pixels).
        n_samples: posterior draws decoded per update (>= 1); "New ε" redraws them.
        extent: the plane, ``(z1_min, z1_max, z2_min, z2_max)``.
        dtype: ``"float16"`` or ``"float32"`` weights; the page carries encoder and decoder.
        pad_scale: screen pixels per image pixel on the drawing pad.
    """
    where = "browser_draw_digit"
    check_model(model, where, need_vae=True, need_standard_prior=True)
    n_samples = _check_count(where, "n_samples", n_samples, 1)
    n_examples = _check_count(where, "n_examples", n_examples, 0)
    pts, _ = _points(model, x, labels, _check_count(where, "max_points", max_points, 1), seed) if max_points else ({}, None)
    spec: Dict[str, Any] = {"model": export_model(model, dtype, encoder=True), "extent": _check_extent(extent),
                            "n_samples": n_samples, "seed": int(seed), "prior_contours": True, "title": title,
                            "plane_px": _check_count(where, "plane_px", plane_px, 64),
                            "pad_scale": _check_count(where, "pad_scale", pad_scale, 1), **pts}
    if x is not None and n_examples:
        if labels is not None:  # the first image of each class, in class order
            lab = torch.as_tensor(labels).long()
            classes = sorted(set(lab.tolist()))[:n_examples]
            idx = [int((lab == k).nonzero()[0]) for k in classes]
            names = [str(k) for k in classes]
        else:
            idx = list(range(min(n_examples, len(x))))
            names = [f"example {i + 1}" for i in idx]
        spec["examples"] = export_tensor("examples", x[idx].detach().cpu().float().clamp(0, 1), "uint8")
        spec["example_names"] = names
    return BrowserExplorer("draw", spec, budget_bytes)


def browser_reparam_explorer(model: Optional[nn.Module] = None, *, mu: Sequence[float] = (1.0, -0.5),
                             sigma: Sequence[float] = (0.6, 0.4), n_samples: int = 64, n_decoded: int = 8,
                             extent: Sequence[float] = (-4.0, 4.0, -4.0, 4.0), mu_max: float = 3.0,
                             sigma_range: Tuple[float, float] = (0.05, 2.0), grid: int = 64,
                             dtype: str = "float16", plane_px: int = 300, eps_px: int = 200,
                             title: Optional[str] = None, seed: int = 0,
                             budget_bytes: int = PAGE_BUDGET_BYTES) -> BrowserExplorer:
    """Sliders for μ and σ of q = N(μ, diag σ²) in 2-D: the density, ε draws and z = μ + σ ⊙ ε.

    The left plane holds ``n_samples`` fixed draws ε ~ N(0, I); the right one q's density
    on a ``grid x grid`` raster, the same draws moved to ``z = μ + σ ⊙ ε``, and the text the
    KL to the prior, ``½ Σ (μ² + σ² − 1 − log σ²)`` nats, all recomputed on every slider move.
    With a ``model`` (``VAE``, ``latent_dim=2``, ``arch="mlp"``, standard prior) the page
    also decodes μ and the first ``n_decoded`` z.

    Args:
        mu, sigma: the sliders' starting values (μ in ``[-mu_max, mu_max]``, σ in ``sigma_range``).
        n_samples: ε draws (>= 1); "New ε" redraws them. grid: density raster (>= 8).
        extent: both planes, ``(min1, max1, min2, max2)``.
    """
    where = "browser_reparam_explorer"
    if model is not None:
        check_model(model, where, need_vae=True, need_standard_prior=True)
    n_samples = _check_count(where, "n_samples", n_samples, 1)
    n_decoded = _check_count(where, "n_decoded", n_decoded, 0)
    lo, hi = (float(s) for s in sigma_range)
    if not (0 < lo < hi) or not (mu_max > 0):
        raise ValueError(f"need 0 < sigma_range[0] < sigma_range[1] and mu_max > 0, got {sigma_range}, {mu_max}")
    if len(mu) != 2 or len(sigma) != 2:
        raise ValueError(f"mu and sigma are 2-D: got mu={mu!r}, sigma={sigma!r}")
    clamp = lambda v, a, b: float(min(max(float(v), a), b))  # noqa: E731  slider ranges
    sub = "\u2081\u2082"  # subscripts 1, 2
    controls = [{"name": f"mu{d + 1}", "label": "\u03bc" + sub[d], "min": -mu_max, "max": mu_max,
                 "step": 0.01, "value": clamp(mu[d], -mu_max, mu_max)} for d in range(2)]
    controls += [{"name": f"sigma{d + 1}", "label": "\u03c3" + sub[d], "min": lo, "max": hi,
                  "step": 0.01, "value": clamp(sigma[d], lo, hi)} for d in range(2)]
    spec = {"model": export_model(model, dtype) if model is not None else None, "controls": controls,
            "extent": _check_extent(extent), "n_samples": n_samples, "n_decoded": n_decoded, "seed": int(seed),
            "grid": _check_count(where, "grid", grid, 8), "prior_contours": True, "title": title,
            "plane_px": _check_count(where, "plane_px", plane_px, 64), "eps_px": _check_count(where, "eps_px", eps_px, 64)}
    return BrowserExplorer("reparam", spec, budget_bytes)
