"""vae_lib.anomaly: AUROC against scikit-learn (ties too), the input makers' shapes, ranges and
seeding, the scores against their definitions, and bad input."""
import math
import zlib

import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib import anomaly as A


def _g(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_with_ties(seed):
    from sklearn.metrics import roc_auc_score

    s_in = torch.randint(0, 6, (57,), generator=_g(seed)).float()       # many ties
    s_out = torch.randint(2, 9, (43,), generator=_g(seed + 10)).float()
    expected = roc_auc_score(np.r_[np.zeros(57), np.ones(43)], np.r_[s_in.numpy(), s_out.numpy()])
    assert A.auroc(s_in, s_out) == pytest.approx(expected, abs=1e-12)
    c_in, c_out = torch.randn(200, generator=_g(seed)), torch.randn(150, generator=_g(seed + 1)) + 0.7
    expected = roc_auc_score(np.r_[np.zeros(200), np.ones(150)], np.r_[c_in.numpy(), c_out.numpy()])
    assert A.auroc(c_in, c_out) == pytest.approx(expected, abs=1e-12)


def test_auroc_extremes_and_pairs_by_hand():
    assert A.auroc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 1.0  # higher = more anomalous
    assert A.auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 0.0
    assert A.auroc(torch.ones(5), torch.ones(7)) == 0.5                        # all ties count half
    # pairs (in, out): (1,2) win, (1,1) tie, (3,2) loss, (3,1) loss -> (1 + 0.5) / 4
    assert A.auroc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])) == pytest.approx(1.5 / 4)


def test_roc_points_area_is_auroc():
    s_in, s_out = torch.randn(80, generator=_g(0)), torch.randn(60, generator=_g(1)) + 1
    fpr, tpr = A.roc_points(s_in, s_out)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert bool((fpr.diff() >= 0).all() and (tpr.diff() >= 0).all())
    assert torch.trapezoid(tpr, fpr).item() == pytest.approx(A.auroc(s_in, s_out), abs=1e-12)


def test_auroc_bad_input():
    with pytest.raises(ValueError, match="1-D tensor"):
        A.auroc(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        A.auroc(torch.zeros(0), torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        A.auroc(torch.tensor([float("nan")]), torch.zeros(3))


def test_makers_shapes_ranges_and_seeds():
    x = torch.rand(12, 1, 28, 28, generator=_g(0))
    made = {
        "small": A.upscaled_small_digits(12, seed=0), "small28": A.upscaled_small_digits(12, size=28),
        "uniform": A.uniform_noise(12), "salt": A.bernoulli_noise(12, 0.3), "blank": A.constant_images(12),
        "inverted": A.inverted(x), "occluded": A.occluded(x), "thick": A.thickened(x), "thin": A.thinned(x),
        "shifted": A.shifted(x), "perturbed": A.perturbed(x),
    }
    for name, m in made.items():
        assert m.shape == (12, 1, 28, 28) and m.dtype == torch.float32, name
        assert 0.0 <= float(m.min()) and float(m.max()) <= 1.0, name
    assert torch.equal(A.upscaled_small_digits(5, seed=3), A.upscaled_small_digits(5, seed=3))
    assert not torch.equal(A.upscaled_small_digits(5, seed=3), A.upscaled_small_digits(5, seed=4))
    small = made["small"]
    assert float(small[:, :, :4].abs().sum()) == 0 and float(small[:, :, :, 24:].abs().sum()) == 0  # centred in 20×20
    assert torch.equal(A.uniform_noise(4, seed=1), A.uniform_noise(4, seed=1))
    assert set(made["salt"].unique().tolist()) <= {0.0, 1.0}
    assert A.bernoulli_noise(400, 0.3, seed=0).mean().item() == pytest.approx(0.3, abs=0.01)
    torch.testing.assert_close(made["inverted"], 1 - x)
    torch.testing.assert_close(made["shifted"][..., 6:], x[..., :-6])


def test_occluded_puts_one_square_inside_the_digit_box():
    x = torch.zeros(50, 1, 28, 28)
    o = A.occluded(x, size=10, value=1.0, seed=0)
    assert o.sum(dim=(1, 2, 3)).tolist() == [100.0] * 50                          # exactly one 10×10 square each
    assert float(o[:, :, :4].sum() + o[:, :, 24:].sum() + o[..., :4].sum() + o[..., 24:].sum()) == 0
    erased = A.occluded(torch.ones(3, 1, 28, 28), size=5, value=0.0)
    assert (erased == 0).sum(dim=(1, 2, 3)).tolist() == [25, 25, 25]


def test_thickened_and_thinned_are_dilation_and_erosion():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 10] = 1.0
    assert A.thickened(x).sum().item() == 9 and A.thinned(x).sum().item() == 0   # a dot grows to 3×3; erodes away
    block = torch.zeros(1, 1, 28, 28)
    block[0, 0, 5:9, 5:9] = 1.0
    assert A.thinned(block).sum().item() == 9                                     # a 4×4 block erodes to 3×3


def test_perturbed_replaces_the_given_share():
    x = torch.ones(20, 1, 28, 28)
    p = A.perturbed(x, rate=0.25)  # a replaced pixel is uniform in [0, 1), so below 1
    assert (p < 1).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.equal(A.perturbed(x, rate=0.0), x)
    assert torch.equal(A.perturbed(x, seed=4), A.perturbed(x, seed=4))


@pytest.mark.parametrize("call, match", [
    (lambda: A.uniform_noise(0), "positive int"), (lambda: A.bernoulli_noise(3, 1.5), "probability"),
    (lambda: A.constant_images(2, -0.1), "grey level"), (lambda: A.upscaled_small_digits(2000), "only 1797"),
    (lambda: A.upscaled_small_digits(3, size=40), "size must be"), (lambda: A.occluded(torch.zeros(2, 1, 28, 28), size=25), "size"),
    (lambda: A.inverted(torch.zeros(2, 28, 28)), r"\[N, 1, H, W\]"), (lambda: A.thickened(torch.zeros(1, 1, 28, 28), 2), "odd"),
    (lambda: A.inverted([0.0]), "torch.Tensor"), (lambda: A.perturbed(torch.zeros(1, 1, 28, 28), rate=2), "probability"),
])
def test_makers_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return vl.VAE(latent_dim=4, hidden=(32,))


def test_nll_score_is_minus_iwae_and_refuses_grey_images(model):
    xb = vl.binarize(torch.rand(6, 1, 28, 28, generator=_g(0)), seed=0)
    torch.testing.assert_close(A.nll_score(model, xb, k=7, seed=2), -vl.iwae_log_likelihood(model, xb, k=7, seed=2))
    with pytest.raises(ValueError, match="binarize"):
        A.nll_score(model, torch.full((2, 1, 28, 28), 0.5), k=3)


def test_compressed_bits_is_zlib_of_packed_pixels():
    xb = vl.binarize(torch.rand(3, 1, 28, 28, generator=_g(0)), seed=1)
    row = np.packbits(xb[1].numpy().astype(np.uint8).ravel())
    assert A.compressed_bits(xb)[1].item() == 8 * len(zlib.compress(row.tobytes(), 9))
    blank, noise = A.compressed_bits(torch.zeros(1, 1, 28, 28)), A.compressed_bits(xb[:1])
    assert blank.item() < noise.item()
    with pytest.raises(ValueError, match="binary"):
        A.compressed_bits(torch.full((1, 1, 28, 28), 0.5))


def test_complexity_typicality_and_ratio_scores():
    xb = vl.binarize(torch.rand(4, 1, 28, 28, generator=_g(0)), seed=0)
    nll = torch.tensor([100.0, 200.0, 300.0, 400.0])
    torch.testing.assert_close(A.complexity_score(nll, xb), nll.double() / math.log(2) - A.compressed_bits(xb))
    torch.testing.assert_close(A.typicality_score(nll, torch.tensor([240.0, 260.0])),
                               torch.tensor([150.0, 50.0, 50.0, 150.0], dtype=torch.float64))
    torch.testing.assert_close(A.likelihood_ratio_score(nll, nll - 5), torch.full((4,), 5.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="same images"):
        A.complexity_score(nll[:3], xb)
    with pytest.raises(ValueError, match="score the same images"):
        A.likelihood_ratio_score(nll, nll[:2])


def test_figures():
    from matplotlib.figure import Figure
    s = {"in": torch.rand(50, generator=_g(0)) + 1, "out": torch.rand(50, generator=_g(1)) + 2}
    assert isinstance(vl.plots.plot_score_histograms(s, reference="in", log_x=True), Figure)
    assert isinstance(vl.plots.plot_input_sets({"a": torch.rand(8, 1, 28, 28), "b": torch.zeros(8, 1, 28, 28)}), Figure)
    assert isinstance(vl.plots.plot_roc_curves({"out": A.roc_points(s["in"], s["out"])}), Figure)
    fig = vl.plots.new_figure()
    vl.plots.draw_threshold(fig, 1.5, s)
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="positive"):
        vl.plots.plot_score_histograms({"a": torch.tensor([-1.0, 1.0])}, log_x=True)
