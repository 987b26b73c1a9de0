"""The ELBO's maths against independent references: torch.distributions, analytic
gradients and Monte Carlo estimates."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae_lib as vl


@pytest.fixture
def gauss():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(16, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(16, 5, generator=g, dtype=torch.float64)
    return mu, logvar


def test_kl_matches_torch_distributions(gauss):
    mu, logvar = gauss
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(vl.kl_standard_normal(mu, logvar), kl_divergence(q, p))
    assert vl.kl_standard_normal(mu, logvar).shape == (16,)
    torch.testing.assert_close(vl.kl_standard_normal_per_dim(mu, logvar).sum(-1), vl.kl_standard_normal(mu, logvar))


def test_kl_is_zero_only_at_the_prior():
    zero = torch.zeros(3, 4)
    torch.testing.assert_close(vl.kl_standard_normal(zero, zero), torch.zeros(3))
    assert (vl.kl_standard_normal(zero + 0.1, zero) > 0).all()


def test_kl_matches_monte_carlo(gauss):
    mu, logvar = gauss[0][:2], gauss[1][:2]
    g = torch.Generator().manual_seed(1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, *mu.shape, generator=g, dtype=mu.dtype)
    mc = (vl.gaussian_log_prob(z, mu, logvar) - vl.gaussian_log_prob(z, torch.zeros(()), torch.zeros(()))).mean(0)
    torch.testing.assert_close(mc, vl.kl_standard_normal(mu, logvar), rtol=0.02, atol=0.02)


def test_gaussian_log_prob_matches_torch(gauss):
    mu, logvar = gauss
    z = torch.randn_like(mu)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(vl.gaussian_log_prob(z, mu, logvar), ref)


def test_reparameterize_is_mu_plus_sigma_eps_and_differentiable(gauss):
    mu, logvar = (t.clone().requires_grad_() for t in gauss)
    z = vl.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3), dtype=mu.dtype)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    # Analytic gradients of L = Σ z²: dL/dμ = 2z, dL/dlogvar = 2z · ε · ½σ.
    (z ** 2).sum().backward()
    sigma = torch.exp(0.5 * logvar.detach())
    torch.testing.assert_close(mu.grad, 2 * z.detach())
    torch.testing.assert_close(logvar.grad, 2 * z.detach() * eps * 0.5 * sigma)


def test_reparameterize_gradcheck(gauss):
    mu, logvar = (t[:3, :2].clone().requires_grad_() for t in gauss)
    f = lambda m, lv: vl.reparameterize(m, lv, generator=torch.Generator().manual_seed(7))  # noqa: E731
    assert torch.autograd.gradcheck(f, (mu, logvar))


def test_reparameterize_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        vl.reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))


def test_bernoulli_log_likelihood_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64)
    x = torch.rand(4, 1, 5, 5, generator=g, dtype=torch.float64).round()
    ref = Independent(Bernoulli(logits=logits), 3).log_prob(x)
    torch.testing.assert_close(vl.bernoulli_log_likelihood(logits, x), ref)
    # Extra leading (sample) dimension broadcasts against x.
    assert vl.bernoulli_log_likelihood(logits.expand(3, *logits.shape), x).shape == (3, 4)


def test_bernoulli_soft_targets_match_bce():
    logits, x = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    ref = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(vl.bernoulli_log_likelihood(logits, x), ref)


def test_gaussian_log_likelihood_matches_torch():
    mean, x = torch.rand(3, 1, 4, 4, dtype=torch.float64), torch.rand(3, 1, 4, 4, dtype=torch.float64)
    log_std = torch.tensor(math.log(0.3), dtype=torch.float64)
    ref = Independent(Normal(mean, log_std.exp()), 3).log_prob(x)
    torch.testing.assert_close(vl.gaussian_log_likelihood(mean, x, log_std), ref)


def test_reparameterize_n_samples_matches_torch_normal(gauss):
    """[S, B, D] draws: the same ε stream as Normal.rsample((S,)), and the right mean and variance."""
    mu, logvar = gauss
    z = vl.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(4), n_samples=3)
    assert z.shape == (3, *mu.shape)
    q = Normal(mu, torch.exp(0.5 * logvar))
    torch.manual_seed(4)
    torch.testing.assert_close(z, q.rsample((3,)))  # rsample draws ε ~ N(0, I) of shape [S, B, D] the same way
    big = vl.reparameterize(mu[:2], logvar[:2], generator=torch.Generator().manual_seed(5), n_samples=100_000)
    torch.testing.assert_close(big.mean(0), mu[:2], atol=0.05 * q.stddev[:2].max().item(), rtol=0)
    torch.testing.assert_close(big.var(0), q.variance[:2], rtol=0.03, atol=0)
    # One sample without n_samples is the first of a stacked draw with the same seed.
    one = vl.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(one, z[0])


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_reparameterize_rejects_bad_n_samples(bad):
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        vl.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), n_samples=bad)


def test_objective_adds_a_models_extra_penalty_outside_the_elbo():
    """``ELBOTerms.extra`` (a VQ-VAE's codebook + commitment losses, say) joins the objective as
    it is, with or without free bits, and never changes ``recon`` or ``kl``."""
    g = torch.Generator().manual_seed(0)
    recon, kl = torch.rand(8, generator=g) * 100, torch.rand(8, generator=g) * 5
    extra = torch.tensor(2.5, requires_grad=True)
    plain = vl.ELBOTerms(recon=recon, kl=kl, loss=(recon + kl).mean(), z=torch.zeros(8, 3))
    with_extra = vl.ELBOTerms(recon=recon, kl=kl, loss=(recon + kl).mean(), z=torch.zeros(8, 3), extra=extra)
    for beta, fb in [(1.0, 0.0), (0.5, 0.0), (1.0, 2.0)]:
        base = vl.objective(plain, beta, free_bits=fb)
        torch.testing.assert_close(vl.objective(with_extra, beta, free_bits=fb), base + 2.5)
    vl.objective(with_extra, 1.0).backward()
    assert extra.grad == 1.0  # ∂objective/∂extra = 1: the penalty is added unweighted
