"""Saving and loading models safely.

A checkpoint is a plain dictionary of tensors and primitives, loaded with
``torch.load(weights_only=True)`` (no arbitrary pickles run), written atomically, and
carrying a sha256 of its weights so a modified file is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "atomic_write"]

FORMAT = "vae_lib-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, tampered with, or does not match its model."""


def atomic_write(path: Union[str, os.PathLike], write) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it into place.

    A crash or error mid-write leaves any previous file at ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _digest(config: Dict[str, Any], state: Dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: Union[str, os.PathLike], extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``model`` (a :class:`vae_lib.VAE` or :class:`vae_lib.Autoencoder`) to ``path`` atomically.

    ``extra`` may hold JSON-like metadata (numbers, strings, lists, dicts) such as a history.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"save_checkpoint needs a vae_lib model with a .config, got {type(model).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "class": type(model).__name__, "config": config,
               "state_dict": state, "sha256": _digest(config, state), "extra": extra or {}}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Load a model written by :func:`save_checkpoint` (with ``weights_only=True``).

    Raises:
        CheckpointError: missing, unreadable, tampered with, or not matching its model.
    """
    from .model import Autoencoder, VAE

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one first (python -m vae_lib train --out ...)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, or a pickle weights_only refuses
        raise CheckpointError(f"{path} is not a readable vae_lib checkpoint ({type(e).__name__}: {e}). "
                              f"It may be truncated or not a checkpoint; re-create it with save_checkpoint.") from e
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
    return model.to(map_location).eval()
