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
