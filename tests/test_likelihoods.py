"""Tests of vae_lib.likelihoods: the grey-level pmfs against torch.distributions, by exact
enumeration of the 256 levels, their samplers by frequencies, and the model plumbing."""
import math

import pytest
import torch

import vae_lib as vl
from vae_lib import likelihoods as lk

LEVELS = torch.arange(256)


def _params(shape, k, seed, scale_range=(-6.0, 3.0), mean_range=(-0.5, 1.5)):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, k, generator=g, dtype=torch.float64) * 2
    mu = mean_range[0] + (mean_range[1] - mean_range[0]) * torch.rand(*shape, k, generator=g, dtype=torch.float64)
    log_s = scale_range[0] + (scale_range[1] - scale_range[0]) * torch.rand(*shape, k, generator=g, dtype=torch.float64)
    return w, mu, log_s


def _table(fn, shape):
    return lk.log_pmf_table(fn, shape, dtype=torch.float64)  # [256, *shape]


def _ref_logistic_cdf(x, mu, log_s):
    """CDF of a logistic through torch.distributions (Uniform → sigmoid⁻¹ → affine)."""
    base = torch.distributions.Uniform(torch.zeros_like(mu), torch.ones_like(mu))
    logistic = torch.distributions.TransformedDistribution(
        base, [torch.distributions.SigmoidTransform().inv,
               torch.distributions.AffineTransform(loc=mu, scale=log_s.exp())])
    return logistic.cdf(x)


@pytest.mark.parametrize("k", [1, 3])
def test_logistic_pmf_sums_to_one(k):
    w, mu, log_s = _params((40,), k, seed=k)
    # extreme ones too: tiny and huge scales, means far outside [0, 1]
    w[:4], mu[:4], log_s[:4] = 0.0, torch.tensor([-30.0, 30.0, 0.5, 0.5])[:, None], \
        torch.tensor([-7.0, -7.0, -12.0, 8.0])[:, None]
    t = _table(lambda lv: lk.discretized_logistic_log_prob(w, mu, log_s, lv), (40,))
    assert torch.isfinite(t).all()
    torch.testing.assert_close(t.exp().sum(0), torch.ones(40, dtype=torch.float64), atol=1e-10, rtol=0)


def test_logistic_matches_torch_distributions():
    w, mu, log_s = _params((25,), 3, seed=1, scale_range=(-4.0, 0.0))
    t = _table(lambda lv: lk.discretized_logistic_log_prob(w, mu, log_s, lv), (25,))  # [256, 25]
    edges = torch.cat([torch.tensor([-math.inf]), (LEVELS[:-1].double() + 0.5) / 255, torch.tensor([math.inf])])
    cdf = _ref_logistic_cdf(edges[:, None, None], mu[None], log_s[None])  # [257, 25, 3]
    cdf = torch.nan_to_num(cdf, nan=0.0)  # cdf(−∞) can be nan in the transform; it is 0
    cdf[0], cdf[-1] = 0.0, 1.0
    ref = ((cdf[1:] - cdf[:-1]) * torch.softmax(w, -1)[None]).sum(-1)  # Σ_k π_k (F(b⁺) − F(b⁻)), [256, 25]
    torch.testing.assert_close(t.exp(), ref, atol=1e-12, rtol=1e-9)


def test_logistic_sharp_component_puts_mass_on_its_level():
    # a scale far below the bin width: (nearly) all mass on the level whose bin holds μ
    lp = lk.discretized_logistic_log_prob(torch.zeros(1, 1), torch.tensor([[100 / 255]]),
                                          torch.tensor([[-12.0]]), torch.tensor([100]))
    assert lp.item() > -1e-6


def test_discretized_gaussian_sums_to_one_and_matches_normal_cdf():
    g = torch.Generator().manual_seed(0)
    mu = torch.rand(30, generator=g, dtype=torch.float64) * 2 - 0.5
    log_sd = torch.rand(30, generator=g, dtype=torch.float64) * 9 - 7  # σ from 1e-3 to 7
    mu[:3], log_sd[:3] = torch.tensor([0.5, -20.0, 20.0]), torch.tensor([6.0, -3.0, -3.0])  # very wide; far tails
    t = _table(lambda lv: lk.discretized_gaussian_log_prob(mu, log_sd, lv), (30,))
    assert torch.isfinite(t).all()
    torch.testing.assert_close(t.exp().sum(0), torch.ones(30, dtype=torch.float64), atol=1e-10, rtol=0)
    normal = torch.distributions.Normal(mu, log_sd.exp())
    edges = (LEVELS[:-1].double() + 0.5) / 255
    cdf = torch.cat([torch.zeros(1, 30, dtype=torch.float64), normal.cdf(edges[:, None]),
                     torch.ones(1, 30, dtype=torch.float64)])
    torch.testing.assert_close(t.exp(), cdf[1:] - cdf[:-1], atol=1e-12, rtol=1e-7)


def test_discretized_gaussian_float32_wide_sigma_is_accurate():
    # float32, σ much wider than a bin: the midpoint rule keeps the answer (cancellation would not)
    mu, log_sd = torch.tensor([0.5]), torch.tensor([math.log(50.0)])
    lp = lk.discretized_gaussian_log_prob(mu, log_sd, torch.tensor([128]))
    exact = torch.distributions.Normal(0.5, 50.0).log_prob(torch.tensor(128 / 255.0, dtype=torch.float64)).item() \
        + math.log(1 / 255)
    assert abs(lp.item() - exact) < 1e-4


def test_categorical_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 256, generator=g, dtype=torch.float64) * 5
    t = _table(lambda lv: lk.categorical_log_prob(logits, lv), (7,))
    ref = torch.distributions.Categorical(logits=logits).log_prob(LEVELS[:, None])
    torch.testing.assert_close(t, ref)
    torch.testing.assert_close(t.exp().sum(0), torch.ones(7, dtype=torch.float64))


def _chi2(levels: torch.Tensor, log_pmf: torch.Tensor) -> float:
    """Pearson's χ² of sampled levels against the pmf, bins with expected count < 5 pooled."""
    n = levels.numel()
    counts = torch.bincount(levels.flatten(), minlength=256).double()
    exp = log_pmf.exp() * n
    keep = exp >= 5
    obs = torch.cat([counts[keep], counts[~keep].sum()[None]])
    ex = torch.cat([exp[keep], exp[~keep].sum()[None]])
    ok = ex > 0
    return float(((obs[ok] - ex[ok]) ** 2 / ex[ok]).sum()), int(ok.sum()) - 1


@pytest.mark.parametrize("which", ["logistic", "gaussian", "categorical"])
def test_samples_follow_the_pmf(which):
    n = 40000
    g = torch.Generator().manual_seed(3)
    if which == "logistic":
        w, mu, log_s = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.02, 0.5, 0.95]), torch.tensor([-3.0, -2.5, -4.0])
        draws = lk.sample_discretized_logistic(w.expand(n, 3), mu.expand(n, 3), log_s.expand(n, 3), generator=g)
        log_pmf = lk.log_pmf_table(lambda lv: lk.discretized_logistic_log_prob(w, mu, log_s, lv), ())
    elif which == "gaussian":
        mu, log_sd = torch.tensor(0.9), torch.tensor(math.log(0.1))
        draws = lk.sample_discretized_gaussian(mu.expand(n), log_sd, generator=g)
        log_pmf = lk.log_pmf_table(lambda lv: lk.discretized_gaussian_log_prob(mu, log_sd, lv), ())
    else:
        logits = torch.randn(256, generator=torch.Generator().manual_seed(1)) * 2
        draws = lk.sample_categorical(logits.expand(n, 256), generator=g)
        log_pmf = lk.log_pmf_table(lambda lv: lk.categorical_log_prob(logits, lv), ())
    assert draws.dtype == torch.int64 and int(draws.min()) >= 0 and int(draws.max()) <= 255
    chi2, dof = _chi2(draws, log_pmf.double())
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)  # mean dof, sd √(2 dof)


def test_gradients_finite_at_the_edges():
    mu = torch.tensor([0.0, 1.0, 0.5, -3.0, 4.0], requires_grad=True)
    log_s = torch.tensor([-7.0, -7.0, 10.0, -7.0, -7.0], requires_grad=True)
    w = torch.zeros(5, 1, requires_grad=True)
    for lv in (torch.zeros(5, dtype=torch.long), torch.full((5,), 255), torch.full((5,), 128)):
        lp = lk.discretized_logistic_log_prob(w, mu[:, None], log_s[:, None], lv)
        gm, gs = torch.autograd.grad(lp.sum(), [mu, log_s])
        assert torch.isfinite(lp).all() and torch.isfinite(gm).all() and torch.isfinite(gs).all()
        lp = lk.discretized_gaussian_log_prob(mu, log_s.clamp(max=5), lv)
        gm, gs = torch.autograd.grad(lp.sum(), [mu, log_s])
        assert torch.isfinite(lp).all() and torch.isfinite(gm).all() and torch.isfinite(gs).all()


def test_gradcheck_logistic_mixture():
    w, mu, log_s = (t.requires_grad_() for t in _params((4,), 2, seed=5, scale_range=(-3.0, 0.0)))
    lv = torch.tensor([0, 17, 200, 255])
    assert torch.autograd.gradcheck(lambda a, b, c: lk.discretized_logistic_log_prob(a, b, c, lv), (w, mu, log_s))


def test_levels_round_trip_and_grid():
    x, _ = vl.load_dataset("mnist-5k", "val")
    levels = lk.to_levels(x)
    assert levels.dtype == torch.int64 and int(levels.max()) == 255 and int(levels.min()) == 0
    assert torch.equal(levels.float() / 255, x)  # exact for the bundled data
    torch.testing.assert_close(lk.quantize(torch.tensor([0.31, 1.2, -0.1])), torch.tensor([79 / 255, 1.0, 0.0]))
    with pytest.raises(ValueError, match="quantize"):
        lk.to_levels(torch.tensor([0.5]))  # 127.5 levels: off the grid
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lk.to_levels(torch.tensor([1.5]))
    with pytest.raises(TypeError, match="x.long"):
        lk.to_levels(torch.tensor([3], dtype=torch.uint8))


def test_bits_per_dim():
    assert lk.bits_per_dim(784 * math.log(256), 784) == pytest.approx(8.0)
    assert lk.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive int"):
        lk.bits_per_dim(1.0, 0)


def test_bad_inputs():
    z = torch.zeros(3, 2)
    with pytest.raises(TypeError, match="integer"):
        lk.discretized_logistic_log_prob(z, z, z, torch.zeros(3))
    with pytest.raises(ValueError, match="same number of components"):
        lk.discretized_logistic_log_prob(z, torch.zeros(3, 3), z, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="256"):
        lk.categorical_log_prob(torch.zeros(3, 10), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="floating-point"):
        lk.discretized_gaussian_log_prob(torch.zeros(3, dtype=torch.long), torch.tensor(0.0),
                                         torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="0..255"):
        lk.check_levels(torch.tensor([0, 256]))


def test_level_mean_is_exact():
    mu, log_sd = torch.tensor([0.3, 0.0]), torch.tensor([-2.0, -2.0])
    mean = lk.level_mean(lambda lv: lk.discretized_gaussian_log_prob(mu, log_sd, lv), (2,))
    t = lk.log_pmf_table(lambda lv: lk.discretized_gaussian_log_prob(mu, log_sd, lv), (2,))
    torch.testing.assert_close(mean, (t.exp() * LEVELS[:, None] / 255).sum(0))
    assert abs(mean[0].item() - 0.3) < 1e-3 and mean[1].item() > 0.05  # the edge bin piles up mass at 0


# --- the model side --------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(likelihood="logistic", n_mixtures=2), dict(likelihood="categorical"),
                                dict(likelihood="discretized_gaussian", obs_std=None),
                                dict(likelihood="logistic", n_mixtures=1, arch="conv", conv_channels=(4, 8))])
def test_model_grey_likelihoods(kw):
    torch.manual_seed(0)
    m = vl.VAE(latent_dim=3, hidden=(16,), **kw)
    x, _ = vl.load_dataset("mnist-5k", "val")
    x = x[:6]
    out = m.decode(torch.zeros(2, 6, 3))  # [S, B, ...]
    p = m.params_per_pixel
    assert out.shape == ((2, 6, 1, 28, 28) if p == 1 else (2, 6, 1, p, 28, 28))
    ll = m.log_likelihood(out, x)
    assert ll.shape == (2, 6) and torch.isfinite(ll).all() and (ll < 0).all()
    # log p(x|z) is the sum of per-pixel pmfs, each normalised over 256 levels
    out1 = m.decode(torch.zeros(1, 3))
    t = lk.log_pmf_table(lambda lv: m.pixel_log_prob(out1, lv), (1, 1, 28, 28))
    torch.testing.assert_close(t.exp().sum(0), torch.ones(1, 1, 28, 28), atol=5e-5, rtol=0)  # float32 sums
    mean = m.mean_image(out1)
    torch.testing.assert_close(mean, (t.exp() * LEVELS.view(256, 1, 1, 1, 1) / 255).sum(0), atol=1e-5, rtol=0)
    xs = m.observe(out1, torch.Generator().manual_seed(0))
    assert xs.shape == (1, 1, 28, 28) and torch.equal(lk.to_levels(xs).float() / 255, xs)
    samples, means = m.sample_images(5, torch.Generator().manual_seed(0))
    assert samples.shape == means.shape == (5, 1, 28, 28)
    h = vl.train(m, x, epochs=1, batch_size=3, progress=False)
    assert math.isfinite(h.train_loss[-1])
    assert vl.iwae_log_likelihood(m, x, k=3).shape == (6,)
    assert vl.fused.why_not_fused(m) is not None and kw["likelihood"] in vl.fused.why_not_fused(m)


def test_model_refuses_off_grid_pixels():
    m = vl.VAE(latent_dim=2, hidden=(8,), likelihood="logistic")
    with pytest.raises(ValueError, match="quantize"):
        vl.evaluate(m, torch.full((2, 1, 28, 28), 0.5))
    xd, _ = vl.load_dataset("digits", "val")  # 17 levels (1/16 grid): quantize to 8-bit levels
    md = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="categorical")
    with pytest.raises(ValueError, match="quantize"):
        md.check_input(xd, values=True)
    md.check_input(lk.quantize(xd), values=True)
    with pytest.raises(ValueError, match="n_mixtures"):
        vl.VAE(likelihood="logistic", n_mixtures=0)
    with pytest.raises(ValueError, match="conv_channels"):
        vl.VAE(arch="conv", conv_channels=(8,))


# --- the chapter's figures (vae_lib.plots.likelihoods) ---------------------------------------


def test_pixel_pmfs_and_figures():
    from matplotlib.figure import Figure
    torch.manual_seed(0)
    x, _ = vl.load_dataset("mnist-5k", "val")
    models = {"logistic": vl.VAE(latent_dim=2, hidden=(8,), likelihood="logistic", n_mixtures=2),
              "categorical": vl.VAE(latent_dim=2, hidden=(8,), likelihood="categorical"),
              "disc. Gaussian": vl.VAE(latent_dim=2, hidden=(8,), likelihood="discretized_gaussian", obs_std=0.2)}
    pixels = [(14, 14), (0, 0), (10, 20)]
    pmfs = vl.plots.pixel_pmfs(models, x[:1], pixels)
    for name, m in models.items():
        assert pmfs[name].shape == (3, 256)
        torch.testing.assert_close(pmfs[name].sum(1), torch.ones(3), atol=5e-5, rtol=0)
        out = m.decode(m.encode(x[:1])[0])
        for i, (r, c) in enumerate(pixels):  # the pmf at a pixel is exp(log P(l | z)) at each level l
            lp = m.pixel_log_prob(out, LEVELS.view(256, 1, 1, 1, 1))[:, 0, 0, r, c]
            torch.testing.assert_close(pmfs[name][i], lp.exp())
    for fig in (vl.plots.plot_pixel_pmfs(models, x[:1], pixels, title="t"),
                vl.plots.plot_pixel_pmfs(models, x[:1], pixels[:1], log_scale=False),
                vl.plots.plot_samples_vs_means(models, n=4)):
        assert isinstance(fig, Figure) and fig.axes
        fig.canvas.draw()
    with pytest.raises(ValueError, match="one image"):
        vl.plots.pixel_pmfs(models, x[:2], pixels)
    with pytest.raises(ValueError, match="at least one"):
        vl.plots.pixel_pmfs(models, x[:1], [])
    with pytest.raises(ValueError, match="n must be"):
        vl.plots.plot_samples_vs_means(models, n=0)
    with pytest.raises(ValueError, match="not a pmf"):
        vl.plots.pixel_pmfs({"bern": vl.VAE(latent_dim=2, hidden=(8,))}, x[:1], pixels)
