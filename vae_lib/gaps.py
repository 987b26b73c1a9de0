"""Why the ELBO falls short of ``log p(x)``: the amortization and approximation gaps.

For one image the gap between the log-likelihood and the ELBO of the encoder's posterior
splits in two (Cremer, Li & Duvenaud, 2018, "Inference suboptimality in variational
autoencoders")::

    log p(x) − ELBO[q_φ(z|x)]
        = (log p(x) − ELBO[q*])            approximation gap: the best diagonal Gaussian q*
                                           for this image is still not p(z|x)
        + (ELBO[q*] − ELBO[q_φ(z|x)])      amortization gap: the encoder, one network for all
                                           images, does not output q* for this image

``q*`` is found by :func:`refine_posterior`: gradient ascent on the image's ELBO over its
own mean and log-variance, starting at the encoder's output, decoder frozen. ``log p(x)``
is estimated by the importance-weighted bound under the refined ``q*`` with a large ``k``
(:func:`vae_lib.iwae_log_likelihood` with ``posterior=``), so it is itself a lower bound and
the approximation gap is, if anything, underestimated. All numbers are nats per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .device import eval_mode
from .losses import reparameterize
from .metrics import check_images, iwae_log_likelihood, posterior_stats

__all__ = ["InferenceGaps", "elbo_of_posterior", "refine_posterior", "inference_gaps"]

LOG_2PI = math.log(2.0 * math.pi)


def _check_posterior(model: nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, where: str) -> None:
    want = (x.shape[0], model.latent_dim)
    if tuple(mu.shape) != want or tuple(logvar.shape) != want:
        raise ValueError(f"{where}: mu and logvar must each be [{want[0]}, {want[1]}] (one Gaussian per image), "
                         f"got {list(mu.shape)} and {list(logvar.shape)}")


def _elbo(model: nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
          n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """ELBO in its entropy form, ``E_q[log p(x|z) + log p(z)] + H(q)``: ``[B]`` nats.

    ``x: [B, C, H, W]``, ``mu, logvar: [B, D]``. The expectation is the mean over ``n_samples``
    reparameterized samples (the same ``ε`` for two posteriors when the generator is seeded
    alike); the entropy of the diagonal Gaussian is exact, so the estimate works for any prior
    and differentiates in ``mu, logvar``.
    """
    z = reparameterize(mu, logvar, generator, n_samples=n_samples)  # z_s = μ + σ ⊙ ε_s, [S, B, D]
    log_joint = model.log_likelihood(model.decode(z), x) + model.prior_log_prob(z)  # log p(x, z_s), [S, B]
    entropy = 0.5 * (logvar + 1.0 + LOG_2PI).sum(dim=-1)  # H(q) = ½ Σ_d (1 + log 2π + log σ_d²), [B]
    return log_joint.mean(dim=0) + entropy


def _require_gaussian_posterior(model: nn.Module, x: torch.Tensor, where: str) -> None:
    if not hasattr(model, "prior_log_prob"):
        raise TypeError(f"{where}: needs a model with a Gaussian posterior q(z|x) and a prior (a vl.VAE); "
                        f"got {type(model).__name__}, which has neither (an autoencoder has no ELBO)")
    check_images(model, x, where)  # shape, dtype, finite pixels in range, not empty


@torch.no_grad()
def elbo_of_posterior(model: nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                      n_samples: int = 100, batch_size: int = 500, seed: int = 0) -> torch.Tensor:
    """The ELBO of ``x`` under the given Gaussians ``q(z|x) = N(mu, diag exp(logvar))``: ``[N]`` nats.

    Args:
        x: ``[N, C, H, W]`` images (binary for a Bernoulli decoder).
        mu, logvar: ``[N, D]`` each, one posterior per image (the encoder's, or refined ones).
        n_samples: reparameterized samples per image in the Monte Carlo expectation.
        seed: seeds the draws. Two calls with the same seed and the same ``N, D`` use the same
            ``ε``, so the difference between two posteriors' ELBOs has little sampling noise.

    Returns ``[N]`` ``E_q[log p(x|z) + log p(z)] + H(q)`` on the model's device.
    """
    _require_gaussian_posterior(model, x, "elbo_of_posterior")
    _check_posterior(model, x, mu, logvar, "elbo_of_posterior")
    if n_samples < 1:
        raise ValueError(f"elbo_of_posterior: n_samples must be >= 1, got {n_samples}")
    with eval_mode(model) as device:
        g = torch.Generator(device=device).manual_seed(seed)
        out = []
        for i in range(0, x.shape[0], batch_size):
            xb, mb, lb = (t[i:i + batch_size].to(device) for t in (x, mu, logvar))
            out.append(_elbo(model, xb, mb, lb, n_samples, g))
    return torch.cat(out)


def refine_posterior(model: nn.Module, x: torch.Tensor, steps: int = 200, lr: float = 1e-2,
                     n_samples: int = 4, batch_size: int = 500, seed: int = 0,
                     init: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fit one diagonal Gaussian ``q(z|x_n)`` per image by gradient ascent on its ELBO.

    Each image gets its own mean and log-variance, initialised at the encoder's output
    (or ``init``), and Adam maximises ``Σ_n ELBO(x_n)`` with ``n_samples`` reparameterized
    samples per image and step. The learning rate follows a cosine from ``lr`` down to 0, so
    the last steps average out the gradient noise and the result settles on the optimum. The
    model is frozen: only ``mu`` and ``logvar`` move, and the
    model's parameters get no gradients. All images of a batch are refined at once (the
    images' ELBOs do not interact, so this is ``N`` independent optimizations, vectorised).

    Args:
        x: ``[N, C, H, W]`` images.
        steps: Adam steps per image (0 returns the starting point).
        lr: Adam's initial learning rate, in units of ``z`` (and of ``log σ²``) per step.
        n_samples: samples of ``z`` per image per step.
        batch_size: images refined together (memory ``batch_size · n_samples · pixels``).
        seed: seeds the ``ε`` draws.
        init: optional ``(mu, logvar)``, ``[N, D]`` each, to start from instead of the encoder.

    Returns:
        ``(mu, logvar)``, ``[N, D]`` each, detached, on the model's device.
    """
    _require_gaussian_posterior(model, x, "refine_posterior")
    if steps < 0 or lr <= 0 or n_samples < 1:
        raise ValueError(f"refine_posterior: need steps >= 0, lr > 0 and n_samples >= 1, "
                         f"got steps={steps}, lr={lr}, n_samples={n_samples}")
    mu0, logvar0 = init if init is not None else posterior_stats(model, x)
    _check_posterior(model, x, mu0, logvar0, "refine_posterior")
    with eval_mode(model) as device:
        g = torch.Generator(device=device).manual_seed(seed)
        mus, logvars = [], []
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size].to(device)
            mu = mu0[i:i + batch_size].detach().to(device).clone().requires_grad_(True)  # [B, D], one per image
            logvar = logvar0[i:i + batch_size].detach().to(device).clone().requires_grad_(True)
            opt = torch.optim.Adam([mu, logvar], lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))  # lr → 0 at the end
            for _ in range(steps):
                loss = -_elbo(model, xb, mu, logvar, n_samples, g).sum()  # −Σ_n ELBO(x_n): image n's gradient is its own
                mu.grad, logvar.grad = torch.autograd.grad(loss, [mu, logvar])  # decoder frozen: no parameter grads
                opt.step()
                schedule.step()
            mus.append(mu.detach())
            logvars.append(logvar.detach())
    return torch.cat(mus), torch.cat(logvars)


@dataclass
class InferenceGaps:
    """The split ``log p(x) − ELBO_amortized = approximation gap + amortization gap``.

    Every attribute is a mean over the images, in nats per image; ``stderr`` holds the
    standard error over images of each (``sd / √N``), and ``per_image`` the ``[N]`` values.

    Attributes:
        log_px: ``log p(x)`` estimated by ``IWAE_k`` under the refined posterior.
        elbo_amortized: the ELBO of the encoder's ``q_φ(z|x)``.
        elbo_refined: the ELBO of the per-image refined Gaussian ``q*``.
        amortization_gap: ``elbo_refined − elbo_amortized``: the price of one encoder for all images.
        approximation_gap: ``log_px − elbo_refined``: the price of a diagonal Gaussian family.
        n_images: ``N``.
        refined: ``(mu, logvar)`` of the refined posteriors, ``[N, D]`` each.
    """

    log_px: float
    elbo_amortized: float
    elbo_refined: float
    amortization_gap: float
    approximation_gap: float
    n_images: int
    stderr: Dict[str, float] = field(default_factory=dict)
    per_image: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    refined: Optional[Tuple[torch.Tensor, torch.Tensor]] = field(default=None, repr=False)

    @property
    def total_gap(self) -> float:
        """``log_px − elbo_amortized`` (= ``amortization_gap + approximation_gap``), nats per image."""
        return self.log_px - self.elbo_amortized


def inference_gaps(model: nn.Module, x: torch.Tensor, k: int = 1000, steps: int = 200, lr: float = 1e-2,
                   n_samples: int = 4, n_eval: int = 100, batch_size: int = 500, seed: int = 0) -> InferenceGaps:
    """Measure the amortization and approximation gaps of ``model`` on ``x`` (Cremer et al., 2018).

    Args:
        x: ``[N, C, H, W]`` held-out images (binarized for a Bernoulli decoder).
        k: importance samples for ``log p(x)`` (under the refined posterior).
        steps, lr, n_samples: the per-image refinement (:func:`refine_posterior`).
        n_eval: samples per image for each ELBO; both ELBOs use the same ``ε``.
        seed: seeds the refinement (``seed``), the ELBOs (``seed + 1``) and IWAE (``seed + 2``).

    Returns an :class:`InferenceGaps` (nats per image, with standard errors over images).
    """
    _require_gaussian_posterior(model, x, "inference_gaps")
    mu_a, logvar_a = posterior_stats(model, x)  # the encoder's q_φ(z|x), [N, D] each
    mu_r, logvar_r = refine_posterior(model, x, steps=steps, lr=lr, n_samples=n_samples, batch_size=batch_size,
                                      seed=seed, init=(mu_a, logvar_a))
    elbo_a = elbo_of_posterior(model, x, mu_a, logvar_a, n_samples=n_eval, batch_size=batch_size, seed=seed + 1)
    elbo_r = elbo_of_posterior(model, x, mu_r, logvar_r, n_samples=n_eval, batch_size=batch_size, seed=seed + 1)
    log_px = iwae_log_likelihood(model, x, k=k, seed=seed + 2, posterior=(mu_r, logvar_r))
    per_image = {name: v.detach().double().cpu() for name, v in [
        ("log_px", log_px), ("elbo_amortized", elbo_a), ("elbo_refined", elbo_r),
        ("amortization_gap", elbo_r - elbo_a), ("approximation_gap", log_px - elbo_r)]}
    n = x.shape[0]
    means = {name: float(v.mean()) for name, v in per_image.items()}
    stderr = {name: float(v.std() / math.sqrt(n)) if n > 1 else float("nan") for name, v in per_image.items()}
    return InferenceGaps(
        log_px=means["log_px"], elbo_amortized=means["elbo_amortized"], elbo_refined=means["elbo_refined"],
        amortization_gap=means["elbo_refined"] - means["elbo_amortized"],  # ELBO[q*] − ELBO[q_φ]
        approximation_gap=means["log_px"] - means["elbo_refined"],  # log p(x) − ELBO[q*]
        n_images=n, stderr=stderr, per_image=per_image, refined=(mu_r, logvar_r))
