"""A small digit classifier, used as a realism score for generated images.

A distance to the nearest training image rewards blur: a grey average of two digits lies
close to both. A classifier trained on real digits does not: it is confident only when an
image looks like one particular digit. Chapter 1 scores decoded images by the classifier's
confidence (the largest class probability) and its predictive entropy::

    clf = vl.classifier.train_digit_classifier(x_train, y_train, seed=0)
    vl.classifier.accuracy(clf, x_val, y_val)        # fraction correct
    vl.classifier.classifier_confidence(clf, images) # [N] in [1/K, 1]

The network is an MLP (pixels -> hidden -> classes); training keeps the data on the
device and draws each batch with one ``index_select``, so it takes a few seconds on a CPU.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .device import default_device, eval_mode

__all__ = ["DigitClassifier", "train_digit_classifier", "class_probabilities", "classifier_confidence",
           "predictive_entropy", "accuracy"]


class DigitClassifier(nn.Module):
    """An MLP classifier ``[B, C, H, W] -> [B, K]`` logits.

    Args:
        input_shape: ``(C, H, W)`` of one image, e.g. ``(1, 28, 28)``.
        n_classes: ``K``, the number of classes.
        hidden: hidden layer widths (ReLU between layers, dropout ``dropout`` after each).
        dropout: dropout probability after each hidden layer (training only).
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), n_classes: int = 10,
                 hidden: Sequence[int] = (256,), dropout: float = 0.2):
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_classes = int(n_classes)
        sizes = [math.prod(self.input_shape), *hidden]
        layers: list = [nn.Flatten()]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(sizes[-1], self.n_classes))
        self.net = nn.Sequential(*layers)

    def check_input(self, x: torch.Tensor, where: str = "input") -> torch.Tensor:
        """Raise a clear error unless ``x`` is a float ``[B, C, H, W]`` tensor of pixels in ``[0, 1]``."""
        c, h, w = self.input_shape
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{where}: expected a torch.Tensor of shape [B, {c}, {h}, {w}], got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{where}: expected images of shape [B, {c}, {h}, {w}], got {list(x.shape)}")
        if not torch.is_floating_point(x):
            raise ValueError(f"{where}: expected float pixels in [0, 1], got {x.dtype}; divide uint8 images by 255")
        if x.numel() and (not bool(torch.isfinite(x).all()) or float(x.min()) < 0 or float(x.max()) > 1):
            raise ValueError(f"{where}: pixel values must be finite and lie in [0, 1] (e.g. decoded mean images), "
                             f"got [{float(x.min()):g}, {float(x.max()):g}]")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, H, W]`` pixels in ``[0, 1]`` -> ``[B, K]`` class logits."""
        return self.net(x)


def train_digit_classifier(x: torch.Tensor, y: torch.Tensor, epochs: int = 15, batch_size: int = 128,
                           lr: float = 1e-3, hidden: Sequence[int] = (256,), seed: int = 0,
                           device: torch.device | str | None = None) -> DigitClassifier:
    """Fit a :class:`DigitClassifier` to images ``x: [N, C, H, W]`` and labels ``y: [N]`` (cross-entropy, Adam).

    Seeded: the same ``seed`` gives the same weights on the same device (the caller's global
    random state is left untouched). Returns the classifier in eval mode, on ``device``
    (default :func:`vae_lib.default_device`).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0] or torch.is_floating_point(y):
        raise ValueError(f"y must be an integer tensor of {x.shape[0]} labels [N], got "
                         f"{type(y).__name__} {list(getattr(y, 'shape', []))}")
    device = torch.device(device) if device is not None else default_device()
    n_classes = int(y.max()) + 1
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # initial weights and dropout masks
        clf = DigitClassifier(tuple(x.shape[1:]), max(n_classes, 2), hidden).to(device)
        clf.check_input(x, "train_digit_classifier")
        x_all, y_all = x.to(device, torch.float32), y.to(device)  # moved once; stays on the device
        g = torch.Generator(device="cpu").manual_seed(seed)
        opt = torch.optim.Adam(clf.parameters(), lr=lr)
        clf.train()
        n = x_all.shape[0]
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g).to(device)
            for i in range(0, n, batch_size):
                idx = perm[i:i + batch_size]
                loss = F.cross_entropy(clf(x_all.index_select(0, idx)), y_all.index_select(0, idx))  # −log p(y|x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return clf.eval()


@torch.no_grad()
def class_probabilities(clf: DigitClassifier, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """``p(y | image)``: ``[N, K]`` softmax probabilities (rows sum to 1), on the CPU."""
    clf.check_input(images, "class_probabilities")
    with eval_mode(clf) as device:
        probs = [F.softmax(clf(images[i:i + batch_size].to(device, torch.float32)), dim=-1).cpu()  # [b, K]
                 for i in range(0, images.shape[0], batch_size)]
    return torch.cat(probs) if probs else torch.zeros(0, clf.n_classes)


def classifier_confidence(clf: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's confidence ``max_k p(y = k | image)``: ``[N]`` in ``[1/K, 1]``.

    Near 1 for an image that looks like one particular digit; low for a blend of two
    digits, a blot or noise.
    """
    return class_probabilities(clf, images).max(dim=-1).values  # [N]


def predictive_entropy(clf: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """``H[p(y | image)] = −Σ_k p_k log p_k``: ``[N]`` nats, in ``[0, log K]``."""
    p = class_probabilities(clf, images)  # [N, K]
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=-1)  # −Σ_k p_k log p_k, [N]


def accuracy(clf: DigitClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x: [N, C, H, W]`` whose most probable class equals ``y: [N]``."""
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"accuracy: {x.shape[0]} images but {y.shape[0]} labels")
    return float((class_probabilities(clf, x).argmax(dim=-1) == y.cpu()).float().mean())
