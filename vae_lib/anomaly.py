"""Anomaly scores from a VAE's likelihood, AUROC, and out-of-distribution inputs made offline (Part II, chapter 8).

Three parts:

- **Inputs.** Out-of-distribution (OOD) image sets that need no download, each ``[N, 1, 28, 28]``
  grey levels in ``[0, 1]`` and seeded: :func:`upscaled_small_digits` (scikit-learn's bundled
  8×8 digits), :func:`uniform_noise`, :func:`bernoulli_noise`, :func:`constant_images`, and
  transforms of real digits, :func:`inverted`, :func:`occluded`, :func:`thickened`,
  :func:`thinned`, :func:`shifted`, :func:`perturbed`.
- **Scores**, higher = more anomalous, one per image: :func:`nll_score` (``−log p(x)`` by
  IWAE, nats), :func:`compressed_bits` and :func:`complexity_score` (Serrà et al., 2020),
  :func:`typicality_score` (Nalisnick et al., 2019b), :func:`likelihood_ratio_score`
  (Ren et al., 2019).
- **Evaluation**: :func:`auroc` (the Mann–Whitney statistic) and :func:`roc_points`.

The models are Bernoulli models of binary images, so every set is scored after one fixed
binarization, ``vl.binarize(x, seed=0)``, exactly like the held-out digits::

    import vae_lib as vl
    xb_in, xb_out = vl.binarize(x_val, seed=0), vl.binarize(vl.anomaly.inverted(x_val), seed=0)
    s_in, s_out = vl.anomaly.nll_score(model, xb_in, k=20), vl.anomaly.nll_score(model, xb_out, k=20)
    vl.anomaly.auroc(s_in, s_out)        # 1.0: every inverted digit scores above every real one
"""
from __future__ import annotations

import math
import zlib
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import check_images, iwae_log_likelihood

__all__ = [
    "auroc", "roc_points",
    "upscaled_small_digits", "inverted", "uniform_noise", "bernoulli_noise", "constant_images",
    "occluded", "thickened", "thinned", "shifted", "perturbed",
    "nll_score", "compressed_bits", "complexity_score", "typicality_score", "likelihood_ratio_score",
]

SIZE = 28  # the side of the book's images; every maker returns [N, 1, SIZE, SIZE]


# --- evaluation -----------------------------------------------------------------------

def _scores(s: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(s, torch.Tensor):
        s = torch.as_tensor(np.asarray(s))
    if s.dim() != 1 or s.numel() == 0 or s.is_complex() or s.dtype == torch.bool:
        raise ValueError(f"{where}: expected a non-empty 1-D tensor of scores [N], got shape {list(s.shape)}")
    s = s.detach().to("cpu", torch.float64)
    if bool(torch.isnan(s).any()):
        raise ValueError(f"{where}: scores contain NaN")
    return s


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Area under the ROC curve for telling ``scores_out`` (anomalies) from ``scores_in``.

    **Higher score = more anomalous.** The AUROC is the Mann–Whitney statistic
    ``P(s_out > s_in) + ½ P(s_out = s_in)`` over all ``N_in · N_out`` pairs: 1 when every
    anomaly scores above every normal input, ½ for a score that cannot tell them apart, 0
    when the score ranks them exactly the wrong way round. Ties count half. Computed from
    mid-ranks in ``O(N log N)`` (one sort), equal to ``sklearn.metrics.roc_auc_score``.

    Args:
        scores_in: ``[N_in]`` scores of in-distribution inputs (label 0).
        scores_out: ``[N_out]`` scores of out-of-distribution inputs (label 1).
    """
    s_in, s_out = _scores(scores_in, "auroc: scores_in"), _scores(scores_out, "auroc: scores_out")
    both = torch.cat([s_in, s_out])
    values, inverse, counts = torch.unique(both, return_inverse=True, return_counts=True)  # sorted distinct values
    mid_rank = torch.cumsum(counts, 0).double() - (counts.double() - 1) / 2  # average 1-based rank of each value
    ranks_out = mid_rank[inverse[len(s_in):]]
    n_in, n_out = len(s_in), len(s_out)
    u = ranks_out.sum() - n_out * (n_out + 1) / 2  # U = Σ rank(out) − N_out(N_out+1)/2
    return float(u / (n_in * n_out))


def roc_points(scores_in: torch.Tensor, scores_out: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ROC curve: ``(fpr [T], tpr [T])``, from (0, 0) to (1, 1), one step per distinct score.

    A threshold ``t`` flags every input with score ``≥ t``; ``fpr`` is the share of
    ``scores_in`` flagged (false alarms) and ``tpr`` the share of ``scores_out`` flagged.
    The trapezoid area under these points is :func:`auroc`.
    """
    s_in, s_out = _scores(scores_in, "roc_points: scores_in"), _scores(scores_out, "roc_points: scores_out")
    thresholds = torch.unique(torch.cat([s_in, s_out])).flip(0)  # high to low
    fpr = (s_in[None, :] >= thresholds[:, None]).double().mean(1)   # [T]
    tpr = (s_out[None, :] >= thresholds[:, None]).double().mean(1)  # [T]
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, fpr]), torch.cat([zero, tpr])


# --- out-of-distribution inputs ---------------------------------------------------------

def _count(n: int, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{where}: n must be a positive int (the number of images), got {n!r}")
    return int(n)


def _images(x: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor of images [N, 1, H, W], got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] == 0 or not torch.is_floating_point(x):
        raise ValueError(f"{where}: expected a non-empty float tensor of grey images [N, 1, H, W], got "
                         f"{x.dtype} of shape {list(x.shape)}")
    return x


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))  # the CPU stream: the same images everywhere


def upscaled_small_digits(n: int = 500, size: int = 20, seed: int = 0) -> torch.Tensor:
    """``n`` of scikit-learn's bundled 8×8 digits (no download), upscaled and centred: ``[n, 1, 28, 28]``.

    ``sklearn.datasets.load_digits`` ships 1,797 digits with grey levels 0–16, written by other
    people on another scanner. Each is divided by 16, resized bilinearly to ``size × size`` and
    padded with zeros to 28×28, so that with ``size=20`` the digit fills the same central
    box as an MNIST digit; ``size=28`` fills the whole frame. Drawn without replacement, seeded.
    """
    from sklearn.datasets import load_digits

    n = _count(n, "upscaled_small_digits")
    if not 8 <= size <= SIZE:
        raise ValueError(f"upscaled_small_digits: size must be in [8, {SIZE}] pixels, got {size}")
    images = load_digits().images  # [1797, 8, 8], 0..16
    if n > len(images):
        raise ValueError(f"upscaled_small_digits: only {len(images)} small digits exist, asked for n={n}")
    pick = torch.randperm(len(images), generator=_generator(seed))[:n]
    small = torch.from_numpy(images).float()[pick, None] / 16.0                      # [n, 1, 8, 8] in [0, 1]
    big = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    lo = (SIZE - size) // 2
    return F.pad(big, (lo, SIZE - size - lo, lo, SIZE - size - lo)).clamp(0.0, 1.0)  # [n, 1, 28, 28]


def inverted(x: torch.Tensor) -> torch.Tensor:
    """White-on-black becomes black-on-white: ``1 − x``, same shape as ``x: [N, 1, H, W]``."""
    return 1.0 - _images(x, "inverted")


def uniform_noise(n: int = 500, seed: int = 0) -> torch.Tensor:
    """``[n, 1, 28, 28]`` grey levels drawn uniformly from ``[0, 1)``; binarized, each pixel is a fair coin."""
    return torch.rand(_count(n, "uniform_noise"), 1, SIZE, SIZE, generator=_generator(seed))


def bernoulli_noise(n: int = 500, p: float = 0.1, seed: int = 0) -> torch.Tensor:
    """``[n, 1, 28, 28]`` binary images, each pixel 1 with probability ``p``, independently (salt noise)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"bernoulli_noise: p must be a probability in [0, 1], got {p}")
    u = torch.rand(_count(n, "bernoulli_noise"), 1, SIZE, SIZE, generator=_generator(seed))
    return (u < p).float()  # pixel ~ Bernoulli(p)


def constant_images(n: int = 500, level: float = 0.0) -> torch.Tensor:
    """``[n, 1, 28, 28]`` images of one grey ``level``: 0 is blank; a small level, binarized, is a few stray dots."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"constant_images: level must be a grey level in [0, 1], got {level}")
    return torch.full((_count(n, "constant_images"), 1, SIZE, SIZE), float(level))


def occluded(x: torch.Tensor, size: int = 10, value: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``x: [N, 1, H, W]`` with one ``size × size`` square set to ``value`` (1: an ink blot, 0: an erased patch).

    The square's top-left corner is drawn uniformly per image (seeded) so that the square lies
    inside the central 20×20 box, where the digits are. Built with a mask, no loop over images.
    """
    x = _images(x, "occluded")
    h, w = x.shape[-2:]
    lo, hi = (h - 20) // 2, (h - 20) // 2 + 20 - size  # corner range that keeps the square in the box
    if not 1 <= size <= 20 or hi < lo:
        raise ValueError(f"occluded: size must be between 1 and 20 pixels, got {size}")
    g = _generator(seed)
    top = torch.randint(lo, hi + 1, (x.shape[0],), generator=g)   # [N]
    left = torch.randint(lo, hi + 1, (x.shape[0],), generator=g)  # [N]
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + size)     # [N, H]
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + size)   # [N, W]
    mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None].to(x.device)        # [N, 1, H, W]
    return torch.where(mask, torch.as_tensor(float(value), dtype=x.dtype, device=x.device), x)


def thickened(x: torch.Tensor, width: int = 3) -> torch.Tensor:
    """Bolder strokes: grey-level dilation, the maximum over each ``width × width`` neighbourhood (odd width)."""
    x = _images(x, "thickened")
    if width < 1 or width % 2 == 0:
        raise ValueError(f"thickened: width must be an odd number of pixels >= 1, got {width}")
    return F.max_pool2d(x, width, stride=1, padding=width // 2)  # max over the neighbourhood, same shape


def thinned(x: torch.Tensor) -> torch.Tensor:
    """Thinner strokes: grey-level erosion, the minimum over each 2×2 neighbourhood (same shape as ``x``).

    A 2×2 window shifts the image by half a pixel; the last row and column are padded with 0.
    """
    x = _images(x, "thinned")
    eroded = -F.max_pool2d(-x, 2, stride=1)  # min over 2×2 windows, [N, 1, H−1, W−1]
    return F.pad(eroded, (0, 1, 0, 1))


def shifted(x: torch.Tensor, pixels: int = 6) -> torch.Tensor:
    """``x: [N, 1, H, W]`` moved ``pixels`` to the right (what leaves the right edge comes back on the left)."""
    return torch.roll(_images(x, "shifted"), shifts=int(pixels), dims=3)


def perturbed(x: torch.Tensor, rate: float = 0.2, seed: int = 0) -> torch.Tensor:
    """Ren et al.'s (2019) background data: each pixel replaced, with probability ``rate``, by a uniform grey level.

    A model trained on perturbed images learns the population's low-level statistics (how
    much ink, how smooth) but not its shapes; it is the background model of
    :func:`likelihood_ratio_score`. Same shape as ``x``, seeded.
    """
    x = _images(x, "perturbed")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"perturbed: rate must be a probability in [0, 1], got {rate}")
    g = _generator(seed)
    replace = (torch.rand(x.shape, generator=g) < rate).to(x.device)   # which pixels, Bernoulli(rate)
    noise = torch.rand(x.shape, generator=g).to(x.device, x.dtype)    # their new grey level, U(0, 1)
    return torch.where(replace, noise, x)


# --- scores: higher = more anomalous ----------------------------------------------------------

def _binary(model: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    check_images(model, x, where)
    if getattr(model, "likelihood", "bernoulli") == "bernoulli" and bool(((x != 0) & (x != 1)).any()):
        raise ValueError(f"{where}: a Bernoulli model's log p(x) is a probability of binary images only; "
                         f"binarize the inputs first with vl.binarize(x, seed=0)")
    return x


def nll_score(model: nn.Module, x: torch.Tensor, k: int = 20, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """``−log p(x)`` by the IWAE bound with ``k`` samples: ``[N]`` nats per image (higher = more anomalous).

    The bound ``log p(x) ≥ log 1/k Σ_i p(x|z_i) p(z_i)/q(z_i|x)`` comes from
    :func:`vae_lib.iwae_log_likelihood`; its negative is an upper bound on ``−log p(x)``.
    ``x: [N, 1, H, W]`` must be binary for a Bernoulli model (score ``vl.binarize(x, seed=0)``).
    """
    x = _binary(model, x, "nll_score")
    return -iwae_log_likelihood(model, x, k=k, batch_size=batch_size, chunk=min(k, 100), seed=seed)  # −log p(x), [N]


def compressed_bits(x: torch.Tensor) -> torch.Tensor:
    """Length in bits of each binary image ``x: [N, 1, H, W]`` compressed by zlib (level 9): ``[N]`` float.

    The image's pixels are packed 8 to a byte (row-major) before compression. The length
    includes zlib's fixed overhead of a few bytes, the same for every image, so it moves no
    ranking. A stand-in for Serrà et al.'s PNG/FLIF complexity ``L(x)``, computable offline.
    zlib works on one buffer at a time, so this loops over the images on the host (about
    a millisecond per hundred images).
    """
    x = _images(x, "compressed_bits")
    if bool(((x != 0) & (x != 1)).any()):
        raise ValueError("compressed_bits: expected binary images (0s and 1s); binarize with vl.binarize(x, seed=0)")
    packed = np.packbits(x.detach().cpu().numpy().astype(np.uint8).reshape(x.shape[0], -1), axis=1)  # [N, ⌈P/8⌉]
    return torch.tensor([8.0 * len(zlib.compress(row.tobytes(), 9)) for row in packed], dtype=torch.float64)


def complexity_score(nll_nats: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Serrà et al.'s (2020) complexity-corrected score ``S(x) = −log₂ p(x) − L(x)``: ``[N]`` bits.

    ``nll_nats: [N]`` is ``−log p(x)`` in nats (:func:`nll_score`), ``x: [N, 1, H, W]`` the same
    binary images, and ``L(x)`` their :func:`compressed_bits`. A generic compressor is a
    model too: ``S`` is how many more bits the VAE needs than zlib. Simple images cost both
    little, so the difference removes much of the likelihood's preference for them; ``S < 0``
    means the VAE compresses the image better than zlib. Higher = more anomalous.
    """
    nll = _scores(nll_nats, "complexity_score: nll_nats")
    bits = compressed_bits(x)
    if bits.shape != nll.shape:
        raise ValueError(f"complexity_score: {len(nll)} scores for {len(bits)} images; pass the same images")
    return nll / math.log(2) - bits  # S(x) = −log₂ p(x) − L(x), bits


def typicality_score(nll_nats: torch.Tensor, reference_nll_nats: torch.Tensor) -> torch.Tensor:
    """Distance from the typical set, ``|−log p(x) − H|``: ``[N]`` nats (Nalisnick et al., 2019b, per image).

    ``H`` is the mean of ``reference_nll_nats`` (``−log p`` of in-distribution images, for
    example the training digits), an estimate of the model's entropy. An image far *more*
    likely than typical is flagged as well as one far less likely. Higher = more anomalous.
    """
    nll = _scores(nll_nats, "typicality_score: nll_nats")
    entropy = _scores(reference_nll_nats, "typicality_score: reference_nll_nats").mean()  # H ≈ E[−log p(x)]
    return (nll - entropy).abs()  # |−log p(x) − H|


def likelihood_ratio_score(nll_nats: torch.Tensor, background_nll_nats: torch.Tensor) -> torch.Tensor:
    """Ren et al.'s (2019) likelihood ratio as an anomaly score: ``log p_bg(x) − log p(x)``, ``[N]`` nats.

    ``background_nll_nats`` is ``−log p_bg(x)`` under a background model trained on
    :func:`perturbed` data, for the same images. What both models explain (the amount of ink,
    smoothness) cancels; what only the real model explains (digit shapes) remains.
    Higher = more anomalous.
    """
    nll = _scores(nll_nats, "likelihood_ratio_score: nll_nats")
    bg = _scores(background_nll_nats, "likelihood_ratio_score: background_nll_nats")
    if nll.shape != bg.shape:
        raise ValueError(f"likelihood_ratio_score: {len(nll)} and {len(bg)} scores; score the same images twice")
    return nll - bg  # −log p(x) + log p_bg(x)
