"""The trainer: it learns, it is reproducible, it stops cleanly on NaN, and its options work."""
import math

import pytest
import torch

import vae_lib as vl


@pytest.fixture(scope="module")
def digits():
    x, _ = vl.load_dataset("digits", "train")
    xv, _ = vl.load_dataset("digits", "val")
    return x, xv


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return vl.VAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(64,), **kw)


def test_short_run_lowers_the_loss(digits):
    x, xv = digits
    m = _model()
    before = vl.evaluate(m, xv)["loss"]
    h = vl.train(m, x, epochs=8, batch_size=64, val_data=xv, progress=False, device="cpu")
    assert len(h.train_loss) == len(h.val_loss) == len(h.samples_per_s) == 8
    assert h.train_loss[-1] < h.train_loss[0] - 3
    assert h.val_loss[-1] < before - 3
    assert all(s > 0 for s in h.samples_per_s)
    torch.testing.assert_close(torch.tensor(h.val_loss[-1]), torch.tensor(vl.evaluate(m, xv)["loss"]))


def test_seed_reproduces_the_run_and_leaves_global_rng_alone(digits):
    x, _ = digits
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    runs = []
    for _ in range(2):
        m = _model()
        torch.manual_seed(123)
        h = vl.train(m, x, epochs=2, batch_size=64, progress=False, seed=7, binarize=True)
        assert torch.equal(torch.rand(3), expected_next)  # train() forks the RNG
        runs.append((h.train_loss, [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert torch.equal(a, b)
    m = _model()
    assert vl.train(m, x, epochs=2, batch_size=64, progress=False, seed=8).train_loss != runs[0][0]


def test_nan_stops_training_naming_epoch_and_step_and_restores_weights(digits):
    x, _ = digits
    m = _model()
    calls = {"n": 0}
    original = m.elbo

    def poisoned(xb, beta=1.0, generator=None):
        calls["n"] += 1
        t = original(xb, beta=beta, generator=generator)
        if calls["n"] == 30:  # epoch 2 (26 steps of 64 per epoch), step 4
            t.recon = t.recon * float("nan")
        return t

    vl.train(m, x, epochs=1, batch_size=64, progress=False)
    start = {k: v.clone() for k, v in m.state_dict().items()}
    calls["n"] = 26  # next epoch begins
    m.elbo = poisoned
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 4"):
        vl.train(m, x, epochs=2, batch_size=64, progress=False)
    for k, v in m.state_dict().items():
        assert torch.equal(v, start[k]), k


def test_warmup_schedule_and_free_bits(digits):
    x, _ = digits
    h = vl.train(_model(), x, epochs=4, batch_size=64, kl_warmup_epochs=4, progress=False)
    assert h.beta[0] < h.beta[1] < h.beta[2] < h.beta[3] <= 1.0
    # Free bits: per-dim KL below λ costs nothing → objective is flat in those dims.
    m = _model()
    t = m.elbo(x[:64])
    lam = 10.0  # above every dim's KL at initialisation
    loss = vl.objective(t, 1.0, free_bits=lam)
    torch.testing.assert_close(loss, t.recon.mean() + lam * m.latent_dim)


def test_trains_mixture_and_vamp_priors_and_autoencoder(digits):
    x, xv = digits
    for m in (_model(prior="mog", n_components=3), _model(prior="vamp", n_components=5),
              vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(32,))):
        h = vl.train(m, x, epochs=3, batch_size=64, val_data=xv, progress=False, free_bits=0.1)
        assert all(math.isfinite(v) for v in h.train_loss + h.val_loss)
        assert h.train_loss[-1] < h.train_loss[0]


def test_train_rejects_bad_data(digits):
    x, _ = digits
    m = _model()
    with pytest.raises(TypeError, match="images tensor only"):
        vl.train(m, (x, x), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"expected shape \[B, 1, 8, 8\]"):
        vl.train(m, x, epochs=1, val_data=torch.rand(3, 64), progress=False)


def test_history_dict_access(digits):
    x, xv = digits
    h = vl.train(_model(), x, epochs=1, val_data=xv, progress=False)
    assert h["train_loss"] == h.train_loss
    assert set(h.to_dict()) >= {"train_loss", "recon", "kl", "val_loss", "val_recon", "val_kl", "samples_per_s"}
