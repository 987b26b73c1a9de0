"""vae_lib.widgets: every explorer redraws when any control moves, shows only finite numbers
at extreme settings, agrees with independent references (torch.distributions, the analytic
variance of the reparameterization estimator), saves its picture in widget state, and has a
kernel-free scrubber twin with more than one frame.

Offline, seeded, CPU: tiny MLP VAEs on scikit-learn's 8x8 digits.
"""
from __future__ import annotations

import base64
import math
import re

import ipywidgets
import pytest
import torch
from ipywidgets.embed import dependency_state, embed_data
from torch.distributions import Independent, Normal, kl_divergence

import vae_lib as vl
from vae_lib import widgets as W

FACTORIES = {"mu_sigma_explorer", "posterior_prior_explorer", "reparam_explorer", "beta_explorer",
             "latent_explorer"}
SCRUBBERS = {name.replace("_explorer", "_scrubber") for name in FACTORIES}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits():
    x, y = vl.load_dataset("digits", split="val")  # [180, 1, 8, 8] in [0, 1], labels 0-9
    return x, y


def _tiny_vae(latent_dim: int = 2, seed: int = 0) -> vl.VAE:
    """Untrained, seeded: the widgets' job is to draw whatever model they are given."""
    torch.manual_seed(seed)
    return vl.VAE(input_shape=(1, 8, 8), latent_dim=latent_dim, hidden=(16,)).eval()


@pytest.fixture(scope="module")
def vae2():
    return _tiny_vae(2)


@pytest.fixture(scope="module")
def vae3():
    return _tiny_vae(3)


@pytest.fixture(scope="module")
def sweep(digits):
    """A tiny β sweep built directly from SweepPoint objects (one seed per β), β = 0 included."""
    x = digits[0]
    points = []
    for seed, beta in enumerate((0.0, 1.0, 4.0)):
        model = _tiny_vae(2, seed=seed)
        ev = vl.evaluate(model, x, beta=beta)
        points.append(vl.SweepPoint(beta=beta, model=model, history=vl.History(), rate=ev["kl"],
                                    distortion=ev["recon"]))
    return points


@pytest.fixture(scope="module")
def explorers(digits, vae2, vae3, sweep):
    x, y = digits
    return {
        "mu_sigma_explorer": lambda **kw: W.mu_sigma_explorer(**kw),
        "posterior_prior_explorer": lambda **kw: W.posterior_prior_explorer(vae3, x, y, **kw),
        "reparam_explorer": lambda **kw: W.reparam_explorer(**{"trials": 300, "sample_counts": (1, 10, 100), **kw}),
        "beta_explorer": lambda **kw: W.beta_explorer(sweep, x, **kw),
        "latent_explorer": lambda **kw: W.latent_explorer(vae2, x, y, **kw),
    }


# ------------------------------------------------------------------------------ helpers
def _pictures(w) -> dict:
    return {k: img.value for k, img in w.images.items()}


def _other_value(c: ipywidgets.Widget):
    """A valid value for control ``c`` that differs from its current one."""
    if isinstance(c, (ipywidgets.SelectionSlider, ipywidgets.Dropdown)):
        values = [o[1] if isinstance(o, tuple) else o for o in c.options]
        return next(v for v in reversed(values) if v != c.value)
    if isinstance(c, ipywidgets.IntSlider):
        return c.max if c.value != c.max else c.min
    if isinstance(c, ipywidgets.FloatSlider):
        v = c.min + 0.73 * (c.max - c.min)
        return v if abs(v - c.value) > 1e-6 else c.min
    raise TypeError(f"no rule for {type(c).__name__}")


def _assert_finite(w) -> None:
    bad = {k: v for k, v in w.state.items() if not math.isfinite(v)}
    assert not bad, f"non-finite numbers shown: {bad}"
    assert not re.search(r"\b(nan|inf)\b", w.text.value, re.I), w.text.value


def _frames(html) -> int:
    """Number of frames in a to_jshtml player (and check it has a range slider)."""
    text = html.data
    assert re.search(r'<input[^>]*type="range"', text), "no <input type=\"range\"> player"
    return len(re.findall(r"data:image/png;base64,", text))


# ------------------------------------------------------------------------------ API
def test_all_lists_exactly_the_public_factories():
    assert set(W.__all__) == FACTORIES | SCRUBBERS | {"Explorer", "View"} | set(W.conditional.__all__)  # Part II's: tests/test_conditional.py
    assert len(W.__all__) == len(set(W.__all__))
    for name in W.__all__:
        assert callable(getattr(W, name)) and getattr(W, name).__doc__


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_control_redraws_and_is_saved(name, explorers):
    w = explorers[name]()
    assert isinstance(w, ipywidgets.Widget)
    assert w.controls and w.images and w.image is next(iter(w.images.values()))
    for img in w.images.values():
        assert img.value[:8] == b"\x89PNG\r\n\x1a\n"
    _assert_finite(w)
    for key, control in w.controls.items():
        before_pics, before_state = _pictures(w), dict(w.state)
        control.value = _other_value(control)
        changed = [k for k in before_pics if w.images[k].value != before_pics[k]]
        assert changed, f"{name}: moving {key!r} left every picture unchanged"
        assert w.state != before_state, f"{name}: moving {key!r} left the numbers unchanged"
        _assert_finite(w)
    # the static book renders saved widget state: the last PNG must be in it
    data = embed_data(views=[w], state=dependency_state(w))
    images = [m for m in data["manager_state"]["state"].values() if m["model_name"] == "ImageModel"]
    assert len(images) == len(w.images)
    for m in images:
        (buf,) = [b for b in m["buffers"] if b["path"] == ["value"]]
        assert base64.b64decode(buf["data"])[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------ chapter 1
@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.5, 0.4), (-2.0, 2.5)])
def test_mu_sigma_kl_matches_torch_distributions(mu, sigma):
    w = W.mu_sigma_explorer(mu=mu, sigma=sigma)
    ref = kl_divergence(Normal(torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64)),
                        Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)))
    assert w.state["kl"] == pytest.approx(float(ref), rel=1e-9, abs=1e-12)
    assert w.state["sample_mean"] == pytest.approx(mu, abs=4 * sigma / math.sqrt(2000))
    assert w.state["sample_std"] == pytest.approx(sigma, rel=0.06)


def test_mu_sigma_extremes_are_finite():
    w = W.mu_sigma_explorer(mu_range=(-1e9, 1e9), sigma_range=(0.0, 3.0))
    w.controls["sigma"].value = 0.0  # σ → 0 is floored, not divided by
    assert w.state["sigma"] == W.SIGMA_MIN
    _assert_finite(w)
    w.controls["mu"].value = 1e9  # |μ| is capped
    assert w.state["mu"] == W.MU_MAX
    _assert_finite(w)
    w.controls["sigma"].value = 3.0
    w.controls["mu"].value = -1e9
    _assert_finite(w)


# ------------------------------------------------------------------------------ chapter 2
def test_posterior_kl_matches_torch_distributions(digits, vae3):
    x, y = digits
    w = W.posterior_prior_explorer(vae3, x, y, index=7, dims=(1, 2))
    with torch.no_grad():
        mu, logvar = vae3.encode(x[7:8])
    q = Independent(Normal(mu[0], torch.exp(0.5 * logvar[0])), 1)
    p = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    assert w.state["kl"] == pytest.approx(float(kl_divergence(q, p)), rel=1e-4, abs=1e-5)
    assert w.state["label"] == float(y[7])
    assert w.state["mu_1"] == pytest.approx(float(mu[0, 1]), abs=1e-5)  # dims=(1, 2) are drawn
    assert w.state["sigma_2"] == pytest.approx(float(torch.exp(0.5 * logvar[0, 2])), rel=1e-4)


def test_posterior_needs_a_vae_and_two_dims(digits):
    x, _ = digits
    with pytest.raises(TypeError, match="Autoencoder"):
        W.posterior_prior_explorer(vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)), x)
    with pytest.raises(ValueError, match="latent_dim >= 2"):
        W.posterior_prior_explorer(vl.VAE(input_shape=(1, 8, 8), latent_dim=1, hidden=(16,)), x)


def test_posterior_without_labels_and_learned_prior(digits):
    x, _ = digits
    torch.manual_seed(0)
    model = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), prior="mog", n_components=3)
    w = W.posterior_prior_explorer(model, x[:50])  # Monte Carlo KL for a learned prior
    assert "label" not in w.state
    _assert_finite(w)
    w.controls["index"].value = 49
    _assert_finite(w)


# ------------------------------------------------------------------------------ chapter 3
def test_reparam_matches_analytic_variance():
    """For f(z) = z², the reparameterization estimate (1/n) Σ 2(μ + σ ε_i) has variance 4σ²/n."""
    w = W.reparam_explorer(mu=0.8, sigma=1.5, n_samples=10, sample_counts=(10, 100), trials=2000)
    s = w.state
    assert s["true_grad"] == pytest.approx(1.6)
    assert s["reparam_var"] == pytest.approx(4 * 1.5 ** 2 / 10, rel=0.1)
    assert s["reparam_mean"] == pytest.approx(1.6, abs=4 * math.sqrt(0.9 / 2000))
    assert s["score_var"] > 3 * s["reparam_var"]  # the lesson of chapter 3
    w.controls["n_samples"].value = 100
    assert w.state["reparam_var"] == pytest.approx(4 * 1.5 ** 2 / 100, rel=0.1)


@pytest.mark.parametrize("mu, sigma, n", [(0.8, 1.5, 10), (-1.2, 0.3, 100), (0.0, 2.0, 1)])
def test_reparam_shows_exactly_what_gradient_estimates_gives(mu, sigma, n):
    w = W.reparam_explorer(mu=mu, sigma=sigma, n_samples=n, sample_counts=(n,), trials=500, seed=3)
    for est in ("reparam", "score"):
        ref = vl.gradient_estimates(mu, sigma, n, trials=500, estimator=est, seed=3)[:, 0].double()
        assert w.state[f"{est}_mean"] == pytest.approx(float(ref.mean()), rel=1e-4, abs=1e-5)
        assert w.state[f"{est}_var"] == pytest.approx(float(ref.var()), rel=1e-4, abs=1e-6)


def test_reparam_extremes_are_finite():
    w = W.reparam_explorer(mu_range=(-1e9, 1e9), sigma_range=(0.0, 3.0), sample_counts=(1, 1000), n_samples=1, trials=200)
    w.controls["sigma"].value = 0.0
    assert w.state["sigma"] == W.SIGMA_MIN
    _assert_finite(w)
    w.controls["mu"].value = 1e9
    _assert_finite(w)
    w.controls["n_samples"].value = 1000
    _assert_finite(w)


# ------------------------------------------------------------------------------ chapter 4
def test_beta_explorer_visits_every_point(sweep, digits):
    w = W.beta_explorer(sweep, digits[0])
    assert w.state["beta"] == 1.0  # default: the point nearest β = 1
    for p in sweep:
        w.controls["beta"].value = p.beta
        assert w.state["beta"] == p.beta
        assert w.state["rate"] == pytest.approx(p.rate)
        assert w.state["distortion"] == pytest.approx(p.distortion)
        _assert_finite(w)  # β = 0 included


# ------------------------------------------------------------------------------ chapter 5
def test_latent_extreme_coordinates_are_finite(digits, vae3):
    x, y = digits
    w = W.latent_explorer(vae3, x, y, dims=(0, 2), extent=1e3, center=torch.tensor([0.0, 5.0, 0.0]))
    for z1, z2 in ((1e3, -1e3), (-1e3, 1e3)):
        w.controls["z1"].value, w.controls["z2"].value = z1, z2
        assert (w.state["z1"], w.state["z2"]) == (z1, z2)
        _assert_finite(w)
    w.controls["dim"].value = 1  # a dimension off the plane
    w.controls["t"].value = 1.0
    _assert_finite(w)


def test_latent_interpolation_ends_are_the_posterior_means(digits, vae2):
    x, _ = digits
    w = W.latent_explorer(vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)), x)  # works for an AE
    _assert_finite(w)
    w = W.latent_explorer(vae2, x, a=3, b=11)
    with torch.no_grad():
        mu, _ = vae2.encode(x[[3, 11]])
    w.controls["t"].value = 0.0
    assert (w.state["zt_1"], w.state["zt_2"]) == pytest.approx(tuple(mu[0].tolist()), abs=1e-5)
    w.controls["t"].value = 1.0
    assert (w.state["zt_1"], w.state["zt_2"]) == pytest.approx(tuple(mu[1].tolist()), abs=1e-5)


def test_each_latent_control_redraws_only_its_tab(digits, vae2):
    w = W.latent_explorer(vae2, digits[0])
    tab_of = {"z1": "move", "z2": "move", "dim": "traverse", "base": "traverse", "a": "interpolate",
              "b": "interpolate", "t": "interpolate"}
    assert set(w.controls) == set(tab_of)
    for key, tab in tab_of.items():
        before = _pictures(w)
        w.controls[key].value = _other_value(w.controls[key])
        assert [k for k in before if w.images[k].value != before[k]] == [tab], key


# ------------------------------------------------------------------------------ scrubbers
def test_scrubbers_are_players_with_several_frames(digits, vae2, sweep):
    x, y = digits
    small = dict(figsize=(4.0, 2.4))
    players = {
        "mu_sigma_scrubber": W.mu_sigma_scrubber(values=[(0.0, 1.0), (2.0, 0.0), (1e9, 0.5)], **small),
        "posterior_prior_scrubber": W.posterior_prior_scrubber(vae2, x, y, indices=[0, 5], max_points=100, **small),
        "reparam_scrubber": W.reparam_scrubber(sample_counts=(1, 100), trials=200, **small),
        "beta_scrubber": W.beta_scrubber(sweep[:2], x, **small),
        "latent_scrubber": W.latent_scrubber(vae2, x, y, values=[(0.0, 0.0), (2.0, -1.0)], max_points=100, **small),
    }
    assert set(players) == SCRUBBERS
    for name, html in players.items():
        assert _frames(html) > 1, name
    assert _frames(players["beta_scrubber"]) == 2


@pytest.mark.parametrize("mode, frames", [("traverse", 2), ("interpolate", 3)])
def test_latent_scrubber_modes(digits, vae2, mode, frames):
    values = [0, 1] if mode == "traverse" else [0.0, 0.5, 1.0]
    html = W.latent_scrubber(vae2, digits[0], mode=mode, values=values, max_points=100, figsize=(4.0, 2.4))
    assert _frames(html) == frames
    with pytest.raises(ValueError, match="mode"):
        W.latent_scrubber(vae2, digits[0], mode="spin")


# ------------------------------------------------------------------------------ bad counts (issue 12)
def test_zero_and_negative_counts_raise_a_clear_value_error(digits, vae2, sweep):
    x, y = digits
    small = dict(figsize=(3.0, 2.0))
    cases = {
        "mu_sigma n_samples": (lambda v: W.mu_sigma_explorer(n_samples=v), "n_samples"),
        "mu_sigma_scrubber n_samples": (lambda v: W.mu_sigma_scrubber(n_samples=v, **small), "n_samples"),
        "posterior n_samples": (lambda v: W.posterior_prior_explorer(vae2, x, y, n_samples=v), "n_samples"),
        "posterior max_points": (lambda v: W.posterior_prior_explorer(vae2, x, y, max_points=v), "max_points"),
        "posterior_scrubber n_samples": (lambda v: W.posterior_prior_scrubber(vae2, x, n_samples=v, **small),
                                         "n_samples"),
        "reparam n_samples": (lambda v: W.reparam_explorer(n_samples=v, sample_counts=(1,), trials=50), "n_samples"),
        "reparam sample_counts": (lambda v: W.reparam_explorer(n_samples=1, sample_counts=(1, v), trials=50),
                                  "sample count"),
        "reparam trials": (lambda v: W.reparam_explorer(sample_counts=(1,), n_samples=1, trials=v), "trials"),
        "reparam_scrubber sample_counts": (lambda v: W.reparam_scrubber(sample_counts=(v,), trials=50, **small),
                                           "sample count"),
        "beta n_samples": (lambda v: W.beta_explorer(sweep, x, n_samples=v), "n_samples"),
        "beta n_images": (lambda v: W.beta_explorer(sweep, x, n_images=v), "n_images"),
        "beta_scrubber n_samples": (lambda v: W.beta_scrubber(sweep, x, n_samples=v, **small), "n_samples"),
        "latent steps": (lambda v: W.latent_explorer(vae2, x, steps=v), "steps"),
        "latent max_points": (lambda v: W.latent_explorer(vae2, x, max_points=v), "max_points"),
        "latent_scrubber steps": (lambda v: W.latent_scrubber(vae2, x, mode="traverse", steps=v, **small), "steps"),
    }
    for name, (make, arg) in cases.items():
        for bad in (0, -3):
            with pytest.raises(ValueError, match=arg) as info:
                make(bad)
            assert ">= " in str(info.value), f"{name}: the message should say the smallest value allowed"
    with pytest.raises(ValueError, match="integer"):
        W.mu_sigma_explorer(n_samples=2.5)
    with pytest.raises(ValueError, match="extent"):
        W.latent_explorer(vae2, x, extent=0.0)
    with pytest.raises(ValueError, match="at least one value"):
        W.latent_scrubber(vae2, x, mode="interpolate", values=[], **small)
    with pytest.raises(ValueError, match="SweepPoint"):
        W.beta_explorer([], x)


def test_smallest_counts_work(digits, vae2):
    x, y = digits
    w = W.posterior_prior_explorer(vae2, x, y, n_samples=1, max_points=1)
    _assert_finite(w)
    w = W.latent_explorer(vae2, x, steps=1, max_points=1)
    w.controls["dim"].value = 1
    _assert_finite(w)
    w = W.reparam_explorer(n_samples=1, sample_counts=(1,), trials=2)
    _assert_finite(w)


# ------------------------------------------------------------------------------ the view contract
def test_every_view_meets_the_view_protocol(explorers):
    for name, make in explorers.items():
        w = make()
        assert isinstance(w, W.Explorer), name
        for key, panel in w.panels.items():
            assert isinstance(panel.view, W.View), (name, key)


def test_views_compose_instead_of_copying_attributes():
    """No ``__dict__.update`` composition and no duck typing of views through getattr (issue 9)."""
    import pathlib

    root = pathlib.Path(W.__file__).parent
    for path in [*root.glob("*.py"), *(root.parent / "plots").glob("*.py")]:
        text = path.read_text()
        assert "__dict__.update" not in text, path.name
        assert not re.search(r"getattr\(\s*(self\.)?view", text), path.name


def test_a_teachers_own_view_is_shown_and_a_bad_one_is_refused():
    from vae_lib.widgets._base import _Panel, _figure, _float_slider

    class Line:  # the three members of the View protocol, nothing else
        def __init__(self, fig):
            (self.line,) = fig.add_subplot().plot([0, 1], [0, 0])
            self.dynamic, self.needs_full = [self.line], False

        def update(self, slope):
            self.line.set_ydata([0, slope])
            return {"slope": float(slope)}

    fig = _figure((2.0, 2.0), 60)
    w = W.Explorer({"slope": _float_slider("slope", 0.5, 0.0, 1.0)}, {"main": _Panel(fig, Line(fig), ("slope",), 60)},
                   lambda s: f"slope {s['slope']:.2f}")
    before = w.image.value
    w.controls["slope"].value = 0.9
    assert w.state == {"slope": pytest.approx(0.9)} and w.image.value != before

    class NoUpdate:
        dynamic, needs_full = None, False

    with pytest.raises(TypeError, match="View"):
        _Panel(fig, NoUpdate(), (), 60)


def test_posterior_draws_are_the_library_reparameterization(digits, vae3):
    """The decoded draws are vl.reparameterize(μ, log σ², Generator(seed), n_samples=S): the same ε per seed."""
    x, y = digits
    w = W.posterior_prior_explorer(vae3, x, y, index=4, n_samples=5, seed=7)
    w.controls["seed"].value = 7  # unchanged: no redraw; then a real change of seed and back
    with torch.no_grad():
        mu, logvar = vae3.encode(x[4:5])
        z = vl.reparameterize(mu[0], logvar[0], torch.Generator().manual_seed(7), n_samples=5)  # [5, 3]
        ref = vae3.decode_mean(z).mean()
    assert w.state["sample_pixel_mean"] == pytest.approx(float(ref), rel=1e-5)
    w.controls["index"].value = 9
    w.controls["index"].value = 4  # moving the index and back keeps the draws of this seed
    assert w.state["sample_pixel_mean"] == pytest.approx(float(ref), rel=1e-5)
