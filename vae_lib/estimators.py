"""Two ways to get gradients through a random sample, on a problem with a known answer.

We want ``∇_θ E_{z ~ N(μ, σ²)}[f(z)]`` for ``θ = (μ, σ)``. Two unbiased Monte Carlo estimators:

* **reparameterization** (pathwise): write ``z = μ + σ ε`` with ``ε ~ N(0, 1)`` and
  differentiate ``f(μ + σ ε)``; ``Normal.rsample`` does exactly this.
* **score function** (REINFORCE, Williams 1992): ``E[f(z) ∇_θ log q(z; θ)]``; it only needs
  ``f``'s values, so it works with ``Normal.sample`` (no gradient through the sample).

Every function is vectorised over independent trials (no Python loop over samples), so
the spread of the estimates, their variance, can be measured directly.
"""
from __future__ import annotations

import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.distributions import Normal

__all__ = ["gradient_estimates", "gradient_variance_table", "true_gradient", "square"]


def square(z: torch.Tensor) -> torch.Tensor:
    """The default test function ``f(z) = z²``: ``E[f] = μ² + σ²``, so ``∇ = (2μ, 2σ)``."""
    return z * z


def true_gradient(mu: float, sigma: float) -> torch.Tensor:
    """Exact ``(∂/∂μ, ∂/∂σ) E[z²]`` under ``N(μ, σ²)``: ``(2μ, 2σ)``."""
    return torch.tensor([2.0 * mu, 2.0 * sigma])


def gradient_estimates(mu: float, sigma: float, n_samples: Optional[int] = None, trials: int = 1000,
                       estimator: str = "reparam", f: Callable[[torch.Tensor], torch.Tensor] = square, seed: int = 0,
                       *, n: Optional[int] = None) -> torch.Tensor:
    """``trials`` independent estimates of ``(∂/∂μ, ∂/∂σ) E[f(z)]``, each from ``n_samples`` samples: ``[trials, 2]``.

    Args:
        mu, sigma: the Gaussian ``N(μ, σ²)`` (``sigma > 0``).
        n_samples: samples per estimate.
        n: the old name of ``n_samples``, still accepted with a ``DeprecationWarning``.
        trials: how many independent estimates to return.
        estimator: ``"reparam"`` (``rsample``, pathwise) or ``"score"`` (``sample`` + log-prob, REINFORCE).
        f: a function of ``z`` applied elementwise.
        seed: seeds the draws (the same ``ε`` for both estimators at equal seeds).
    """
    if n is not None:
        if n_samples is not None:
            raise TypeError("gradient_estimates: pass n_samples only (n is its old name)")
        warnings.warn("gradient_estimates(n=...) is renamed n_samples=...", DeprecationWarning, stacklevel=2)
        n_samples = n
    if n_samples is None:
        raise TypeError("gradient_estimates: missing n_samples, the number of samples per estimate")
    if estimator not in ("reparam", "score"):
        raise ValueError(f"unknown estimator {estimator!r}; choose 'reparam' or 'score'")
    if sigma <= 0 or n_samples < 1 or trials < 1:
        raise ValueError(f"need sigma > 0, n_samples >= 1 and trials >= 1, got sigma={sigma}, "
                         f"n_samples={n_samples}, trials={trials}")
    with torch.random.fork_rng(devices=[]):  # seeded draws, caller's random state untouched
        torch.manual_seed(seed)
        return _estimates(mu, sigma, n_samples, trials, estimator, f)


def _estimates(mu: float, sigma: float, n_samples: int, trials: int, estimator: str,
               f: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    m = torch.full((trials, 1), float(mu), dtype=torch.float64, requires_grad=True)  # one (μ, σ) leaf per trial
    s = torch.full((trials, 1), float(sigma), dtype=torch.float64, requires_grad=True)
    q = Normal(m, s)
    if estimator == "reparam":
        z = q.rsample((n_samples,))  # z = μ + σ ε: gradients flow through the sample, [S, trials, 1]
        surrogate = f(z).mean(dim=0)  # (1/n) Σ f(z_i), per trial
    else:
        z = q.sample((n_samples,))  # no gradient path through z, [S, trials, 1]
        surrogate = (f(z) * q.log_prob(z)).mean(dim=0)  # (1/n) Σ f(z_i) ∇ log q(z_i) after backward
    gm, gs = torch.autograd.grad(surrogate.sum(), (m, s))  # trials are independent: sum → per-trial grads
    return torch.cat([gm, gs], dim=1).float()


def gradient_variance_table(mu: float, sigma: float, sample_counts: Sequence[int] = (1, 10, 100, 1000),
                            trials: int = 1000, f: Callable[[torch.Tensor], torch.Tensor] = square,
                            seed: int = 0) -> List[Dict[str, float]]:
    """Mean and variance of both estimators of ``∂/∂μ E[f(z)]`` for each sample count.

    Returns one row per sample count: ``n_samples``, ``reparam_mean``, ``reparam_var``,
    ``score_mean``, ``score_var`` and ``ratio`` (score variance / reparameterization variance).
    Each row also repeats the count as ``n``, its old key, for callers not yet moved to ``n_samples``.
    """
    rows = []
    for n_samples in sample_counts:
        r = gradient_estimates(mu, sigma, n_samples, trials, "reparam", f, seed)[:, 0]
        s = gradient_estimates(mu, sigma, n_samples, trials, "score", f, seed)[:, 0]
        rows.append({"n_samples": int(n_samples), "reparam_mean": float(r.mean()), "reparam_var": float(r.var()),
                     "score_mean": float(s.mean()), "score_var": float(s.var()),
                     "ratio": float(s.var() / r.var())})
    return rows
