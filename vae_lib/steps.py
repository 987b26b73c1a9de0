"""How one training step is computed: the strategies :func:`vae_lib.train.train` chooses from, once.

A step is a function ``step(xb, beta_t, cond=None) -> stats``: it takes a batch ``xb: [B, C, H, W]``,
the KL weight in force and, for a conditional model, the batch's labels ``cond: [B, ...]``
(passed on as ``model.elbo(xb, beta=beta_t, cond=cond)``), updates the model's parameters once, and returns
``stats = [objective, mean recon, mean KL]`` (nats per image) as one tensor on the
device, without waiting for it. Two strategies exist:

* :func:`autograd_step`: ``model.elbo``, :func:`vae_lib.objective`, ``loss.backward()``,
  Adam. Works for every model with an ``elbo``.
* :func:`hand_written_step`: the same objective with the hand-written gradients of
  :mod:`vae_lib.fused`, for exactly the plain MLP VAE it covers.

:func:`make_step` picks one; the trainer itself knows nothing about any model class.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .fused import FusedStep, why_not_fused
from .losses import objective

__all__ = ["Step", "autograd_step", "hand_written_step", "make_step"]

#: ``step(xb: [B, C, H, W], beta_t, cond=None) -> [objective, mean recon, mean KL]`` (one update).
Step = Callable[..., torch.Tensor]


def autograd_step(model: nn.Module, opt: torch.optim.Optimizer, free_bits: float = 0.0, amp: bool = False,
                  compile: bool = False, device_type: str = "cpu") -> Step:
    """The general step: ``model.elbo`` under optional bf16 autocast (``amp``) and
    ``torch.compile``, the objective of :func:`vae_lib.objective`, autograd, ``opt.step()``.
    With ``cond`` (the batch's labels) the model is asked for ``elbo(xb, beta=beta_t, cond=cond)``."""
    elbo = torch.compile(model.elbo) if compile else model.elbo

    def step(xb: torch.Tensor, beta_t: float, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            terms = elbo(xb, beta=beta_t) if cond is None else elbo(xb, beta=beta_t, cond=cond)
            loss = objective(terms, beta_t, free_bits)  # mean_B(recon) + β_t · KL (free bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return torch.stack([loss.detach(), terms.recon.detach().mean(), terms.kl.detach().mean()]).float()

    return step


def hand_written_step(model: nn.Module, opt: torch.optim.Optimizer, free_bits: float = 0.0) -> Step:
    """The fast step for a model :func:`vae_lib.fused.why_not_fused` accepts: the gradients of
    :class:`vae_lib.fused.FusedStep` (the same objective as :func:`autograd_step`), then ``opt.step()``.
    It covers unconditional models only: a ``cond`` raises ``ValueError``."""
    grads = FusedStep(model, free_bits)  # raises ValueError for a model it does not cover

    def step(xb: torch.Tensor, beta_t: float, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("the hand-written (fused) step covers unconditional VAEs only and takes no cond; "
                             "train a conditional model with fused=None or fused=False (autograd)")
        stats = grads(xb, beta_t)  # objective and every ∂objective/∂p, written into p.grad
        opt.step()
        return stats

    return step


def make_step(model: nn.Module, opt: torch.optim.Optimizer, free_bits: float = 0.0, amp: bool = False,
              compile: bool = False, fused: Optional[bool] = None, device_type: str = "cpu") -> Step:
    """Choose the step once: :func:`hand_written_step` when it computes exactly ``model``'s own
    objective (``fused=None``, the default, or ``True``), else :func:`autograd_step`.

    Raises:
        ValueError: ``fused=True`` for a model the hand-written step does not cover (the
            message says why, from :func:`vae_lib.fused.why_not_fused`).
    """
    reason = "fused=False" if fused is False else why_not_fused(model, amp=amp, compile=compile)
    if fused and reason:
        raise ValueError(f"train(fused=True): {reason}; pass fused=None to fall back to autograd")
    if reason is None:
        return hand_written_step(model, opt, free_bits)
    return autograd_step(model, opt, free_bits, amp=amp, compile=compile, device_type=device_type)
