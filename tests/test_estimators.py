"""Both gradient estimators are unbiased against the analytic gradient; the
reparameterized one has the lower variance for f(z) = z²."""
import pytest
import torch

import vae_lib as vl
from vae_lib.estimators import true_gradient


@pytest.mark.parametrize("estimator", ["reparam", "score"])
def test_unbiased(estimator):
    est = vl.gradient_estimates(0.7, 1.3, n_samples=50, trials=4000, estimator=estimator, seed=0)
    assert est.shape == (4000, 2)
    se = est.std(0) / 4000 ** 0.5
    assert ((est.mean(0) - true_gradient(0.7, 1.3)).abs() < 4 * se).all()


def test_reparam_single_sample_is_the_pathwise_derivative():
    # With one sample z = μ + σε: ∂z²/∂μ = 2z, ∂z²/∂σ = 2zε.
    g = vl.gradient_estimates(0.5, 2.0, n_samples=1, trials=5, estimator="reparam", seed=3)
    torch.manual_seed(3)
    eps = torch.randn(1, 5, 1, dtype=torch.float64)[0, :, 0]
    z = 0.5 + 2.0 * eps
    torch.testing.assert_close(g, torch.stack([2 * z, 2 * z * eps], 1).float())


def test_variance_table_shrinks_as_one_over_n_and_favours_reparam():
    rows = vl.gradient_variance_table(1.0, 1.0, sample_counts=(1, 10, 100), trials=3000)
    assert [r["n_samples"] for r in rows] == [1, 10, 100] and all("n" not in r for r in rows)
    for a, b in zip(rows, rows[1:]):
        assert 5 < a["reparam_var"] / b["reparam_var"] < 20
        assert 5 < a["score_var"] / b["score_var"] < 20
    assert all(r["ratio"] > 3 for r in rows)
    # Analytic variance of the one-sample reparameterized ∂/∂μ: Var(2(μ+σε)) = 4σ² = 4.
    assert abs(rows[0]["reparam_var"] - 4.0) < 0.4


def test_bad_arguments():
    with pytest.raises(ValueError, match="estimator"):
        vl.gradient_estimates(0, 1, 1, estimator="magic")
    with pytest.raises(ValueError, match="sigma > 0"):
        vl.gradient_estimates(0, 0, 1)


def test_old_name_n_still_works_but_warns():
    new = vl.gradient_estimates(0.5, 1.0, n_samples=3, trials=10, seed=1)
    with pytest.warns(DeprecationWarning, match="renamed n_samples"):
        old = vl.gradient_estimates(0.5, 1.0, n=3, trials=10, seed=1)
    torch.testing.assert_close(old, new)
    torch.testing.assert_close(vl.gradient_estimates(0.5, 1.0, 3, trials=10, seed=1), new)  # positional unchanged
    with pytest.raises(TypeError, match="n_samples only"):
        vl.gradient_estimates(0.5, 1.0, n_samples=3, n=3)
    with pytest.raises(TypeError, match="missing n_samples"):
        vl.gradient_estimates(0.5, 1.0)
    with pytest.raises(ValueError, match="n_samples >= 1"):
        vl.gradient_estimates(0.5, 1.0, 0)
