"""The amortization/approximation split of the ELBO's gap (Cremer et al., 2018), against exact answers."""
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
    vl.train(m, x, epochs=5, batch_size=64, binarize=True, progress=False, device="cpu")
    return m, vl.binarize(xv[:40], seed=0)


def linear_gaussian(latent_dim=3, pixels=(1, 2, 4), sigma=0.5, seed=0):
    """A VAE whose decoder is x = W z + b + σ ε with orthogonal columns of W, so that the true
    posterior p(z|x) = N(Σ Wᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹, is a *diagonal* Gaussian."""
    torch.manual_seed(seed)
    m = vl.VAE(input_shape=pixels, latent_dim=latent_dim, hidden=(), likelihood="gaussian", obs_std=sigma)
    lin = [mod for mod in m.decoder.modules() if isinstance(mod, torch.nn.Linear)]
    assert len(lin) == 1  # hidden=() makes the decoder one Linear layer: linear in z
    q, _ = torch.linalg.qr(torch.randn(math.prod(pixels), latent_dim))  # orthonormal columns, [P, D]
    scales = torch.tensor([2.0, 1.0, 0.5])[:latent_dim]
    with torch.no_grad():
        lin[0].weight.copy_(q * scales)  # W = Q diag(s): WᵀW = diag(s²)
        lin[0].bias.copy_(torch.linspace(-0.3, 0.3, math.prod(pixels)))
    return m, lin[0].weight.detach(), lin[0].bias.detach(), sigma


def test_refining_never_lowers_the_elbo_on_average(trained):
    m, x = trained
    m.zero_grad(set_to_none=True)
    mu0, logvar0 = vl.posterior_stats(m, x)
    mu1, logvar1 = vl.refine_posterior(m, x, steps=100, lr=1e-2, n_samples=4, seed=0)
    assert mu1.shape == logvar1.shape == (40, 4) and not mu1.requires_grad
    before = vl.elbo_of_posterior(m, x, mu0, logvar0, n_samples=200, seed=1)
    after = vl.elbo_of_posterior(m, x, mu1, logvar1, n_samples=200, seed=1)
    assert after.mean() > before.mean() - 0.05  # never lower (tolerance: Monte Carlo noise)
    assert (after > before - 0.5).float().mean() > 0.9  # and image by image, nearly always
    # The model is frozen: refinement leaves no gradients and no changed weights behind.
    assert all(p.grad is None for p in m.parameters())
    mu_again, _ = vl.posterior_stats(m, x)
    torch.testing.assert_close(mu_again, mu0)


def test_zero_steps_return_the_encoder_and_elbo_matches_the_closed_form_kl(trained):
    m, x = trained
    mu0, logvar0 = vl.posterior_stats(m, x)
    mu, logvar = vl.refine_posterior(m, x, steps=0)
    torch.testing.assert_close(mu, mu0)
    torch.testing.assert_close(logvar, logvar0)
    # The entropy-form ELBO equals reconstruction − closed-form KL in expectation (standard prior).
    elbo = vl.elbo_of_posterior(m, x, mu0, logvar0, n_samples=2000, seed=3)
    with torch.no_grad():
        g = torch.Generator().manual_seed(4)
        recon = torch.stack([m.log_likelihood(m.decode(vl.reparameterize(mu0, logvar0, g)), x) for _ in range(2000)])
        reference = recon.mean(0) - vl.kl_standard_normal(mu0, logvar0)
    torch.testing.assert_close(elbo.mean(), reference.mean(), rtol=0, atol=0.1)


def test_the_split_adds_up(trained):
    m, x = trained
    gaps = vl.inference_gaps(m, x, k=200, steps=30, seed=0)
    assert gaps.n_images == 40
    assert gaps.amortization_gap + gaps.approximation_gap == pytest.approx(gaps.log_px - gaps.elbo_amortized, abs=1e-9)
    assert gaps.total_gap == pytest.approx(gaps.log_px - gaps.elbo_amortized, abs=1e-12)
    per = gaps.per_image
    torch.testing.assert_close(per["amortization_gap"] + per["approximation_gap"],
                               per["log_px"] - per["elbo_amortized"])
    assert gaps.amortization_gap == pytest.approx(float(per["amortization_gap"].mean()), abs=1e-9)
    se = float(per["log_px"].std() / math.sqrt(40))
    assert gaps.stderr["log_px"] == pytest.approx(se)
    assert gaps.log_px > gaps.elbo_refined > gaps.elbo_amortized  # IWAE ≥ ELBO; refinement helps


def test_approximation_gap_vanishes_when_the_true_posterior_is_a_diagonal_gaussian():
    m, w, b, sigma = linear_gaussian()
    d = w.shape[1]
    torch.manual_seed(1)
    x = (torch.randn(30, d) @ w.T + b + sigma * torch.randn(30, w.shape[0])).reshape(30, *m.input_shape)
    # Exact answers: x ~ N(b, WWᵀ + σ²I); p(z|x) = N(Σ Wᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹ (diagonal here).
    flat = x.reshape(30, -1)
    log_px = torch.distributions.MultivariateNormal(b, w @ w.T + sigma ** 2 * torch.eye(w.shape[0])).log_prob(flat)
    post_cov = torch.linalg.inv(torch.eye(d) + w.T @ w / sigma ** 2)
    post_mu = (flat - b) @ w @ post_cov / sigma ** 2  # [30, D]
    torch.testing.assert_close(post_cov, torch.diag(torch.diagonal(post_cov)), rtol=0, atol=1e-6)

    gaps = vl.inference_gaps(m, x, k=500, steps=2000, lr=5e-2, n_samples=16, n_eval=500, seed=0)
    mu, logvar = gaps.refined  # refinement finds the true posterior
    torch.testing.assert_close(mu, post_mu, rtol=0, atol=0.06)  # < 0.1 posterior sd: Monte Carlo noise
    torch.testing.assert_close(logvar.exp(), torch.diagonal(post_cov).expand(30, d), rtol=0.1, atol=0)
    assert abs(gaps.approximation_gap) < 0.05  # q* is the true posterior: nothing left to approximate
    assert gaps.amortization_gap > 1.0  # the untrained encoder is far from it
    assert gaps.log_px == pytest.approx(float(log_px.mean()), abs=0.02)  # IWAE under the exact posterior is exact


def test_bad_inputs_say_what_to_do(trained):
    m, x = trained
    with pytest.raises(TypeError, match="Gaussian posterior"):
        vl.refine_posterior(vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2), x)
    with pytest.raises(ValueError, match="steps >= 0"):
        vl.refine_posterior(m, x, steps=-1)
    with pytest.raises(ValueError, match=r"\[40, 4\]"):
        vl.elbo_of_posterior(m, x, torch.zeros(40, 3), torch.zeros(40, 3))
    with pytest.raises(ValueError, match="expected shape"):
        vl.inference_gaps(m, x.reshape(40, 64))
