"""The hand-written backward pass (vae_lib.fused) against autograd, and when it is used."""
import pytest
import torch

import vae_lib as vl
from vae_lib.fused import FusedStep, fused_step, why_not_fused

SHAPE = (1, 8, 8)


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("latent_dim", 4)
    kw.setdefault("hidden", (32,))
    return vl.VAE(input_shape=SHAPE, **kw)


def _batch(n=50, seed=1):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def _autograd(model, x, beta, free_bits, seed):
    """Objective, mean recon, mean KL and every gradient, by autograd with ε seeded."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    t = model.elbo(x, beta=beta)
    loss = vl.objective(t, beta, free_bits)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return torch.stack([loss, t.recon.mean(), t.kl.mean()]).detach(), grads


def _fused(model, x, beta, free_bits, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    stats = FusedStep(model, free_bits)(x, beta)
    return stats, {k: p.grad.clone() for k, p in model.named_parameters()}


CONFIGS = {
    "bernoulli": {},
    "two-hidden-layers": {"hidden": (24, 12), "latent_dim": 3},
    "no-hidden-layer": {"hidden": ()},
    "gaussian-fixed": {"likelihood": "gaussian", "obs_std": 0.2},
    "gaussian-learned": {"likelihood": "gaussian", "obs_std": None},
}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("beta", [1.0, 0.3])
@pytest.mark.parametrize("use_free_bits", [False, True])
def test_loss_and_every_gradient_match_autograd(name, beta, use_free_bits):
    model, x = _model(**CONFIGS[name]), _batch()
    free_bits = 0.0
    if use_free_bits:  # a threshold that some dimensions clear and some do not
        with torch.no_grad():
            kl_d = vl.kl_standard_normal_per_dim(*model.encode(x)).mean(0)
        lo, hi = kl_d.sort().values[1:3]
        free_bits = float(lo + hi) / 2  # strictly between two dimensions' KLs: no ties at the kink
        assert (kl_d > free_bits).any() and (kl_d < free_bits).any()
    ref_stats, ref = _autograd(model, x, beta, free_bits, seed=5)
    stats, got = _fused(model, x, beta, free_bits, seed=5)
    torch.testing.assert_close(stats, ref_stats, rtol=1e-5, atol=1e-4)
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-6, msg=lambda m: f"{k}: {m}")
        assert ref[k].abs().sum() > 0, k  # the check means something: every parameter gets a gradient


def test_saturated_logits_stay_finite_and_match_autograd():
    """Logits of ±hundreds: softplus and the sigmoid gradient must not overflow."""
    model, x = _model(), (_batch() > 0.5).float()
    with torch.no_grad():
        model.decoder[0][-1].bias.copy_(torch.linspace(-300, 300, 64))
    ref_stats, ref = _autograd(model, x, 1.0, 0.0, seed=2)
    stats, got = _fused(model, x, 1.0, 0.0, seed=2)
    assert torch.isfinite(stats).all() and stats[1] > 1000  # half the pixels are hopelessly wrong
    torch.testing.assert_close(stats, ref_stats, rtol=1e-5, atol=1e-3)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-6)


def test_a_fused_run_follows_the_autograd_run():
    x, _ = vl.load_dataset("digits", "train")
    runs = []
    for fused in (True, False):
        m = _model(hidden=(64,))
        h = vl.train(m, x, epochs=3, batch_size=64, beta=0.5, kl_warmup_epochs=1, free_bits=0.05,
                     binarize=True, seed=4, progress=False, fused=fused)
        runs.append((h, dict(m.named_parameters())))
    (hf, pf), (ha, pa) = runs
    for key in ("train_loss", "recon", "kl"):
        torch.testing.assert_close(torch.tensor(hf[key]), torch.tensor(ha[key]), rtol=1e-4, atol=1e-3)
    for k in pa:
        torch.testing.assert_close(pf[k], pa[k], rtol=1e-3, atol=1e-4)
    assert hf.train_loss[-1] < hf.train_loss[0]


def test_train_uses_the_fused_step_only_where_it_applies():
    """What it covers, what it does not, and fused=True on a model it does not cover."""
    assert why_not_fused(_model()) is None
    assert isinstance(fused_step(_model(likelihood="gaussian")), FusedStep)
    refused = {
        "arch='conv'": vl.VAE(input_shape=(1, 8, 8), arch="conv"),
        "prior='mog'": _model(prior="mog"),
        "prior='vamp'": _model(prior="vamp"),
        "not a plain vae_lib.VAE": vl.Autoencoder(input_shape=SHAPE),
    }
    for reason, model in refused.items():
        assert reason in why_not_fused(model), reason
        assert fused_step(model) is None
        with pytest.raises(ValueError, match="fused=True"):
            vl.train(model, _batch(8), epochs=1, progress=False, fused=True)
        with pytest.raises(ValueError, match="does not cover"):
            FusedStep(model)
    assert "amp" in why_not_fused(_model(), amp=True)
    assert "compile" in why_not_fused(_model(), compile=True)

    patched = _model()
    patched.elbo = lambda x, beta=1.0, generator=None: vl.VAE.elbo(patched, x, beta, generator)
    assert "elbo" in why_not_fused(patched)  # a per-instance elbo (e.g. a test's poisoned one) is honoured

    tanh = _model()
    tanh.decoder[0][1] = torch.nn.Tanh()
    assert "Linear/ReLU" in why_not_fused(tanh)
    hooked = _model()
    hooked.encoder.register_forward_hook(lambda *a: None)
    assert "hooks" in why_not_fused(hooked)


def test_fused_step_survives_grads_being_set_to_none():
    """A callback may call zero_grad(set_to_none=True); the step makes fresh buffers."""
    model, x = _model(), _batch()
    step = FusedStep(model)
    step(x, 1.0)
    model.zero_grad(set_to_none=True)
    step(x, 1.0)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
