"""Likelihoods that are true probabilities of 8-bit grey levels, and bits per dimension.

An 8-bit image takes one of 256 levels per pixel, so a likelihood of it must be a
probability mass function (pmf) over ``{0, …, 255}`` per pixel, not a density. This module
owns three such pmfs and their samplers, each a function of decoder parameters (the
parameter axis last) and integer levels:

* :func:`discretized_logistic_log_prob`: a mixture of ``K`` logistics, each integrated over
  the bin of width 1/255 around a level; the bins of levels 0 and 255 take the tails
  (Salimans et al., 2017, PixelCNN++). ``K = 1`` is a single discretized logistic.
* :func:`categorical_log_prob`: a free 256-way softmax per pixel (van den Oord et al., 2016).
* :func:`discretized_gaussian_log_prob`: ``N(μ, σ²)`` integrated over the same bins, edge bins
  taking the tails: the honest version of a Gaussian decoder on grey levels.

Pixels are stored as floats ``level / 255``; :func:`to_levels` turns them back into the
integers exactly, :func:`quantize` puts other grey values on that grid, and
:func:`bits_per_dim` converts nats per image to the unit of the image-modelling literature.

Example::

    import torch, vae_lib as vl
    x, _ = vl.load_dataset("mnist-5k", "val")                      # floats on the 1/255 grid
    levels = vl.likelihoods.to_levels(x)                            # [N, 1, 28, 28] int64, 0..255
    w, mu, log_s = torch.zeros(3, *x.shape, 1).unbind(0)            # K = 1: μ = 0, s = 1
    nats = vl.likelihoods.discretized_logistic_log_prob(w, mu, log_s, levels).flatten(1).sum(1)
    vl.likelihoods.bits_per_dim(-nats, 784)                         # [N] bits per pixel
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F

__all__ = [
    "N_LEVELS",
    "BIN_WIDTH",
    "to_levels",
    "quantize",
    "check_levels",
    "bits_per_dim",
    "discretized_logistic_log_prob",
    "discretized_gaussian_log_prob",
    "categorical_log_prob",
    "sample_discretized_logistic",
    "sample_discretized_gaussian",
    "sample_categorical",
    "level_mean",
    "log_pmf_table",
]

N_LEVELS = 256  # grey levels of an 8-bit pixel: 0..255
BIN_WIDTH = 1.0 / (N_LEVELS - 1)  # level l is the pixel value l/255; its bin is [l/255 − ½w, l/255 + ½w]
_GRID_TOL = 1e-3  # |255·x − round(255·x)| allowed for a pixel "on the grid" (float32 l/255 is within 1e-5)


def _check_tensor(t: torch.Tensor, name: str, where: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")


def _check_float(t: torch.Tensor, name: str, where: str) -> None:
    _check_tensor(t, name, where)
    if not t.is_floating_point():
        raise TypeError(f"{where}: {name} must be a floating-point tensor of decoder parameters, got {t.dtype}")


def _check_int_levels(levels: torch.Tensor, where: str) -> None:
    _check_tensor(levels, "levels", where)
    if levels.is_floating_point() or levels.dtype == torch.bool or levels.is_complex():
        raise TypeError(f"{where}: levels must be an integer tensor of grey levels 0..255, got {levels.dtype}; "
                        f"convert pixels in [0, 1] with vl.likelihoods.to_levels(x)")


def check_levels(levels: torch.Tensor, where: str = "levels") -> torch.Tensor:
    """Return ``levels`` if it is an integer tensor with every value in ``0..255``, else raise (one host sync)."""
    _check_int_levels(levels, where)
    if levels.numel() and (int(levels.min()) < 0 or int(levels.max()) > N_LEVELS - 1):
        raise ValueError(f"{where}: grey levels must lie in 0..255, got values in "
                         f"[{int(levels.min())}, {int(levels.max())}]")
    return levels


def to_levels(x: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Pixels ``x`` in ``[0, 1]`` on the 1/255 grid → integer levels ``round(255·x)``: same shape, int64.

    Exact for the bundled data, which stores ``level / 255`` in float32 (``255·x`` is within
    ``1e-5`` of an integer). With ``check=True`` (one host sync) pixels outside ``[0, 1]``,
    NaN, or off the grid raise a ``ValueError`` that says to :func:`quantize` first;
    ``check=False`` skips that (use it inside a training step, after checking the data once).
    """
    _check_tensor(x, "x", "to_levels")
    if not x.is_floating_point():
        raise TypeError(f"to_levels: expected floating-point pixels in [0, 1], got {x.dtype}"
                        + ("; uint8 images already are levels: use x.long()" if x.dtype == torch.uint8 else ""))
    scaled = x * (N_LEVELS - 1)  # 255·x
    levels = torch.round(scaled)
    if check and x.numel():
        if not bool(torch.isfinite(x).all()):
            raise ValueError("to_levels: x has NaN or infinite pixels")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"to_levels: pixels must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        off = float((scaled - levels).abs().max())
        if off > _GRID_TOL:
            raise ValueError(f"to_levels: pixels are not on the 1/255 grid of 8-bit images (a pixel is "
                             f"{off:.3g} levels away from the nearest one); quantize them first with "
                             f"vl.likelihoods.quantize(x)")
    return levels.long()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round pixels in ``[0, 1]`` to the nearest 8-bit level: ``round(255·x) / 255``, same shape and dtype."""
    _check_float(x, "x", "quantize")
    return torch.round(x.clamp(0.0, 1.0) * (N_LEVELS - 1)) / (N_LEVELS - 1)  # x̃ = round(255 x) / 255


def bits_per_dim(nats_per_image: Union[torch.Tensor, float], n_dims: int) -> Union[torch.Tensor, float]:
    """Convert a cost in nats per image to bits per dimension: ``nats / (D ln 2)``.

    ``D`` is the number of dimensions of one image (pixels × channels, 784 for MNIST). A
    negative log-likelihood of 8-bit images costs at most 8 bits/dim for a model no worse than
    uniform; a binary image at most 1.
    """
    if isinstance(n_dims, bool) or not isinstance(n_dims, int) or n_dims < 1:
        raise ValueError(f"bits_per_dim: n_dims must be a positive int (pixels × channels), got {n_dims!r}")
    return nats_per_image / (n_dims * math.log(2.0))  # bits/dim = nats / (D ln 2)


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 − e^{−a})`` for ``a > 0``, stable at both ends (Mächler, 2012)."""
    small = a < math.log(2.0)  # each branch gets only inputs it is finite at, so where's gradients stay finite
    return torch.where(small, torch.log(-torch.expm1(-a.clamp(min=1e-30))),
                       torch.log1p(-torch.exp(-a.clamp(min=math.log(2.0)))))


def _bin_edges(levels: torch.Tensor, dtype: torch.dtype):
    x = levels.to(dtype) * BIN_WIDTH  # the pixel value l/255
    return x + 0.5 * BIN_WIDTH, x - 0.5 * BIN_WIDTH  # upper and lower bin edge


def discretized_logistic_log_prob(logit_weights: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                                  levels: torch.Tensor) -> torch.Tensor:
    """``log P(level)`` under a mixture of ``K`` discretized logistics, per pixel: ``[...]`` nats.

    Args:
        logit_weights: ``[..., K]`` unnormalised log mixture weights (softmax-ed here).
        means: ``[..., K]`` component locations ``μ_k`` on the pixel scale (level / 255).
        log_scales: ``[..., K]`` ``log s_k``; the component CDF is ``σ((x − μ_k) / s_k)``.
        levels: ``[...]`` integer grey levels ``0..255``, broadcastable against the parameters' ``[...]``.

    ``P(l) = Σ_k π_k [σ((b⁺ − μ_k)/s_k) − σ((b⁻ − μ_k)/s_k)]`` with ``b^± = l/255 ± 1/510``;
    level 0 takes ``(−∞, b⁺]`` and level 255 ``[b⁻, ∞)``, so the 256 probabilities sum to 1.
    The bin mass is computed as ``log σ(u) + log σ(−v) + log(1 − e^{−(u − v)})`` (``u, v`` the
    standardised edges), exact and finite for any parameters, where PixelCNN++ falls back
    to the density at the bin centre.
    """
    where = "discretized_logistic_log_prob"
    for t, name in ((logit_weights, "logit_weights"), (means, "means"), (log_scales, "log_scales")):
        _check_float(t, name, where)
    _check_int_levels(levels, where)
    if not (logit_weights.shape[-1] == means.shape[-1] == log_scales.shape[-1]):
        raise ValueError(f"{where}: logit_weights, means and log_scales need the same number of components K "
                         f"in their last dimension, got {logit_weights.shape[-1]}, {means.shape[-1]}, "
                         f"{log_scales.shape[-1]}")
    hi, lo = _bin_edges(levels.unsqueeze(-1), means.dtype)  # [..., 1] each
    inv_s = torch.exp(-log_scales)  # 1 / s_k
    u = (hi - means) * inv_s  # (b⁺ − μ) / s, [..., K]
    v = (lo - means) * inv_s  # (b⁻ − μ) / s
    lower_tail = F.logsigmoid(u)  # level 0: log σ(u) = log F(b⁺)
    upper_tail = F.logsigmoid(-v)  # level 255: log(1 − σ(v)) = log σ(−v)
    centre = lower_tail + upper_tail + _log1mexp(BIN_WIDTH * inv_s)  # log(σ(u) − σ(v)); u − v = w / s
    lv = levels.unsqueeze(-1)
    log_p = torch.where(lv == 0, lower_tail, torch.where(lv == N_LEVELS - 1, upper_tail, centre))  # [..., K]
    if log_p.shape[-1] == 1:  # K = 1: π = 1
        return log_p.squeeze(-1)
    # log Σ_k π_k P_k(l) = logsumexp_k(w_k + log P_k) − logsumexp_k(w_k)  (log_softmax is slow for small K on a CPU)
    return torch.logsumexp(logit_weights + log_p, dim=-1) - torch.logsumexp(logit_weights, dim=-1)


def _log_ndtr_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(Φ(b) − Φ(a))`` for ``a < b``, stable: reflected into the lower tail, midpoint rule for tiny bins."""
    flip = (a + b) > 0  # both edges in the upper tail: Φ(b) − Φ(a) = Φ(−a) − Φ(−b)
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    la, lb = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    exact = lb + _log1mexp((lb - la).clamp(min=1e-30))  # log Φ(b) + log(1 − Φ(a)/Φ(b))
    mid, width = 0.5 * (a + b), b - a
    narrow = -0.5 * (mid * mid + math.log(2 * math.pi)) + torch.log(width)  # log φ(mid) + log(b − a)
    # The midpoint rule is off by a relative (b − a)²/24·|mid² − 1|: below 1e-7 for b − a < 1e-3
    # (where the float32 exact form loses digits to cancellation), as long as the bin is in the bulk.
    tiny = 1e-3 if a.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-5  # float64 cancels less
    return torch.where((width < tiny) & (mid.abs() < 5), narrow, exact)


def discretized_gaussian_log_prob(means: torch.Tensor, log_std: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``log P(level)`` when ``N(μ, σ²)`` is integrated over each level's bin, per pixel: ``[...]`` nats.

    Args:
        means: ``[...]`` ``μ`` on the pixel scale.
        log_std: ``log σ``, broadcastable against ``means`` (a scalar for a σ-VAE's shared σ).
        levels: ``[...]`` integer levels ``0..255``, broadcastable against ``means``.

    ``P(l) = Φ((b⁺ − μ)/σ) − Φ((b⁻ − μ)/σ)``, level 0 taking ``(−∞, b⁺]`` and 255 ``[b⁻, ∞)``:
    a pmf over the 256 levels, unlike the density ``N(x; μ, σ²)`` of :func:`vae_lib.gaussian_log_likelihood`.
    """
    where = "discretized_gaussian_log_prob"
    _check_float(means, "means", where)
    _check_float(log_std, "log_std", where)
    _check_int_levels(levels, where)
    hi, lo = _bin_edges(levels, means.dtype)
    inv_sd = torch.exp(-log_std)  # 1 / σ
    u, v = (hi - means) * inv_sd, (lo - means) * inv_sd  # standardised edges
    lower_tail = torch.special.log_ndtr(u)  # log Φ(u)
    upper_tail = torch.special.log_ndtr(-v)  # log(1 − Φ(v))
    centre = _log_ndtr_diff(v, u)  # log(Φ(u) − Φ(v))
    return torch.where(levels == 0, lower_tail, torch.where(levels == N_LEVELS - 1, upper_tail, centre))


def categorical_log_prob(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[level]`` per pixel: ``logits [..., 256]``, ``levels [...]`` → ``[...]`` nats."""
    where = "categorical_log_prob"
    _check_float(logits, "logits", where)
    _check_int_levels(levels, where)
    if logits.shape[-1] != N_LEVELS:
        raise ValueError(f"{where}: logits need {N_LEVELS} entries (one per grey level) in their last dimension, "
                         f"got {logits.shape[-1]}")
    log_p = F.log_softmax(logits, dim=-1)  # [..., 256]
    shape = torch.broadcast_shapes(log_p.shape[:-1], levels.shape)
    index = levels.expand(shape).unsqueeze(-1)  # [..., 1]
    return log_p.expand(*shape, N_LEVELS).gather(-1, index).squeeze(-1)  # log p_l


def _uniform(shape, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)
    return u.clamp(1e-6, 1.0 - 1e-6)  # keep log u and log(1 − u) finite


def _to_level(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * (N_LEVELS - 1)).clamp(0, N_LEVELS - 1).long()  # the level whose bin holds x


@torch.no_grad()
def sample_discretized_logistic(logit_weights: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw levels from the mixture of :func:`discretized_logistic_log_prob`: ``[..., K]`` params → ``[...]`` int64.

    A component ``k ~ π`` (Gumbel-max), then ``x = μ_k + s_k log(u / (1 − u))``, ``u ~ U(0, 1)``,
    then the level whose bin holds ``x`` (the edge levels take the tails): an exact draw.
    """
    gumbel = -torch.log(-torch.log(_uniform(logit_weights.shape, logit_weights, generator)))
    k = (F.log_softmax(logit_weights, dim=-1) + gumbel).argmax(dim=-1, keepdim=True)  # k ~ π, [..., 1]
    mu, log_s = means.gather(-1, k).squeeze(-1), log_scales.gather(-1, k).squeeze(-1)
    u = _uniform(mu.shape, mu, generator)
    return _to_level(mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u)))  # x = μ + s·logit(u)


@torch.no_grad()
def sample_discretized_gaussian(means: torch.Tensor, log_std: torch.Tensor,
                                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw levels from :func:`discretized_gaussian_log_prob`: ``x = μ + σ ε``, then its bin's level; ``[...]`` int64."""
    eps = torch.randn(means.shape, dtype=means.dtype, device=means.device, generator=generator)
    return _to_level(means + torch.exp(log_std) * eps)  # x = μ + σ ε


@torch.no_grad()
def sample_categorical(logits: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw a level per pixel from ``softmax(logits)``, ``logits [..., 256]`` → ``[...]`` int64 (Gumbel-max)."""
    gumbel = -torch.log(-torch.log(_uniform(logits.shape, logits, generator)))
    return (logits + gumbel).argmax(dim=-1)  # argmax_l (logit_l + g_l) ~ softmax(logits)


def log_pmf_table(log_prob_fn, shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """``log_prob_fn(levels)`` at every level 0..255: ``[256, *shape]`` nats.

    ``log_prob_fn`` maps integer levels of shape ``[256, *shape]`` (level ``l`` in row ``l``)
    to log-probabilities of that shape; the table's rows are the pmf, ``exp`` summing to 1
    over dimension 0.
    """
    levels = torch.arange(N_LEVELS, device=device).view(N_LEVELS, *([1] * len(shape))).expand(N_LEVELS, *shape)
    return log_prob_fn(levels).to(dtype)


@torch.no_grad()
def level_mean(log_prob_fn, shape, device=None, chunk: int = 32) -> torch.Tensor:
    """``E[level] / 255``, the mean pixel value of a pmf, by exact enumeration in chunks: ``shape``.

    ``log_prob_fn`` maps integer levels ``[m, *shape]`` to their log-probabilities; levels are
    enumerated ``chunk`` at a time, so memory stays ``chunk × shape``.
    """
    total = None
    for start in range(0, N_LEVELS, chunk):
        lv = torch.arange(start, min(start + chunk, N_LEVELS), device=device)
        lv = lv.view(-1, *([1] * len(shape))).expand(-1, *shape)  # [m, *shape]
        part = (log_prob_fn(lv).exp() * lv.to(torch.float32)).sum(0)  # Σ_l P(l) · l
        total = part if total is None else total + part
    return total * BIN_WIDTH  # E[l] / 255
