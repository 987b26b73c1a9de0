"""The training loop. It knows nothing about any particular model.

A model only has to provide ``elbo(x, beta) -> ELBOTerms`` (see :mod:`vae_lib.losses`).
Speed rules followed here: the data goes to the device once, each epoch shuffles an
index (each batch is one ``index_select`` of the resident data), and the step loop never
waits for the device (losses are kept on the device and read once per epoch). For MLP
VAEs the step itself is the hand-written one of :mod:`vae_lib.fused`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn
from torch.optim.adam import adam as adam_update
from tqdm.auto import tqdm

from .device import default_device, model_device
from .fused import FusedStep, why_not_fused

__all__ = ["History", "train", "evaluate", "objective"]


@dataclass
class History:
    """Per-epoch training record (lists have one entry per epoch; losses in nats per image).

    ``train_loss`` is the objective actually minimised, ``mean(recon + β_t·kl)`` with the
    warm-up β and free bits in force; ``recon`` and ``kl`` are its two terms. ``val_*``
    are filled when ``val_data`` is given (evaluated with the target β, no free bits).
    """

    train_loss: List[float] = field(default_factory=list)
    recon: List[float] = field(default_factory=list)
    kl: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_recon: List[float] = field(default_factory=list)
    val_kl: List[float] = field(default_factory=list)
    samples_per_s: List[float] = field(default_factory=list)
    beta: List[float] = field(default_factory=list)

    def __getitem__(self, key: str) -> List[float]:
        return getattr(self, key)

    def keys(self) -> List[str]:
        return [k for k in self.__dataclass_fields__ if getattr(self, k)]

    def to_dict(self) -> Dict[str, List[float]]:
        return {k: list(getattr(self, k)) for k in self.keys()}


def objective(terms, beta: float, free_bits: float = 0.0) -> torch.Tensor:
    """Scalar loss ``mean(recon) + β · KL``, with optional free bits (Kingma et al., 2016).

    Free bits: each latent dimension's KL, averaged over the batch, counts as at least
    ``free_bits`` nats, so the optimiser gains nothing by pushing it lower. Without a
    per-dimension KL (mixture priors) the total is floored at ``free_bits · D``.
    """
    if free_bits <= 0:
        return terms.recon.mean() + beta * terms.kl.mean()
    if terms.kl_per_dim is not None:
        kl = terms.kl_per_dim.mean(dim=0).clamp(min=free_bits).sum()  # Σ_d max(λ, E_B[KL_d])
    else:
        kl = terms.kl.mean().clamp(min=free_bits * terms.z.shape[-1])
    return terms.recon.mean() + beta * kl


def _adam_step(opt: torch.optim.Adam) -> None:
    """``opt.step()`` for a single-group fused Adam whose parameters all have gradients,
    calling ``torch.optim.adam.adam`` directly: the same update without the per-call
    bookkeeping of ``Optimizer.step`` (hooks, profiler records, state initialisation),
    which for a model this small costs about as much as the update itself."""
    group = opt.param_groups[0]
    params = group["params"]
    if len(opt.param_groups) != 1 or not group.get("fused") or len(opt.state) != len(params):
        opt.step()  # the general path; it also creates the state on the first step
        return
    states = [opt.state[p] for p in params]
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        adam_update(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                    [st["exp_avg_sq"] for st in states], [], [st["step"] for st in states],
                    fused=True, amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=group["lr"],
                    weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])


def _check_data(model: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    if isinstance(x, (tuple, list)):
        raise TypeError(f"{where}: pass the images tensor only (x), not an (x, y) pair")
    if hasattr(model, "check_input"):
        model.check_input(x, where)
    if x.shape[0] == 0:
        raise ValueError(f"{where}: got an empty dataset")
    return x


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, beta: float = 1.0, batch_size: int = 500,
             device: Optional[Union[str, torch.device]] = None, seed: int = 0) -> Dict[str, float]:
    """Mean ``loss``, ``recon`` and ``kl`` (nats per image) of ``model.elbo`` over ``x``, seeded."""
    device = torch.device(device) if device is not None else model_device(model)
    x = _check_data(model, x, "evaluate").to(device)
    was_training = model.training
    model.eval()
    g = torch.Generator(device=device).manual_seed(seed)
    sums = torch.zeros(2, device=device)
    for i in range(0, x.shape[0], batch_size):
        t = model.elbo(x[i:i + batch_size], beta=beta, generator=g)
        sums += torch.stack([t.recon.sum(), t.kl.sum()])
    model.train(was_training)
    recon, kl = (sums / x.shape[0]).tolist()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def train(model: nn.Module, x_train: torch.Tensor, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
          beta: float = 1.0, kl_warmup_epochs: float = 0, free_bits: float = 0.0,
          val_data: Optional[torch.Tensor] = None, device: Optional[Union[str, torch.device]] = None,
          seed: int = 0, binarize: bool = False, progress: bool = True, amp: bool = False,
          compile: bool = False, fused: Optional[bool] = None, callbacks: Sequence[Callable[[int, History, nn.Module], None]] = ()) -> History:
    """Fit ``model`` to ``x_train: [N, C, H, W]`` with Adam; returns a :class:`History`.

    Args:
        epochs: passes over the data.
        batch_size: images per step (the last, smaller batch of an epoch is kept).
        lr: Adam learning rate.
        beta: weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the true ELBO.
        kl_warmup_epochs: β rises linearly from 0 to ``beta`` over this many epochs
            (Bowman et al., 2016); 0 switches warm-up off.
        free_bits: nats of KL per latent dimension that cost nothing (Kingma et al., 2016).
        val_data: optional held-out images, evaluated at the end of each epoch.
        device: where to train; default :func:`vae_lib.default_device`.
        seed: seeds the shuffling, the binarization and the ε draws (the caller's
            global random state is left untouched).
        binarize: dynamic binarization: each time a batch is drawn its pixels are
            resampled as ``Bernoulli(x)``.
        progress: show a ``tqdm`` progress bar.
        amp: bfloat16 autocast (CUDA, or CPUs with bf16 support).
        compile: wrap the step's loss computation in ``torch.compile``.
        fused: compute the gradients with the hand-written backward pass of
            :mod:`vae_lib.fused` instead of autograd (same maths, about 1.3x as many
            images per second on a CPU). ``None`` (default) uses it whenever it covers the model (an MLP VAE with
            the standard prior, no ``amp``/``compile``); ``True`` insists (``ValueError``
            if it does not cover the model); ``False`` always uses autograd.
        callbacks: functions ``f(epoch, history, model)`` called after every epoch.

    Raises:
        ValueError: ``x_train`` or ``val_data`` is not ``[N, *model.input_shape]``, or
            ``fused=True`` for a model the fused step does not cover.
        FloatingPointError: the loss became NaN/Inf; names the epoch and step. The model's
            weights are restored to their state at the start of that epoch.
    """
    device = torch.device(device) if device is not None else default_device()
    _check_data(model, x_train, "train: x_train")
    if val_data is not None:
        _check_data(model, val_data, "train: val_data")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    model.to(device).train()
    x_all = x_train.to(device, dtype=torch.float32)  # moved once; stays on the device
    n = x_all.shape[0]
    steps = (n + batch_size - 1) // batch_size
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elbo = torch.compile(model.elbo) if compile else model.elbo
    not_fused = why_not_fused(model, amp=amp, compile=compile) if fused is not False else "fused=False"
    if fused and not_fused:
        raise ValueError(f"train(fused=True): {not_fused}; pass fused=None to fall back to autograd")
    fused_step = None if not_fused else FusedStep(model, free_bits)
    history = History()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)  # ε draws inside model.elbo
        g = torch.Generator(device=device if device.type in ("cpu", "cuda") else "cpu").manual_seed(seed)
        data_gen = g if g.device.type == device.type else None  # e.g. MPS: fall back to the global RNG
        bar = tqdm(total=epochs * steps, disable=not progress, desc="train", unit="step", leave=False)
        for epoch in range(epochs):
            t0 = time.perf_counter()
            snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))  # NaN rollback
            perm = torch.randperm(n, generator=g, device=g.device).to(device)
            stats = torch.zeros(steps, 3, device=device)  # loss, recon, kl per step, read once per epoch
            for step in range(steps):
                xb = x_all.index_select(0, perm[step * batch_size:(step + 1) * batch_size])  # [b, C, H, W]
                if binarize:
                    xb = torch.bernoulli(xb, generator=data_gen)  # dynamic binarization: pixels ~ Bernoulli(x)
                progress_frac = epoch + step / steps
                beta_t = beta * min(1.0, progress_frac / kl_warmup_epochs) if kl_warmup_epochs > 0 else beta
                if fused_step is not None:
                    stats[step] = fused_step(xb, beta_t)  # loss and every gradient, by hand (vae_lib.fused)
                    _adam_step(opt)
                else:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                        terms = elbo(xb, beta=beta_t)
                        loss = objective(terms, beta_t, free_bits)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    stats[step] = torch.stack([loss.detach(), terms.recon.detach().mean(), terms.kl.detach().mean()])
                    opt.step()
                bar.update(1)
            stats = stats.cpu()  # the one host sync of the epoch
            elapsed = time.perf_counter() - t0
            finite = torch.isfinite(stats[:, 0])
            if not bool(finite.all()):
                bad = int((~finite).nonzero()[0, 0])
                model.load_state_dict(snapshot[0])
                opt.load_state_dict(snapshot[1])
                bar.close()
                raise FloatingPointError(
                    f"training diverged: the loss became {stats[bad, 0].item()} at epoch {epoch + 1}, step {bad + 1} "
                    f"(of {steps}); the weights were restored to the start of epoch {epoch + 1}. "
                    f"Try a lower lr (now {lr}), check the data is in [0, 1], or use kl_warmup_epochs.")
            # Mean per image over the epoch (weights: the last batch may be smaller).
            sizes = torch.tensor([min(batch_size, n - s * batch_size) for s in range(steps)], dtype=torch.float32)
            loss_m, recon_m, kl_m = ((stats * sizes[:, None]).sum(0) / n).tolist()
            history.train_loss.append(loss_m)
            history.recon.append(recon_m)
            history.kl.append(kl_m)
            history.beta.append(beta_t)
            history.samples_per_s.append(n / elapsed)
            if val_data is not None:
                ev = evaluate(model, val_data, beta=beta, device=device, seed=seed)
                model.train()
                history.val_loss.append(ev["loss"])
                history.val_recon.append(ev["recon"])
                history.val_kl.append(ev["kl"])
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_m:.1f}")
            for cb in callbacks:
                cb(epoch, history, model)
        bar.close()
    model.eval()
    return history
