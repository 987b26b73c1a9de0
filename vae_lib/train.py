"""The training loop. It knows nothing about any particular model.

A model only has to provide ``elbo(x, beta) -> ELBOTerms`` (see :mod:`vae_lib.losses`); a model
with ``conditional = True`` takes per-image side information as well, ``elbo(x, beta, cond=c)``,
which the trainer batches with the images (``train(..., cond=c)``) without knowing what it means.
How each step computes its gradients is a strategy chosen once by
:func:`vae_lib.steps.make_step` (autograd, or the hand-written backward pass of
:mod:`vae_lib.fused` for the plain MLP VAE). Speed rules followed here: the data goes to the
device once, each epoch shuffles an index (each batch is one ``index_select`` of the
resident data), and the step loop never waits for the device (losses are kept on the
device and read once per epoch).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from .device import default_device
from .losses import objective
from .metrics import check_cond, check_images, evaluate
from .steps import Step, make_step

__all__ = ["History", "TrainConfig", "train", "kl_weight"]

Callback = Callable[[int, "History", nn.Module], None]


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


@dataclass
class TrainConfig:
    """The settings of one :func:`train` run (the keyword arguments of ``train``), checked on creation."""

    epochs: int = 10  # passes over the data
    batch_size: int = 128  # images per step; the last, smaller batch of an epoch is kept
    lr: float = 1e-3  # Adam learning rate
    beta: float = 1.0  # weight of the KL term (β-VAE); 1 is the true ELBO
    kl_warmup_epochs: float = 0  # β rises linearly from 0 over this many epochs; 0: no warm-up
    free_bits: float = 0.0  # nats of KL per latent dimension that cost nothing
    seed: int = 0  # seeds shuffling, binarization and ε draws
    binarize: bool = False  # dynamic binarization: resample pixels ~ Bernoulli(x) per batch
    progress: bool = True  # tqdm progress bar
    amp: bool = False  # bfloat16 autocast
    compile: bool = False  # torch.compile the model's elbo
    fused: Optional[bool] = None  # hand-written backward pass: None where it covers the model

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"train: {name} must be an int >= 1, got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"train: lr must be a finite number > 0 (e.g. 1e-3), got {self.lr!r}")
        for name, hint in (("beta", "1 is the ELBO"), ("free_bits", "0 switches free bits off"),
                           ("kl_warmup_epochs", "0 switches warm-up off")):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"train: {name} must be a finite number >= 0 ({hint}), got {value!r}")


def kl_weight(beta: float, kl_warmup_epochs: float, progress: float) -> float:
    """The KL weight after ``progress`` epochs (fractional): ``β_t = β · min(1, t / T_warm-up)``
    (the linear warm-up of Sønderby et al., 2016; Bowman et al., 2016 annealed with a
    sigmoid-like schedule); ``β`` itself when ``kl_warmup_epochs`` is 0."""
    if kl_warmup_epochs <= 0:
        return beta
    return beta * min(1.0, progress / kl_warmup_epochs)


def _binarizer(enabled: bool, generator: Optional[torch.Generator]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Dynamic binarization (a fresh ``x_b ~ Bernoulli(x)`` each time a batch is drawn), or the identity."""
    if not enabled:
        return lambda xb: xb
    return lambda xb: torch.bernoulli(xb, generator=generator)  # pixels ~ Bernoulli(x), [b, C, H, W]


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[Tuple[torch.Generator, Optional[torch.Generator]]]:
    """Seed the global RNG (the ε draws) inside a fork that leaves the caller's state untouched;
    yields ``(shuffle generator, data generator or None to use the global RNG, e.g. on MPS)``."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        g = torch.Generator(device=device if device.type in ("cpu", "cuda") else "cpu").manual_seed(seed)
        yield g, (g if g.device.type == device.type else None)


def _optimizer(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, with its fused multi-tensor kernel where the device has one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _run_epoch(step: Step, x_all: torch.Tensor, perm: torch.Tensor, cfg: TrainConfig, epoch: int,
               draw: Callable[[torch.Tensor], torch.Tensor], bar,
               c_all: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, float]:
    """One pass over ``x_all`` (and its side information ``c_all``, batched alike) in the order
    ``perm``; returns per-step ``[loss, recon, kl]`` (still on the device: ``[steps, 3]``) and the
    last step's ``β_t``."""
    n, b = x_all.shape[0], cfg.batch_size
    steps = (n + b - 1) // b
    stats = torch.zeros(steps, 3, device=x_all.device)
    beta_t = cfg.beta
    for s in range(steps):
        xb = draw(x_all.index_select(0, perm[s * b:(s + 1) * b]))  # [b, C, H, W]
        beta_t = kl_weight(cfg.beta, cfg.kl_warmup_epochs, epoch + s / steps)
        if c_all is None:
            stats[s] = step(xb, beta_t)
        else:
            cb = c_all.index_select(0, perm[s * b:(s + 1) * b])  # the same rows as xb, [b, ...]
            stats[s] = step(xb, beta_t, cond=cb)
        bar.update(1)
    return stats, beta_t


def _divergence(stats: torch.Tensor, epoch: int, lr: float, data_checked: bool) -> Optional[FloatingPointError]:
    """``None`` if every step's loss in ``stats: [steps, 3]`` is finite, else the error naming
    the epoch and the first step where it was not."""
    finite = torch.isfinite(stats[:, 0])
    if bool(finite.all()):
        return None
    bad = int((~finite).nonzero()[0, 0])
    if data_checked:
        cause = ("The data passed the input check before training (finite pixels, and in [0, 1] for a "
                 f"Bernoulli model), so the optimisation diverged: try a lower lr (now {lr}) or kl_warmup_epochs.")
    else:
        cause = ("The model has no check_input, so the data was not checked: make sure it is finite and in "
                 f"the range the model expects; otherwise try a lower lr (now {lr}) or kl_warmup_epochs.")
    return FloatingPointError(
        f"training diverged: the loss became {stats[bad, 0].item()} at epoch {epoch + 1}, step {bad + 1} "
        f"(of {stats.shape[0]}); the weights were restored to the start of epoch {epoch + 1}. {cause}")


def _record(history: History, stats: torch.Tensor, batch_size: int, n: int, beta_t: float, seconds: float) -> None:
    """Append the epoch's means per image (weighted: the last batch may be smaller)."""
    sizes = torch.tensor([min(batch_size, n - s * batch_size) for s in range(stats.shape[0])], dtype=torch.float32)
    loss_m, recon_m, kl_m = ((stats * sizes[:, None]).sum(0) / n).tolist()
    history.train_loss.append(loss_m)
    history.recon.append(recon_m)
    history.kl.append(kl_m)
    history.beta.append(beta_t)
    history.samples_per_s.append(n / seconds)


def _record_val(history: History, model: nn.Module, val_data: torch.Tensor, cfg: TrainConfig,
                device: torch.device, val_cond: Optional[torch.Tensor] = None) -> None:
    ev = evaluate(model, val_data, beta=cfg.beta, device=device, seed=cfg.seed, cond=val_cond)
    model.train()
    history.val_loss.append(ev["loss"])
    history.val_recon.append(ev["recon"])
    history.val_kl.append(ev["kl"])


def train(model: nn.Module, x_train: torch.Tensor, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
          beta: float = 1.0, kl_warmup_epochs: float = 0, free_bits: float = 0.0,
          val_data: Optional[torch.Tensor] = None, device: Optional[Union[str, torch.device]] = None,
          seed: int = 0, binarize: bool = False, progress: bool = True, amp: bool = False,
          compile: bool = False, fused: Optional[bool] = None, callbacks: Sequence[Callback] = (),
          cond: Optional[torch.Tensor] = None, val_cond: Optional[torch.Tensor] = None) -> History:
    """Fit ``model`` to ``x_train: [N, C, H, W]`` with Adam; returns a :class:`History`.

    Args:
        epochs: passes over the data.
        batch_size: images per step (the last, smaller batch of an epoch is kept).
        lr: Adam learning rate (> 0).
        beta: weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the true ELBO (>= 0).
        kl_warmup_epochs: β rises linearly from 0 to ``beta`` over this many epochs
            (Sønderby et al., 2016; see :func:`kl_weight`); 0 switches warm-up off.
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
            :mod:`vae_lib.fused` instead of autograd (same maths, more images per second on a
            CPU). ``None`` (default) uses it whenever it computes exactly the model's own
            objective (a plain MLP :class:`~vae_lib.VAE`, standard prior, nothing replaced, no
            hooks, no ``amp``/``compile``; see :func:`vae_lib.fused.why_not_fused`); ``True``
            insists (``ValueError`` if it does not cover the model); ``False`` always uses autograd.
        callbacks: functions ``f(epoch, history, model)`` called after every epoch.
        cond: side information per training image, ``[N]`` or ``[N, ...]`` (for example the labels
            of :class:`vae_lib.conditional.ConditionalVAE`), for a model with ``conditional = True``
            only. It is moved to the device once and batched with the same permutation as the
            images; each step calls ``model.elbo(xb, beta=β_t, cond=cb)``.
        val_cond: the same for ``val_data`` (required with ``val_data`` for a conditional model).

    Raises:
        TypeError, ValueError: ``x_train`` or ``val_data`` is not a float ``[N, *model.input_shape]``
            tensor with finite pixels (in ``[0, 1]`` for a Bernoulli model), a setting is out of
            range (negative ``beta``, ``free_bits`` or ``kl_warmup_epochs``, ``lr <= 0``...), or
            ``fused=True`` for a model the fused step does not cover. ``cond`` given for a model
            without ``conditional = True``, missing for one with it, or not one row per image.
        FloatingPointError: the loss became NaN/Inf; names the epoch and step. The model's
            weights are restored to their state at the start of that epoch.
    """
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, kl_warmup_epochs=kl_warmup_epochs,
                      free_bits=free_bits, seed=seed, binarize=binarize, progress=progress, amp=amp,
                      compile=compile, fused=fused)
    device = torch.device(device) if device is not None else default_device()
    check_images(model, x_train, "train: x_train")  # once, before any work: never inside the loop
    if val_data is not None:
        check_images(model, val_data, "train: val_data")
    check_cond(model, cond, x_train.shape[0], "train: cond")
    if val_data is not None:
        check_cond(model, val_cond, val_data.shape[0], "train: val_cond")
    elif val_cond is not None:
        raise ValueError("train: val_cond was given without val_data; pass both, or neither")
    data_checked = hasattr(model, "check_input")
    model.to(device).train()
    x_all = x_train.to(device, dtype=torch.float32)  # moved once; stays on the device
    c_all = cond.to(device) if cond is not None else None  # moved once, like the images
    n = x_all.shape[0]
    opt = _optimizer(model, cfg.lr, device)
    step = make_step(model, opt, cfg.free_bits, amp=cfg.amp, compile=cfg.compile, fused=cfg.fused,
                     device_type=device.type)
    history = History()
    bar = tqdm(total=cfg.epochs * -(-n // cfg.batch_size), disable=not cfg.progress, desc="train", unit="step",
               leave=False)
    with _seeded(device, cfg.seed) as (g, data_gen), contextlib.closing(bar):
        draw = _binarizer(cfg.binarize, data_gen)
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            snapshot = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())  # NaN rollback
            perm = torch.randperm(n, generator=g, device=g.device).to(device)
            stats, beta_t = _run_epoch(step, x_all, perm, cfg, epoch, draw, bar, c_all)
            stats = stats.cpu()  # the one host sync of the epoch
            seconds = time.perf_counter() - t0
            error = _divergence(stats, epoch, cfg.lr, data_checked)
            if error is not None:
                model.load_state_dict(snapshot[0])
                opt.load_state_dict(snapshot[1])
                raise error
            _record(history, stats, cfg.batch_size, n, beta_t, seconds)
            if val_data is not None:
                _record_val(history, model, val_data, cfg, device, val_cond)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history.train_loss[-1]:.1f}")
            for cb in callbacks:
                cb(epoch, history, model)
    model.eval()
    return history
