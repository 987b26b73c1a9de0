"""Picking the device: one helper, so nothing else in the library hard-codes ``.cuda()``."""
from __future__ import annotations

import contextlib
from typing import Iterator, Union

import torch

__all__ = ["default_device", "model_device", "resolve_device", "eval_mode"]


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


def resolve_device(device: Union[str, torch.device, None] = None) -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine (``None``: the best one).

    Raises:
        ValueError: not a device name, or a device this machine does not have (say
            ``cuda`` on a CPU-only machine), with the devices that are available.
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from e
    have = "cpu" + (", cuda" if torch.cuda.is_available() else "") + (
        ", mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r}: CUDA is not available on this machine (no GPU, or a CPU-only "
                             f"PyTorch build); use 'cpu' instead (available here: {have})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"numbered from 0")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device 'mps': Apple's Metal backend is not available on this machine "
                             f"(available here: {have})")
    elif dev.type != "cpu":
        raise ValueError(f"device {str(dev)!r} is not supported; use one of: {have}")
    return dev


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.device]:
    """``model.eval()`` for the ``with`` block, and its train/eval mode restored afterwards,
    even when the block raises. Yields the model's device (where its inputs must go)."""
    was_training = model.training
    model.eval()
    try:
        yield model_device(model)
    finally:
        model.train(was_training)
