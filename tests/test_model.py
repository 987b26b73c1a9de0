"""Model shapes, ELBO terms consistent with encode/decode, and clear shape errors."""
import pytest
import torch

import vae_lib as vl


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_shapes(arch, likelihood):
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 28, 28), latent_dim=6, hidden=(32,), arch=arch, likelihood=likelihood)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (5, 6)
    z = vl.reparameterize(mu, logvar)
    assert m.decode(z).shape == (5, 1, 28, 28)
    t = m.elbo(x)
    assert t.recon.shape == t.kl.shape == (5,) and t.loss.shape == ()
    assert m.sample(3).shape == (3, 1, 28, 28)
    assert m.reconstruct(x).shape == x.shape


def test_elbo_terms_consistent_with_encode_decode():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))
    x = torch.rand(6, 1, 8, 8)
    t = m.elbo(x, beta=2.5, generator=torch.Generator().manual_seed(5))
    mu, logvar = m.encode(x)
    z = vl.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(t.z, z)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(m.decode(z), x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(t.recon, recon)
    torch.testing.assert_close(t.kl, vl.kl_standard_normal(mu, logvar))
    torch.testing.assert_close(t.loss, (recon + 2.5 * t.kl).mean())


def test_mixture_prior_kl_is_single_sample_estimate():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,), prior="mog", n_components=3)
    x = torch.rand(4, 1, 8, 8)
    t = m.elbo(x, generator=torch.Generator().manual_seed(2))
    mu, logvar = m.encode(x)
    torch.testing.assert_close(t.kl, vl.gaussian_log_prob(t.z, mu, logvar) - m.prior_log_prob(t.z))
    assert t.kl_per_dim is None


def test_gaussian_learned_variance_is_a_parameter():
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="gaussian", obs_std=None)
    assert any(n == "obs_log_std" for n, _ in m.named_parameters())
    fixed = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="gaussian", obs_std=0.2)
    assert all(n != "obs_log_std" for n, _ in fixed.named_parameters())


def test_autoencoder_is_deterministic():
    torch.manual_seed(0)
    ae = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(ae.encode(x), ae.encode(x))
    t = ae.elbo(x)
    assert (t.kl == 0).all() and t.recon.shape == (4,)


@pytest.mark.parametrize("bad", [torch.rand(4, 784), torch.rand(4, 1, 28, 27), torch.rand(4, 3, 28, 28),
                                 torch.rand(1, 28, 28)])
def test_wrong_input_shapes_raise_with_expected_shape(bad):
    m = vl.VAE(input_shape=(1, 28, 28), latent_dim=2, hidden=(8,))
    for call in (m.encode, m.elbo, lambda x: vl.train(m, x, epochs=1, progress=False)):
        with pytest.raises(ValueError, match=r"expected shape \[B, 1, 28, 28\]"):
            call(bad)


def test_decode_wrong_latent_size():
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        m.decode(torch.zeros(3, 5))


@pytest.mark.parametrize("kw,msg", [(dict(arch="rnn"), "mlp"), (dict(likelihood="poisson"), "bernoulli"),
                                    (dict(input_shape=(28, 28)), "C, H, W"),
                                    (dict(arch="conv", input_shape=(1, 10, 10)), "divisible by 4")])
def test_bad_constructor_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        vl.VAE(**{"hidden": (8,), **kw})


def _both_models():
    torch.manual_seed(0)
    return [vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
            vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))]


@pytest.mark.parametrize("model", _both_models(), ids=["VAE", "Autoencoder"])
def test_embed_and_posterior_stats_contract(model):
    """One way to get codes from either model: embed is the VAE's μ(x) and the autoencoder's z."""
    x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    code = model.encode(x)
    mu_ref, logvar_ref = code if isinstance(code, tuple) else (code, None)
    mu, logvar = model.posterior_stats(x)
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(model.embed(x), mu_ref)
    assert model.embed(x).shape == (7, 3)
    if logvar_ref is None:
        assert logvar is None
    else:
        torch.testing.assert_close(logvar, logvar_ref)
    # The batched package helpers: the same numbers whatever the batch size, without gradients.
    for bs in (1, 3, 1000):
        bmu, blogvar = vl.posterior_stats(model, x, batch_size=bs)
        torch.testing.assert_close(bmu, mu_ref.detach())
        assert (blogvar is None) == (logvar_ref is None) and not bmu.requires_grad
        torch.testing.assert_close(vl.embed(model, x, batch_size=bs), mu_ref.detach())


def test_encode_is_the_public_encoder_and_priors_use_it():
    """A subclass that replaces encode changes what the VampPrior's components are."""
    class Shifted(vl.VAE):
        def encode(self, x):
            mu, logvar = super().encode(x)
            return mu + 5.0, logvar

    torch.manual_seed(0)
    m = Shifted(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), prior="vamp", n_components=3)
    _, means, _ = m.prior.components(m.encode)
    assert (means > 3).all()
    assert m.prior_log_prob(torch.zeros(4, 2)).shape == (4,)


@pytest.mark.parametrize("dtype,fix", [(torch.uint8, r"x\.float\(\) / 255"), (torch.int64, r"x\.float\(\)"),
                                       (torch.bool, r"x\.float\(\)")])
def test_non_float_input_says_how_to_convert(dtype, fix):
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    x = (torch.rand(4, 1, 8, 8) * 255).to(dtype)
    for call in (m.encode, m.elbo, lambda t: m.check_input(t, "here", values=True), lambda t: vl.embed(m, t)):
        with pytest.raises(ValueError, match=rf"floating-point pixels in \[0, 1\], got dtype {dtype}.*{fix}"):
            call(x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_non_finite_pixels_are_rejected_when_values_are_checked(bad, likelihood):
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood=likelihood)
    x = torch.rand(4, 1, 8, 8)
    x[2, 0, 3, 3] = bad
    assert m.check_input(x, "step") is x  # the per-step check does no host sync, so it does not look
    with pytest.raises(ValueError, match=r"where: x has 1 NaN or infinite pixel"):
        m.check_input(x, "where", values=True)


@pytest.mark.parametrize("scale,hint", [(255.0, "divide by 255"), (-1.0, r"\(x \+ 1\) / 2")])
def test_bernoulli_model_rejects_pixels_outside_the_unit_interval(scale, hint):
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x = x * 255.0 if scale > 0 else 2 * x - 1  # [0, 255] or [-1, 1]
    with pytest.raises(ValueError, match=rf"Bernoulli model expects pixel values in \[0, 1\].*{hint}"):
        m.check_input(x, "train", values=True)
    # The edges are allowed, and a Gaussian model accepts any finite value.
    m.check_input(torch.arange(64.0).reshape(1, 1, 8, 8).remainder(2), "ok", values=True)  # 0s and 1s
    g = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="gaussian")
    g.check_input(x, "ok", values=True)


def test_kl_to_prior_closed_form_for_the_standard_prior():
    from torch.distributions import Independent, Normal, kl_divergence

    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(8,))
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    kl, per_dim = m.kl_to_prior(mu, logvar)
    q = Normal(mu, torch.exp(0.5 * logvar))
    torch.testing.assert_close(per_dim, kl_divergence(q, Normal(torch.zeros(3), torch.ones(3))))
    torch.testing.assert_close(kl, kl_divergence(Independent(q, 1), Independent(Normal(torch.zeros(3), 1.0), 1)))


def test_kl_to_prior_monte_carlo_for_a_mixture_matches_torch():
    """No closed form: the one-sample estimate at z, whose average is KL(q || mixture) from torch.distributions."""
    from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), prior="mog", n_components=3)
    mu, logvar = torch.tensor([[0.5, -0.3]]), torch.tensor([[-0.5, 0.2]])
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = MixtureSameFamily(Categorical(logits=m.prior.logits), Independent(Normal(m.prior.means,
                                                                                 torch.exp(0.5 * m.prior.logvars)), 1))
    z = q.sample((20000,)).squeeze(1)  # [S, D]
    with torch.no_grad():
        kl, per_dim = m.kl_to_prior(mu.expand(20000, 2), logvar.expand(20000, 2), z)
        ref = q.log_prob(z[:, None]).squeeze(1) - p.log_prob(z)
        assert per_dim is None
        torch.testing.assert_close(kl, ref)
        drawn, _ = m.kl_to_prior(mu.expand(20000, 2), logvar.expand(20000, 2))  # draws its own z ~ q
    assert abs(drawn.mean() - ref.mean()) < 4 * ref.std() / 20000 ** 0.5 + 1e-3


def test_elbo_uses_kl_to_prior():
    class NoKL(vl.VAE):
        def kl_to_prior(self, mu, logvar, z=None):
            return torch.zeros(mu.shape[0]), None

    torch.manual_seed(0)
    t = NoKL(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)).elbo(torch.rand(3, 1, 8, 8))
    assert (t.kl == 0).all() and t.kl_per_dim is None


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_sample_needs_a_positive_count(bad):
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        m.sample(bad)


# --- grey-level likelihoods (Part II, chapter 9) ---------------------------------------------


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood,p", [("logistic", 6), ("categorical", 256), ("discretized_gaussian", 1)])
def test_grey_level_shapes(arch, likelihood, p):
    torch.manual_seed(0)
    m = vl.VAE(latent_dim=4, hidden=(16,), arch=arch, likelihood=likelihood, n_mixtures=2, conv_channels=(4, 8))
    x = torch.randint(0, 256, (3, 1, 28, 28)).float() / 255
    out = m.decode(m.encode(x)[0])
    assert out.shape == ((3, 1, 28, 28) if p == 1 else (3, 1, p, 28, 28))
    t = m.elbo(x)
    assert t.recon.shape == (3,) and torch.isfinite(t.loss)
    assert m.sample(2).shape == (2, 1, 28, 28) and m.reconstruct(x).shape == x.shape
    xs, mean = m.sample_images(2)
    assert xs.shape == mean.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_observe_for_part_one_likelihoods(likelihood):
    torch.manual_seed(0)
    m = vl.VAE(latent_dim=2, hidden=(8,), likelihood=likelihood)
    out = m.decode(torch.zeros(20000, 2)[:1].expand(4000, 2))
    xs = m.observe(out, torch.Generator().manual_seed(0))
    if likelihood == "bernoulli":
        assert set(xs.unique().tolist()) <= {0.0, 1.0}
        torch.testing.assert_close(xs.mean(0), torch.sigmoid(out[0]), atol=0.05, rtol=0)  # E[x] = σ(logit)
    else:
        assert 0.0 <= float(xs.min()) and float(xs.max()) <= 1.0


def test_part_one_configs_are_unchanged_and_new_keys_appear_only_when_used():
    m = vl.VAE()
    assert set(m.config) == {"input_shape", "latent_dim", "hidden", "arch", "likelihood", "prior",
                             "n_components", "obs_std"}
    assert vl.VAE(likelihood="logistic", n_mixtures=3).config["n_mixtures"] == 3
    assert vl.VAE(arch="conv", conv_channels=(8, 16)).config["conv_channels"] == [8, 16]
    assert "conv_channels" not in vl.VAE(arch="conv").config


def test_grey_level_model_rejects_pixels_off_the_grid():
    m = vl.VAE(latent_dim=2, hidden=(8,), likelihood="discretized_gaussian")
    with pytest.raises(ValueError, match="quantize"):
        m.check_input(torch.full((1, 1, 28, 28), 0.3), values=True)
    m.check_input(torch.full((1, 1, 28, 28), 77 / 255), values=True)
    with pytest.raises(ValueError, match="not a pmf"):
        vl.VAE(latent_dim=2, hidden=(8,)).pixel_log_prob(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
