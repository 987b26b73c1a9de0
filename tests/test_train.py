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


@pytest.mark.parametrize("setting, value, expected", [
    ("beta", -1.0, "beta must be a finite number >= 0"),
    ("free_bits", -0.5, "free_bits must be a finite number >= 0"),
    ("kl_warmup_epochs", -2, "kl_warmup_epochs must be a finite number >= 0"),
    ("lr", 0.0, "lr must be a finite number > 0"),
    ("lr", -1e-3, "lr must be a finite number > 0"),
    ("lr", float("nan"), "lr must be a finite number > 0"),
    ("beta", float("inf"), "beta must be a finite number >= 0"),
    ("epochs", 0, "epochs must be an int >= 1"),
    ("batch_size", 2.5, "batch_size must be an int >= 1"),
])
def test_out_of_range_settings_raise_saying_what_is_expected(digits, setting, value, expected):
    m = _model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=expected):
        vl.train(m, digits[0], progress=False, **{"epochs": 1, setting: value})
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # refused before any step


@pytest.mark.parametrize("bad, expected", [
    (lambda x: (x * 255).round().to(torch.uint8), r"dtype torch.uint8.*x.float\(\) / 255"),
    (lambda x: x * 255, r"\[0, 1\].*divide by 255"),
    (lambda x: 2 * x - 1, r"\[0, 1\].*\(x \+ 1\) / 2"),
    (lambda x: torch.where(torch.arange(x.numel()).view(x.shape) == 7, float("nan"), x), "NaN or infinite"),
])
@pytest.mark.parametrize("where", ["x_train", "val_data"])
def test_bad_data_is_refused_before_training(digits, bad, expected, where):
    """Issue 12 §3: out-of-range data used to train silently to losses of 1e7 and more."""
    x, xv = digits
    kwargs = {"x_train": bad(x), "val_data": xv} if where == "x_train" else {"x_train": x, "val_data": bad(xv)}
    with pytest.raises(ValueError, match=f"train: {where}: .*{expected}"):
        vl.train(_model(), epochs=1, progress=False, **kwargs)


def test_data_is_value_checked_once_per_dataset_not_per_step(digits, monkeypatch):
    x, xv = digits
    m = _model()
    calls = []
    check = type(m).check_input

    def spy(self, data, where="input", values=False):
        calls.append((where, values))
        return check(self, data, where, values)

    monkeypatch.setattr(type(m), "check_input", spy)
    vl.train(m, x, epochs=2, batch_size=16, val_data=xv, progress=False)  # 84 steps per epoch
    value_checks = [w for w, v in calls if v]
    assert value_checks[:2] == ["train: x_train", "train: val_data"]
    assert len(value_checks) == 2 + 2  # and the per-epoch evaluate(val_data): never per step


def test_divergence_message_does_not_blame_the_data_it_has_checked(digits):
    x, _ = digits
    m = _model()
    original = m.elbo

    def poisoned(xb, beta=1.0, generator=None):
        t = original(xb, beta=beta, generator=generator)
        t.recon = t.recon * float("nan")
        return t

    m.elbo = poisoned
    with pytest.raises(FloatingPointError, match="passed the input check.*lower lr") as err:
        vl.train(m, x, epochs=1, batch_size=64, progress=False)
    assert "check the data" not in str(err.value)


def test_kl_weight_is_the_linear_warmup():
    from vae_lib.train import kl_weight

    assert kl_weight(2.0, 0, 0.0) == 2.0  # no warm-up
    assert [kl_weight(2.0, 4, t) for t in (0, 1, 2, 4, 10)] == [0.0, 0.5, 1.0, 2.0, 2.0]  # β · min(1, t/T)


def test_train_config_defaults_are_trains_keyword_defaults():
    """TrainConfig backs train()'s keywords: one set of defaults, not two that can drift apart."""
    import dataclasses
    import inspect

    from vae_lib.train import TrainConfig

    params = inspect.signature(vl.train).parameters
    for f in dataclasses.fields(TrainConfig):
        assert params[f.name].default == f.default, f.name


def test_trainer_imports_no_model_class_and_metrics_does_not_import_the_trainer():
    import ast
    from pathlib import Path

    lib = Path(vl.__file__).parent

    def top_level_imports(name):
        tree = ast.parse((lib / name).read_text())
        return {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}

    assert not top_level_imports("train.py") & {"model", "fused", "priors"}
    assert "train" not in top_level_imports("metrics.py")
    assert vl.objective is vl.losses.objective and vl.evaluate is vl.metrics.evaluate


# --- side information (cond=): generic plumbing, unchanged without it --------------------------

class _CondVAE(vl.VAE):
    """A conditional model that records its cond and otherwise IS the plain VAE (it ignores cond)."""

    conditional = True

    def elbo(self, x, beta=1.0, generator=None, cond=None):
        assert cond is not None and cond.shape[0] == x.shape[0]
        self.seen.append(cond)
        return super().elbo(x, beta=beta, generator=generator)


def test_cond_leaves_the_run_unchanged_and_is_batched_with_the_images(digits):
    """Same seed, same data order, same ε: a model that ignores its cond trains bit for bit like the
    plain VAE under autograd; and each batch's cond rows are those of its images."""
    x, xv = digits
    x, xv = x[:300], xv[:50]
    plain = _model()
    h_plain = vl.train(plain, x, epochs=2, batch_size=64, val_data=xv, progress=False, device="cpu", fused=False)
    torch.manual_seed(0)
    cond_model = _CondVAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(64,))
    cond_model.seen = []
    index = torch.arange(x.shape[0])
    feats = torch.stack([index.float(), -index.float()], dim=1)  # [N, 2]: any side information, row = image index
    h_cond = vl.train(cond_model, x, cond=feats, val_data=xv, val_cond=feats[:50], epochs=2, batch_size=64,
                      progress=False, device="cpu")
    for a, b in zip(plain.state_dict().values(), cond_model.state_dict().values()):
        assert torch.equal(a, b)
    assert h_plain.train_loss == h_cond.train_loss and h_plain.val_loss == h_cond.val_loss
    train_batches = [c for c in cond_model.seen if c.shape[0] != 50]  # the validation batch is all 50 rows
    rows = torch.cat(train_batches[: -(-300 // 64)])[:, 0].long()  # the first epoch's rows, in order
    assert sorted(rows.tolist()) == list(range(300))  # every image once per epoch, with its own row
    assert all(torch.equal(c[:, 1], -c[:, 0]) for c in cond_model.seen)


def test_cond_errors(digits):
    x, _ = digits
    with pytest.raises(ValueError, match="not a conditional model"):
        vl.train(_model(), x[:20], cond=torch.zeros(20, dtype=torch.long), epochs=1, progress=False)
    torch.manual_seed(0)
    m = _CondVAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(8,))
    with pytest.raises(ValueError, match="is conditional"):
        vl.train(m, x[:20], epochs=1, progress=False)
    with pytest.raises(ValueError, match="19 rows of cond for 20 images"):
        vl.train(m, x[:20], cond=torch.zeros(19), epochs=1, progress=False)
    with pytest.raises(TypeError, match="one row per image"):
        vl.train(m, x[:20], cond=[0] * 20, epochs=1, progress=False)
