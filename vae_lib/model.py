"""Models: the VAE, and the deterministic autoencoder it grows out of.

Both share one encoder/decoder builder (``arch="mlp"`` or ``"conv"``) and one
observation model ``p(x|z)``: ``likelihood="bernoulli"`` or ``"gaussian"`` (Part I), or one
of the grey-level pmfs of :mod:`vae_lib.likelihoods` (``"logistic"``, ``"categorical"``,
``"discretized_gaussian"``), true probabilities of 8-bit images. The trainer only needs
``model.elbo(x, beta) -> ELBOTerms``, which both provide; the metrics use
``decode(z)`` and ``log_likelihood(out, x)``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from . import likelihoods as lk
from .device import model_device
from .losses import (
    ELBOTerms,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    gaussian_log_prob,
    reparameterize,
)
from .priors import PRIORS, make_prior

__all__ = ["VAE", "Autoencoder", "LatentModel", "mlp", "ARCHS", "LIKELIHOODS", "GREY_LIKELIHOODS"]

ARCHS = ("mlp", "conv")
# Probabilities of 8-bit grey levels (pixels on the 1/255 grid); see vae_lib.likelihoods.
GREY_LIKELIHOODS = ("logistic", "categorical", "discretized_gaussian")
LIKELIHOODS = ("bernoulli", "gaussian", *GREY_LIKELIHOODS)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _build_networks(input_shape: Tuple[int, int, int], latent_dim: int, hidden: Sequence[int], arch: str,
                    enc_out: int, out_channels: Optional[int] = None,
                    conv_channels: Sequence[int] = (32, 64)) -> Tuple[nn.Module, nn.Module]:
    """Encoder ``[B, C, H, W] -> [B, enc_out]`` and decoder ``[B, D] -> [B, C_out, H, W]``.

    ``C_out`` is ``out_channels`` (default ``C``: one parameter per pixel), ``C · P`` for a
    likelihood with ``P`` parameters per pixel. ``conv_channels = (c1, c2)``: the channels of the
    two stride-2 convolutions of ``arch="conv"``.
    """
    c, h, w = input_shape
    c_out = c if out_channels is None else int(out_channels)
    hidden = list(hidden)
    if arch == "mlp":
        encoder = nn.Sequential(nn.Flatten(), mlp([c * h * w, *hidden, enc_out]))
        decoder = nn.Sequential(mlp([latent_dim, *reversed(hidden), c_out * h * w]), nn.Unflatten(1, (c_out, h, w)))
        return encoder, decoder
    if arch == "conv":
        if h % 4 or w % 4:
            raise ValueError(f"arch='conv' needs height and width divisible by 4, got {h}x{w}; use arch='mlp'")
        c1, c2 = (int(k) for k in conv_channels)
        flat = c2 * (h // 4) * (w // 4)  # two stride-2 convolutions: H/4 x W/4 x c2 channels
        encoder = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU(),  # [B, c1, H/2, W/2]
            nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),  # [B, c2, H/4, W/4]
            nn.Flatten(), mlp([flat, *hidden, enc_out]),
        )
        decoder = nn.Sequential(
            mlp([latent_dim, *reversed(hidden), flat]), nn.ReLU(),
            nn.Unflatten(1, (c2, h // 4, w // 4)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),  # [B, c1, H/2, W/2]
            nn.ConvTranspose2d(c1, c_out, 4, 2, 1),  # [B, C_out, H, W]
        )
        return encoder, decoder
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


class LatentModel(nn.Module):
    """What every model of the book shares (the VAE, the plain autoencoder and, in Part II, the
    conditional VAE and the VQ-VAE): shapes, networks, the likelihood and the input checks."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int, hidden: Sequence[int], arch: str,
                 likelihood: str, obs_std: Optional[float], enc_out: int, n_mixtures: int = 5,
                 conv_channels: Sequence[int] = (32, 64)):
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if likelihood == "logistic" and (isinstance(n_mixtures, bool) or not isinstance(n_mixtures, int)
                                         or n_mixtures < 1):
            raise ValueError(f"n_mixtures must be a positive int (logistic components per pixel), got {n_mixtures!r}")
        conv_channels = tuple(conv_channels)
        if len(conv_channels) != 2 or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                                              for k in conv_channels):
            raise ValueError(f"conv_channels must be two positive ints (c1, c2), got {conv_channels!r}")
        self.conv_channels = conv_channels
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        # P: decoder parameters per pixel (the logistic mixture's π, μ, log s for each of K components)
        self.n_mixtures = int(n_mixtures) if likelihood == "logistic" else None
        self.params_per_pixel = {"logistic": 3 * n_mixtures, "categorical": lk.N_LEVELS}.get(likelihood, 1)
        out_channels = self.input_shape[0] * self.params_per_pixel if self.params_per_pixel > 1 else None
        self.encoder, self.decoder = _build_networks(self.input_shape, latent_dim, hidden, arch, enc_out, out_channels,
                                                     conv_channels)
        if likelihood in ("gaussian", "discretized_gaussian"):
            # log σ of the pixel noise: learned when obs_std is None, else a fixed buffer.
            log_std = torch.tensor(math.log(obs_std if obs_std is not None else 0.1))
            if obs_std is None:
                self.obs_log_std = nn.Parameter(log_std)
            else:
                self.register_buffer("obs_log_std", log_std)

    def _extra_config(self) -> Dict[str, Any]:
        """The settings added after Part I, only when they matter, so older configs read the same."""
        extra: Dict[str, Any] = {}
        if self.likelihood == "logistic":
            extra["n_mixtures"] = self.n_mixtures
        if self.conv_channels != (32, 64):
            extra["conv_channels"] = list(self.conv_channels)
        return extra

    def check_input(self, x: torch.Tensor, where: str = "input", values: bool = False) -> torch.Tensor:
        """Return ``x`` unchanged if it is a floating-point ``[B, C, H, W]`` batch, else raise saying what is expected.

        Always checked (no host sync, so it is cheap enough for every training step): that ``x``
        is a tensor (``TypeError``), its shape and its dtype (``ValueError``; uint8 images need
        ``x.float() / 255``). With ``values=True`` (one pass over the data, syncs with the device)
        also: no NaN or infinite pixel, and for a Bernoulli model every pixel in ``[0, 1]``.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{where}: expected a torch.Tensor of shape [B, {', '.join(map(str, self.input_shape))}], "
                            f"got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(f"{where}: expected shape [B, {c}, {h}, {w}] (batch, channels, height, width), "
                             f"got {list(x.shape)}")
        if not x.is_floating_point():
            fix = "x.float() / 255 (raw 0-255 pixels)" if x.dtype == torch.uint8 else "x.float()"
            raise ValueError(f"{where}: expected floating-point pixels in [0, 1], got dtype {x.dtype}; "
                             f"convert with {fix}")
        if values:
            self._check_values(x, where)
        return x

    def _check_values(self, x: torch.Tensor, where: str) -> None:
        """Reject NaN/Inf pixels, and pixels outside ``[0, 1]`` for a Bernoulli model (one device sync)."""
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"{where}: x has {bad} NaN or infinite pixel value(s); remove those images or "
                             f"fill the pixels (torch.nan_to_num) first")
        if self.likelihood == "bernoulli" and x.numel():
            lo, hi = float(x.min()), float(x.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{where}: a Bernoulli model expects pixel values in [0, 1], got values in "
                                 f"[{lo:.4g}, {hi:.4g}]. Floats in [0, 255]? divide by 255; in [-1, 1]? "
                                 f"use (x + 1) / 2")
        if self.likelihood in GREY_LIKELIHOODS and x.numel():
            try:
                lk.to_levels(x, check=True)  # in [0, 1] and on the 1/255 grid
            except ValueError as e:
                raise ValueError(f"{where}: likelihood={self.likelihood!r} is a probability of 8-bit grey levels, "
                                 f"so pixels must be level / 255 for levels 0..255: "
                                 f"{str(e).removeprefix('to_levels: ')}") from None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W] -> [B, D]``: one code per input (a VAE's posterior mean, an autoencoder's ``z``)."""
        return self.posterior_stats(x)[0]

    def posterior_stats(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``x: [B, C, H, W] -> (mu [B, D], logvar [B, D] or None)``; ``None`` when the model has no variance."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z: [..., D] -> out``, the parameters of ``p(x|z)``.

        ``out`` is ``[..., C, H, W]`` for one parameter per pixel (Bernoulli logits; the means
        of ``"gaussian"`` and ``"discretized_gaussian"``), else ``[..., C, P, H, W]``:
        ``P = 3K`` for ``"logistic"`` (K mixture logits, K means, K log-scales, in that
        order) and ``P = 256`` logits for ``"categorical"``.
        """
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"decode: expected z of shape [B, {self.latent_dim}], got {list(z.shape)}")
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent_dim))
        if self.params_per_pixel > 1:
            c, h, w = self.input_shape
            return out.reshape(*lead, c, self.params_per_pixel, h, w)  # [..., C, P, H, W]
        return out.reshape(*lead, *self.input_shape)

    def _pixel_params(self, out: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``out [..., C, P, H, W]`` → the parameter tensors of :mod:`vae_lib.likelihoods`, each ``[..., C, H, W, ·]``."""
        p = out.movedim(-3, -1)  # [..., C, H, W, P], a view (reductions over P vectorize along the pixels)
        if self.likelihood == "categorical":
            return (p,)  # logits [..., 256]
        w, mu, log_s = p.chunk(3, dim=-1)  # [..., K] each
        return w, mu, log_s.clamp(min=-7.0)  # log s ≥ −7, as in PixelCNN++

    def pixel_log_prob(self, out: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """``log P(level | z)`` per pixel for a grey-level likelihood: ``levels`` broadcast to ``[..., C, H, W]`` nats."""
        if self.likelihood == "discretized_gaussian":
            return lk.discretized_gaussian_log_prob(out, self.obs_log_std, levels)
        if self.likelihood == "categorical":
            return lk.categorical_log_prob(*self._pixel_params(out), levels)
        if self.likelihood == "logistic":
            return lk.discretized_logistic_log_prob(*self._pixel_params(out), levels)
        raise ValueError(f"pixel_log_prob: likelihood={self.likelihood!r} is not a pmf over grey levels; "
                         f"use one of {GREY_LIKELIHOODS}")

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` in nats per image, ``out`` being ``decode(z)``: ``[...]``.

        For a grey-level likelihood ``x`` holds pixels ``level / 255`` (checked once per dataset
        by ``check_input(values=True)``, not here) and this is ``Σ_pixels log P(level | z)``.
        """
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        if self.likelihood == "gaussian":
            return gaussian_log_likelihood(out, x, self.obs_log_std)
        log_p = self.pixel_log_prob(out, lk.to_levels(x, check=False))  # [..., C, H, W]
        return log_p.flatten(start_dim=-3).sum(dim=-1)  # Σ_p log P(l_p | z)

    def mean_image(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's expected image ``E[x|z]``, clipped to ``[0, 1]`` for display: ``[..., C, H, W]``.

        Exact for the grey-level pmfs (``Σ_l P(l|z) · l/255`` by enumerating the 256 levels).
        """
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)  # Bernoulli mean = σ(logit)
        if self.likelihood == "gaussian":
            return out.clamp(0.0, 1.0)
        if self.likelihood == "categorical":
            probs = torch.softmax(self._pixel_params(out)[0], dim=-1)  # [..., C, H, W, 256]
            return probs @ torch.linspace(0.0, 1.0, lk.N_LEVELS, device=out.device, dtype=out.dtype)  # Σ_l p_l · l/255
        shape = out.shape if self.likelihood == "discretized_gaussian" else out.movedim(-3, -1).shape[:-1]
        return lk.level_mean(lambda lv: self.pixel_log_prob(out, lv), shape, device=out.device).clamp(0.0, 1.0)

    @torch.no_grad()
    def observe(self, out: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw an image ``x ~ p(x|z)`` from decoder parameters ``out = decode(z)``: ``[..., C, H, W]`` in ``[0, 1]``.

        Bernoulli: pixels ``1[u < σ(logit)]``; ``"gaussian"``: ``μ + σ ε``, clipped to ``[0, 1]``
        for display (the density puts mass outside it); grey-level pmfs: a level per pixel
        (exact draws, see :mod:`vae_lib.likelihoods`), returned as ``level / 255``.
        """
        if self.likelihood == "bernoulli":
            u = torch.rand(out.shape, dtype=out.dtype, device=out.device, generator=generator)
            return (u < torch.sigmoid(out)).to(out.dtype)  # x_p ~ Bernoulli(σ(l_p))
        if self.likelihood == "gaussian":
            eps = torch.randn(out.shape, dtype=out.dtype, device=out.device, generator=generator)
            return (out + self.obs_log_std.exp() * eps).clamp(0.0, 1.0)  # x = μ + σ ε, clipped
        if self.likelihood == "discretized_gaussian":
            levels = lk.sample_discretized_gaussian(out, self.obs_log_std, generator)
        elif self.likelihood == "categorical":
            levels = lk.sample_categorical(*self._pixel_params(out), generator=generator)
        else:
            levels = lk.sample_discretized_logistic(*self._pixel_params(out), generator=generator)
        return levels.to(out.dtype) / (lk.N_LEVELS - 1)  # level / 255 exactly as the data stores it, [..., C, H, W]

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``z`` straight to displayable images in ``[0, 1]``: ``[..., C, H, W]``."""
        return self.mean_image(self.decode(z))


class VAE(LatentModel):
    """A variational autoencoder with a diagonal Gaussian posterior ``q(z|x) = N(μ(x), diag σ²(x))``.

    Args:
        input_shape: ``(C, H, W)`` of one image, e.g. ``(1, 28, 28)``.
        latent_dim: ``D``, the number of latent dimensions.
        hidden: hidden layer widths of the encoder (mirrored by the decoder).
        arch: ``"mlp"`` (fully connected) or ``"conv"`` (two stride-2 convolutions first).
        likelihood: ``"bernoulli"`` (decoder outputs logits), ``"gaussian"`` (a density), or a
            probability of 8-bit grey levels: ``"logistic"`` (a mixture of ``n_mixtures``
            discretized logistics per pixel), ``"categorical"`` (256-way softmax per pixel) or
            ``"discretized_gaussian"`` (``N(μ, σ²)`` integrated over each level's bin).
        prior: ``"standard"`` ``N(0, I)``, ``"mog"`` learnable mixture, or ``"vamp"`` VampPrior.
        n_components: mixture components (``"mog"``) or pseudo-inputs (``"vamp"``).
        obs_std: pixel noise σ for ``"gaussian"`` and ``"discretized_gaussian"``; ``None`` learns
            one shared σ (the σ-VAE of Rybkin et al., 2021).
        n_mixtures: ``K``, logistic components per pixel for ``"logistic"`` (stored in ``config``
            only for that likelihood).
        conv_channels: ``(c1, c2)``, channels of the two convolutions of ``arch="conv"`` (stored in
            ``config`` only when not the default ``(32, 64)``; small values keep a CPU fast).
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden: Sequence[int] = (400,), arch: str = "mlp", likelihood: str = "bernoulli",
                 prior: str = "standard", n_components: int = 10, obs_std: Optional[float] = 0.1,
                 n_mixtures: int = 5, conv_channels: Sequence[int] = (32, 64)):
        if prior not in PRIORS:
            raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")
        super().__init__(input_shape, latent_dim, hidden, arch, likelihood, obs_std, enc_out=2 * latent_dim,
                         n_mixtures=n_mixtures, conv_channels=conv_channels)
        self.prior_name = prior
        self.prior = make_prior(prior, latent_dim, self.input_shape, n_components)
        self.config: Dict[str, Any] = dict(input_shape=list(self.input_shape), latent_dim=self.latent_dim,
                                           hidden=list(hidden), arch=arch, likelihood=likelihood, prior=prior,
                                           n_components=n_components, obs_std=obs_std)
        self.config.update(self._extra_config())

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x: [B, C, H, W] -> (mu, logvar)``, each ``[B, D]``: the parameters of ``q(z|x)``."""
        h = self.encoder(self.check_input(x, "encode"))  # [B, 2D]
        mu, logvar = h.chunk(2, dim=-1)  # μ(x), log σ²(x): [B, D] each
        return mu, logvar

    def posterior_stats(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z|x)``, each ``[B, D]`` (the same as :meth:`encode`)."""
        return self.encode(x)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)``: ``[...]`` nats for ``z: [..., D]``."""
        return self.prior.log_prob(z, self.encode)

    def kl_to_prior(self, mu: torch.Tensor, logvar: torch.Tensor,
                    z: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``KL(q(z|x) || p(z))`` for ``q = N(mu, diag exp(logvar))``, ``mu, logvar: [B, D]``: the one place
        that chooses closed form or Monte Carlo.

        Returns ``(kl [B], kl_per_dim [B, D])`` in nats when the prior has a closed form (the
        standard normal), else ``(kl [B], None)`` with the one-sample estimate
        ``log q(z|x) − log p(z)`` at ``z: [B, D]`` (drawn from ``q`` here when not given).
        """
        kl_per_dim = self.prior.kl_per_dim(mu, logvar)  # [B, D], or None without a closed form
        if kl_per_dim is not None:
            return kl_per_dim.sum(dim=-1), kl_per_dim  # Σ_d KL_d, [B]
        if z is None:
            z = reparameterize(mu, logvar)  # z ~ q(z|x), [B, D]
        return gaussian_log_prob(z, mu, logvar) - self.prior_log_prob(z), None  # log q(z|x) − log p(z), [B]

    @torch.no_grad()
    def sample(self, n_samples: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``n_samples`` codes ``z ~ p(z)`` and decode: ``[n_samples, C, H, W]`` mean images in ``[0, 1]``."""
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"sample: n_samples must be a positive int, got {n_samples!r}")
        device = model_device(self)
        z = self.prior.sample(n_samples, self.encode, generator=generator, device=device)  # [S, D]
        return self.decode_mean(z)

    @torch.no_grad()
    def sample_images(self, n_samples: int, generator: Optional[torch.Generator] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw ``z ~ p(z)``, then an image ``x ~ p(x|z)``: ``(x, mean)``, each ``[n_samples, C, H, W]`` in ``[0, 1]``.

        ``x`` is a sample of the whole model (see ``observe``); ``mean`` is ``E[x|z]`` at the
        same codes, what :meth:`sample` shows. Codes and pixels come from ``generator``.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"sample_images: n_samples must be a positive int, got {n_samples!r}")
        z = self.prior.sample(n_samples, self.encode, generator=generator, device=model_device(self))  # [S, D]
        out = self.decode(z)
        return self.observe(out, generator), self.mean_image(out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean ``μ(x)``: ``[B, C, H, W]`` images in ``[0, 1]``."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu)

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: Optional[torch.Generator] = None) -> ELBOTerms:
        """The terms of the negative ELBO for a batch ``x: [B, C, H, W]``.

        ``recon = −log p(x|z)`` with one ``z ~ q(z|x)``, ``kl = KL(q(z|x) || p(z))`` from
        :meth:`kl_to_prior` (closed form for the standard prior, the one-sample estimate
        ``log q(z|x) − log p(z)`` at the same ``z`` otherwise), ``loss = mean_B(recon + β·kl)``.
        All in nats per image.
        """
        mu, logvar = self.encode(self.check_input(x, "elbo"))
        z = reparameterize(mu, logvar, generator)  # z = μ + σ ⊙ ε, [B, D]
        recon = -self.log_likelihood(self.decode(z), x)  # −log p(x|z), [B]
        kl, kl_per_dim = self.kl_to_prior(mu, logvar, z)  # [B], [B, D] or None
        return ELBOTerms(recon=recon, kl=kl, loss=(recon + beta * kl).mean(), kl_per_dim=kl_per_dim, z=z)


class Autoencoder(LatentModel):
    """A deterministic autoencoder: each input maps to ONE latent point ``z = f(x)``.

    The starting point of chapter 1. It trains with the same :func:`vae_lib.train` loop
    (its ``elbo`` returns the reconstruction term and a zero KL), so the two can be
    compared like for like. Arguments as for :class:`VAE`, minus the prior.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 2,
                 hidden: Sequence[int] = (400,), arch: str = "mlp", likelihood: str = "bernoulli",
                 obs_std: Optional[float] = 0.1, n_mixtures: int = 5, conv_channels: Sequence[int] = (32, 64)):
        super().__init__(input_shape, latent_dim, hidden, arch, likelihood, obs_std, enc_out=latent_dim,
                         n_mixtures=n_mixtures, conv_channels=conv_channels)
        self.config: Dict[str, Any] = dict(input_shape=list(self.input_shape), latent_dim=self.latent_dim,
                                           hidden=list(hidden), arch=arch, likelihood=likelihood, obs_std=obs_std)
        self.config.update(self._extra_config())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W] -> z: [B, D]``, a single point per input."""
        return self.encoder(self.check_input(x, "encode"))

    def posterior_stats(self, x: torch.Tensor) -> Tuple[torch.Tensor, None]:
        """``(z [B, D], None)``: the code and no variance (an autoencoder has no ``q(z|x)``)."""
        return self.encode(x), None

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` reconstructions in ``[0, 1]``."""
        return self.decode_mean(self.encode(x))

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: Optional[torch.Generator] = None) -> ELBOTerms:
        """Reconstruction loss only (``kl`` is zero): lets :func:`vae_lib.train` fit an autoencoder too."""
        z = self.encode(self.check_input(x, "elbo"))
        recon = -self.log_likelihood(self.decode(z), x)  # [B]
        return ELBOTerms(recon=recon, kl=torch.zeros_like(recon), loss=recon.mean(), z=z)
