"""The trainer's fast path: the MLP VAE's gradients written out by hand.

Autograd records every operation of a step and replays it backwards. For a small
fully connected VAE on a CPU that bookkeeping (and the temporaries it keeps) is about a
fifth of each step (measured: 1.29x more images per second without it, see the README),
so :func:`vae_lib.train` uses this module whenever
the model is one it covers: a :class:`~vae_lib.VAE` with ``arch="mlp"``, the standard
prior, and a Bernoulli or Gaussian likelihood. The chain rule below is the textbook
one for the Bernoulli and Gaussian MLPs of Kingma & Welling (2014, appendix C);
``tests/test_fused.py`` checks every gradient against autograd.

Notation for one batch of ``B`` images with ``P`` pixels and ``D`` latent dimensions::

    encoder:  [μ, log σ²] = MLP_e(x)              decoder:  out = MLP_d(z)
    sample:   z = μ + σ ⊙ ε,  ε ~ N(0, I)         loss:     mean_B(recon) + β · KL term

Each MLP is ``Linear, ReLU, …, Linear``; backpropagating ``d = ∂loss/∂(layer output)``
through ``a_out = a_in Wᵀ + b`` gives ``∂W = dᵀ a_in``, ``∂b = Σ_B d`` and
``∂a_in = d W``, and a ReLU passes ``d`` only where its output was positive.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .model import VAE

__all__ = ["FusedStep", "fused_step", "why_not_fused"]

LOG_2PI = math.log(2.0 * math.pi)


def _linear_chain(net: nn.Module) -> Optional[List[nn.Linear]]:
    """The Linear layers of ``Linear, ReLU, …, Linear`` (nested Sequentials, Flatten and
    Unflatten allowed), or ``None`` for any other structure."""
    mods = [m for m in net.modules() if not isinstance(m, (nn.Sequential, nn.Flatten, nn.Unflatten))]
    if not mods or len(mods) % 2 == 0:
        return None
    for i, m in enumerate(mods):
        if type(m) is not (nn.Linear if i % 2 == 0 else nn.ReLU) or (i % 2 == 0 and m.bias is None):
            return None
    return mods[::2]


def why_not_fused(model: nn.Module, amp: bool = False, compile: bool = False) -> Optional[str]:
    """``None`` if :class:`FusedStep` covers ``model``; otherwise the reason it does not."""
    if amp or compile:
        return "amp and compile use autograd"
    if getattr(model.elbo, "__func__", None) is not VAE.elbo or type(model)._encode is not VAE._encode:
        return "the model is not a plain vae_lib.VAE (its elbo or encoder is replaced)"
    if model.config.get("arch") != "mlp":
        return f"arch={model.config.get('arch')!r} (the fused step covers arch='mlp')"
    if model.prior_name != "standard":
        return f"prior={model.prior_name!r} (the fused step covers the standard prior)"
    if _linear_chain(model.encoder) is None or _linear_chain(model.decoder) is None:
        return "the encoder or decoder is not a plain Linear/ReLU stack"
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1:
        return f"mixed parameter dtypes {sorted(map(str, dtypes))}"
    if model._forward_hooks or model._forward_pre_hooks or any(
            m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules()):
        return "the model has hooks"
    return None


def _forward(layers: List[Tuple[torch.Tensor, torch.Tensor]], a: torch.Tensor) -> List[torch.Tensor]:
    """Run ``Linear, ReLU, …, Linear``; returns every layer's input, then the output."""
    acts = [a]
    for i, (w, b) in enumerate(layers):
        a = torch.addmm(b, a, w.t())  # a Wᵀ + b
        if i < len(layers) - 1:
            a.relu_()
        acts.append(a)
    return acts


def _backward(layers, grads, acts: List[torch.Tensor], d: torch.Tensor, input_grad: bool) -> Optional[torch.Tensor]:
    """Backpropagate ``d = ∂loss/∂output`` through :func:`_forward`'s stack, writing
    ``∂W`` and ``∂b`` into ``grads``; returns ``∂loss/∂input`` when ``input_grad``."""
    for i in reversed(range(len(layers))):
        (w, _), (gw, gb) = layers[i], grads[i]
        torch.mm(d.t(), acts[i], out=gw)  # ∂W = dᵀ a_in      [out, in]
        torch.sum(d, 0, out=gb)  # ∂b = Σ_B d          [out]
        if i == 0 and not input_grad:
            return None
        d = torch.mm(d, w)  # ∂a_in = d W          [B, in]
        if i > 0:  # the ReLU before this layer passes d only where it output > 0 (autograd's own kernel)
            d = torch.ops.aten.threshold_backward(d, acts[i], 0.0)
    return d


class FusedStep:
    """One training step's loss and gradients for an MLP VAE, without autograd.

    Calling it with a batch ``x: [B, C, H, W]`` and the KL weight ``beta`` computes the
    objective of :func:`vae_lib.objective` (``mean_B(recon) + β · KL``, with free bits
    if given), writes ``∂objective/∂p`` into every parameter's ``.grad`` (like
    ``loss.backward()`` after ``zero_grad``), and returns ``[objective, mean recon,
    mean KL]`` as one tensor on the device, without synchronising with the host. ``ε``
    is drawn from the global generator exactly as :meth:`vae_lib.model.VAE.elbo` draws it, so a seeded
    run follows the same path as the autograd one (up to float rounding).
    """

    def __init__(self, model: nn.Module, free_bits: float = 0.0):
        reason = why_not_fused(model)
        if reason is not None:
            raise ValueError(f"FusedStep does not cover this model: {reason}")
        self.model = model
        self.free_bits = float(free_bits)
        self.enc = _linear_chain(model.encoder)
        self.dec = _linear_chain(model.decoder)
        self.gaussian = model.likelihood == "gaussian"
        self.log_std = getattr(model, "obs_log_std", None)
        self.learn_std = isinstance(self.log_std, nn.Parameter)

    @staticmethod
    def _params(mods: List[nn.Linear]):
        """``(W, b)`` pairs as plain tensors, and their ``.grad`` buffers (made if missing)."""
        layers, grads = [], []
        for m in mods:
            pairs = []
            for p in (m.weight, m.bias):
                if p.grad is None or p.grad.shape != p.shape:
                    p.grad = torch.empty_like(p)
                pairs.append(p.grad)
            layers.append((m.weight.detach(), m.bias.detach()))
            grads.append(tuple(pairs))
        return layers, grads

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        n = x.shape[0]
        xf = x.reshape(n, -1)  # [B, P]
        enc, enc_g = self._params(self.enc)
        dec, dec_g = self._params(self.dec)
        d_lat = self.model.latent_dim

        # Forward: encoder, reparameterized sample, decoder.
        enc_acts = _forward(enc, xf)
        mu, logvar = enc_acts[-1][:, :d_lat], enc_acts[-1][:, d_lat:]  # [B, D] each
        std = torch.exp(0.5 * logvar)  # σ
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)  # as reparameterize() draws it
        z = torch.addcmul(mu, std, eps)  # z = μ + σ ⊙ ε
        dec_acts = _forward(dec, z)
        out = dec_acts[-1]  # [B, P] logits or means

        # Reconstruction term −log p(x|z) per image, and d = ∂(mean_B recon)/∂out.
        if self.gaussian:
            log_std = self.log_std.detach()
            inv_var = torch.exp(-2.0 * log_std)  # 1/σ²
            r = out - xf
            sq = (r * r).sum(1)  # Σ_p (out − x)²
            recon = (0.5 * LOG_2PI + log_std) * xf.shape[1] + 0.5 * inv_var * sq
            d_out = r.mul_(inv_var / n)  # (out − x) / (σ² B)
            if self.learn_std:
                g = self.log_std.grad
                if g is None:
                    g = self.log_std.grad = torch.empty_like(self.log_std)
                torch.mean(xf.shape[1] - inv_var * sq, 0, out=g)  # ∂/∂log σ of the mean recon
        else:
            recon = F.softplus(out).sum(1) - (xf * out).sum(1)  # Σ_p softplus(l) − x·l = BCE with logits
            d_out = torch.sigmoid(out).sub_(xf).div_(n)  # (σ(l) − x) / B

        # KL(q(z|x) || N(0, I)) per dimension, and the weight β/B each sample's KL gets.
        var = std * std
        kl_d = 0.5 * (mu * mu + var - 1.0 - logvar)  # [B, D]
        kl = kl_d.sum(1)
        if self.free_bits > 0:
            kl_mean_d = kl_d.mean(0)  # E_B[KL_d], [D]
            loss = recon.mean() + beta * kl_mean_d.clamp(min=self.free_bits).sum()
            w = (kl_mean_d >= self.free_bits).to(mu.dtype) * (beta / n)  # clamp passes no gradient below λ
        else:
            loss = recon.mean() + beta * kl.mean()
            w = beta / n

        # Backward: decoder, then through z = μ + σε and the KL to [μ, log σ²], then encoder.
        dz = _backward(dec, dec_g, dec_acts, d_out, input_grad=True)  # [B, D]
        d_mu = dz + w * mu  # ∂z/∂μ = 1;  ∂KL/∂μ = μ
        d_logvar = 0.5 * (dz * eps * std + w * (var - 1.0))  # ∂z/∂log σ² = ½σε;  ∂KL/∂log σ² = ½(σ² − 1)
        _backward(enc, enc_g, enc_acts, torch.cat([d_mu, d_logvar], 1), input_grad=False)
        return torch.stack([loss, recon.mean(), kl.mean()])


def fused_step(model: nn.Module, free_bits: float = 0.0) -> Optional[FusedStep]:
    """A :class:`FusedStep` for ``model``, or ``None`` when the model is outside what it covers."""
    return FusedStep(model, free_bits) if why_not_fused(model) is None else None
