"""The same checks on a CUDA GPU. Skipped where there is none."""
import pytest
import torch

import vae_lib as vl

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_default_device_is_cuda():
    assert vl.default_device().type == "cuda"


def test_kl_and_reparam_on_cuda():
    mu = torch.randn(8, 4, device="cuda", requires_grad=True)
    logvar = torch.randn(8, 4, device="cuda", requires_grad=True)
    ref = vl.kl_standard_normal(mu.detach().cpu(), logvar.detach().cpu())
    torch.testing.assert_close(vl.kl_standard_normal(mu, logvar).cpu(), ref)
    z = vl.reparameterize(mu, logvar, generator=torch.Generator(device="cuda").manual_seed(0))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))


@pytest.mark.parametrize("amp", [False, True])
def test_training_on_cuda_lowers_loss_and_is_reproducible(amp):
    x, _ = vl.load_dataset("mnist-5k", "train")
    xv, _ = vl.load_dataset("mnist-5k", "val")
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = vl.VAE()
        h = vl.train(m, x, epochs=3, val_data=xv, device="cuda", progress=False, amp=amp, seed=1)
        runs.append(h.train_loss)
        assert next(m.parameters()).is_cuda
        assert h.val_loss[-1] < h.val_loss[0]
    if not amp:
        assert runs[0] == pytest.approx(runs[1], rel=1e-4)


def test_metrics_on_cuda():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,), prior="vamp", n_components=4).cuda()
    x = torch.rand(20, 1, 8, 8)
    ll = vl.iwae_log_likelihood(m, x, k=50)
    assert ll.shape == (20,) and torch.isfinite(ll).all()
    assert 0 <= vl.active_units(m, x) <= 3
    gap = vl.aggregate_posterior_gap(m, x, n_samples=200)
    assert gap.hole_fraction >= 0


def test_checkpoint_from_cuda_loads_on_cpu(tmp_path):
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)).cuda()
    loaded = vl.load_checkpoint(vl.save_checkpoint(m, tmp_path / "m.pt"), map_location="cpu")
    assert next(loaded.parameters()).device.type == "cpu"


def test_fused_step_matches_autograd_on_cuda():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=4, hidden=(32,)).cuda()
    x = torch.rand(50, 1, 8, 8, device="cuda")
    torch.manual_seed(3)
    t = m.elbo(x)
    t.loss.backward()
    ref = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    stats = vl.fused.FusedStep(m)(x, 1.0)
    assert stats.is_cuda
    torch.testing.assert_close(stats[0], t.loss.detach(), rtol=1e-5, atol=1e-4)
    for k, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref[k], rtol=1e-4, atol=1e-5)
