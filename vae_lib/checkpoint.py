"""Saving and loading models safely.

A checkpoint is a plain dictionary of tensors and primitives, loaded with
``torch.load(weights_only=True)`` (no arbitrary pickles run), written atomically (see
:mod:`vae_lib.atomic`), and carrying a sha256 of its weights so a modified file is refused.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import nn

from .atomic import atomic_write, remove_stale_temps
from .device import resolve_device

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError"]

FORMAT = "vae_lib-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, tampered with, or does not match its model."""


def _digest(config: Dict[str, Any], state: Dict[str, torch.Tensor]) -> str:
    """sha256 over the config (as sorted JSON) and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        # reshape(-1): a 0-dim tensor (the Gaussian likelihood's obs_log_std) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _plain(value: Any, where: str) -> Any:
    """``value`` as what ``torch.load(weights_only=True)`` reads back: Python numbers, strings,
    lists and dicts, and CPU tensors. NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):  # np.float32(1.5), np.int64(3), np.bool_(True); np.float64 is a float subclass
        return value.item()
    if value is None or type(value) in (bool, str, int, float):
        return value
    for base in (int, float, str):  # subclasses (an IntEnum, a str subclass) would pickle as their own class
        if isinstance(value, base):
            return base(value)
    if isinstance(value, numbers.Number) and not isinstance(value, complex):  # e.g. fractions, decimals
        return float(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save_checkpoint: {where} has the key {k!r} of type {type(k).__name__}; "
                                f"use str or int keys")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"save_checkpoint: {where} is a {type(value).__module__}.{type(value).__name__}, which a "
                    f"checkpoint cannot store safely; pass numbers, strings, lists, dicts or tensors "
                    f"(convert it, e.g. float(x), str(x) or x.tolist())")


def save_checkpoint(model: nn.Module, path: Union[str, os.PathLike], extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``model`` (a :class:`vae_lib.VAE` or :class:`vae_lib.Autoencoder`) to ``path`` atomically.

    ``extra`` may hold JSON-like metadata (numbers, strings, lists, dicts, tensors) such as a
    history. NumPy scalars and arrays are stored as Python numbers and lists.

    Raises:
        TypeError: ``model`` is not a vae_lib model, or ``extra`` holds an object that a
            safe load could not read back (raised before anything is written).
    """
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"save_checkpoint needs a vae_lib model with a .config, got {type(model).__name__}")
    extra = _plain(extra or {}, "extra")
    if not isinstance(extra, dict):
        raise TypeError(f"save_checkpoint: extra must be a dict, got {type(extra).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "class": type(model).__name__, "config": config,
               "state_dict": state, "sha256": _digest(config, state), "extra": extra}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _read(path: Path, map_location: torch.device) -> Any:
    """``torch.load(path, weights_only=True)``, its failures told apart and explained."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable vae_lib checkpoint: it is not a torch zip file "
                                  f"(a plain pickle, or another kind of file)") from e
        raise CheckpointError(f"{path} is not a readable vae_lib checkpoint: it holds Python objects that safe "
                              f"loading (weights_only=True) refuses to run ({str(e).splitlines()[-1][:200]}). "
                              f"vae_lib's save_checkpoint never writes such objects; do not load it unless you "
                              f"trust where it came from.") from e
    except Exception as e:  # a cut-off or damaged zip: central directory missing, CRC errors, EOF
        raise CheckpointError(f"{path} is not a readable vae_lib checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else 'unexpected end of file'}). The file "
                              f"is truncated or corrupt (an interrupted copy or download?); copy it again or "
                              f"re-create it with save_checkpoint.") from e


def load_checkpoint(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Load a model written by :func:`save_checkpoint` (with ``weights_only=True``) onto ``map_location``.

    Raises:
        ValueError: ``map_location`` is not a device this machine has (e.g. ``"cuda"`` on a
            CPU-only machine).
        CheckpointError: missing, truncated or corrupt, tampered with, or not matching its model.
    """
    from .model import Autoencoder, VAE

    device = resolve_device(map_location)  # before reading: a valid file must not be called corrupt
    path = Path(path)
    remove_stale_temps(path)  # litter of a save that was killed mid-write
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one first (python -m vae_lib train --out ...)")
    payload = _read(path, device)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a vae_lib checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, this vae_lib reads {VERSION}")
    classes = {"VAE": VAE, "Autoencoder": Autoencoder}
    cls = classes.get(payload.get("class"))
    if cls is None:
        raise CheckpointError(f"{path}: unknown model class {payload.get('class')!r}; expected one of {list(classes)}")
    config, state = payload["config"], payload["state_dict"]
    if _digest(config, state) != payload.get("sha256"):
        raise CheckpointError(f"{path}: the weights do not match the checksum stored with them; "
                              f"the file was modified after saving. Do not use it.")
    model = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit a {cls.__name__}({config}): {e}") from e
    return model.to(device).eval()
