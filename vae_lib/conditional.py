"""Conditional VAEs: an encoder ``q(z|x, y)`` and a decoder ``p(x|z, y)`` that both see a label
(Sohn et al., 2015; the generative half of Kingma et al.'s 2014 M2 model with the label observed).

This module owns :class:`ConditionalVAE`, an MLP model whose encoder reads ``[x, onehot(y)]`` and
whose decoder reads ``[z, onehot(y)]``, and the measurements chapter 7 makes of it: decoding one
code with every label (:func:`decode_every_label`), the slant and ink of a digit image
(:func:`style_statistics`), and how strongly one code's style agrees across labels
(:func:`style_agreement`). The model follows the VAE contract with one extra argument, the
labels ``cond: [B]`` (long, values in ``[0, n_classes)``), so :func:`vae_lib.train`,
:func:`vae_lib.evaluate` and :func:`vae_lib.iwae_log_likelihood` take it as ``cond=``::

    import vae_lib as vl
    x, y = vl.load_dataset("mnist-5k", split="train")
    cvae = vl.conditional.ConditionalVAE(latent_dim=16)
    vl.train(cvae, x, cond=y, epochs=5, binarize=True)
    sevens = cvae.sample(8, cond=7)                              # [8, 1, 28, 28] in [0, 1]
    grid = vl.conditional.decode_every_label(cvae, torch.randn(4, 16))  # [4, 10, 1, 28, 28]
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from .device import model_device
from .losses import ELBOTerms, gaussian_log_prob, kl_standard_normal_per_dim, reparameterize
from .model import LatentModel, mlp

__all__ = ["ConditionalVAE", "decode_every_label", "style_statistics", "style_agreement"]

Labels = Union[int, torch.Tensor]


class ConditionalVAE(LatentModel):
    """A VAE conditioned on a class label: ``q(z|x, y) = N(μ(x, y), diag σ²(x, y))``, ``p(z) = N(0, I)``
    and ``p(x|z, y)``, both networks MLPs fed the label as a one-hot vector.

    Because the decoder is told the label, the code ``z`` need not carry it: what ``z`` keeps is
    whatever else varies between images of one class (slant, thickness, size), the "style".

    Args:
        input_shape: ``(C, H, W)`` of one image, e.g. ``(1, 28, 28)``.
        n_classes: ``K``, the number of labels (at least 1); labels are ``0 .. K−1``.
        latent_dim: ``D``, the number of latent dimensions.
        hidden: hidden layer widths of the encoder (mirrored by the decoder).
        likelihood: the observation model, as for :class:`vae_lib.VAE` (``"bernoulli"``: the
            decoder outputs logits).
        obs_std: pixel noise σ for ``"gaussian"``; ``None`` learns it.

    Every method that takes images also takes their labels ``cond: [B]`` (``torch.long``).
    """

    conditional = True  # the trainer and the metrics pass labels as cond= to models with this flag

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), n_classes: int = 10, latent_dim: int = 16,
                 hidden: Sequence[int] = (400,), likelihood: str = "bernoulli", obs_std: Optional[float] = 0.1):
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"ConditionalVAE: n_classes must be an int >= 1, got {n_classes!r}")
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, hidden=hidden, arch="mlp",
                         likelihood=likelihood, obs_std=obs_std, enc_out=2 * latent_dim)
        c, h, w = self.input_shape
        self.n_classes = int(n_classes)
        self.n_pixels = c * h * w
        # The label enters both networks as K extra inputs (replacing the unconditional stacks).
        self.encoder = mlp([self.n_pixels + self.n_classes, *hidden, 2 * self.latent_dim])  # [x, 1_y] -> [μ, log σ²]
        self.decoder = mlp([self.latent_dim + self.n_classes, *reversed(list(hidden)), self.n_pixels])  # [z, 1_y] -> x
        self.config: Dict[str, Any] = dict(input_shape=list(self.input_shape), n_classes=self.n_classes,
                                           latent_dim=self.latent_dim, hidden=list(hidden), likelihood=likelihood,
                                           obs_std=obs_std)

    # --- labels ---------------------------------------------------------------------------

    def check_cond(self, cond: torch.Tensor, where: str = "cond", batch: Optional[int] = None,
                   values: Optional[bool] = None) -> torch.Tensor:
        """Return ``cond`` if it is a ``torch.long`` tensor of labels ``[B]``, else raise saying what is expected.

        ``batch``: the ``B`` it must have (the number of images). ``values``: also check that every
        label is in ``[0, n_classes)``; that reads the labels, so by default it is done only for
        labels on the CPU (no device sync in a training step; the trainer checks them once).
        """
        if not isinstance(cond, torch.Tensor):
            raise TypeError(f"{where}: labels must be a torch.Tensor of class indices [B] (torch.long), "
                            f"got {type(cond).__name__}")
        if cond.dtype != torch.long:
            fix = "cond.argmax(-1) for one-hot rows, " if cond.dim() == 2 else ""
            raise ValueError(f"{where}: labels must have dtype torch.long (class indices), got {cond.dtype}; "
                             f"convert with {fix}cond.long()")
        if cond.dim() != 1:
            raise ValueError(f"{where}: labels must have shape [B] (one class index per image), got {list(cond.shape)}")
        if batch is not None and cond.shape[0] != batch:
            raise ValueError(f"{where}: {cond.shape[0]} labels for {batch} images; pass one label per image")
        if values is None:
            values = cond.device.type == "cpu"
        if values and cond.numel():
            lo, hi = int(cond.min()), int(cond.max())
            if lo < 0 or hi >= self.n_classes:
                raise ValueError(f"{where}: labels must be in [0, {self.n_classes}) for n_classes={self.n_classes}, "
                                 f"got values in [{lo}, {hi}]")
        return cond

    def one_hot(self, cond: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``cond: [...] -> [..., K]`` one-hot rows ``1_y`` (built by comparison: no device sync)."""
        return (cond[..., None] == torch.arange(self.n_classes, device=cond.device)).to(dtype)  # 1[y = k], [..., K]

    def _labels(self, cond: Labels, n: int, where: str) -> torch.Tensor:
        """An int label repeated ``n`` times, or a checked ``[n]`` tensor, on the model's device."""
        device = model_device(self)
        if isinstance(cond, bool):
            raise TypeError(f"{where}: cond must be an int label or a [n] long tensor, got a bool")
        if isinstance(cond, int):
            cond = torch.full((n,), cond, dtype=torch.long)
        return self.check_cond(cond, where, batch=n).to(device)

    # --- the VAE contract, with labels --------------------------------------------------------

    def encode(self, x: torch.Tensor, cond: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x: [B, C, H, W]``, ``cond: [B] -> (mu, logvar)``, each ``[B, D]``: the parameters of ``q(z|x, y)``."""
        x = self.check_input(x, "encode")
        cond = self.check_cond(cond, "encode", batch=x.shape[0])
        inp = torch.cat([x.flatten(1), self.one_hot(cond, x.dtype)], dim=1)  # [x, 1_y], [B, P + K]
        mu, logvar = self.encoder(inp).chunk(2, dim=-1)  # μ(x, y), log σ²(x, y): [B, D] each
        return mu, logvar

    def posterior_stats(self, x: torch.Tensor, cond: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z|x, y)``, each ``[B, D]`` (the same as :meth:`encode`)."""
        return self.encode(x, cond)

    def embed(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``[B, D]``: the posterior mean ``μ(x, y)``, one code per labelled input."""
        return self.encode(x, cond)[0]

    def decode(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``z: [..., B, D]``, ``cond: [B] -> [..., B, C, H, W]``: logits (Bernoulli) or means of ``p(x|z, y)``.

        The one-hot label is broadcast over ``z``'s leading dimensions (for example the ``S``
        samples per image of an importance-weighted bound, ``z: [S, B, D]``).
        """
        if z.dim() < 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"decode: expected z of shape [..., B, {self.latent_dim}], got {list(z.shape)}")
        cond = self.check_cond(cond, "decode", batch=z.shape[-2])
        onehot = self.one_hot(cond, z.dtype).expand(*z.shape[:-1], self.n_classes)  # [..., B, K]
        out = self.decoder(torch.cat([z, onehot], dim=-1))  # [..., B, P]
        return out.reshape(*z.shape[:-1], *self.input_shape)

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Decode ``z: [..., B, D]`` with labels ``cond: [B]`` to displayable images in ``[0, 1]``."""
        return self.mean_image(self.decode(z, cond))

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z) = log N(z; 0, I)``: ``[...]`` nats for ``z: [..., D]`` (the prior ignores the label)."""
        return gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))

    def kl_to_prior(self, mu: torch.Tensor, logvar: torch.Tensor,
                    z: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Closed-form ``KL(q(z|x, y) || N(0, I))``: ``(kl [B], kl_per_dim [B, D])`` nats (``z`` is unused)."""
        kl_per_dim = kl_standard_normal_per_dim(mu, logvar)  # ½(μ² + σ² − 1 − log σ²), [B, D]
        return kl_per_dim.sum(dim=-1), kl_per_dim

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: Optional[torch.Generator] = None,
             cond: Optional[torch.Tensor] = None) -> ELBOTerms:
        """The terms of the negative conditional ELBO for ``x: [B, C, H, W]`` with labels ``cond: [B]``.

        ``log p(x|y) ≥ E_q[log p(x|z, y)] − KL(q(z|x, y) || p(z))``: ``recon = −log p(x|z, y)``
        with one ``z ~ q(z|x, y)``, ``kl`` in closed form, ``loss = mean_B(recon + β·kl)``; nats per image.
        """
        if cond is None:
            raise ValueError("ConditionalVAE.elbo needs the labels: elbo(x, cond=y) with y a [B] long tensor "
                             "(vae_lib.train(..., cond=y) passes them)")
        mu, logvar = self.encode(self.check_input(x, "elbo"), cond)
        z = reparameterize(mu, logvar, generator)  # z = μ + σ ⊙ ε, [B, D]
        recon = -self.log_likelihood(self.decode(z, cond), x)  # −log p(x|z, y), [B]
        kl, kl_per_dim = self.kl_to_prior(mu, logvar)  # [B], [B, D]
        return ELBOTerms(recon=recon, kl=kl, loss=(recon + beta * kl).mean(), kl_per_dim=kl_per_dim, z=z)

    @torch.no_grad()
    def sample(self, n_samples: int, cond: Labels, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``z ~ N(0, I)`` and decode it with the labels ``cond``: ``[n_samples, C, H, W]`` mean images.

        ``cond``: one int label for every sample (``sample(8, 7)``: eight sevens), or ``[n_samples]`` labels.
        ``generator`` must live on the model's device.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"sample: n_samples must be a positive int, got {n_samples!r}")
        labels = self._labels(cond, n_samples, "sample")
        z = torch.randn(n_samples, self.latent_dim, device=labels.device, generator=generator)  # z ~ N(0, I), [n, D]
        return self.decode_mean(z, labels)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean ``μ(x, y)`` with the same label: ``[B, C, H, W]`` images in ``[0, 1]``."""
        return self.decode_mean(self.encode(x, cond)[0], cond)


def _conditional_model(model: torch.nn.Module, where: str) -> torch.nn.Module:
    if not getattr(model, "conditional", False):
        raise TypeError(f"{where} needs a conditional model (such as vae_lib.conditional.ConditionalVAE), "
                        f"got {type(model).__name__}")
    return model


@torch.no_grad()
def decode_every_label(model: ConditionalVAE, z: torch.Tensor,
                       labels: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Decode each code with every label: ``z: [B, D] -> [B, L, C, H, W]`` mean images in ``[0, 1]``.

    Row ``b`` holds ``E[x | z_b, y = l]`` for each label ``l`` of ``labels`` (default all ``K``),
    so the columns differ only in the label and the rows only in the code. On the model's device.
    """
    _conditional_model(model, "decode_every_label")
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"decode_every_label: z must be a [B, {model.latent_dim}] tensor of codes, "
                         f"got {list(getattr(z, 'shape', [])) or type(z).__name__}")
    device = model_device(model)
    lab = torch.arange(model.n_classes) if labels is None else torch.as_tensor(list(labels), dtype=torch.long)
    if lab.numel() == 0:
        raise ValueError("decode_every_label: labels is empty; pass at least one label")
    lab = model.check_cond(lab, "decode_every_label: labels").to(device)
    b, n_lab = z.shape[0], lab.shape[0]
    zz = z.to(device).repeat_interleave(n_lab, dim=0)  # [z_0, z_0, ..., z_1, ...], [B·L, D]
    yy = lab.repeat(b)  # [l_0, l_1, ..., l_0, ...], [B·L]
    return model.decode_mean(zz, yy).reshape(b, n_lab, *model.input_shape)


def style_statistics(images: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The slant and the amount of ink of each image, from its intensity's moments: ``images: [..., 1, H, W]``.

    With the pixel intensities ``I(r, c) ≥ 0`` as weights (rows ``r`` downwards, columns ``c``):

    * ``slant = Cov(c, r) / Var(r)``: how many columns the stroke moves right per row down
      (0 for an upright digit; negative for one that leans right, whose top is to the right);
    * ``ink = Σ I``: the total intensity, in pixels' worth of full ink (a thicker stroke has more).

    Returns ``{"slant": [...], "ink": [...]}``. An empty image gets slant 0.
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 3 or images.shape[-3] != 1:
        raise ValueError(f"style_statistics: expected grey images [..., 1, H, W], got "
                         f"{list(getattr(images, 'shape', [])) or type(images).__name__}")
    img = images[..., 0, :, :].double().clamp_min(0)  # I(r, c), [..., H, W]
    h, w = img.shape[-2:]
    r = torch.arange(h, dtype=img.dtype, device=img.device)[:, None]  # row index, [H, 1]
    c = torch.arange(w, dtype=img.dtype, device=img.device)[None, :]  # column index, [1, W]
    ink = img.sum(dim=(-2, -1))  # Σ I, [...]
    mass = ink.clamp_min(1e-12)
    mr = (img * r).sum(dim=(-2, -1)) / mass  # E[r]
    mc = (img * c).sum(dim=(-2, -1)) / mass  # E[c]
    dr, dc = r - mr[..., None, None], c - mc[..., None, None]
    var_r = (img * dr ** 2).sum(dim=(-2, -1)) / mass  # Var(r)
    cov_rc = (img * dr * dc).sum(dim=(-2, -1)) / mass  # Cov(r, c)
    slant = torch.where(var_r > 1e-12, cov_rc / var_r.clamp_min(1e-12), torch.zeros_like(var_r))  # Cov(c, r) / Var(r)
    return {"slant": slant.float(), "ink": ink.float()}


def style_agreement(stat: torch.Tensor, shuffle_seed: Optional[int] = None) -> float:
    """How much one code's style agrees across labels: the Pearson correlation over codes of
    ``stat[:, a]`` with ``stat[:, b]``, averaged over all pairs of labels ``a < b``.

    ``stat: [B, L]`` one statistic (say the slant) of code ``b`` decoded with label ``l``
    (from :func:`style_statistics` of :func:`decode_every_label`'s output); ``B ≥ 3``, ``L ≥ 2``.
    Near 1: the code fixes the style whatever the label. With ``shuffle_seed`` each label's
    column is first permuted independently over codes (a seeded baseline that breaks the
    pairing and keeps every column's values): near 0.
    """
    if not isinstance(stat, torch.Tensor) or stat.dim() != 2 or stat.shape[0] < 3 or stat.shape[1] < 2:
        raise ValueError(f"style_agreement: stat must be [B, L] with at least 3 codes and 2 labels, got "
                         f"{list(getattr(stat, 'shape', [])) or type(stat).__name__}")
    s = stat.double()
    if shuffle_seed is not None:
        g = torch.Generator().manual_seed(shuffle_seed)
        idx = torch.stack([torch.randperm(s.shape[0], generator=g) for _ in range(s.shape[1])], dim=1)  # [B, L]
        s = s.cpu().gather(0, idx)
    s = s - s.mean(dim=0)  # centre each column
    s = s / s.norm(dim=0).clamp_min(1e-12)  # unit length: dot products are correlations
    corr = s.T @ s  # [L, L] Pearson correlations between labels
    iu = torch.triu_indices(corr.shape[0], corr.shape[1], offset=1)
    return float(corr[iu[0], iu[1]].mean())
