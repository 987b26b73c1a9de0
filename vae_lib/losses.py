"""The maths of the ELBO: sampling, KL divergences and log-likelihoods.

Every function works on batches and returns one number per input, in nats.
Shapes: ``B`` batch, ``D`` latent dimensions, ``P`` pixels (C*H*W).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = [
    "ELBOTerms",
    "reparameterize",
    "kl_standard_normal",
    "kl_standard_normal_per_dim",
    "gaussian_log_prob",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "objective",
]

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class ELBOTerms:
    """The pieces of the negative ELBO for one batch.

    Attributes:
        recon: ``[B]`` reconstruction term ``-log p(x|z)``, nats per image.
        kl: ``[B]`` ``KL(q(z|x) || p(z))``, nats per image (closed form for the
            standard prior, a one-sample Monte Carlo estimate otherwise).
        loss: scalar, ``mean_B(recon + beta * kl)``: the quantity training minimises.
        kl_per_dim: ``[B, D]`` the KL split over latent dimensions when it is
            available in closed form (standard prior), else ``None``. Used by free bits.
        z: ``[B, D]`` the latent sample the reconstruction used.
        extra: scalar added to the training objective as it is, outside the ELBO (for example a
            VQ-VAE's codebook and commitment losses), or ``None``. It is never part of ``recon``
            or ``kl``, so the nats the trainer records stay those of the bound.
    """

    recon: torch.Tensor
    kl: torch.Tensor
    loss: torch.Tensor
    kl_per_dim: Optional[torch.Tensor] = None
    z: Optional[torch.Tensor] = None
    extra: Optional[torch.Tensor] = None


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: Optional[torch.Generator] = None,
    n_samples: Optional[int] = None,
) -> torch.Tensor:
    """A differentiable sample ``z ~ N(mu, diag(exp(logvar)))``.

    Args:
        mu: ``[B, D]`` means (any shape).
        logvar: ``[B, D]`` log-variances, ``log σ²``, the same shape as ``mu``.
        generator: optional random generator for ``ε`` (on ``mu``'s device).
        n_samples: ``S`` independent samples per ``(mu, logvar)``; ``None`` draws one, unstacked.

    Returns:
        ``[B, D]`` sample, or ``[S, B, D]`` with ``n_samples=S``; gradients flow to ``mu`` and
        ``logvar`` because the noise ``ε ~ N(0, I)`` is drawn outside the computation graph.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1):
        raise ValueError(f"n_samples must be a positive int (or None for one sample), got {n_samples!r}")
    shape = mu.shape if n_samples is None else (n_samples, *mu.shape)  # [B, D] or [S, B, D]
    std = torch.exp(0.5 * logvar)  # σ = exp(½ log σ²)
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)  # ε ~ N(0, I)
    return mu + std * eps  # z = μ + σ ⊙ ε, [B, D] or [S, B, D]


def kl_standard_normal_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) || N(0, 1))`` for every latent dimension: ``[B, D]`` nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # ½(μ² + σ² − 1 − log σ²)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(μ, diag σ²) || N(0, I))``, summed over dimensions: ``[B]`` nats."""
    return kl_standard_normal_per_dim(mu, logvar).sum(dim=-1)  # Σ_d ½(μ_d² + σ_d² − 1 − log σ_d²)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; μ, diag σ²)`` summed over the last dimension (broadcasts): nats."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor, event_dims: int = 3) -> torch.Tensor:
    """``log p(x|z)`` for independent Bernoulli pixels with the given logits.

    Args:
        logits: ``[..., C, H, W]`` decoder output (Bernoulli logits).
        x: targets in ``[0, 1]``, broadcastable to ``logits`` (grey levels act as soft targets).
        event_dims: how many trailing dimensions make up one image (3 for ``C, H, W``).

    Returns:
        ``[...]`` nats per image: ``Σ_p x log σ(l) + (1−x) log(1−σ(l))``.
    """
    x = x.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # −log p per pixel, stable in l
    return -bce.flatten(start_dim=-event_dims).sum(dim=-1)


def gaussian_log_likelihood(
    mean: torch.Tensor, x: torch.Tensor, log_std: torch.Tensor, event_dims: int = 3
) -> torch.Tensor:
    """``log N(x; mean, σ²I)`` per image, ``log σ`` a scalar tensor (fixed or learned): ``[...]`` nats."""
    x_flat, mean_flat = x.flatten(start_dim=-event_dims), mean.flatten(start_dim=-event_dims)  # [..., P]
    return gaussian_log_prob(x_flat, mean_flat, 2.0 * log_std)  # Σ_p log N(x_p; mean_p, σ²), log σ² = 2 log σ


def objective(terms: ELBOTerms, beta: float, free_bits: float = 0.0) -> torch.Tensor:
    """The scalar the trainer minimises: ``mean_B(recon) + β · KL``, nats per image.

    Free bits (Kingma et al., 2016): each latent dimension's KL, averaged over the batch,
    counts as at least ``free_bits`` nats (λ), so the optimiser gains nothing by pushing it
    lower. Without a per-dimension KL (mixture priors) the total is floored at ``λ · D``.
    A model's ``terms.extra`` (a scalar penalty outside the ELBO) is added as it is.
    """
    if free_bits <= 0:
        kl = terms.kl.mean()  # mean_B(KL)
    elif terms.kl_per_dim is not None:
        kl = terms.kl_per_dim.mean(dim=0).clamp(min=free_bits).sum()  # Σ_d max(λ, E_B[KL_d])
    else:
        kl = terms.kl.mean().clamp(min=free_bits * terms.z.shape[-1])  # max(λD, E_B[KL])
    loss = terms.recon.mean() + beta * kl  # mean_B(recon) + β · KL
    return loss if terms.extra is None else loss + terms.extra
