"""vae_lib.probes: the probe matches scikit-learn fitted by hand, labels are drawn stratified and
seeded, separable data is classified exactly, and bad input raises a clear error."""
import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib import probes


def _blobs(n_per_class=40, n_classes=4, dim=5, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(n_classes, dim, generator=g)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    z = centres[y] + spread * torch.randn(len(y), dim, generator=g)
    perm = torch.randperm(len(y), generator=g)
    return z[perm], y[perm]


def test_matches_sklearn_fitted_by_hand():
    from sklearn.linear_model import LogisticRegression

    z, y = _blobs(spread=2.5)  # overlapping classes: accuracy well below 1
    z_tr, y_tr, z_te, y_te = z[:100], y[:100], z[100:], y[100:]
    idx = probes.stratified_subset(y_tr, 20, seed=3).numpy()
    a_tr, a_te = z_tr.double().numpy(), z_te.double().numpy()
    mean, std = a_tr.mean(0), a_tr.std(0)
    clf = LogisticRegression(max_iter=2000).fit(((a_tr - mean) / std)[idx], y_tr.numpy()[idx])
    expected = (clf.predict((a_te - mean) / std) == y_te.numpy()).mean()
    got = probes.probe_accuracy(z_tr, y_tr, z_te, y_te, n_labels=20, seed=3)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.3 < got < 1.0


def test_separable_classes_are_read_exactly_from_one_label_each():
    z, y = _blobs(spread=0.05)
    assert probes.probe_accuracy(z[:80], y[:80], z[80:], y[80:], n_labels=4, seed=0) == 1.0


def test_all_labels_and_images_as_features():
    x = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(30) % 3
    x[:, 0, 0, 0] = y.float()  # one pixel gives the class away; a constant pixel is only centred
    x[:, 0, 3, 3] = 0.5
    assert probes.probe_accuracy(x, y, x, y) == 1.0


def test_stratified_subset_is_balanced_seeded_and_without_repeats():
    y = torch.arange(10).repeat(50)  # 500 labels, 50 per class
    for n, per_class in [(10, 1), (100, 10), (500, 50)]:
        idx = probes.stratified_subset(y, n, seed=0)
        assert idx.dtype == torch.int64 and len(idx) == n and len(idx.unique()) == n
        assert torch.bincount(y[idx], minlength=10).tolist() == [per_class] * 10
    assert torch.equal(probes.stratified_subset(y, 30, seed=1), probes.stratified_subset(y, 30, seed=1))
    assert not torch.equal(probes.stratified_subset(y, 30, seed=1), probes.stratified_subset(y, 30, seed=2))


def test_stratified_subset_keeps_every_class_when_unbalanced():
    y = np.array([0] * 95 + [1] * 4 + [2] * 1)
    idx = probes.stratified_subset(y, 5, seed=0)
    counts = np.bincount(y[idx.numpy()], minlength=3)
    assert counts.sum() == 5 and (counts >= 1).all() and counts[0] == 3


def test_probe_curve_rows_mean_and_standard_error():
    z, y = _blobs(spread=2.0)
    z_tr, y_tr, z_te, y_te = z[:100], y[:100], z[100:], y[100:]
    rows = probes.probe_curve({"codes": (z_tr, z_te), "per seed": [(z_tr, z_te), (z_tr[:, :2], z_te[:, :2])]},
                              y_tr, y_te, n_labels=(4, 40), seeds=(0, 1))
    assert [(r.name, r.n_labels) for r in rows] == [("codes", 4), ("codes", 40), ("per seed", 4), ("per seed", 40)]
    for r in rows:
        assert r.mean == pytest.approx(np.mean(r.accuracies))
        assert r.se == pytest.approx(np.std(r.accuracies, ddof=1) / np.sqrt(2))
    first = probes.probe_accuracy(z_tr, y_tr, z_te, y_te, n_labels=40, seed=1)
    assert rows[1].accuracies[1] == first
    second = probes.probe_accuracy(z_tr[:, :2], y_tr, z_te[:, :2], y_te, n_labels=40, seed=1)
    assert rows[3].accuracies[1] == second  # pair i goes with seed i


def test_codes_of_a_model_work_as_features():
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(40) % 4
    m = vl.VAE(latent_dim=3, hidden=(8,))
    acc = probes.probe_accuracy(vl.embed(m, x), y, vl.embed(m, x), y, n_labels=8)
    assert 0.0 <= acc <= 1.0


@pytest.mark.parametrize("n_labels, match", [(3, "fewer than the 4 classes"), (500, "only 160"),
                                             (2.5, "must be an int")])
def test_bad_label_counts(n_labels, match):
    z, y = _blobs()
    with pytest.raises((ValueError, TypeError), match=match):
        probes.probe_accuracy(z, y, z, y, n_labels=n_labels)


def test_bad_shapes_and_types():
    z, y = _blobs()
    with pytest.raises(ValueError, match="160 labels for 159"):
        probes.probe_accuracy(z[:-1], y, z, y)
    with pytest.raises(ValueError, match="5 features per row but z_test has 4"):
        probes.probe_accuracy(z, y, z[:, :4], y)
    with pytest.raises(ValueError, match="integer class labels"):
        probes.probe_accuracy(z, y.float(), z, y)
    with pytest.raises(ValueError, match=r"features \[N, F\]"):
        probes.probe_accuracy(z[:, 0], y, z, y)
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        probes.probe_accuracy(z.tolist(), y, z, y)
    with pytest.raises(ValueError, match="NaN"):
        probes.probe_accuracy(torch.full_like(z, float("nan")), y, z, y)
    with pytest.raises(ValueError, match="one pair per seed"):
        probes.probe_curve({"a": [(z, z)] * 3}, y, y, n_labels=(4,), seeds=(0, 1))
    with pytest.raises(TypeError, match="a list"):
        probes.probe_curve({"a": z}, y, y)
    with pytest.raises(ValueError, match="non-empty dict"):
        probes.probe_curve({}, y, y)


def test_probe_curve_figure():
    from matplotlib.figure import Figure
    z, y = _blobs(spread=2.0)
    rows = probes.probe_curve({"a": (z, z), "b": (z[:, :2], z[:, :2])}, y, y, n_labels=(4, 40), seeds=(0, 1))
    assert isinstance(vl.plots.plot_probe_curve(rows), Figure)
    with pytest.raises(ValueError, match="no rows"):
        vl.plots.plot_probe_curve([])
