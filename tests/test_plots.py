"""Every figure function returns a pyplot-free Figure; image grids tile correctly; the
scrubber fetches nothing from the network."""
import numpy as np
import pytest
import torch
from pathlib import Path
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
    grid = plots.tile_images(imgs, nrow=2)
    assert grid.shape == (5, 5)
    np.testing.assert_allclose(grid[0, 0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(grid[0, 3], 0.2, rtol=1e-6)
    np.testing.assert_allclose(grid[3, 0], 0.3, rtol=1e-6)
    assert grid[2, 0] == 0.0 and grid[3, 3] == 0.0  # gaps and the empty slot are white under gray_r


def test_tile_images_rgb_no_pad_and_bad_shapes():
    rgb = torch.rand(3, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    grid = plots.tile_images(rgb, nrow=2, pad=0)
    assert grid.shape == (4, 4, 3)
    np.testing.assert_allclose(grid[2:, :2], rgb[2].permute(1, 2, 0).numpy(), rtol=1e-6)
    assert (grid[2:, 2:] == 1.0).all()  # the empty slot is white in RGB
    with pytest.raises(ValueError, match="N, C, H, W"):
        plots.tile_images(torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match="nrow"):
        plots.tile_images(rgb, nrow=0)


@pytest.mark.parametrize("kind", ["vae", "autoencoder"])
def test_interpolation_images_decode_the_straight_line_between_codes(small, kind):
    m, x, _ = small
    if kind == "autoencoder":
        torch.manual_seed(0)
        m = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
    x_a, x_b = x[:3], x[3:6]
    imgs = plots.interpolation_images(m, x_a, x_b, steps=5)
    assert imgs.shape == (3, 5, 1, 8, 8)
    with torch.no_grad():  # independent reference: codes straight from encode, decoded one t at a time
        za, zb = m.encode(x_a), m.encode(x_b)
        za, zb = (za[0], zb[0]) if kind == "vae" else (za, zb)
        for k, t in enumerate((0.0, 0.25, 0.5, 0.75, 1.0)):
            torch.testing.assert_close(imgs[:, k], m.decode_mean((1 - t) * za + t * zb))
    assert plots.interpolation_images(m, x_a, x_b, steps=1).shape == (3, 1, 1, 8, 8)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="steps >= 1"):
            plots.interpolation_images(m, x_a, x_b, steps=bad)
    with pytest.raises(ValueError, match="paired"):
        plots.interpolation_images(m, x_a, x[:2])


@pytest.mark.parametrize("n_classes", [3, 10, 15, 26])
def test_class_scatter_gives_each_class_its_own_colour(n_classes):
    """Any number of classes: one distinct colour per class, and class k of tab10 up to 10 classes."""
    from matplotlib.colors import to_rgba

    fig = plots.new_figure()
    ax = fig.add_subplot()
    labels = torch.arange(2 * n_classes) % n_classes
    pts = torch.randn(2 * n_classes, 2, generator=torch.Generator().manual_seed(0))
    sc = plots.class_scatter(ax, pts, labels, colorbar=True)
    fig.canvas.draw()
    face = sc.get_facecolors()[:, :3]  # one RGBA per point, in order
    np.testing.assert_allclose(sc.get_offsets(), pts.numpy())
    for k in range(n_classes):  # the two points of class k share a colour, no other class has it
        np.testing.assert_allclose(face[k], face[k + n_classes])
    assert len({tuple(np.round(c, 6)) for c in face[:n_classes]}) == n_classes
    if n_classes <= 10:
        from matplotlib import colormaps
        for k in range(n_classes):
            np.testing.assert_allclose(face[k], to_rgba(colormaps["tab10"].colors[k])[:3], atol=1e-6)
    assert plots.class_colormap(n_classes).N == n_classes


def test_class_scatter_and_primitives_reject_bad_input():
    ax = plots.new_figure().add_subplot()
    with pytest.raises(ValueError, match="one label per point"):
        plots.class_scatter(ax, torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="non-negative integers"):
        plots.class_scatter(ax, torch.zeros(2, 2), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="n_classes >= 5"):
        plots.class_scatter(ax, torch.zeros(2, 2), torch.tensor([0, 4]), n_classes=3)
    with pytest.raises(ValueError, match="positive integer"):
        plots.class_colormap(0)
    with pytest.raises(ValueError, match="same shape"):
        plots.add_posterior_ellipses(ax, torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="out of range"):
        plots.add_posterior_ellipses(ax, torch.zeros(2, 2), torch.zeros(2, 2), dims=(0, 2))
    with pytest.raises(ValueError, match="limit"):
        plots.latent_axes(ax, limit=float("inf"))


def test_posterior_ellipses_have_the_posterior_geometry():
    """Ellipse k: centre μ_k in the plane dims, full axes 2·n_std·σ_k = 2·n_std·exp(½ log σ²)."""
    ax = plots.new_figure().add_subplot()
    mu = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    logvar = torch.log(torch.tensor([[0.04, 0.25, 1.0], [1.0, 4.0, 0.01]]))  # σ² per dimension
    ells = plots.add_posterior_ellipses(ax, mu, logvar, dims=(2, 0), n_std=1.5, colors=["red", "blue"],
                                        face_alpha=0.2, lw=2)
    sd = torch.tensor([[0.2, 0.5, 1.0], [1.0, 2.0, 0.1]])
    for k, e in enumerate(ells):
        assert e.center == pytest.approx((float(mu[k, 2]), float(mu[k, 0])))
        assert (e.width, e.height) == pytest.approx((3.0 * float(sd[k, 2]), 3.0 * float(sd[k, 0])), rel=1e-6)
        assert e.get_facecolor()[3] == pytest.approx(0.2) and e.get_linewidth() == 2
    assert [tuple(e.get_edgecolor()) for e in ells] == [(1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0)]
    assert len(plots.add_posterior_ellipses(ax, mu[0], logvar[0])) == 1  # one posterior, [D]
    assert plots.latent_axes(ax, (2, 0), 3.0).get_xlabel() == "$z_{3}$" and ax.get_ylim() == (-3.0, 3.0)


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


def test_chapter_figures(small):
    """Every other public figure draws once (catches broken imports inside the functions)."""
    m, x, y = small
    h = vl.train(m, x, epochs=2, batch_size=10, val_data=x, progress=False, device="cpu")
    g = torch.Generator().manual_seed(0)
    pts = [vl.SweepPoint(beta=b, model=m, history=h, rate=r, distortion=d) for b, r, d in ((1, 3, 40), (4, 1, 45))]
    mog = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), prior="mog", n_components=3)
    neg_elbo = torch.rand(6, generator=g) + 50
    called = {
        "plot_reparam_graph": lambda: plots.plot_reparam_graph(),
        "plot_gradient_variance": lambda: plots.plot_gradient_variance(
            vl.gradient_variance_table(1.0, 1.0, sample_counts=(1, 10), trials=50), true_value=2.0,
            per_sample_var={"reparam": 4.0, "score": 30.0}),
        "plot_posteriors_over_prior": lambda: plots.plot_posteriors_over_prior(m, x, y, highlight=2),
        "plot_kl_landscape": lambda: plots.plot_kl_landscape(torch.zeros(2), torch.zeros(2)),
        "plot_mc_convergence": lambda: plots.plot_mc_convergence(
            [1, 10, 100], 1.0 + torch.randn(3, 20, generator=g) / torch.tensor([[1.0], [3.0], [10.0]]), 1.0),
        "plot_elbo_vs_iwae": lambda: plots.plot_elbo_vs_iwae(-neg_elbo, -neg_elbo + 1, k=10),
        "plot_encode_sample_decode": lambda: plots.plot_encode_sample_decode(m, x[:1], background=x, background_y=y),
        "plot_posterior_width": lambda: plots.plot_posterior_width(m, x[:3], 0.5 * x[:3]),
        "plot_pixel_nats": lambda: plots.plot_pixel_nats(torch.rand(5, 1, 8, 8, generator=g)),
        "plot_history_comparison": lambda: plots.plot_history_comparison({"a": h, "b": h}),
        "plot_bound_vs_k": lambda: plots.plot_bound_vs_k([1, 10], torch.stack([neg_elbo - 0.1, neg_elbo - 1]),
                                                         neg_elbo),
        "plot_aggregate_posterior": lambda: plots.plot_aggregate_posterior({"standard": m, "mog": mog}, x, y,
                                                                           n_grid=21, n_points=30),
        "plot_kl_per_dim": lambda: plots.plot_kl_per_dim({"a": torch.rand(4, generator=g)}, threshold=0.5),
        "plot_image_grids": lambda: plots.plot_image_grids({"a": x[:8], "b": x[8:16]}),
        "plot_beta_grid": lambda: plots.plot_beta_grid(pts, x, n=4),
    }
    covered = {"new_figure", "tile_images", "interpolation_images", "latent_axes", "class_colormap", "class_scatter",
               "add_posterior_ellipses", "show_images", "image_grid", "plot_reconstructions", "plot_prior_samples",
               "plot_posterior_samples", "plot_latent_scatter", "plot_latent_manifold", "plot_interpolations",
               "plot_loss_curves", "plot_rate_distortion", "jshtml_scrubber"}  # by the tests around this one
    part_two = {n: m for m in ("conditional", "representations", "likelihoods", "vq")
                for n in getattr(plots, m).__all__}  # drawn in tests/test_<chapter module>.py
    assert set(called) | covered | set(part_two) == set(plots.__all__)
    tests_text = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_plots.py")
    untested = sorted(n for n in part_two if f"{n}(" not in tests_text)
    assert not untested, f"Part II figures that no test draws: {untested}"
    for name, make in called.items():
        fig = make()
        assert isinstance(fig, Figure) and fig.axes, name
        fig.canvas.draw()


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
