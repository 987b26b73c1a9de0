"""The trainer's fast path: the MLP VAE's gradients written out by hand.

Autograd records every operation of a step and replays it backwards. For a small
fully connected VAE on a CPU that bookkeeping (and the temporaries it keeps) is about a
fifth of each step (see ``benchmarks/bench_train.py``), so :func:`vae_lib.train` uses this
module whenever the model is exactly the one it covers: a plain :class:`~vae_lib.VAE`
(the class itself, no subclass, nothing replaced, no hooks) with ``arch="mlp"``, the
standard prior, and a Bernoulli or Gaussian likelihood. :func:`why_not_fused` says why any
other model is refused; it then trains with autograd, on its own maths.

The forward pass calls the same functions :meth:`vae_lib.VAE.elbo` and the trainer call
(:func:`~vae_lib.bernoulli_log_likelihood`, :func:`~vae_lib.gaussian_log_likelihood`,
:func:`~vae_lib.kl_standard_normal_per_dim`, :func:`~vae_lib.objective`); only the
backward pass is written by hand. Its chain rule is the textbook one for the Bernoulli and
Gaussian MLPs of Kingma & Welling (2014, appendix C); ``tests/test_fused.py`` checks every
gradient against autograd.

Notation for one batch of ``B`` images with ``P`` pixels and ``D`` latent dimensions::

    encoder:  [μ, log σ²] = MLP_e(x)              decoder:  out = MLP_d(z)
    sample:   z = μ + σ ⊙ ε,  ε ~ N(0, I)         loss:     mean_B(recon) + β · KL term

Each MLP is ``Linear, ReLU, …, Linear``; backpropagating ``d = ∂loss/∂(layer output)``
through ``a_out = a_in Wᵀ + b`` gives ``∂W = dᵀ a_in``, ``∂b = Σ_B d`` and
``∂a_in = d W``, and a ReLU passes ``d`` only where its output was positive.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.modules.module as torch_module
from torch import nn

from .losses import (
    ELBOTerms,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal_per_dim,
    objective,
)
from .model import VAE

__all__ = ["FusedStep", "fused_step", "why_not_fused"]

_LAYERS = (nn.Sequential, nn.Flatten, nn.Unflatten, nn.Linear, nn.ReLU)
# Every class whose code the fused step stands in for, as it was when this module was
# imported: VAE and its bases, and the layers of its MLPs. A method replaced on one of
# these classes later (``vl.VAE.decode = ...``) shows up as a difference.
_CLASSES = tuple(c for c in dict.fromkeys((*VAE.__mro__, *_LAYERS)) if c is not object)
_PRISTINE: Dict[type, Dict[str, object]] = {c: dict(vars(c)) for c in _CLASSES}
# Module hooks, per module and global (torch.nn.modules.module.register_module_*_hook).
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")
# Tensor hooks on a parameter (p.register_hook, p.register_post_accumulate_grad_hook).
_TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")


def _linear_chain(net: nn.Module) -> Optional[List[nn.Linear]]:
    """The Linear layers of ``Linear, ReLU, …, Linear`` (nested Sequentials, Flatten and
    Unflatten allowed, each exactly of its class), or ``None`` for any other structure."""
    if any(type(m) not in _LAYERS for m in net.modules()):
        return None
    mods = [m for m in net.modules() if type(m) in (nn.Linear, nn.ReLU)]
    if not mods or len(mods) % 2 == 0:
        return None
    for i, m in enumerate(mods):
        if type(m) is not (nn.Linear if i % 2 == 0 else nn.ReLU) or (i % 2 == 0 and m.bias is None):
            return None
    return mods[::2]


def _replaced_methods(model: nn.Module) -> List[str]:
    """Names of methods replaced on the covered classes since import, or set on an instance."""
    changed = [f"{c.__name__}.{k}" for c, before in _PRISTINE.items()
               for k in set(before) | set(vars(c)) if vars(c).get(k) is not before.get(k)]
    for name, m in model.named_modules():
        changed += [f"{name or 'model'}.{k}" for k, v in vars(m).items()
                    if callable(v) and not isinstance(v, nn.Module)]  # e.g. model.decode = f
    return sorted(changed)


def _hooks(model: nn.Module) -> List[str]:
    """Where hooks are registered: on a module, globally for all modules, or on a parameter."""
    found = [f"global {h}" for h in _GLOBAL_HOOKS if getattr(torch_module, h, None)]
    for name, m in model.named_modules():
        found += [f"{name or 'model'}.{h}" for h in _MODULE_HOOKS if getattr(m, h, None)]
    for name, p in model.named_parameters():
        found += [f"{name}.{h}" for h in _TENSOR_HOOKS if getattr(p, h, None)]
    return found


def why_not_fused(model: nn.Module, amp: bool = False, compile: bool = False) -> Optional[str]:
    """``None`` if :class:`FusedStep` computes exactly ``model``'s own objective and
    gradients; otherwise the reason it does not (the trainer then uses autograd).

    Covered: an instance of :class:`vae_lib.VAE` itself (not a subclass) with ``arch="mlp"``,
    the standard prior, plain ``Linear``/``ReLU`` stacks, one parameter dtype, every
    parameter trainable, no method replaced (on the class or the instance) and no hooks of
    any kind (module, global module, or parameter hooks).
    """
    if amp or compile:
        return "amp and compile use autograd"
    if type(model) is not VAE:
        return f"the model is a {type(model).__qualname__}, not a plain vae_lib.VAE (subclasses use autograd)"
    replaced = _replaced_methods(model)
    if replaced:
        return f"the model is not a plain vae_lib.VAE: replaced {', '.join(replaced)}"
    if model.likelihood not in ("bernoulli", "gaussian"):
        return (f"likelihood={model.likelihood!r} (the fused step covers 'bernoulli' and 'gaussian'; the "
                f"grey-level pmfs of vae_lib.likelihoods use autograd)")
    if model.config.get("arch") != "mlp":
        return f"arch={model.config.get('arch')!r} (the fused step covers arch='mlp')"
    if model.prior_name != "standard":
        return f"prior={model.prior_name!r} (the fused step covers the standard prior)"
    if _linear_chain(model.encoder) is None or _linear_chain(model.decoder) is None:
        return "the encoder or decoder is not a plain Linear/ReLU stack"
    params = list(model.parameters())
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1:
        return f"mixed parameter dtypes {sorted(map(str, dtypes))}"
    if not all(type(p) is nn.Parameter and p.requires_grad for p in params):
        return "some parameters are frozen (requires_grad=False) or not plain nn.Parameters"
    hooks = _hooks(model)
    if hooks:
        return f"the model has hooks ({', '.join(hooks)})"
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
    """One training step's loss and gradients for a plain MLP VAE, without autograd.

    Calling it with a batch ``x: [B, C, H, W]`` and the KL weight ``beta`` computes the
    objective of :func:`vae_lib.objective` (``mean_B(recon) + β · KL``, with free bits
    if given), writes ``∂objective/∂p`` into every parameter's ``.grad`` (like
    ``loss.backward()`` after ``zero_grad``), and returns ``[objective, mean recon,
    mean KL]`` (nats per image) as one tensor on the device, without synchronising with
    the host. ``ε`` is drawn from the global generator exactly as
    :func:`vae_lib.reparameterize` draws it inside :meth:`vae_lib.VAE.elbo`, so a seeded run
    follows the same path as the autograd one (up to float rounding).
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

    def _recon(self, out: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``recon = −log p(x|z)``: ``[B]`` nats, and ``d = ∂(mean_B recon)/∂out``: ``[B, P]``."""
        n, xf = x.shape[0], x.reshape(x.shape[0], -1)  # [B, P]
        if not self.gaussian:
            recon = -bernoulli_log_likelihood(out.view(x.shape), x)  # [B]
            return recon, torch.sigmoid(out).sub_(xf).div_(n)  # ∂/∂l = (σ(l) − x) / B
        log_std = self.log_std.detach()
        recon = -gaussian_log_likelihood(out.view(x.shape), x, log_std)  # [B]
        inv_var = torch.exp(-2.0 * log_std)  # 1/σ²
        r = out - xf  # [B, P]
        if self.learn_std:  # ∂(mean_B recon)/∂log σ = mean_B(P − Σ_p (out − x)² / σ²)
            g = self.log_std.grad
            if g is None:
                g = self.log_std.grad = torch.empty_like(self.log_std)
            torch.mean(xf.shape[1] - inv_var * (r * r).sum(1), 0, out=g)
        return recon, r.mul_(inv_var / n)  # ∂/∂out = (out − x) / (σ² B)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        n = x.shape[0]
        enc, enc_g = self._params(self.enc)
        dec, dec_g = self._params(self.dec)
        d_lat = self.model.latent_dim

        # Forward: encoder, reparameterized sample, decoder, and the objective.
        enc_acts = _forward(enc, x.reshape(n, -1))
        mu, logvar = enc_acts[-1][:, :d_lat], enc_acts[-1][:, d_lat:]  # [B, D] each
        std = torch.exp(0.5 * logvar)  # σ
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)  # ε ~ N(0, I), as reparameterize() draws it
        z = torch.addcmul(mu, std, eps)  # z = μ + σ ⊙ ε, [B, D]
        dec_acts = _forward(dec, z)
        recon, d_out = self._recon(dec_acts[-1], x)  # [B], [B, P]
        kl_d = kl_standard_normal_per_dim(mu, logvar)  # [B, D]
        kl = kl_d.sum(1)  # [B]
        terms = ELBOTerms(recon=recon, kl=kl, loss=(recon + beta * kl).mean(), kl_per_dim=kl_d, z=z)
        loss = objective(terms, beta, self.free_bits)

        # The weight ∂loss/∂KL_d each sample's KL gets: β/B, or 0 for a dimension held at
        # the free-bits floor (clamp passes no gradient below λ).
        if self.free_bits > 0:
            w = (kl_d.mean(0) >= self.free_bits).to(mu.dtype) * (beta / n)  # [D]
        else:
            w = beta / n

        # Backward: decoder, then through z = μ + σε and the KL to [μ, log σ²], then encoder.
        dz = _backward(dec, dec_g, dec_acts, d_out, input_grad=True)  # [B, D]
        d_mu = dz + w * mu  # ∂z/∂μ = 1;  ∂KL/∂μ = μ
        d_logvar = 0.5 * (dz * eps * std + w * (std * std - 1.0))  # ∂z/∂log σ² = ½σε;  ∂KL/∂log σ² = ½(σ² − 1)
        _backward(enc, enc_g, enc_acts, torch.cat([d_mu, d_logvar], 1), input_grad=False)
        return torch.stack([loss, recon.mean(), kl.mean()])


def fused_step(model: nn.Module, free_bits: float = 0.0) -> Optional[FusedStep]:
    """A :class:`FusedStep` for ``model``, or ``None`` when the model is outside what it covers."""
    return FusedStep(model, free_bits) if why_not_fused(model) is None else None
