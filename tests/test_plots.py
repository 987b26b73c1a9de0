"""Every figure function returns a pyplot-free Figure; image grids tile correctly; the
scrubber fetches nothing from the network."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import vae_lib as vl
from vae_lib import plots


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
    x = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(30) % 10
    return m, x, y


def test_tile_places_images_row_major_with_white_gaps():
    imgs = torch.stack([torch.full((1, 2, 2), v) for v in (0.1, 0.2, 0.3)])
    grid = plots.core._tile(imgs, nrow=2)
    assert grid.shape == (5, 5)
    np.testing.assert_allclose(grid[0, 0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(grid[0, 3], 0.2, rtol=1e-6)
    np.testing.assert_allclose(grid[3, 0], 0.3, rtol=1e-6)
    assert grid[2, 0] == 0.0 and grid[3, 3] == 0.0  # gaps and the empty slot are white under gray_r


def test_core_figures(small):
    m, x, y = small
    h = vl.train(m, x, epochs=2, batch_size=10, val_data=x, progress=False, device="cpu")
    pts = [vl.SweepPoint(beta=b, model=m, history=h, rate=r, distortion=d) for b, r, d in ((1, 3, 40), (4, 1, 45))]
    figs = [plots.image_grid(x[:10], nrow=5), plots.plot_reconstructions(m, x), plots.plot_prior_samples(m, n=8),
            plots.plot_posterior_samples(m, x[:1]), plots.plot_latent_scatter(m, x, y),
            plots.plot_latent_scatter(vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), x, y),
            plots.plot_latent_manifold(m, n=5), plots.plot_interpolations(m, x[:2], x[2:4], steps=4),
            plots.plot_loss_curves(h), plots.plot_rate_distortion(pts)]
    for fig in figs:
        assert isinstance(fig, Figure) and fig.axes
        fig.canvas.draw()  # renders without error


def test_public_names_exist():
    for name in plots.__all__:
        assert callable(getattr(plots, name)), name


def test_scrubber_has_frames_and_no_cdn_link():
    def draw(fig, v):
        fig.add_subplot().plot([0, 1], [0, v])

    html = plots.jshtml_scrubber(draw, [0.0, 0.5, 1.0], figsize=(2, 2)).data
    assert '<input type="range"' in html or "type=\"range\"" in html
    assert "font-awesome" not in html and "cdn" not in html.lower()
    assert html.count("data:image/png;base64") >= 3
