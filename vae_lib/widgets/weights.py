"""A small MLP VAE's weights as JSON for the browser explorers, and PyTorch references for them.

:func:`export_model` turns the encoder and/or decoder of a ``VAE(latent_dim=2, arch="mlp")``
into a list of layers, each tensor as base64 bytes (float16, float32 or uint8) with its
shape, dtype and two checksums (an FNV-1a 32-bit hash the page checks before it uses the
weights, and a SHA-256 for tests). :func:`decode_exported` and :func:`encode_exported` run
the exported layers in PyTorch, in float32, exactly as ``static/explorer.js`` does in the
page: they are the reference the browser test compares the page's pixels with.
:func:`check_model` refuses, with a message that says what is needed, any model the page
cannot run (a conv model, a mixture or VampPrior, a latent size other than 2, an
Autoencoder where a VAE is needed).
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import torch
from torch import nn

__all__ = ["LATENT_DIM", "DTYPES", "fnv1a32", "export_tensor", "import_tensor", "mlp_layers", "check_model",
           "export_model", "run_exported", "decode_exported", "encode_exported"]

LATENT_DIM = 2  # the explorers draw a 2-D latent plane
DTYPES = ("float16", "float32")


def fnv1a32(data: bytes) -> int:
    """FNV-1a, 32 bits, of ``data``: the checksum the page verifies before using a tensor."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF  # h = (h xor byte) * FNV prime mod 2^32
    return h


def export_tensor(name: str, t: Union[torch.Tensor, np.ndarray], dtype: str = "float16") -> Dict[str, Any]:
    """One tensor as page data: ``{name, shape, dtype, data (base64, little-endian), sha256, fnv1a32}``.

    ``dtype`` is ``"float16"``, ``"float32"`` or ``"uint8"`` (values in ``[0, 1]`` stored as
    ``round(255 x)``, for example images).
    """
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if dtype == "uint8":
        a = np.clip(np.rint(a.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    elif dtype in DTYPES:
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
            a = a.astype("<f2" if dtype == "float16" else "<f4")
    else:
        raise ValueError(f"export_tensor: dtype must be one of {DTYPES + ('uint8',)}, got {dtype!r}")
    if not np.all(np.isfinite(a.astype(np.float64))):
        raise ValueError(f"export_tensor: {name} has non-finite values after conversion to {dtype} "
                         "(too large for float16? use dtype='float32')")
    raw = np.ascontiguousarray(a).tobytes()
    return {"name": name, "shape": list(a.shape), "dtype": dtype, "data": base64.b64encode(raw).decode("ascii"),
            "sha256": hashlib.sha256(raw).hexdigest(), "fnv1a32": fnv1a32(raw)}


def import_tensor(spec: Dict[str, Any]) -> torch.Tensor:
    """The float32 tensor an :func:`export_tensor` record holds; checks size and both checksums."""
    raw = base64.b64decode(spec["data"])
    if hashlib.sha256(raw).hexdigest() != spec["sha256"] or fnv1a32(raw) != spec["fnv1a32"]:
        raise ValueError(f"import_tensor: checksum mismatch in {spec.get('name')!r}: the data is corrupt")
    np_dtype = {"float16": "<f2", "float32": "<f4", "uint8": np.uint8}[spec["dtype"]]
    a = np.frombuffer(raw, dtype=np_dtype)
    if a.size != int(np.prod(spec["shape"])):
        raise ValueError(f"import_tensor: {spec.get('name')!r} holds {a.size} values, shape {spec['shape']} needs "
                         f"{int(np.prod(spec['shape']))}")
    a = a.reshape(spec["shape"]).astype(np.float32)
    return torch.from_numpy(a / 255 if spec["dtype"] == "uint8" else a)


def mlp_layers(net: nn.Module, where: str) -> List[nn.Linear]:
    """The Linear layers of an MLP ``Linear, ReLU, ..., Linear`` (the only networks the page runs)."""
    mods = [m for m in net.modules() if not isinstance(m, (nn.Sequential, nn.Flatten, nn.Unflatten))]
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    expected = [t for lin in linears for t in (nn.Linear, nn.ReLU)][:-1]
    if not linears or [type(m) for m in mods] != expected:
        kinds = sorted({type(m).__name__ for m in mods} - {"Linear", "ReLU"})
        raise ValueError(f"{where}: the browser explorers run MLP networks only (Linear and ReLU layers); this "
                         f"model has {', '.join(kinds) or 'another layout'}: train it with arch='mlp'")
    return linears


def check_model(model: nn.Module, where: str, need_vae: bool, need_standard_prior: bool) -> None:
    """Refuse, with what is needed, a model the page cannot run."""
    from ..model import VAE, Autoencoder  # the library's two model classes
    if not isinstance(model, (VAE, Autoencoder)):
        raise TypeError(f"{where}: needs a vl.VAE (or vl.Autoencoder), got {type(model).__name__}")
    if need_vae and not isinstance(model, VAE):
        raise TypeError(f"{where}: needs a vl.VAE, whose encoder gives q(z|x) = N(mu, sigma^2); got a "
                        f"{type(model).__name__}, which has no sigma. Train vl.VAE(latent_dim=2, arch='mlp')")
    if model.latent_dim != LATENT_DIM:
        raise ValueError(f"{where}: draws a 2-D latent plane, so it needs latent_dim=2; this model has "
                         f"latent_dim={model.latent_dim}. Train vl.VAE(latent_dim=2, arch='mlp')")
    if model.config.get("arch", "mlp") != "mlp":
        raise ValueError(f"{where}: runs MLP networks only: needs arch='mlp', got arch={model.config['arch']!r}")
    prior = getattr(model, "prior", None)
    if need_standard_prior and prior is not None and type(prior).__name__ != "StandardNormalPrior":
        raise ValueError(f"{where}: draws the prior N(0, I) and the KL to it, so it needs prior='standard'; "
                         f"this model has a {type(prior).__name__}")
    c = model.input_shape[0]
    if c not in (1, 3):
        raise ValueError(f"{where}: shows images with 1 or 3 channels, got input_shape={model.input_shape}")


def export_model(model: nn.Module, dtype: str = "float16", encoder: bool = False) -> Dict[str, Any]:
    """The decoder (and, if ``encoder``, the encoder) of an MLP model as page data.

    Returns ``{latent_dim, input_shape, likelihood, decoder: [{weight [out, in], bias [out]}],
    encoder?}``, each tensor an :func:`export_tensor` record.
    """
    if dtype not in DTYPES:
        raise ValueError(f"export_model: dtype must be one of {DTYPES}, got {dtype!r}")

    def layers(net: nn.Module, name: str) -> List[Dict[str, Any]]:
        return [{"weight": export_tensor(f"{name}.{i}.weight", lin.weight, dtype),  # [out, in]
                 "bias": export_tensor(f"{name}.{i}.bias", lin.bias, dtype)}  # [out]
                for i, lin in enumerate(mlp_layers(net, f"export_model({name})"))]

    out = {"latent_dim": int(model.latent_dim), "input_shape": list(model.input_shape),
           "likelihood": model.likelihood, "decoder": layers(model.decoder, "decoder")}
    if encoder:
        out["encoder"] = layers(model.encoder, "encoder")
    return out


def run_exported(layers: List[Dict[str, Any]], h: torch.Tensor) -> torch.Tensor:
    """PyTorch forward of exported layers, float32: ``h = relu(W h + b)``, no ReLU after the last."""
    for i, layer in enumerate(layers):
        h = h @ import_tensor(layer["weight"]).T + import_tensor(layer["bias"])  # [N, out]
        if i < len(layers) - 1:
            h = torch.relu(h)
    return h


def decode_exported(exported: Dict[str, Any], z: torch.Tensor) -> torch.Tensor:
    """The reference for the page: ``E[x|z]`` from the exported weights, ``z: [N, D] -> [N, C, H, W]`` in [0, 1]."""
    out = run_exported(exported["decoder"], z.float())
    p = torch.sigmoid(out) if exported["likelihood"] == "bernoulli" else out.clamp(0, 1)  # the model's mean_image
    return p.reshape(-1, *exported["input_shape"])


def encode_exported(exported: Dict[str, Any], x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x: [N, C, H, W] -> (mu [N, D], logvar [N, D])`` from the exported encoder."""
    h = run_exported(exported["encoder"], x.float().reshape(len(x), -1))  # [N, 2D]
    return h.chunk(2, dim=-1)


# --- the object a notebook displays --------------------------------------------------------
