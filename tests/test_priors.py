"""Mixture and VampPrior log-densities against torch.distributions."""
import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import vae_lib as vl


def _mixture(log_w, means, logvars):
    comp = Independent(Normal(means, torch.exp(0.5 * logvars)), 1)
    return MixtureSameFamily(Categorical(logits=log_w), comp)


def test_standard_prior_log_prob():
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))
    z = torch.randn(10, 3)
    ref = Independent(Normal(torch.zeros(3), torch.ones(3)), 1).log_prob(z)
    torch.testing.assert_close(m.prior_log_prob(z), ref)


def test_mixture_prior_matches_torch():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,), prior="mog", n_components=4)
    with torch.no_grad():  # move away from the symmetric start
        m.prior.logits.copy_(torch.randn(4))
        m.prior.logvars.copy_(0.3 * torch.randn(4, 3))
    z = torch.randn(50, 3)
    p = _mixture(m.prior.logits, m.prior.means, m.prior.logvars)
    torch.testing.assert_close(m.prior_log_prob(z), p.log_prob(z))


def test_vamp_prior_matches_torch_mixture_of_encoder_posteriors():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), prior="vamp", n_components=5)
    z = torch.randn(40, 2)
    mu, logvar = m.encode(m.prior.pseudo_inputs)
    p = _mixture(torch.zeros(5), mu, logvar)  # uniform weights 1/K
    torch.testing.assert_close(m.prior_log_prob(z), p.log_prob(z))


@pytest.mark.parametrize("prior", ["standard", "mog", "vamp"])
def test_prior_samples_have_the_prior_density(prior):
    """Samples from the prior: their average log p equals −H(p), estimated independently via p's own samples."""
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), prior=prior, n_components=3)
    imgs = m.sample(7, generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (7, 1, 8, 8) and 0 <= imgs.min() and imgs.max() <= 1
    z = m.prior.sample(20000, m.encode, generator=torch.Generator().manual_seed(1))
    # Check the sampler against the density: a histogram-free test via E_p[log p] vs numerical entropy on a grid.
    grid = torch.linspace(-8, 8, 401)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        logp = m.prior_log_prob(zz)
        cell = (grid[1] - grid[0]) ** 2
        mass = (logp.exp() * cell).sum()
        neg_entropy = (logp.exp() * logp * cell).sum()
        sample_mean_logp = m.prior_log_prob(z).mean()
    torch.testing.assert_close(mass, torch.tensor(1.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(sample_mean_logp, neg_entropy, atol=0.05, rtol=0)


def test_unknown_prior():
    with pytest.raises(ValueError, match="standard"):
        vl.VAE(prior="laplace")


@pytest.mark.parametrize("prior,what", [("mog", "mixture components"), ("vamp", "pseudo-inputs")])
@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_mixture_needs_at_least_one_component(prior, what, n):
    """n_components=0 used to build a model whose log p(z) is −inf and whose loss is inf."""
    with pytest.raises(ValueError, match=rf"prior='{prior}' needs n_components >= 1 \({what}\)"):
        vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), prior=prior, n_components=n)
    if prior == "mog":
        with pytest.raises(ValueError, match="n_components >= 1"):
            vl.MixturePrior(2, n_components=n)
    else:
        with pytest.raises(ValueError, match="n_components >= 1"):
            vl.VampPrior((1, 8, 8), n_components=n)


def test_one_component_is_enough():
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), prior="mog", n_components=1)
    assert torch.isfinite(m.elbo(torch.rand(2, 1, 8, 8)).loss)
