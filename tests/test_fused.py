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


class Tanh(vl.VAE):
    """The issue's teacher-style customisation: squash the code before decoding."""

    def decode(self, z):
        return super().decode(torch.tanh(3 * z))


def _tanh_model(seed=0):
    torch.manual_seed(seed)
    return Tanh(input_shape=SHAPE, latent_dim=4, hidden=(64,))


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
        "Tanh": _tanh_model(),
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
    assert "model.elbo" in why_not_fused(patched)  # a per-instance elbo (e.g. a test's poisoned one) is honoured

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


# Every way a teacher or a user might customise a model (book/widgets_in_class.md invites
# "your own model"). Each must be refused by the fused step, and train() must then give
# exactly the autograd losses: the model's own maths, not the fused step's.
def _subclass(method, body):
    return type(f"Custom_{method}", (vl.VAE,), {method: body})


def _doubled_ll(self, out, x):
    return 2 * vl.VAE.log_likelihood(self, out, x)


def _shifted_encode(self, x):
    mu, logvar = vl.VAE.encode(self, x)
    return mu + 1.0, logvar


def _scaled_elbo(self, x, beta=1.0, generator=None):
    t = vl.VAE.elbo(self, x, beta, generator)
    t.recon = 0.5 * t.recon
    return t


def _zero_grad(p):
    p.grad.zero_()


def _build(kind):
    torch.manual_seed(0)
    kw = dict(input_shape=SHAPE, latent_dim=4, hidden=(64,))
    if kind == "tanh-subclass":
        return Tanh(**kw)
    subclasses = {
        "subclass-adding-nothing": type("Same", (vl.VAE,), {}),
        "subclass-log_likelihood": _subclass("log_likelihood", _doubled_ll),
        "subclass-encode": _subclass("encode", _shifted_encode),
        "subclass-forward": _subclass("forward", lambda self, x: self.elbo(x)),
        "subclass-elbo": _subclass("elbo", _scaled_elbo),
    }
    if kind in subclasses:
        return subclasses[kind](**kw)
    m = vl.VAE(**kw)
    if kind == "instance-decode":
        m.decode = lambda z: vl.VAE.decode(m, torch.tanh(3 * z))
    elif kind == "instance-decoder-forward":
        inner = m.decoder.forward
        m.decoder.forward = lambda z: inner(torch.tanh(3 * z))
    elif kind == "forward-hook":
        m.decoder.register_forward_hook(lambda mod, inp, out: out * 0.5)
    elif kind == "forward-pre-hook":
        m.decoder.register_forward_pre_hook(lambda mod, inp: (torch.tanh(3 * inp[0]),))
    elif kind == "full-backward-hook":
        m.decoder.register_full_backward_hook(lambda mod, gin, gout: None)
    elif kind == "tensor-hook":
        m.decoder[0][0].weight.register_hook(lambda g: 0 * g)  # freezes the first decoder layer
    elif kind == "post-accumulate-grad-hook":
        m.encoder[1][0].weight.register_post_accumulate_grad_hook(_zero_grad)
    elif kind == "frozen-parameter":
        m.encoder[1][0].weight.requires_grad_(False)
    return m


CUSTOMISED = {
    "tanh-subclass": "Tanh", "subclass-adding-nothing": "Same", "subclass-log_likelihood": "Custom_log_likelihood",
    "subclass-encode": "Custom_encode", "subclass-forward": "Custom_forward", "subclass-elbo": "Custom_elbo",
    "instance-decode": "model.decode", "instance-decoder-forward": "decoder.forward",
    "forward-hook": "_forward_hooks", "forward-pre-hook": "_forward_pre_hooks",
    "full-backward-hook": "_backward_hooks", "tensor-hook": "weight._backward_hooks",
    "post-accumulate-grad-hook": "_post_accumulate_grad_hooks", "frozen-parameter": "frozen",
}


@pytest.mark.parametrize("kind", CUSTOMISED)
def test_every_customised_model_is_refused_and_trains_on_its_own_maths(kind):
    reason = why_not_fused(_build(kind))
    assert reason is not None and CUSTOMISED[kind] in reason, reason
    x, _ = vl.load_dataset("digits", "train")
    runs = [vl.train(_build(kind), x[:256], epochs=2, batch_size=64, seed=3, progress=False, fused=f).train_loss
            for f in (None, False)]
    assert runs[0] == runs[1]  # the default chose autograd: bit for bit the fused=False run
    with pytest.raises(ValueError, match="fused=True"):
        vl.train(_build(kind), x[:64], epochs=1, progress=False, fused=True)


def test_the_issues_tanh_subclass_trains_as_autograd_does():
    """Issue 9: 3 epochs on 1,024 digits, latent 4, hidden (64,). The fused step used to train
    the plain VAE's maths (481.1, 398.2 after epoch 1) instead of the subclass's (493.4, 450.0)."""
    x, _ = vl.load_dataset("digits", "train")
    default, autograd = (vl.train(_tanh_model(), x[:1024], epochs=3, progress=False, fused=f).train_loss
                         for f in (None, False))
    assert default == autograd
    plain = vl.train(_model(hidden=(64,)), x[:1024], epochs=3, progress=False).train_loss
    assert why_not_fused(_model()) is None and plain != default  # the two models really differ


def test_methods_replaced_on_the_class_and_global_hooks_are_refused(monkeypatch):
    m = _model()
    assert why_not_fused(m) is None
    with monkeypatch.context() as mp:
        mp.setattr(vl.VAE, "decode", lambda self, z: vl.model.VAE.__mro__[1].decode(self, torch.tanh(z)))
        assert "VAE.decode" in why_not_fused(m)
    with monkeypatch.context() as mp:
        mp.setattr(torch.nn.Linear, "forward", lambda self, a: torch.nn.functional.linear(a, self.weight))
        assert "Linear.forward" in why_not_fused(m)
    assert why_not_fused(m) is None  # restored
    for register in (torch.nn.modules.module.register_module_forward_hook,
                     torch.nn.modules.module.register_module_forward_pre_hook,
                     torch.nn.modules.module.register_module_full_backward_hook):
        handle = register(lambda *a: None)
        try:
            assert "global" in why_not_fused(m)
        finally:
            handle.remove()
    assert why_not_fused(m) is None


def test_the_fused_forward_pass_uses_the_library_losses(monkeypatch):
    """Only the backward pass is hand-written: the loss comes from losses.py's functions."""
    import vae_lib.fused as fused_mod

    calls = []
    for name in ("bernoulli_log_likelihood", "gaussian_log_likelihood", "kl_standard_normal_per_dim", "objective"):
        original = getattr(fused_mod, name)
        monkeypatch.setattr(fused_mod, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    FusedStep(_model())(_batch(), 1.0)
    FusedStep(_model(likelihood="gaussian"))(_batch(), 1.0)
    assert calls == ["bernoulli_log_likelihood", "kl_standard_normal_per_dim", "objective",
                     "gaussian_log_likelihood", "kl_standard_normal_per_dim", "objective"]


@pytest.mark.parametrize("likelihood", ["logistic", "categorical", "discretized_gaussian"])
def test_grey_level_likelihoods_are_refused_by_name(likelihood):
    m = _model(likelihood=likelihood)  # an MLP with a plain Linear/ReLU stack: refused for its likelihood
    reason = why_not_fused(m)
    assert reason is not None and repr(likelihood) in reason
    assert fused_step(m) is None
