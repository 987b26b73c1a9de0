"""Representations that pay: linear probes trained on a model's codes with few labels (Part II, chapter 8).

A *probe* is a multinomial logistic regression fitted on a handful of labelled codes and
scored on held-out ones. Its accuracy measures how much of the label a representation makes
linearly readable, which is what a semi-supervised user of the codes gets out of them.
:func:`probe_accuracy` fits one probe; :func:`probe_curve` repeats it for several numbers of
labels, several feature sets and several seeds, and reports mean ± standard error::

    import vae_lib as vl
    z_tr, z_te = vl.embed(model, x_train), vl.embed(model, x_val)      # [N, D] posterior means
    acc = vl.probes.probe_accuracy(z_tr, y_train, z_te, y_val, n_labels=100, seed=0)
    rows = vl.probes.probe_curve({"VAE": (z_tr, z_te), "pixels": (x_train, x_val)},
                                 y_train, y_val, n_labels=(10, 100, 1000), seeds=(0, 1, 2))

Features are standardized with the mean and standard deviation of *all* the training
features (labelled or not: standardizing needs no labels, and a semi-supervised learner has
every image), then the probe is fitted on the ``n_labels`` labelled ones only.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .data import largest_remainder
from .metrics import mean_se

__all__ = ["probe_accuracy", "probe_curve", "stratified_subset", "ProbeRow"]

Array = Union[torch.Tensor, np.ndarray]


def _features(a: Array, where: str) -> np.ndarray:
    """``a`` as a float64 ``[N, F]`` array on the host (images ``[N, C, H, W]`` are flattened)."""
    if not isinstance(a, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{where}: expected a torch.Tensor or numpy array of features [N, F], got {type(a).__name__}")
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if a.ndim < 2 or a.shape[0] == 0:
        raise ValueError(f"{where}: expected features [N, F] (or images [N, C, H, W]) with N >= 1, "
                         f"got shape {list(a.shape)}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{where}: expected real-valued features, got dtype {a.dtype}")
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: features contain NaN or Inf")
    return a


def _labels(y: Array, n: Optional[int], where: str) -> np.ndarray:
    """``y`` as an int64 ``[N]`` array, checked against the ``n`` rows of its features (``None``: any)."""
    if not isinstance(y, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{where}: expected a torch.Tensor or numpy array of integer labels [N], got {type(y).__name__}")
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: expected integer class labels of shape [N], got dtype {y.dtype}, "
                         f"shape {list(y.shape)}")
    if n is not None and len(y) != n:
        raise ValueError(f"{where}: {len(y)} labels for {n} feature rows; pass one label per row")
    return y.astype(np.int64)


def stratified_subset(y: Array, n_labels: int, seed: int = 0) -> torch.Tensor:
    """Indices ``[n_labels]`` (int64) of a class-stratified, seeded sample of the labels ``y: [N]``.

    Each of the ``K`` classes gets one example, and the other ``n_labels − K`` are shared in
    proportion to the classes' remaining sizes, rounded by largest remainder so the total is
    exactly ``n_labels`` (on balanced data, 10 labels over 10 classes is one per class, 100 is
    ten per class, and no class is ever left out); its members are then drawn
    without replacement with ``numpy.random.default_rng(seed)`` (the global random state is
    left alone). The indices come back sorted.

    Raises:
        ValueError: ``n_labels`` is smaller than the number of classes (some class would get
            no example) or larger than a class can supply.
    """
    y = _labels(y, None, "stratified_subset")
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)):
        raise TypeError(f"stratified_subset: n_labels must be an int, got {n_labels!r}")
    classes, counts = np.unique(y, return_counts=True)
    if n_labels < len(classes):
        raise ValueError(f"stratified_subset: n_labels={n_labels} is fewer than the {len(classes)} classes; "
                         f"pass at least one label per class (n_labels >= {len(classes)})")
    if n_labels > len(y):
        raise ValueError(f"stratified_subset: n_labels={n_labels} but only {len(y)} labelled examples exist")
    extra = int(n_labels) - len(classes)
    shares = 1 + (largest_remainder(counts - 1, extra) if extra else 0 * counts)  # [K], Σ = n_labels
    rng = np.random.default_rng(seed)
    picks = []
    for c, k, available in zip(classes, shares, counts):  # one draw per class (K of them), not per example
        if k > available:
            raise ValueError(f"stratified_subset: class {c} needs {k} examples for n_labels={n_labels} but has "
                             f"{available}; lower n_labels")
        picks.append(rng.choice(np.flatnonzero(y == c), size=int(k), replace=False))
    return torch.from_numpy(np.sort(np.concatenate(picks)))


def probe_accuracy(z_train: Array, y_train: Array, z_test: Array, y_test: Array,
                   n_labels: Optional[int] = None, seed: int = 0, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy (a fraction in ``[0, 1]``) of a logistic-regression probe fitted on few labels.

    Args:
        z_train: ``[N, F]`` training features (codes, or images ``[N, C, H, W]``, flattened).
        y_train: ``[N]`` integer labels of the training features.
        z_test, y_test: ``[M, F]`` held-out features and ``[M]`` labels; the accuracy is over these.
        n_labels: how many labelled training examples the probe may use, drawn by
            :func:`stratified_subset` with ``seed``; ``None`` uses all ``N``.
        seed: seeds the draw of the labelled examples (the fit itself is deterministic).
        C: inverse L2 strength of scikit-learn's ``LogisticRegression`` (its default, 1).
        max_iter: L-BFGS iterations.

    The features are standardized, ``(z − mean) / std`` per feature, with the statistics of
    all of ``z_train`` (no labels needed; a constant feature is only centred), then a
    multinomial logistic regression ``p(y|z) = softmax(W z + b)`` is fitted on the labelled
    subset by L-BFGS.

    Raises:
        TypeError, ValueError: features or labels of the wrong type, shape or dtype, a row
            count that differs between features and labels, different feature widths for
            train and test, or an ``n_labels`` that :func:`stratified_subset` refuses.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    a_train, a_test = _features(z_train, "probe_accuracy: z_train"), _features(z_test, "probe_accuracy: z_test")
    if a_train.shape[1] != a_test.shape[1]:
        raise ValueError(f"probe_accuracy: z_train has {a_train.shape[1]} features per row but z_test has "
                         f"{a_test.shape[1]}; pass the same representation for both")
    l_train = _labels(y_train, a_train.shape[0], "probe_accuracy: y_train")
    l_test = _labels(y_test, a_test.shape[0], "probe_accuracy: y_test")
    mean, std = a_train.mean(axis=0), a_train.std(axis=0)
    std[std == 0] = 1.0                                                        # a constant feature: centred only
    s_train, s_test = (a_train - mean) / std, (a_test - mean) / std           # (z − mean) / std, [N, F]
    idx = np.arange(len(l_train)) if n_labels is None else stratified_subset(l_train, n_labels, seed).numpy()
    clf = LogisticRegression(C=C, max_iter=max_iter)                           # softmax(W z + b), L2 on W
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)                     # never a silent half-fit
        try:
            clf.fit(s_train[idx], l_train[idx])
        except ConvergenceWarning as err:
            raise RuntimeError(f"probe_accuracy: L-BFGS did not converge in max_iter={max_iter} iterations; "
                               f"raise max_iter or lower C") from err
    return float((clf.predict(s_test) == l_test).mean())


@dataclass(frozen=True)
class ProbeRow:
    """One point of a probe curve: a representation and a number of labels, over seeds.

    ``accuracies`` holds one test accuracy per seed; ``mean`` is their mean and ``se`` the
    standard error ``s / √n`` (sample standard deviation over ``n`` seeds; 0 for one seed).
    """
    name: str
    n_labels: int
    mean: float
    se: float
    accuracies: Tuple[float, ...]


FeaturePair = Tuple[Array, Array]


def _pairs(name: str, value, n_seeds: int) -> List[FeaturePair]:
    """``value`` as one (train, test) pair per seed: a single pair is reused for every seed."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (torch.Tensor, np.ndarray))
                                                                    for v in value):
        return [tuple(value)] * n_seeds
    if isinstance(value, (tuple, list)) and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in value):
        if len(value) != n_seeds:
            raise ValueError(f"probe_curve: features[{name!r}] holds {len(value)} (train, test) pairs but there are "
                             f"{n_seeds} seeds; pass one pair per seed, or a single pair for all")
        return [tuple(v) for v in value]
    raise TypeError(f"probe_curve: features[{name!r}] must be a (train, test) pair of [N, F] features, or a list "
                    f"of such pairs (one per seed)")


def probe_curve(features: Mapping[str, Union[FeaturePair, Sequence[FeaturePair]]], y_train: Array, y_test: Array,
                n_labels: Sequence[int] = (10, 100, 1000), seeds: Sequence[int] = (0, 1, 2),
                **probe_kw) -> List[ProbeRow]:
    """:func:`probe_accuracy` for every representation, number of labels and seed.

    Args:
        features: ``{name: (z_train [N, F], z_test [M, F])}``. A value may instead be a list of
            pairs, one per seed (for example the codes of a model trained with that seed), so
            that the spread over seeds covers the model's training as well as the label draw.
        y_train, y_test: ``[N]`` and ``[M]`` integer labels, shared by all representations.
        n_labels: the label budgets, each at least the number of classes.
        seeds: seed ``i`` draws the labelled subset (and picks pair ``i`` of a per-seed list).
        **probe_kw: passed to :func:`probe_accuracy` (``C``, ``max_iter``).

    Returns one :class:`ProbeRow` per (name, number of labels), names in the order given.
    """
    if not isinstance(features, Mapping) or not features:
        raise ValueError("probe_curve: features must be a non-empty dict {name: (z_train, z_test)}")
    seeds, budgets = list(seeds), list(n_labels)
    if not seeds or not budgets:
        raise ValueError(f"probe_curve: need at least one seed and one label budget, got seeds={seeds}, "
                         f"n_labels={budgets}")
    rows = []
    for name, value in features.items():
        pairs = _pairs(name, value, len(seeds))
        for n in budgets:
            accs = tuple(probe_accuracy(tr, y_train, te, y_test, n_labels=n, seed=s, **probe_kw)
                         for (tr, te), s in zip(pairs, seeds))
            rows.append(ProbeRow(name, int(n), *mean_se(accs), accs))  # mean, s / √n
    return rows
