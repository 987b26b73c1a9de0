"""Priors ``p(z)`` over the latent space.

A prior is an ``nn.Module`` with two methods:

* ``log_prob(z, encode) -> [B]`` nats, for ``z: [B, D]`` (or ``[..., D]``);
* ``sample(n_samples, encode, generator=None) -> [n_samples, D]``;
* ``kl_per_dim(mu, logvar) -> [B, D]`` nats, ``KL(q(z|x) || p(z))`` per dimension when it has a
  closed form, else ``None`` (then :meth:`vae_lib.VAE.kl_to_prior` estimates it by Monte Carlo).

``encode`` is the model's :meth:`~vae_lib.VAE.encode` (``x -> (mu, logvar)``). Only the VampPrior uses it,
because its mixture components are the encoder's posteriors at learned pseudo-inputs.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

from .losses import gaussian_log_prob, kl_standard_normal_per_dim, reparameterize

__all__ = ["StandardNormalPrior", "MixturePrior", "VampPrior", "make_prior", "PRIORS"]

Encode = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]
#: The names accepted by ``VAE(prior=...)``.
PRIORS = ("standard", "mog", "vamp")


class StandardNormalPrior(nn.Module):
    """``p(z) = N(0, I)``: fixed before training, the same for every input."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor, encode: Optional[Encode] = None) -> torch.Tensor:
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        return gaussian_log_prob(z, zero, zero)  # log N(z; 0, I)

    def sample(self, n_samples: int, encode: Optional[Encode] = None, generator: Optional[torch.Generator] = None,
               device: Optional[torch.device] = None) -> torch.Tensor:
        """``n_samples`` draws ``z ~ N(0, I)``: ``[n_samples, D]``."""
        return torch.randn(n_samples, self.latent_dim, generator=generator, device=device)

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Closed-form ``KL(N(μ, σ²) || N(0, 1))`` per dimension: ``[B, D]`` nats."""
        return kl_standard_normal_per_dim(mu, logvar)


def _check_components(prior: str, n_components: int) -> None:
    """A mixture needs at least one component: with none, ``log p(z) = log 0 = −inf`` and the loss is inf."""
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        what = "mixture components" if prior == "mog" else "pseudo-inputs"
        raise ValueError(f"prior={prior!r} needs n_components >= 1 ({what}), got {n_components!r}")


class _MixtureBase(nn.Module):
    """Shared maths of an equally or freely weighted mixture of diagonal Gaussians."""

    def components(self, encode: Optional[Encode]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_weights [K], means [K, D], logvars [K, D])``."""
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor, encode: Optional[Encode] = None) -> torch.Tensor:
        log_w, means, logvars = self.components(encode)
        per_comp = gaussian_log_prob(z.unsqueeze(-2), means, logvars)  # [..., K]: log N(z; m_k, s_k²)
        return torch.logsumexp(per_comp + log_w, dim=-1)  # log Σ_k w_k N(z; m_k, s_k²)

    def sample(self, n_samples: int, encode: Optional[Encode] = None, generator: Optional[torch.Generator] = None,
               device: Optional[torch.device] = None) -> torch.Tensor:
        """``n_samples`` draws: a component ``k ~ w``, then ``z ~ N(m_k, s_k²)``: ``[n_samples, D]``."""
        log_w, means, logvars = self.components(encode)
        k = torch.multinomial(log_w.exp(), n_samples, replacement=True, generator=generator)  # [S] component ids
        return reparameterize(means[k], logvars[k], generator)  # z = m_k + s_k ⊙ ε, [S, D]

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        """``None``: the KL from a Gaussian to a mixture has no closed form."""
        return None


class MixturePrior(_MixtureBase):
    """A learnable mixture of ``n_components`` diagonal Gaussians (weights, means, variances all learned).

    Means start spread out (``N(0, I)`` draws, seeded) and variances at 1, so the prior
    starts close to a broad Gaussian and can grow modes where the data needs them.
    """

    def __init__(self, latent_dim: int, n_components: int = 10, seed: int = 0):
        super().__init__()
        _check_components("mog", n_components)
        g = torch.Generator().manual_seed(seed)
        self.means = nn.Parameter(torch.randn(n_components, latent_dim, generator=g))  # [K, D]
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))  # [K, D]
        self.logits = nn.Parameter(torch.zeros(n_components))  # [K], weights = softmax(logits)

    def components(self, encode: Optional[Encode] = None):
        return torch.log_softmax(self.logits, dim=0), self.means, self.logvars


class VampPrior(_MixtureBase):
    """VampPrior (Tomczak & Welling, 2018): ``p(z) = 1/K Σ_k q(z | u_k)``.

    The ``K`` pseudo-inputs ``u_k`` have the data's shape and are learned; the mixture
    components are what the encoder makes of them, so the prior follows the posterior.
    """

    def __init__(self, input_shape: Sequence[int], n_components: int = 50, seed: int = 0):
        super().__init__()
        _check_components("vamp", n_components)
        g = torch.Generator().manual_seed(seed)
        # Pseudo-inputs start as faint noise around mid-grey, in data space [K, C, H, W].
        self.pseudo_inputs = nn.Parameter(0.5 + 0.05 * torch.randn(n_components, *input_shape, generator=g))

    def components(self, encode: Optional[Encode] = None):
        if encode is None:
            raise ValueError("VampPrior needs the model's encoder: call it through VAE.prior_log_prob / VAE.sample")
        means, logvars = encode(self.pseudo_inputs)  # [K, D] each
        k = means.shape[0]
        log_w = torch.full((k,), -math.log(k), dtype=means.dtype, device=means.device)  # uniform 1/K
        return log_w, means, logvars


def make_prior(name: str, latent_dim: int, input_shape: Sequence[int], n_components: int) -> nn.Module:
    """Build a prior by name: ``"standard"``, ``"mog"`` or ``"vamp"``."""
    if name == "standard":
        return StandardNormalPrior(latent_dim)
    if name == "mog":
        return MixturePrior(latent_dim, n_components)
    if name == "vamp":
        return VampPrior(input_shape, n_components)
    raise ValueError(f"unknown prior {name!r}; choose one of {PRIORS}")
