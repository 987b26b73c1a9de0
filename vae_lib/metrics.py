"""Measuring a trained VAE: log-likelihood bounds, active units, rate and distortion,
and how far the aggregate posterior is from the prior.

All log-densities are in nats per image. A conditional model (``model.conditional`` true, such as
:class:`vae_lib.conditional.ConditionalVAE`) gets its per-image side information as ``cond=``
(``[N]`` or ``[N, ...]``, batched with the images); its scores are then bounds on ``log p(x|y)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .device import eval_mode, model_device
from .losses import gaussian_log_prob, reparameterize
if TYPE_CHECKING:  # the trainer imports this module (evaluate); beta_sweep imports it when called
    import vae_lib.train

__all__ = [
    "check_images",
    "mean_se",
    "check_cond",
    "evaluate",
    "iwae_log_likelihood",
    "active_units",
    "posterior_stats",
    "embed",
    "log_aggregate_posterior",
    "aggregate_posterior_gap",
    "AggregateGap",
    "SweepPoint",
    "beta_sweep",
]


def mean_se(values: Sequence[float]) -> Tuple[float, float]:
    """``(mean, standard error)`` of per-seed results: the error is ``s / √n``, ``s`` the sample
    standard deviation (``n - 1`` in its denominator) over the ``n`` values; 0 for a single value.

    The spread every seed comparison in the book reports (mean ± standard error over seeds).
    """
    v = torch.as_tensor([float(a) for a in values], dtype=torch.float64)
    if v.numel() == 0:
        raise ValueError("mean_se: got no values; pass one result per seed")
    se = (v.std() / math.sqrt(v.numel())).item() if v.numel() > 1 else 0.0  # s / √n
    return v.mean().item(), se


def check_images(model: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    """Return ``x: [N, C, H, W]`` if it is a non-empty image tensor the model accepts, else raise.

    Uses ``model.check_input(x, where, values=True)`` when the model has one (shape, float
    dtype, no NaN/Inf, Bernoulli pixels in ``[0, 1]``; one pass over the data, one host sync):
    call it once per dataset, never per step.
    """
    if isinstance(x, (tuple, list)):
        raise TypeError(f"{where}: pass the images tensor only (x), not an (x, y) pair")
    if hasattr(model, "check_input"):
        model.check_input(x, where, values=True)
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor of images [N, C, H, W], got {type(x).__name__}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: got an empty dataset; pass at least one image")
    return x


def check_cond(model: nn.Module, cond: Optional[torch.Tensor], n: int, where: str) -> Optional[torch.Tensor]:
    """Return ``cond`` if it is what ``model`` needs for ``n`` images, else raise saying what to do.

    A model with ``conditional = True`` needs a tensor ``cond: [n, ...]`` (one row per image; the
    model's own ``check_cond(cond, where, batch=n, values=True)``, when it has one, checks the rest,
    once, before any work); any other model takes ``cond=None`` only.
    """
    conditional = bool(getattr(model, "conditional", False))
    if cond is None:
        if conditional:
            raise ValueError(f"{where}: {type(model).__name__} is conditional: pass its side information "
                             f"(e.g. the labels, a [{n}] long tensor) as cond=")
        return None
    if not conditional:
        raise ValueError(f"{where}: cond was given, but {type(model).__name__} is not a conditional model "
                         f"(no `conditional = True`); drop cond, or use vae_lib.conditional.ConditionalVAE")
    if not isinstance(cond, torch.Tensor) or cond.dim() < 1:
        raise TypeError(f"{where}: cond must be a tensor with one row per image, [{n}, ...], got "
                        f"{type(cond).__name__}{list(cond.shape) if isinstance(cond, torch.Tensor) else ''}")
    if cond.shape[0] != n:
        raise ValueError(f"{where}: {cond.shape[0]} rows of cond for {n} images; pass one per image")
    if hasattr(model, "check_cond"):
        model.check_cond(cond, where, batch=n, values=True)
    return cond


def _cond_kwargs(cond: Optional[torch.Tensor], i: int, j: int, device: torch.device) -> Dict[str, torch.Tensor]:
    """``{}`` without side information, else ``{"cond": cond[i:j]}`` on ``device`` (for ``model.elbo``)."""
    return {} if cond is None else {"cond": cond[i:j].to(device)}


def _with_cond(cond: Optional[torch.Tensor], i: int, j: int, device: torch.device) -> tuple:
    """``()`` without side information, else ``(cond[i:j],)`` on ``device``: extra positional arguments
    of ``posterior_stats`` and ``decode``."""
    return () if cond is None else (cond[i:j].to(device),)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, beta: float = 1.0, batch_size: int = 500,
             device: Optional[Union[str, torch.device]] = None, seed: int = 0,
             cond: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """Mean ``loss``, ``recon`` and ``kl`` (nats per image) of ``model.elbo`` over ``x: [N, C, H, W]``, seeded.

    ``loss = recon + β · kl``: the negative ELBO at ``beta=1``. ``x`` is checked first (see
    :func:`check_images`); the model's train/eval mode is restored afterwards. ``cond: [N, ...]``:
    a conditional model's side information (see :func:`check_cond`), batched with ``x``.
    """
    device = torch.device(device) if device is not None else model_device(model)
    x = check_images(model, x, "evaluate").to(device)
    check_cond(model, cond, x.shape[0], "evaluate: cond")
    with eval_mode(model):
        g = torch.Generator(device=device).manual_seed(seed)
        sums = torch.zeros(2, device=device)  # Σ recon, Σ kl over the images
        for i in range(0, x.shape[0], batch_size):
            t = model.elbo(x[i:i + batch_size], beta=beta, generator=g,
                           **_cond_kwargs(cond, i, i + batch_size, device))
            sums += torch.stack([t.recon.sum(), t.kl.sum()])
    recon, kl = (sums / x.shape[0]).tolist()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


@torch.no_grad()
def iwae_log_likelihood(model: nn.Module, x: torch.Tensor, k: int = 1000, batch_size: int = 100,
                        chunk: int = 100, seed: int = 0,
                        posterior: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                        cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Importance-weighted estimate of ``log p(x)`` (Burda et al., 2016): ``[B]`` nats.

    ``log p(x) ≈ log 1/k Σ_i p(x|z_i) p(z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``. It is a
    lower bound on ``log p(x)`` for every ``k``, equals the ELBO's expectation at ``k = 1``,
    and tightens as ``k`` grows. Computed in chunks of ``chunk`` samples so memory stays
    ``batch_size · chunk · pixels`` floats.

    ``posterior=(mu, logvar)``, each ``[N, D]``, replaces the encoder's ``q(z|x)`` by the
    given Gaussians (for example ones refined per image, to measure the amortization gap).

    ``cond: [N, ...]``: a conditional model's side information (labels), batched with ``x``; the
    estimate is then of ``log p(x|y)``, with ``q(z|x, y)`` and ``p(x|z, y)``.
    """
    check_images(model, x, "iwae_log_likelihood")
    check_cond(model, cond, x.shape[0], "iwae_log_likelihood: cond")
    if posterior is not None and not all(p.shape == (x.shape[0], model.latent_dim) for p in posterior):
        raise ValueError(f"iwae_log_likelihood: posterior must be (mu, logvar) of shape [{x.shape[0]}, "
                         f"{model.latent_dim}] each, got {[list(p.shape) for p in posterior]}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    with eval_mode(model) as device:
        g = torch.Generator(device=device).manual_seed(seed)
        out = []
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size].to(device)
            cb = _with_cond(cond, i, i + batch_size, device)  # () or (labels [B],)
            if posterior is None:
                mu, logvar = _gaussian_posterior(model, model.posterior_stats(xb, *cb),
                                                 "iwae_log_likelihood")  # [B, D] each
            else:
                mu, logvar = (p[i:i + batch_size].to(device) for p in posterior)
            log_w = []
            for j in range(0, k, chunk):
                z = reparameterize(mu, logvar, g, n_samples=min(chunk, k - j))  # z_i = μ + σ ⊙ ε_i, [m, B, D]
                log_px_z = model.log_likelihood(model.decode(z, *cb), xb)  # [m, B]
                log_w.append(log_px_z + model.prior_log_prob(z) - gaussian_log_prob(z, mu, logvar))
            log_w = torch.cat(log_w, dim=0)  # [k, B]
            out.append(torch.logsumexp(log_w, dim=0) - math.log(k))  # log mean_i w_i
    return torch.cat(out)


def _gaussian_posterior(model: nn.Module, stats: Tuple[torch.Tensor, Optional[torch.Tensor]],
                        where: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """``stats = (mu, logvar)`` from ``posterior_stats``, refusing ``logvar=None`` (an autoencoder has no ``q(z|x)``)."""
    if stats[1] is None:
        raise TypeError(f"{where} needs a model with a Gaussian posterior q(z|x), such as vae_lib.VAE; "
                        f"{type(model).__name__}.posterior_stats returns no logvar")
    return stats


@torch.no_grad()
def posterior_stats(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
                    cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``model.posterior_stats`` over all of ``x: [N, C, H, W]`` in batches, without gradients.

    Returns ``(mu [N, D], logvar [N, D])`` for a :class:`~vae_lib.VAE`, ``(z [N, D], None)`` for an
    :class:`~vae_lib.Autoencoder`, on the model's device. ``x`` is checked first (shape, dtype,
    NaN/Inf, and ``[0, 1]`` for a Bernoulli model), so bad data raises instead of giving codes.
    ``cond: [N, ...]``: a conditional model's side information, batched with ``x`` (``q(z|x, y)``).
    """
    if batch_size < 1:
        raise ValueError(f"posterior_stats: batch_size must be >= 1, got {batch_size}")
    check_images(model, x, "posterior_stats")
    check_cond(model, cond, x.shape[0], "posterior_stats: cond")
    device = model_device(model)
    mus, logvars = [], []
    for i in range(0, x.shape[0], batch_size):
        mu, logvar = model.posterior_stats(x[i:i + batch_size].to(device),
                                           *_with_cond(cond, i, i + batch_size, device))  # [b, D], [b, D] or None
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), None if logvars[0] is None else torch.cat(logvars)


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
          cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One code per input, ``[N, D]`` on the model's device: a VAE's posterior mean ``μ(x)``, an autoencoder's ``z``,
    a conditional VAE's ``μ(x, y)`` with ``cond=y``."""
    return posterior_stats(model, x, batch_size, cond=cond)[0]


@torch.no_grad()
def active_units(model: nn.Module, x: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of active latent units (Burda et al., 2016).

    Unit ``u`` is active when ``A_u = Cov_x(E_{q(z|x)}[z_u]) > threshold``: its posterior
    mean moves with the input. A collapsed unit ignores the input and copies the prior.
    """
    mu = embed(model, x)  # E_q[z|x] per input, [N, D]
    return int((mu.var(dim=0, unbiased=True) > threshold).sum())


@dataclass
class AggregateGap:
    """How the aggregate posterior ``q(z) = 1/N Σ_n q(z|x_n)`` differs from the prior ``p(z)``.

    Attributes:
        kl_q_p: Monte Carlo ``KL(q(z) || p(z))`` in nats: the part of the ELBO's KL term that
            the data as a whole pays (Hoffman & Johnson's "marginal KL").
        kl_p_q: Monte Carlo ``KL(p(z) || q(z))`` in nats: large when the prior puts mass
            where no input's posterior goes, i.e. on holes.
        hole_fraction: fraction of prior samples ``z ~ p(z)`` whose aggregate-posterior density is
            below the 1st percentile of that density at the data's own codes: prior draws that
            land in a hole and decode to something no training image resembles.
    """

    kl_q_p: float
    kl_p_q: float
    hole_fraction: float


def log_aggregate_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                            chunk: int = 512) -> torch.Tensor:
    """The aggregate posterior's density ``log q(z) = log 1/N Σ_n N(z; μ_n, σ_n²)``: ``[M]`` nats.

    ``z: [M, D]`` points; ``mu, logvar: [N, D]`` the posteriors ``q(z|x_n)`` (from
    :func:`posterior_stats`). Computed ``chunk`` points at a time (memory ``chunk · N`` floats).
    """
    out = []
    for i in range(0, z.shape[0], chunk):
        lp = gaussian_log_prob(z[i:i + chunk, None, :], mu[None], logvar[None])  # [m, N]
        out.append(torch.logsumexp(lp, dim=1) - math.log(mu.shape[0]))
    return torch.cat(out)


@torch.no_grad()
def aggregate_posterior_gap(model: nn.Module, x: torch.Tensor, n_samples: int = 2000, seed: int = 0) -> AggregateGap:
    """Estimate :class:`AggregateGap` from the posteriors of the inputs ``x``, seeded."""
    device = model_device(model)
    mu, logvar = _gaussian_posterior(model, posterior_stats(model, x), "aggregate_posterior_gap")  # [N, D] each
    g = torch.Generator(device=device).manual_seed(seed)
    idx = torch.randint(0, mu.shape[0], (n_samples,), generator=g, device=device)
    z_q = reparameterize(mu[idx], logvar[idx], g)  # z ~ q(z|x_n), n uniform: a draw from q(z), [M, D]
    z_p = model.prior.sample(n_samples, model.encode, generator=g, device=device)  # z ~ p(z)
    log_q_at_q, log_q_at_p = log_aggregate_posterior(z_q, mu, logvar), log_aggregate_posterior(z_p, mu, logvar)
    kl_q_p = (log_q_at_q - model.prior_log_prob(z_q)).mean()  # E_q[log q − log p]
    kl_p_q = (model.prior_log_prob(z_p) - log_q_at_p).mean()  # E_p[log p − log q]
    floor = torch.quantile(log_q_at_q, 0.01)  # the density at the rarest 1% of real codes
    holes = (log_q_at_p < floor).float().mean()
    return AggregateGap(kl_q_p=float(kl_q_p), kl_p_q=float(kl_p_q), hole_fraction=float(holes))


@dataclass
class SweepPoint:
    """One trained model of a β sweep, with its rate (KL) and distortion (reconstruction) on held-out data."""

    beta: float
    model: nn.Module
    history: vae_lib.train.History
    rate: float
    distortion: float


def beta_sweep(betas: Sequence[float], x_train: torch.Tensor, val_data: torch.Tensor,
               model_fn=None, seed: int = 0, **train_kwargs) -> List[SweepPoint]:
    """Train one VAE per β and measure its rate ``KL`` and distortion ``−log p(x|z)`` on ``val_data``.

    Args:
        betas: the β values, e.g. ``(0.1, 0.5, 1, 2, 4)``.
        x_train: ``[N, C, H, W]`` training images.
        val_data: ``[M, C, H, W]`` held-out images the rate and distortion are measured on
            (named as in :func:`vae_lib.train`; the third positional argument).
        model_fn: ``() -> nn.Module``, a fresh model per β; default a 784-400-20 MLP VAE
            shaped like ``x_train``.
        seed: seeds model initialisation and training, the same for every β.
        train_kwargs: passed to :func:`vae_lib.train` (``epochs``, ``batch_size``...).
    """
    from .model import VAE
    from .train import train  # here, not at module level: the trainer imports this module

    if model_fn is None:
        def model_fn():
            return VAE(input_shape=tuple(x_train.shape[1:]), latent_dim=20)
    points = []
    for beta in betas:
        torch.manual_seed(seed)
        model = model_fn()
        hist = train(model, x_train, beta=beta, seed=seed, **train_kwargs)
        ev = evaluate(model, val_data, beta=beta, seed=seed)
        points.append(SweepPoint(beta=float(beta), model=model, history=hist, rate=ev["kl"], distortion=ev["recon"]))
    return points
