"""Picking the device: one helper, so nothing else in the library hard-codes ``.cuda()``."""
from __future__ import annotations

import torch

__all__ = ["default_device", "model_device"]


def default_device() -> torch.device:
    """The fastest device available: ``cuda``, then ``mps`` (Apple silicon), then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on (where its inputs must go)."""
    return next(model.parameters()).device
