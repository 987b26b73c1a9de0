"""vae_lib.vq: the quantizer against brute force and autograd, the bound against exact enumeration."""
import itertools
import math
from collections import Counter

import pytest
import torch

import vae_lib as vl
from vae_lib.vq import VQVAE, VectorQuantizer, codebook_usage, exact_log_likelihood, fit_index_prior, index_log_prob


def _digits(n=64, seed=0):
    x, _ = vl.load_dataset("mnist-5k", "train")
    return vl.binarize(x[:n], seed=seed)


def test_nearest_code_is_the_brute_force_argmin():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=17, code_dim=5, init_scale=1.0)
    z = torch.randn(6, 9, 5)
    brute = torch.tensor([[min(range(17), key=lambda k: float(((z[a, b] - vq.codebook.detach()[k]) ** 2).sum()))
                           for b in range(9)] for a in range(6)])
    assert torch.equal(vq.nearest(z), brute)
    assert torch.equal(vq.nearest(z), torch.cdist(z.reshape(-1, 5), vq.codebook.detach()).argmin(1).reshape(6, 9))
    q = vq(z)
    torch.testing.assert_close(q.z_q, vq.codebook.detach()[brute])  # forward value: the chosen codes


def test_straight_through_gradient_is_the_identity_into_z_e():
    torch.manual_seed(1)
    vq = VectorQuantizer(8, 3, init_scale=1.0)
    z = torch.randn(4, 2, 3, requires_grad=True)
    w = torch.randn(4, 2, 3)
    (vq(z).z_q * w).sum().backward()
    torch.testing.assert_close(z.grad, w)  # ∂z_q/∂z_e = I
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0)  # z_q sends nothing to the codebook


def test_codebook_loss_moves_the_codebook_only_and_commitment_the_encoder_only():
    torch.manual_seed(2)
    vq = VectorQuantizer(6, 4, init_scale=1.0)
    z = torch.randn(10, 4, requires_grad=True)
    q = vq(z)
    g_z, g_e = torch.autograd.grad(q.codebook_loss, [z, vq.codebook], allow_unused=True)
    assert g_z is None and g_e is not None and g_e.abs().sum() > 0
    e = vq.codebook.detach()[q.indices]
    expected = torch.zeros(6, 4).index_add_(0, q.indices, 2 * (e - z.detach()) / 10)  # ∂ mean‖sg[z]−e‖² / ∂e
    torch.testing.assert_close(g_e, expected)
    q = vq(z)
    g_z, g_e = torch.autograd.grad(q.commitment_loss, [z, vq.codebook], allow_unused=True)
    assert g_e is None
    torch.testing.assert_close(g_z, 2 * (z.detach() - e) / 10)  # ∂ mean‖z−sg[e]‖² / ∂z


def test_elbo_kl_is_n_log_k_and_extra_holds_both_losses():
    torch.manual_seed(0)
    m = VQVAE(n_latents=5, n_codes=12, code_dim=3)
    x = _digits(16)
    t = m.elbo(x)
    torch.testing.assert_close(t.kl, torch.full((16,), 5 * math.log(12)))
    assert m.code_nats == pytest.approx(5 * math.log(12))
    q = m.quantize(x)
    torch.testing.assert_close(t.extra, q.codebook_loss + 0.25 * q.commitment_loss)
    torch.testing.assert_close(vl.objective(t, 1.0), (t.recon + t.kl).mean() + t.extra)
    ref = -torch.distributions.Bernoulli(logits=m.decode(q.z_q.flatten(1))).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(t.recon, ref)  # −log p(x|z_q), nats per image
    assert t.z.shape == (16, 15)
    assert m.encode_indices(x).shape == (16, 5) and m.encode_indices(x).dtype == torch.long
    torch.testing.assert_close(m.decode_indices(m.encode_indices(x)), m.decode(q.z_q.flatten(1)))


def test_codebook_usage_against_a_hand_computation():
    torch.manual_seed(3)
    m = VQVAE(n_latents=4, n_codes=10, code_dim=2, init_scale=1.0)
    x = _digits(50)
    perplexity, used, counts = codebook_usage(m, x)
    flat = m.encode_indices(x).flatten().tolist()
    c = Counter(flat)
    assert counts.tolist() == [c.get(k, 0) for k in range(10)] and int(counts.sum()) == 200
    h = -sum(v / 200 * math.log(v / 200) for v in c.values())
    assert perplexity == pytest.approx(math.exp(h), rel=1e-9)
    assert used == pytest.approx(len(c) / 10)


def test_index_prior_counts_and_log_prob():
    torch.manual_seed(4)
    m = VQVAE(n_latents=3, n_codes=5, code_dim=2, init_scale=1.0)
    x = _digits(40)
    idx = m.encode_indices(x)
    lp = fit_index_prior(m, x, alpha=0.5)
    for j in range(3):
        c = Counter(idx[:, j].tolist())
        hand = torch.tensor([math.log((c.get(k, 0) + 0.5) / (40 + 2.5)) for k in range(5)])
        torch.testing.assert_close(lp[j], hand)
    hand_lp = torch.stack([lp[j, idx[:, j]] for j in range(3)]).sum(0)
    torch.testing.assert_close(index_log_prob(m, x, lp), hand_lp)
    torch.testing.assert_close(index_log_prob(m, x), torch.full((40,), -3 * math.log(5)))
    s = m.sample(7, lp, generator=torch.Generator().manual_seed(0))
    assert s.shape == (7, 1, 28, 28) and 0 <= float(s.min()) and float(s.max()) <= 1


def test_ema_update_matches_the_running_means():
    torch.manual_seed(5)
    vq = VectorQuantizer(4, 2, init_scale=1.0, ema_decay=0.8)
    assert not vq.codebook.requires_grad
    e0, z = vq.codebook.detach().clone(), torch.randn(30, 2)
    idx = vq.nearest(z)
    vq.eval()
    vq(z)
    torch.testing.assert_close(vq.codebook.detach(), e0)  # eval mode never moves the codebook
    vq.train()
    vq(z)
    n = torch.bincount(idx, minlength=4).float()
    count = 0.8 * torch.ones(4) + 0.2 * n
    s = 0.8 * e0 + 0.2 * torch.zeros(4, 2).index_add_(0, idx, z)
    n_k = (count + 1e-5) / (count.sum() + 4e-5) * count.sum()
    torch.testing.assert_close(vq.codebook.detach(), s / n_k[:, None])


def test_dead_code_restart_moves_unused_codes_onto_encoder_outputs():
    torch.manual_seed(6)
    vq = VectorQuantizer(3, 2, init_scale=1.0, ema_decay=0.5, restart_dead=True)
    vq.codebook.data = torch.tensor([[0.0, 0.0], [0.1, 0.0], [50.0, 50.0]])
    vq.ema_sum.copy_(vq.codebook.data)
    z = 0.01 * torch.randn(20, 2)  # all near the first two codes: the third is never chosen
    for _ in range(10):  # its running count halves each step: 0.5^7 < 1e-2
        vq(z)
    assert float(vq.codebook.detach()[2].norm()) < 0.1  # restarted from (50, 50) into the cloud of z_e


def test_train_lowers_the_loss_and_the_elbo_bounds_the_exact_log_likelihood():
    torch.manual_seed(0)
    m = VQVAE(n_latents=2, n_codes=4, code_dim=2, hidden=(32,), ema_decay=0.9)
    x = _digits(256)
    h = vl.train(m, x, epochs=4, batch_size=64, lr=3e-3, binarize=True, progress=False)
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.kl == pytest.approx([2 * math.log(4)] * 4)
    xs = x[:20]
    exact = exact_log_likelihood(m, xs)  # log Σ_c 4^−2 p(x|c) over all 16 sequences, [20]
    neg_elbo = m.elbo(xs).recon + m.elbo(xs).kl
    assert torch.all(-neg_elbo <= exact + 1e-4)
    # exact log p(x) for image 0 by a plain loop over the sequences, with torch.distributions
    terms = []
    for c in itertools.product(range(4), repeat=2):
        logits = m.decode_indices(torch.tensor([c]))
        terms.append(torch.distributions.Bernoulli(logits=logits).log_prob(xs[:1]).sum() - 2 * math.log(4))
    assert float(exact[0]) == pytest.approx(float(torch.logsumexp(torch.stack(terms), 0)), abs=1e-3)
    ev = vl.evaluate(m, xs)
    assert ev["kl"] == pytest.approx(2 * math.log(4))


def test_gradient_codebook_trains_with_the_codebook_loss():
    torch.manual_seed(0)
    m = VQVAE(n_latents=2, n_codes=4, code_dim=2, hidden=(16,))
    e0 = m.quantizer.codebook.detach().clone()
    vl.train(m, _digits(64), epochs=1, batch_size=32, progress=False)
    assert not torch.equal(e0, m.quantizer.codebook.detach())  # Adam moved it through the codebook loss


def test_bad_input_errors():
    with pytest.raises(ValueError, match="n_codes"):
        VectorQuantizer(0, 4)
    with pytest.raises(ValueError, match="code_dim"):
        VQVAE(code_dim=2.5)
    with pytest.raises(ValueError, match="commitment"):
        VQVAE(commitment=-1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        VectorQuantizer(4, 2, ema_decay=1.5)
    with pytest.raises(ValueError, match="restart_dead"):
        VectorQuantizer(4, 2, restart_dead=True)
    vq = VectorQuantizer(4, 2)
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        vq(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="long"):
        vq.lookup(torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        vq.lookup(torch.tensor([4]))
    m = VQVAE(n_latents=3, n_codes=4, code_dim=2)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        m.decode_indices(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        m.elbo(torch.zeros(2, 784))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        codebook_usage(m, torch.full((2, 1, 28, 28), 2.0))
    with pytest.raises(TypeError, match="VQVAE"):
        codebook_usage(vl.VAE(), _digits(4))
    with pytest.raises(ValueError, match="alpha"):
        fit_index_prior(m, _digits(4), alpha=0.0)
    with pytest.raises(ValueError, match="log_probs"):
        index_log_prob(m, _digits(4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="n_samples"):
        m.sample(0)
    with pytest.raises(ValueError, match="max_sequences"):
        exact_log_likelihood(VQVAE(n_latents=8, n_codes=32), _digits(2))


def test_chapter_10_figures_draw():
    """Every figure of vae_lib.plots.vq draws, with axes, on a tiny untrained model."""
    from matplotlib.figure import Figure
    model = VQVAE(input_shape=(1, 28, 28), n_codes=8, code_dim=4, n_latents=4, hidden=(16,))
    idx = model.encode_indices(_digits(4))
    figs = [
        vl.plots.plot_codebook_usage({"a": torch.bincount(idx.flatten(), minlength=8), "b": torch.ones(8)}),
        vl.plots.plot_code_atlas(model, idx[0], positions=range(2), codes=range(3)),
        vl.plots.plot_ldm_pipeline(),
        vl.plots.plot_hierarchy_diagram(n_layers=3),
    ]
    assert set(vl.plots.vq.__all__) == {"plot_codebook_usage", "plot_code_atlas", "plot_ldm_pipeline",
                                        "plot_hierarchy_diagram"}
    for fig in figs:
        assert isinstance(fig, Figure) and fig.axes
        fig.canvas.draw()
