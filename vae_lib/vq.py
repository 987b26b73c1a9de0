"""VQ-VAE: a codebook, the straight-through estimator, the commitment loss and codebook usage.

The vector-quantised VAE of van den Oord et al. (2017) replaces the Gaussian posterior by a
lookup: the encoder writes ``n`` vectors ``z_e``, each is snapped to its nearest entry of a
learned codebook ``{e_1, …, e_K}``, and the decoder sees only those entries. This module owns

* :class:`VectorQuantizer`: nearest code by squared distance, the straight-through gradient
  and the two auxiliary losses (codebook and commitment);
* :class:`VQVAE`: an MLP (or small conv) encoder and decoder around it that trains with
  :func:`vae_lib.train` unchanged. Its ``elbo`` returns a real bound on ``log p(x)`` in nats: the
  posterior is one-hot, the prior uniform over the ``K`` codes at each position, so the KL is
  the constant ``n log K``;
* codebook diagnostics and a cheap prior over code indices: :func:`codebook_usage`,
  :func:`fit_index_prior`, :func:`index_log_prob`, and :func:`exact_log_likelihood` (log p(x) by
  enumerating every code sequence, for tiny models, to check the bound).

Example::

    import vae_lib as vl
    x, _ = vl.load_dataset("mnist-5k", "train")
    model = vl.vq.VQVAE(n_latents=8, n_codes=32, code_dim=8)
    vl.train(model, x, epochs=5, binarize=True, progress=False)
    perplexity, used, counts = vl.vq.codebook_usage(model, vl.binarize(x, seed=0))
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from .device import eval_mode, model_device
from .losses import ELBOTerms
from .metrics import check_images
from .model import LatentModel

__all__ = [
    "Quantized", "VectorQuantizer", "VQVAE", "codebook_usage", "fit_index_prior", "index_log_prob",
    "exact_log_likelihood",
]


def _check_count(name: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


@dataclass
class Quantized:
    """What :class:`VectorQuantizer` returns for encoder outputs ``z_e: [..., d]``.

    Attributes:
        z_q: ``[..., d]`` the chosen codes in the forward pass, with the straight-through
            gradient ``∂z_q/∂z_e = I`` in the backward pass (``z_e + sg[e − z_e]``).
        indices: ``[...]`` long, the index ``k* = argmin_k ‖z_e − e_k‖²`` of each chosen code.
        codebook_loss: scalar ``mean ‖sg[z_e] − e_k*‖²``: moves the codes toward the encoder outputs.
        commitment_loss: scalar ``mean ‖z_e − sg[e_k*]‖²`` (not yet multiplied by β_c): keeps the
            encoder outputs near the codes they chose.
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """A learned codebook ``E: [K, d]`` and the nearest-code lookup of van den Oord et al. (2017).

    Args:
        n_codes: ``K``, the number of codebook entries.
        code_dim: ``d``, the length of each entry (and of each encoder output vector).
        init_scale: entries start uniform in ``[−init_scale, init_scale]``; ``None`` uses ``1/K``,
            the initialisation of the reference implementations.
        ema_decay: ``None`` trains the codebook by gradient through the codebook loss; a decay
            ``γ`` in ``(0, 1)`` instead sets each entry to a running mean of the encoder outputs
            assigned to it (in training mode, at every forward pass); the codebook loss then has
            no gradient and is left out of the objective.
        restart_dead: with the EMA codebook, move codes that have stopped being chosen onto
            random encoder outputs (a "dead-code restart").
    """

    def __init__(self, n_codes: int, code_dim: int, init_scale: Optional[float] = None,
                 ema_decay: Optional[float] = None, restart_dead: bool = False):
        super().__init__()
        self.n_codes = _check_count("n_codes", n_codes, "VectorQuantizer")
        self.code_dim = _check_count("code_dim", code_dim, "VectorQuantizer")
        if ema_decay is not None and not (0.0 < ema_decay < 1.0):
            raise ValueError(f"VectorQuantizer: ema_decay must be in (0, 1) (e.g. 0.9), or None for a gradient-trained "
                             f"codebook; got {ema_decay!r}")
        if restart_dead and ema_decay is None:
            raise ValueError("VectorQuantizer: restart_dead needs the EMA codebook (pass ema_decay, e.g. 0.9)")
        scale = 1.0 / n_codes if init_scale is None else float(init_scale)
        self.codebook = nn.Parameter(torch.empty(n_codes, code_dim).uniform_(-scale, scale))  # E, [K, d]
        self.ema_decay, self.restart_dead = ema_decay, bool(restart_dead)
        if ema_decay is not None:
            self.codebook.requires_grad_(False)  # moved by the running means below, not by the optimiser
            self.register_buffer("ema_count", torch.ones(n_codes))  # N_k, a running count of z_e assigned to e_k
            self.register_buffer("ema_sum", self.codebook.detach().clone())  # m_k, their running sum, [K, d]

    @torch.no_grad()
    def _ema_update(self, z_e: torch.Tensor, idx: torch.Tensor) -> None:
        """``e_k ← m_k / N_k`` with ``N_k ← γN_k + (1−γ)n_k``, ``m_k ← γm_k + (1−γ)Σ_{i→k} z_i``
        (van den Oord et al. 2017, appendix; Razavi et al. 2019). With ``restart_dead``, a code
        whose running count fell below 1e-2 (chosen by almost nothing lately) is moved onto a
        random encoder output of the batch, so it can be chosen again."""
        flat, k = z_e.reshape(-1, self.code_dim).float(), idx.reshape(-1)  # [M, d], [M]
        g = self.ema_decay
        counts = torch.bincount(k, minlength=self.n_codes).to(flat.dtype)  # n_k, [K]
        sums = torch.zeros_like(self.ema_sum).index_add_(0, k, flat)  # Σ_{i→k} z_i, [K, d]
        self.ema_count.mul_(g).add_(counts, alpha=1 - g)
        self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
        total = self.ema_count.sum()
        n_k = (self.ema_count + 1e-5) / (total + self.n_codes * 1e-5) * total  # Laplace-smoothed N_k (never 0)
        self.codebook.data.copy_(self.ema_sum / n_k[:, None])  # e_k = m_k / N_k
        if self.restart_dead:
            dead = self.ema_count < 1e-2  # [K] bool
            pick = torch.randint(0, flat.shape[0], (self.n_codes,), device=flat.device)  # a random z_e per code
            self.codebook.data.copy_(torch.where(dead[:, None], flat[pick], self.codebook.data))
            self.ema_sum.copy_(torch.where(dead[:, None], flat[pick], self.ema_sum))
            self.ema_count.copy_(torch.where(dead, torch.ones_like(self.ema_count), self.ema_count))

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """``z_e: [..., d] -> [...]`` long: ``argmin_k ‖z_e − e_k‖²``, batched, no gradient."""
        if not isinstance(z_e, torch.Tensor) or z_e.shape[-1] != self.code_dim:
            shape = list(z_e.shape) if isinstance(z_e, torch.Tensor) else type(z_e).__name__
            raise ValueError(f"VectorQuantizer: expected z_e of shape [..., {self.code_dim}], got {shape}")
        with torch.no_grad():
            flat = z_e.reshape(-1, self.code_dim)  # [M, d]
            e = self.codebook  # [K, d]
            d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)  # ‖z‖² − 2 z·e + ‖e‖², [M, K]
            return d2.argmin(dim=1).reshape(z_e.shape[:-1])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """``indices: [...]`` long in ``[0, K)`` -> the codes ``e_indices: [..., d]``."""
        if not isinstance(indices, torch.Tensor) or indices.dtype != torch.long:
            raise TypeError(f"VectorQuantizer.lookup: expected a long tensor of code indices, got "
                            f"{getattr(indices, 'dtype', type(indices).__name__)}; convert with .long()")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.n_codes):
            raise ValueError(f"VectorQuantizer.lookup: indices must lie in [0, {self.n_codes}), got values in "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        return self.codebook[indices]  # [..., d]

    def forward(self, z_e: torch.Tensor) -> Quantized:
        """Quantize ``z_e: [..., d]``; see :class:`Quantized` for what comes back."""
        idx = self.nearest(z_e)  # k*, [...]
        if self.ema_decay is not None and self.training:
            self._ema_update(z_e.detach(), idx)  # the codebook follows the encoder outputs directly
        e = self.codebook[idx]  # e_k*, [..., d]
        codebook_loss = (z_e.detach() - e).pow(2).sum(-1).mean()  # ‖sg[z_e] − e‖², gradient to E only
        commitment_loss = (z_e - e.detach()).pow(2).sum(-1).mean()  # ‖z_e − sg[e]‖², gradient to the encoder only
        z_q = z_e + (e - z_e).detach()  # forward: e; backward: ∂z_q/∂z_e = I (straight through)
        return Quantized(z_q=z_q, indices=idx, codebook_loss=codebook_loss, commitment_loss=commitment_loss)


class VQVAE(LatentModel):
    """A VQ-VAE with a Bernoulli decoder that trains with :func:`vae_lib.train` unchanged.

    The encoder maps an image to ``n`` vectors ``z_e: [B, n, d]``; each is replaced by its
    nearest codebook entry, and the decoder maps the ``n·d`` numbers back to pixel logits.

    The bound. The posterior puts all its mass on the chosen code sequence ``c*(x)``
    (one-hot), the prior is uniform, ``p(c) = K^−n``, so ``KL(q(c|x) || p(c)) = −log p(c*) = n log K``
    for every image, and ``−ELBO = −log p(x|c*) + n log K ≥ −log p(x)`` because
    ``p(x) = Σ_c p(c) p(x|c) ≥ p(c*) p(x|c*)``. The KL has no gradient; training is driven by
    the reconstruction and by ``extra`` (the codebook and commitment losses, outside the bound).

    Args:
        input_shape: ``(C, H, W)`` of one image.
        n_latents: ``n``, code positions per image.
        n_codes: ``K``, codebook entries (shared by every position).
        code_dim: ``d``, the length of each code vector.
        hidden: hidden widths of the encoder (mirrored by the decoder).
        arch: ``"mlp"`` or ``"conv"`` (two stride-2 convolutions first; slower on a CPU).
        commitment: ``β_c``, the weight of the commitment loss (0.25 in van den Oord et al., 2017).
        init_scale: codebook initialisation (see :class:`VectorQuantizer`).
        ema_decay: ``None`` (gradient-trained codebook) or the decay of an EMA codebook.
        restart_dead: dead-code restarts (EMA codebook only).
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), n_latents: int = 8, n_codes: int = 32,
                 code_dim: int = 8, hidden: Sequence[int] = (256,), arch: str = "mlp",
                 commitment: float = 0.25, init_scale: Optional[float] = None,
                 ema_decay: Optional[float] = None, restart_dead: bool = False):
        _check_count("n_latents", n_latents, "VQVAE")
        _check_count("n_codes", n_codes, "VQVAE")
        _check_count("code_dim", code_dim, "VQVAE")
        if not (math.isfinite(commitment) and commitment >= 0):
            raise ValueError(f"VQVAE: commitment must be a finite number >= 0 (0.25 is the paper's), got {commitment!r}")
        flat = n_latents * code_dim
        super().__init__(input_shape, flat, hidden, arch, "bernoulli", None, enc_out=flat)
        self.n_latents, self.n_codes, self.code_dim = n_latents, n_codes, code_dim
        self.commitment = float(commitment)
        self.quantizer = VectorQuantizer(n_codes, code_dim, init_scale, ema_decay, restart_dead)
        self.config: Dict[str, Any] = dict(input_shape=list(self.input_shape), n_latents=n_latents, n_codes=n_codes,
                                           code_dim=code_dim, hidden=list(hidden), arch=arch, commitment=commitment,
                                           init_scale=init_scale, ema_decay=ema_decay, restart_dead=restart_dead)

    @property
    def code_nats(self) -> float:
        """``n log K``: the KL to the uniform prior, the length of one image's code in nats."""
        return self.n_latents * math.log(self.n_codes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W] -> z_e: [B, n, d]``, the encoder's vectors before quantization."""
        h = self.encoder(self.check_input(x, "encode"))  # [B, n·d]
        return h.reshape(-1, self.n_latents, self.code_dim)

    def quantize(self, x: torch.Tensor) -> Quantized:
        """Encode ``x: [B, C, H, W]`` and quantize: :class:`Quantized` with ``z_q: [B, n, d]``, ``indices: [B, n]``."""
        return self.quantizer(self.encode(x))

    def posterior_stats(self, x: torch.Tensor) -> Tuple[torch.Tensor, None]:
        """``(z_q [B, n·d], None)``: the quantized code, flattened, and no variance (so :func:`vae_lib.embed` works)."""
        return self.quantize(x).z_q.flatten(1), None

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W] -> [B, n]`` long: the code index chosen at each position."""
        return self.quantizer.nearest(self.encode(x))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """``indices: [B, n]`` long -> Bernoulli logits ``[B, C, H, W]``; ``model.mean_image`` turns them into pictures."""
        if not isinstance(indices, torch.Tensor) or indices.dim() != 2 or indices.shape[1] != self.n_latents:
            shape = list(indices.shape) if isinstance(indices, torch.Tensor) else type(indices).__name__
            raise ValueError(f"decode_indices: expected indices of shape [B, {self.n_latents}], got {shape}")
        return self.decode(self.quantizer.lookup(indices).flatten(1))  # e_c: [B, n, d] -> [B, n·d] -> logits

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the chosen codes: ``[B, C, H, W]`` mean images in ``[0, 1]``."""
        return self.mean_image(self.decode(self.quantize(x).z_q.flatten(1)))

    @torch.no_grad()
    def sample(self, n_samples: int, log_probs: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw code sequences and decode them: ``[n_samples, C, H, W]`` mean images in ``[0, 1]``.

        ``log_probs: [n, K]`` an independent categorical per position (from :func:`fit_index_prior`);
        ``None`` draws from the uniform prior the bound uses.
        """
        _check_count("n_samples", n_samples, "VQVAE.sample")
        device = model_device(self)
        if log_probs is None:
            log_probs = torch.zeros(self.n_latents, self.n_codes, device=device)
        _check_index_prior(log_probs, self.n_latents, self.n_codes, "VQVAE.sample")
        probs = log_probs.to(device).softmax(-1)  # [n, K], each row sums to 1
        idx = torch.multinomial(probs, n_samples, replacement=True, generator=generator).T  # [S, n]
        return self.mean_image(self.decode_indices(idx))

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: Optional[torch.Generator] = None) -> ELBOTerms:
        """The negative-ELBO terms for ``x: [B, C, H, W]`` (binary pixels for a real bound), nats per image.

        ``recon = −log p(x|z_q)`` (deterministic: ``generator`` is unused), ``kl = n log K`` for
        every image, ``loss = mean_B(recon + β·kl)`` and ``extra = codebook_loss + β_c·commitment_loss``
        (the codebook loss left out with an EMA codebook), the term :func:`vae_lib.objective` adds
        outside the bound.
        """
        q = self.quantize(self.check_input(x, "elbo"))
        z = q.z_q.flatten(1)  # [B, n·d]
        recon = -self.log_likelihood(self.decode(z), x)  # −log p(x|z_q), [B]
        kl = torch.full_like(recon, self.code_nats)  # KL(one-hot || uniform) = n log K, [B]
        extra = self.commitment * q.commitment_loss  # β_c ‖z_e − sg[e]‖²
        if self.quantizer.ema_decay is None:
            extra = extra + q.codebook_loss  # + ‖sg[z_e] − e‖² (an EMA codebook needs no gradient)
        return ELBOTerms(recon=recon, kl=kl, loss=(recon + beta * kl).mean(), z=z, extra=extra)


def _check_index_prior(log_probs: torch.Tensor, n: int, k: int, where: str) -> None:
    if not isinstance(log_probs, torch.Tensor) or tuple(log_probs.shape) != (n, k):
        shape = list(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        raise ValueError(f"{where}: log_probs must be [n_latents, n_codes] = [{n}, {k}], got {shape}")


def _check_vq(model: nn.Module, where: str) -> None:
    if not isinstance(model, VQVAE):
        raise TypeError(f"{where} needs a vae_lib.vq.VQVAE, got {type(model).__name__}")


@torch.no_grad()
def _indices(model: VQVAE, x: torch.Tensor, where: str, batch_size: int = 1000) -> torch.Tensor:
    check_images(model, x, where)
    with eval_mode(model) as device:
        return torch.cat([model.encode_indices(x[i:i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)])


@torch.no_grad()
def codebook_usage(model: VQVAE, x: torch.Tensor) -> Tuple[float, float, torch.Tensor]:
    """How the codebook is used on ``x: [N, C, H, W]``, pooled over all ``n`` positions.

    Returns ``(perplexity, used fraction, counts)``: ``counts: [K]`` how often each code is chosen
    (summing to ``N·n``), ``perplexity = exp(−Σ_k p_k log p_k)`` with ``p_k = counts_k / (N·n)``
    (``K`` when every code is used equally, 1 when one code does everything), and the fraction of
    the ``K`` codes chosen at least once. A code never chosen is "dead": it gets no gradient.
    """
    _check_vq(model, "codebook_usage")
    idx = _indices(model, x, "codebook_usage")  # [N, n]
    counts = torch.bincount(idx.flatten(), minlength=model.n_codes).cpu()  # [K]
    p = counts.double() / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()  # H = −Σ p log p, nats
    return float(entropy.exp()), float((counts > 0).double().mean()), counts


@torch.no_grad()
def fit_index_prior(model: VQVAE, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Fit the cheapest learned prior: an independent categorical per position, by counting.

    ``p_j(k) = (count_jk + α) / (N + αK)`` from the indices the encoder picks for ``x: [N, C, H, W]``
    (add-α smoothing, so no code has probability 0). Returns ``log_probs: [n, K]`` nats. Real
    VQ-VAEs fit an autoregressive prior instead (a PixelCNN, a transformer), which also models the
    dependence between positions.
    """
    _check_vq(model, "fit_index_prior")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"fit_index_prior: alpha must be a finite number > 0 (1 is add-one smoothing), got {alpha!r}")
    idx = _indices(model, x, "fit_index_prior")  # [N, n]
    onehot = torch.zeros(idx.shape[1], model.n_codes, dtype=torch.float64, device=idx.device)
    onehot.scatter_add_(1, idx.T, torch.ones_like(idx.T, dtype=torch.float64))  # counts per position, [n, K]
    return ((onehot + alpha) / (idx.shape[0] + alpha * model.n_codes)).log().float()  # log p_j(k), [n, K]


@torch.no_grad()
def index_log_prob(model: VQVAE, x: torch.Tensor, log_probs: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``log p(c*(x))``: ``[N]`` nats of the encoder's code sequence for each image under a prior.

    ``log_probs: [n, K]`` from :func:`fit_index_prior`; ``None`` is the uniform prior (``−n log K``
    for every image). With it, ``recon − index_log_prob`` is again a bound on ``−log p(x)``,
    for the model whose prior is that categorical.
    """
    _check_vq(model, "index_log_prob")
    idx = _indices(model, x, "index_log_prob")  # [N, n]
    if log_probs is None:
        return torch.full((idx.shape[0],), -model.code_nats, device=idx.device)
    _check_index_prior(log_probs, model.n_latents, model.n_codes, "index_log_prob")
    return log_probs.to(idx.device).gather(1, idx.T).sum(0)  # Σ_j log p_j(c_j), [N]


@torch.no_grad()
def exact_log_likelihood(model: VQVAE, x: torch.Tensor, max_sequences: int = 4096) -> torch.Tensor:
    """``log p(x) = log Σ_c K^−n p(x|c)`` by enumerating all ``K^n`` code sequences: ``[N]`` nats.

    Only for tiny models (``K^n ≤ max_sequences``; memory ``K^n · N`` pixel arrays): it checks that ``−elbo`` is an upper bound on
    ``−log p(x)`` under the uniform prior.
    """
    _check_vq(model, "exact_log_likelihood")
    check_images(model, x, "exact_log_likelihood")
    n_seq = model.n_codes ** model.n_latents
    if n_seq > max_sequences:
        raise ValueError(f"exact_log_likelihood: K^n = {model.n_codes}^{model.n_latents} = {n_seq} sequences exceeds "
                         f"max_sequences={max_sequences}; use a tiny model or raise max_sequences")
    with eval_mode(model) as device:
        seqs = torch.tensor(list(itertools.product(range(model.n_codes), repeat=model.n_latents)), device=device)
        logits = model.decode_indices(seqs)  # [S, C, H, W], one image per code sequence
        xb = x.to(device)
        logits = logits[:, None].expand(-1, xb.shape[0], *logits.shape[1:])  # [S, N, C, H, W]
        log_px_c = model.log_likelihood(logits, xb[None])  # log p(x_i|c_s), [S, N]
        return torch.logsumexp(log_px_c, dim=0) - model.code_nats  # log Σ_s K^−n p(x|c_s), [N]
