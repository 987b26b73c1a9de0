"""IWAE against the ELBO, active units, the aggregate-posterior gap and the β sweep."""
import math

import pytest
import torch

import vae_lib as vl


@pytest.fixture(scope="module")
def trained():
    x, _ = vl.load_dataset("digits", "train")
    xv, _ = vl.load_dataset("digits", "val")
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(64,))
    vl.train(m, x, epochs=5, batch_size=64, progress=False, device="cpu")
    return m, x, xv[:60]


def test_iwae_k1_is_the_elbo_in_expectation(trained):
    m, _, xv = trained
    # k=1: log w = log p(x|z) + log p(z) − log q(z|x), whose mean over many draws is the ELBO.
    iw = torch.stack([vl.iwae_log_likelihood(m, xv, k=1, seed=s) for s in range(50)]).mean(0)
    with torch.no_grad():
        mu, logvar = m.encode(xv)
        g = torch.Generator().manual_seed(0)
        elbo = torch.stack([-m.elbo(xv, generator=g).recon for _ in range(50)]).mean(0) - vl.kl_standard_normal(mu, logvar)
    torch.testing.assert_close(iw.mean(), elbo.mean(), rtol=0, atol=0.3)


def test_iwae_bounds_the_elbo_and_tightens_with_k(trained):
    m, _, xv = trained
    elbo = sum(-vl.evaluate(m, xv, seed=s)["loss"] for s in range(50)) / 50  # averaged over ε draws
    bounds = [vl.iwae_log_likelihood(m, xv, k=k, seed=1).mean().item() for k in (1, 10, 100, 1000)]
    assert bounds[2] > elbo and bounds[3] > elbo
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3]
    # Chunking does not change the estimate.
    a = vl.iwae_log_likelihood(m, xv[:10], k=64, chunk=64, seed=3)
    b = vl.iwae_log_likelihood(m, xv[:10], k=64, chunk=7, seed=3)
    assert a.shape == (10,) and torch.isfinite(a).all()
    assert abs(a.mean() - b.mean()) < 1.0  # different draws, same estimator


def test_iwae_rejects_bad_k(trained):
    m, _, xv = trained
    with pytest.raises(ValueError, match="k must be"):
        vl.iwae_log_likelihood(m, xv, k=0)


def test_active_units_definition():
    class Fixed(vl.VAE):
        """A stand-in encoder whose posterior means vary with the input in 2 of 4 units."""

        def __init__(self):
            super().__init__(input_shape=(1, 2, 2), latent_dim=4, hidden=(4,))

        def encode(self, x):
            b = x.shape[0]
            t = x.flatten(1)[:, :1]
            mu = torch.cat([t, -t, 0.05 * t, torch.zeros(b, 1)], 1)  # variances: Var(t), Var(t), tiny, 0
            return mu, torch.zeros_like(mu)

    x = torch.rand(500, 1, 2, 2, generator=torch.Generator().manual_seed(0))  # Var(t) ≈ 1/12 ≈ 0.083
    assert vl.active_units(Fixed(), x, threshold=0.01) == 2
    assert vl.active_units(Fixed(), x, threshold=0.1) == 0


def test_active_units_of_a_trained_model(trained):
    m, _, xv = trained
    n = vl.active_units(m, xv)
    mu, _ = vl.posterior_stats(m, xv)
    assert n == int((mu.var(0) > 0.01).sum()) and 1 <= n <= 4


def test_aggregate_gap_is_zero_when_posteriors_are_the_prior():
    class PriorEncoder(vl.VAE):
        def encode(self, x):
            z = torch.zeros(x.shape[0], self.latent_dim)
            return z, z  # every q(z|x) = N(0, I) = p(z)

    m = PriorEncoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    gap = vl.aggregate_posterior_gap(m, torch.rand(50, 1, 8, 8), n_samples=2000)
    assert abs(gap.kl_q_p) < 0.02 and abs(gap.kl_p_q) < 0.02
    assert gap.hole_fraction < 0.03  # ≈ 1% by construction of the threshold


def test_aggregate_gap_detects_holes():
    class TwoClusters(vl.VAE):
        def encode(self, x):
            sign = torch.where(x.flatten(1)[:, :1] > 0.5, 1.0, -1.0)
            mu = torch.cat([3 * sign, torch.zeros_like(sign)], 1)
            return mu, torch.full_like(mu, math.log(0.05))

    m = TwoClusters(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    gap = vl.aggregate_posterior_gap(m, torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert gap.kl_p_q > 1.0 and gap.kl_q_p > 1.0 and gap.hole_fraction > 0.5


def test_beta_sweep_trades_rate_for_distortion():
    x, _ = vl.load_dataset("digits", "train")
    xv, _ = vl.load_dataset("digits", "val")
    pts = vl.beta_sweep([0.2, 5.0], x, xv, epochs=4, batch_size=64, progress=False, device="cpu")
    assert [p.beta for p in pts] == [0.2, 5.0]
    low, high = pts
    assert low.rate > high.rate and low.distortion < high.distortion


def test_iwae_with_the_encoders_own_posterior_passed_in_is_unchanged():
    torch.manual_seed(0)
    m = vl.VAE(latent_dim=3, hidden=(16,)).eval()
    x = torch.rand(7, 1, 28, 28).round()
    with torch.no_grad():
        post = m.encode(x)
    a = vl.iwae_log_likelihood(m, x, k=20, batch_size=3)
    b = vl.iwae_log_likelihood(m, x, k=20, batch_size=3, posterior=post)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="posterior must be"):
        vl.iwae_log_likelihood(m, x, k=5, posterior=(post[0][:2], post[1][:2]))


def test_active_units_rejects_a_nan_pixel_instead_of_reporting_zero():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(8,))
    x = torch.rand(20, 1, 8, 8)
    x[4, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="1 NaN or infinite pixel"):
        vl.active_units(m, x)
    with pytest.raises(ValueError, match="divide by 255"):
        vl.active_units(m, torch.rand(20, 1, 8, 8) * 255)


def test_measures_needing_a_posterior_refuse_an_autoencoder_clearly():
    ae = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    x = torch.rand(10, 1, 8, 8)
    assert vl.active_units(ae, x) in (0, 1, 2)  # codes vary or not; no posterior needed
    for call in (lambda: vl.iwae_log_likelihood(ae, x, k=2), lambda: vl.aggregate_posterior_gap(ae, x)):
        with pytest.raises(TypeError, match="needs a model with a Gaussian posterior"):
            call()


def test_log_aggregate_posterior_matches_torch_mixture():
    from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

    g = torch.Generator().manual_seed(0)
    mu, logvar, z = torch.randn(30, 3, generator=g), 0.5 * torch.randn(30, 3, generator=g), torch.randn(17, 3, generator=g)
    q = MixtureSameFamily(Categorical(logits=torch.zeros(30)), Independent(Normal(mu, torch.exp(0.5 * logvar)), 1))
    torch.testing.assert_close(vl.metrics.log_aggregate_posterior(z, mu, logvar, chunk=5), q.log_prob(z))


def test_eval_mode_restores_the_mode_even_when_the_block_raises():
    from vae_lib.device import eval_mode

    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    m.train()
    with eval_mode(m) as device:
        assert not m.training and device == torch.device("cpu")
    assert m.training
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(m):
            raise RuntimeError("boom")
    assert m.training  # restored although the block failed
    m.eval()
    with eval_mode(m):
        pass
    assert not m.training  # an eval model stays in eval


class _CondVAE(vl.VAE):
    """A conditional model that ignores its cond: its metrics must equal the plain VAE's."""

    conditional = True

    def elbo(self, x, beta=1.0, generator=None, cond=None):
        assert cond is not None and cond.shape[0] == x.shape[0]
        return super().elbo(x, beta=beta, generator=generator)

    def posterior_stats(self, x, cond):
        assert cond.shape[0] == x.shape[0]
        return super().posterior_stats(x)

    def decode(self, z, cond=None):  # VAE.elbo calls decode(z); the metrics call decode(z, cond)
        if cond is not None:
            assert cond.shape[0] == z.shape[-2]
            self.cond_decodes = getattr(self, "cond_decodes", 0) + 1
        return super().decode(z)


def test_metrics_pass_cond_through_in_batches(trained):
    m, _, xv = trained
    c = _CondVAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(64,))
    c.load_state_dict(m.state_dict())
    cond = torch.arange(xv.shape[0])
    assert vl.evaluate(c, xv, cond=cond, batch_size=7) == pytest.approx(vl.evaluate(m, xv, batch_size=7), abs=1e-6)
    torch.testing.assert_close(vl.iwae_log_likelihood(c, xv, k=8, batch_size=7, cond=cond),
                               vl.iwae_log_likelihood(m, xv, k=8, batch_size=7))
    assert c.cond_decodes == -(-xv.shape[0] // 7)  # one decode per batch (k = 8 fits one chunk), each with cond
    torch.testing.assert_close(vl.embed(c, xv, batch_size=7, cond=cond), vl.embed(m, xv))
    with pytest.raises(ValueError, match="is conditional"):
        vl.evaluate(c, xv)
    with pytest.raises(ValueError, match="not a conditional model"):
        vl.iwae_log_likelihood(m, xv, k=2, cond=cond)
    with pytest.raises(ValueError, match="rows of cond"):
        vl.embed(c, xv, cond=cond[:-1])


def test_mean_se_matches_statistics():
    import statistics
    vals = [978.1, 979.6, 980.3]
    m, se = vl.mean_se(vals)
    assert m == pytest.approx(statistics.fmean(vals), abs=1e-12)
    assert se == pytest.approx(statistics.stdev(vals) / math.sqrt(3), abs=1e-12)
    assert vl.mean_se([5.0]) == (5.0, 0.0)                      # one seed: no spread
    with pytest.raises(ValueError, match="no values"):
        vl.mean_se([])
