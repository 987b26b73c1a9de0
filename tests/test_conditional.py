"""The conditional VAE (vae_lib.conditional): its ELBO against torch.distributions, the one-class
limit against an unconditional computation, shapes, label checks, the IWAE bound, the style
measures against closed forms, the trainer's cond plumbing, and chapter 7's widget."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae_lib as vl
from vae_lib.conditional import ConditionalVAE, decode_every_label, style_agreement, style_statistics

SHAPE = (1, 6, 6)
P = 36


def _model(seed: int = 0, n_classes: int = 3, latent_dim: int = 4, hidden=(16,)) -> ConditionalVAE:
    torch.manual_seed(seed)
    return ConditionalVAE(input_shape=SHAPE, n_classes=n_classes, latent_dim=latent_dim, hidden=hidden)


def _data(n: int = 8, seed: int = 0, n_classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, *SHAPE), 0.4), generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return x, y


def _by_hand(model: ConditionalVAE, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
    """The conditional ELBO's terms from the raw weights and torch.distributions."""
    enc, dec = [m for m in model.encoder if isinstance(m, torch.nn.Linear)], \
        [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    onehot = F.one_hot(y, model.n_classes).float()
    h = torch.relu(enc[0](torch.cat([x.flatten(1), onehot], 1)))
    mu, logvar = enc[1](h).chunk(2, -1)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = dec[1](torch.relu(dec[0](torch.cat([z, onehot], 1))))
    log_px = Independent(Bernoulli(logits=logits), 1).log_prob(x.flatten(1))
    return -log_px, kl_divergence(q, p), z


def test_elbo_matches_torch_distributions():
    model, (x, y) = _model(), _data()
    terms = model.elbo(x, beta=0.5, generator=torch.Generator().manual_seed(3), cond=y)
    eps = torch.randn(x.shape[0], 4, generator=torch.Generator().manual_seed(3))  # the same ε
    recon, kl, z = _by_hand(model, x, y, eps)
    torch.testing.assert_close(terms.z, z)
    torch.testing.assert_close(terms.recon, recon, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(terms.kl, kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms.kl_per_dim.sum(-1), kl)
    torch.testing.assert_close(terms.loss, (recon + 0.5 * kl).mean(), rtol=1e-5, atol=1e-4)


def test_one_class_equals_an_unconditional_vae():
    """With K = 1 the one-hot is a constant 1: copying the weights (the label's column folded into
    the biases) into a plain VAE gives the same ELBO for the same ε."""
    cvae, (x, _) = _model(n_classes=1), _data()
    y = torch.zeros(x.shape[0], dtype=torch.long)
    vae = vl.VAE(input_shape=SHAPE, latent_dim=4, hidden=(16,))
    with torch.no_grad():
        enc_c = [m for m in cvae.encoder if isinstance(m, torch.nn.Linear)]
        dec_c = [m for m in cvae.decoder if isinstance(m, torch.nn.Linear)]
        enc_v = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
        dec_v = [m for m in vae.decoder.modules() if isinstance(m, torch.nn.Linear)]
        for c, v in ((enc_c[0], enc_v[0]), (dec_c[0], dec_v[0])):  # first layers: drop the label column
            v.weight.copy_(c.weight[:, :-1])
            v.bias.copy_(c.bias + c.weight[:, -1])  # W [x, 1] + b = W_x x + (b + w_1)
        for c, v in ((enc_c[1], enc_v[1]), (dec_c[1], dec_v[1])):
            v.load_state_dict(c.state_dict())
    tc = cvae.elbo(x, generator=torch.Generator().manual_seed(5), cond=y)
    tv = vae.elbo(x, generator=torch.Generator().manual_seed(5))
    for a, b in ((tc.recon, tv.recon), (tc.kl, tv.kl), (tc.loss, tv.loss)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(vl.iwae_log_likelihood(cvae, x, k=16, cond=y),
                               vl.iwae_log_likelihood(vae, x, k=16), rtol=1e-5, atol=1e-4)


def test_shapes_and_broadcasting():
    model, (x, y) = _model(), _data(5)
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (5, 4)
    assert model.decode(mu, y).shape == (5, *SHAPE)
    z = torch.randn(7, 5, 4)  # [S, B, D] with cond [B]: the one-hot is broadcast over S
    out = model.decode(z, y)
    assert out.shape == (7, 5, *SHAPE)
    torch.testing.assert_close(out[3], model.decode(z[3], y))
    assert model.sample(6, 2).shape == (6, *SHAPE)
    assert model.sample(3, torch.tensor([0, 1, 2])).shape == (3, *SHAPE)
    grid = decode_every_label(model, mu)
    assert grid.shape == (5, 3, *SHAPE)
    torch.testing.assert_close(grid[:, 1], model.decode_mean(mu, torch.ones(5, dtype=torch.long)))
    assert decode_every_label(model, mu, labels=[2, 0]).shape == (5, 2, *SHAPE)
    assert model.reconstruct(x, y).shape == (5, *SHAPE)
    assert ConditionalVAE.conditional is True
    assert model.config["n_classes"] == 3 and model.prior_log_prob(z).shape == (7, 5)
    torch.testing.assert_close(model.prior_log_prob(z), Independent(Normal(0.0, torch.ones(4)), 1).log_prob(z))


def test_the_label_changes_the_output():
    model, (x, y) = _model(), _data(4)
    z = torch.randn(4, 4)
    a, b = model.decode(z, torch.zeros(4, dtype=torch.long)), model.decode(z, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("bad, err, match", [
    (torch.tensor([0.0, 1.0, 2.0, 0.0]), ValueError, "torch.long"),
    (torch.tensor([0, 1, 2, 0], dtype=torch.int32), ValueError, "cond.long"),
    (torch.tensor([[0, 1], [2, 0]]), ValueError, "shape \\[B\\]"),
    (torch.tensor([0, 1, 2]), ValueError, "3 labels for 4 images"),
    (torch.tensor([0, 1, 3, 0]), ValueError, "in \\[0, 3\\)"),
    (torch.tensor([0, -1, 2, 0]), ValueError, "in \\[0, 3\\)"),
    ([0, 1, 2, 0], TypeError, "torch.Tensor"),
])
def test_bad_labels_raise(bad, err, match):
    model, (x, _) = _model(), _data(4)
    with pytest.raises(err, match=match):
        model.elbo(x, cond=bad)


def test_other_bad_input_raises():
    model, (x, y) = _model(), _data(4)
    with pytest.raises(ValueError, match="needs the labels"):
        model.elbo(x)
    with pytest.raises(ValueError, match="n_classes"):
        ConditionalVAE(n_classes=0)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0, 1)
    with pytest.raises(ValueError, match="in \\[0, 3\\)"):
        model.sample(2, 5)
    with pytest.raises(ValueError, match="expected z"):
        model.decode(torch.randn(4, 5), y)
    with pytest.raises(ValueError, match="2 labels for 4"):
        model.decode(torch.randn(4, 4), y[:2])
    with pytest.raises(ValueError, match="expected shape"):
        model.encode(x[:, :, :5], y)
    with pytest.raises(ValueError, match="empty"):
        decode_every_label(model, torch.randn(2, 4), labels=[])
    with pytest.raises(TypeError, match="conditional model"):
        decode_every_label(vl.VAE(input_shape=SHAPE, latent_dim=4), torch.randn(2, 4))


def test_iwae_is_at_least_the_elbo_and_tightens():
    model, (x, y) = _model(), _data(64)
    with torch.no_grad():
        elbo = -model.elbo(x, generator=torch.Generator().manual_seed(0), cond=y).loss
    # the expected ELBO, from many single-sample draws
    elbos = torch.stack([-vl.evaluate(model, x, cond=y, seed=s)["loss"] * torch.ones(()) for s in range(20)]).mean()
    iw1 = vl.iwae_log_likelihood(model, x, k=1, cond=y, seed=1).mean()
    iw64 = vl.iwae_log_likelihood(model, x, k=64, cond=y, seed=1).mean()
    assert abs(float(iw1) - float(elbos)) < 0.5, (iw1, elbos)  # k = 1 is the ELBO in expectation
    assert float(iw64) > float(elbos) + 0.05 and float(iw64) > float(elbo)


def test_iwae_by_hand():
    """The library's bound against a direct log-mean-exp of torch.distributions weights."""
    model, (x, y) = _model(), _data(6)
    got = vl.iwae_log_likelihood(model, x, k=32, chunk=32, cond=y, seed=4)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        mu, logvar = model.encode(x, y)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = mu + torch.exp(0.5 * logvar) * torch.randn(32, *mu.shape, generator=g)
        logits = model.decode(z, y).flatten(2)
        log_w = (Bernoulli(logits=logits).log_prob(x.flatten(1)).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1)
                 - q.log_prob(z).sum(-1))
    torch.testing.assert_close(got, torch.logsumexp(log_w, 0) - math.log(32), rtol=1e-5, atol=1e-4)


# --- the style measures -------------------------------------------------------------------

def test_style_statistics_closed_forms():
    img = torch.zeros(3, 1, 9, 9)
    img[0, 0, :, 4] = 1.0  # an upright bar: slant 0, ink 9
    for r in range(9):  # a bar moving one column right per row down: slant +1
        img[1, 0, r, r] = 1.0
    img[2, 0, 2:7, 3:5] = 0.5  # a thick upright block: slant 0, ink 5·2·0.5
    s = style_statistics(img)
    torch.testing.assert_close(s["slant"], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(s["ink"], torch.tensor([9.0, 9.0, 5.0]))
    # the definition, against numpy-style weighted moments for a random image
    g = torch.Generator().manual_seed(0)
    rnd = torch.rand(1, 1, 7, 5, generator=g)
    w = rnd[0, 0].double()
    rr, cc = torch.meshgrid(torch.arange(7.0, dtype=torch.float64), torch.arange(5.0, dtype=torch.float64),
                            indexing="ij")
    er, ec = (w * rr).sum() / w.sum(), (w * cc).sum() / w.sum()
    slant = ((w * (rr - er) * (cc - ec)).sum() / w.sum()) / ((w * (rr - er) ** 2).sum() / w.sum())
    torch.testing.assert_close(style_statistics(rnd)["slant"], slant.float().reshape(1))
    assert style_statistics(torch.zeros(2, 4, 1, 5, 5))["slant"].shape == (2, 4)
    assert float(style_statistics(torch.zeros(1, 1, 5, 5))["slant"]) == 0.0
    with pytest.raises(ValueError, match="grey images"):
        style_statistics(torch.zeros(2, 3, 5, 5))


def test_style_agreement_against_numpy_corrcoef():
    import numpy as np

    g = torch.Generator().manual_seed(0)
    base = torch.randn(50, 1, generator=g)
    stat = base + 0.5 * torch.randn(50, 4, generator=g)  # one shared factor plus noise per label
    c = np.corrcoef(stat.numpy().T)
    expected = c[np.triu_indices(4, 1)].mean()
    assert abs(style_agreement(stat) - expected) < 1e-6
    assert abs(style_agreement(base.repeat(1, 3)) - 1.0) < 1e-9
    assert abs(style_agreement(stat, shuffle_seed=0)) < 0.3  # the pairing broken: near 0
    with pytest.raises(ValueError, match="at least 3 codes"):
        style_agreement(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="2 labels"):
        style_agreement(torch.zeros(5, 1))


# --- the trainer and the metrics pass cond through ------------------------------------------

def test_train_evaluate_and_embed_with_cond():
    model, (x, y) = _model(), _data(40)
    hist = vl.train(model, x, cond=y, val_data=x[:10], val_cond=y[:10], epochs=2, batch_size=16,
                    progress=False, device="cpu")
    assert len(hist.val_loss) == 2 and all(math.isfinite(v) for v in hist.train_loss)
    ev = vl.evaluate(model, x, cond=y, seed=2)
    t = model.elbo(x, generator=torch.Generator().manual_seed(2), cond=y)
    assert abs(ev["recon"] - float(t.recon.mean())) < 1e-3 and abs(ev["kl"] - float(t.kl.mean())) < 1e-4
    # batching with the images: small batches give the same codes as one batch
    torch.testing.assert_close(vl.embed(model, x, batch_size=7, cond=y), model.encode(x, y)[0])
    mu, logvar = vl.posterior_stats(model, x, batch_size=7, cond=y)
    torch.testing.assert_close(logvar, model.encode(x, y)[1])


def test_train_batches_cond_with_the_same_permutation():
    """A model that fails unless each image arrives with its own label: the label is encoded in the image."""
    x = torch.zeros(30, *SHAPE)
    y = torch.arange(30) % 3
    x[torch.arange(30), 0, 0, 0] = y.float() / 2  # pixel (0, 0) holds y / 2
    model = _model()
    seen = []
    original = model.elbo

    def elbo(xb, beta=1.0, generator=None, cond=None):
        seen.append(bool(torch.equal((xb[:, 0, 0, 0] * 2).round().long(), cond)))
        return original(xb, beta=beta, generator=generator, cond=cond)

    model.elbo = elbo
    vl.train(model, x, cond=y, epochs=3, batch_size=7, progress=False, device="cpu")
    assert len(seen) == 15 and all(seen)


def test_train_refuses_mismatched_cond():
    model, (x, y) = _model(), _data(20)
    vae = vl.VAE(input_shape=SHAPE, latent_dim=4, hidden=(16,))
    with pytest.raises(ValueError, match="not a conditional model"):
        vl.train(vae, x, cond=y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="is conditional"):
        vl.train(model, x, epochs=1, progress=False)
    with pytest.raises(ValueError, match="19 rows of cond for 20 images"):
        vl.train(model, x, cond=y[:19], epochs=1, progress=False)
    with pytest.raises(ValueError, match="val_cond"):
        vl.train(model, x, cond=y, val_data=x, epochs=1, progress=False)
    with pytest.raises(ValueError, match="val_cond was given without val_data"):
        vl.train(model, x, cond=y, val_cond=y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="in \\[0, 3\\)"):
        vl.train(model, x, cond=y + 3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="fused"):
        vl.train(model, x, cond=y, epochs=1, progress=False, fused=True)
    with pytest.raises(ValueError, match="not a conditional model"):
        vl.evaluate(vae, x, cond=y)
    with pytest.raises(ValueError, match="is conditional"):
        vl.iwae_log_likelihood(model, x, k=2)


def test_hand_written_step_refuses_cond():
    from vae_lib.steps import hand_written_step

    vae = vl.VAE(input_shape=SHAPE, latent_dim=4, hidden=(16,))
    step = hand_written_step(vae, torch.optim.Adam(vae.parameters()))
    with pytest.raises(ValueError, match="takes no cond"):
        step(torch.zeros(4, *SHAPE), 1.0, cond=torch.zeros(4, dtype=torch.long))


def test_training_learns_to_use_the_label():
    """Two classes that differ only in which half is lit: the trained decoder paints the right half."""
    n = 200
    y = torch.arange(n) % 2
    x = torch.zeros(n, *SHAPE)
    x[y == 0, :, :, :3] = 1.0
    x[y == 1, :, :, 3:] = 1.0
    model = _model(n_classes=2)
    vl.train(model, x, cond=y, epochs=30, batch_size=50, lr=1e-2, progress=False, device="cpu")
    img = model.sample(4, 1)
    assert float(img[..., 3:].mean()) > 0.9 and float(img[..., :3].mean()) < 0.1


# --- chapter 7's widget and its kernel-free twin --------------------------------------------

def _png(w) -> bytes:
    return w.image.value


def test_style_explorer_controls_move_and_redraw():
    from vae_lib.widgets import style_explorer

    model = _model(n_classes=3)
    w = style_explorer(model, dims=(0, 2), extent=2.0, label=1)
    assert set(w.controls) == {"z1", "z2", "label"} and set(w.images) == {"style"}
    assert w.state["label"] == 1 and w.image.value[:4] == b"\x89PNG"
    for key, value in (("z1", 1.5), ("z2", -1.0), ("label", 2)):
        before = _png(w)
        w.controls[key].value = value
        assert _png(w) != before, key
        assert w.state[key] == pytest.approx(value), key
    # the numbers shown are those of the digit drawn: label 2 at z = (1.5, 0, -1.0, 0)
    z = torch.tensor([[1.5, 0.0, -1.0, 0.0]])
    img = model.decode_mean(z, torch.tensor([2]))
    s = style_statistics(img)
    assert w.state["slant"] == pytest.approx(float(s["slant"][0]), abs=1e-5)
    assert w.state["ink"] == pytest.approx(float(s["ink"][0]), rel=1e-5)
    assert "label 2" in w.text.value
    w.controls["z1"].value = 2.0  # the slider's end
    assert all(math.isfinite(v) for v in w.state.values())


def test_style_explorer_and_scrubber_validate_their_arguments():
    from vae_lib.widgets import style_explorer, style_scrubber

    model = _model()
    with pytest.raises(TypeError, match="conditional model"):
        style_explorer(vl.VAE(input_shape=SHAPE, latent_dim=4, hidden=(8,)))
    with pytest.raises(ValueError, match="two different latent dimensions"):
        style_explorer(model, dims=(1, 1))
    with pytest.raises(ValueError, match="two different latent dimensions"):
        style_explorer(model, dims=(0, 4))
    with pytest.raises(ValueError, match="extent"):
        style_explorer(model, extent=0.0)
    with pytest.raises(ValueError, match="center"):
        style_explorer(model, center=torch.zeros(3))
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="n_frames"):
            style_scrubber(model, n_frames=bad)
    with pytest.raises(ValueError, match="non-empty"):
        style_scrubber(model, values=[])


def test_style_scrubber_frames():
    import re

    from vae_lib.widgets import style_scrubber

    model = _model()
    html = style_scrubber(model, values=[(0.0, 0.0), (1.0, -1.0), (2.0, 2.0)], figsize=(4.0, 1.6))
    assert re.search(r'<input[^>]*type="range"', html.data)
    assert len(re.findall(r"data:image/png;base64,", html.data)) == 3
    assert len(re.findall(r"data:image/png;base64,", style_scrubber(model, n_frames=4, figsize=(4.0, 1.6)).data)) == 4


def test_plots_every_label_and_style_pairs():
    model = _model()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    grid = decode_every_label(model, z)
    fig = vl.plots.plot_every_label(grid, row_names=[f"z{i}" for i in range(5)], title="t")
    assert len(fig.axes) == 1 and len(fig.axes[0].get_xticks()) == 3
    fig = vl.plots.plot_style_pairs(style_statistics(grid), pair=(0, 2))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="B, L, C, H, W"):
        vl.plots.plot_every_label(grid[0])
    with pytest.raises(ValueError, match="row names"):
        vl.plots.plot_every_label(grid, row_names=["a"])
    with pytest.raises(ValueError, match="in range"):
        vl.plots.plot_style_pairs(style_statistics(grid), pair=(0, 5))
