"""vae_lib.widgets.explorers, the Python side: the weights a page carries round-trip exactly,
their checksums are the standard ones, a page stays within its budget, its HTML fetches and
evaluates nothing, and a model the page cannot run is refused with what it needs.

The in-browser checks (decoded pixels against PyTorch, update time) are in
tests/test_browser.py. Offline, seeded, CPU: tiny MLP VAEs on scikit-learn's 8x8 digits.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib.widgets import explorers as E


def _vae(latent_dim: int = 2, hidden=(16,), seed: int = 0, **kw) -> vl.VAE:
    torch.manual_seed(seed)
    return vl.VAE(input_shape=(1, 8, 8), latent_dim=latent_dim, hidden=hidden, **kw).eval()


@pytest.fixture(scope="module")
def digits():
    return vl.load_dataset("digits", split="val")  # [180, 1, 8, 8] in [0, 1], labels 0-9


def _spec_from_html(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S)
    assert m, "no JSON spec block in the explorer's HTML"
    return json.loads(m.group(1))


# ------------------------------------------------------------------------- weights
def test_fnv1a32_matches_the_published_test_vectors():
    # FNV-1a 32-bit reference values (Fowler, Noll, Vo: draft-eastlake-fnv test vectors)
    assert E.fnv1a32(b"") == 0x811C9DC5
    assert E.fnv1a32(b"a") == 0xE40C292C
    assert E.fnv1a32(b"foobar") == 0xBF9CF968


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_tensor_round_trip_is_exact(dtype):
    t = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)) * 3
    rec = E.export_tensor("w", t, dtype)
    back = E.import_tensor(rec)
    expected = t if dtype == "float32" else t.half().float()  # float16: exactly the rounded values
    assert back.dtype == torch.float32 and list(back.shape) == [7, 5]
    assert torch.equal(back, expected)
    raw = base64.b64decode(rec["data"])
    assert len(raw) == t.numel() * (4 if dtype == "float32" else 2)
    assert rec["sha256"] == hashlib.sha256(raw).hexdigest()
    # little-endian, row-major, as the page's DataView reads it
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4" if dtype == "float32" else "<f2").reshape(7, 5),
                                  expected.numpy())


def test_uint8_images_round_trip_to_the_nearest_level():
    x = torch.linspace(0, 1, 256)
    back = E.import_tensor(E.export_tensor("x", x, "uint8"))
    assert (back - x).abs().max() <= 0.5 / 255 + 1e-7


def test_corrupt_data_is_refused():
    rec = E.export_tensor("w", torch.ones(4), "float32")
    raw = bytearray(base64.b64decode(rec["data"]))
    raw[0] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        E.import_tensor(dict(rec, data=base64.b64encode(bytes(raw)).decode()))
    with pytest.raises(ValueError, match="float32"):
        E.export_tensor("big", torch.tensor([1e6]), "float16")  # overflows float16
    with pytest.raises(ValueError, match="dtype"):
        E.export_tensor("w", torch.ones(2), "int4")


def test_exported_model_decodes_and_encodes_like_the_model():
    m = _vae(hidden=(16, 12))
    ex = E.export_model(m, "float32", encoder=True)
    assert [l["weight"]["shape"] for l in ex["decoder"]] == [[12, 2], [16, 12], [64, 16]]  # [out, in]
    z = torch.randn(10, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(E.decode_exported(ex, z), m.decode_mean(z), rtol=0, atol=1e-6)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    mu, logvar = E.encode_exported(ex, x)
    mu_ref, logvar_ref = m.encode(x)
    torch.testing.assert_close(mu, mu_ref.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(logvar, logvar_ref.detach(), rtol=0, atol=1e-6)
    # float16: the same maths on the rounded weights, within float16's rounding of the model
    ex16 = E.export_model(m, "float16")
    assert (E.decode_exported(ex16, z) - m.decode_mean(z)).abs().max() < 1e-3
    assert E.import_tensor(ex16["decoder"][0]["weight"]).equal(m.decoder[0][0].weight.detach().half().float())


def test_gaussian_likelihood_decodes_to_the_clipped_mean():
    m = _vae(likelihood="gaussian")
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(3)) * 3
    torch.testing.assert_close(E.decode_exported(E.export_model(m, "float32"), z), m.decode_mean(z),
                               rtol=0, atol=1e-6)


# ------------------------------------------------------------------------- pages
FACTORIES = {
    "latent": lambda m, x, y, **kw: E.browser_latent_explorer(m, x, y, **kw),
    "draw": lambda m, x, y, **kw: E.browser_draw_digit(m, x, y, **kw),
    "reparam": lambda m, x, y, **kw: E.browser_reparam_explorer(m, **kw),
}


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_page_is_self_contained_and_safe(kind, digits):
    x, y = digits
    w = FACTORIES[kind](_vae(), x, y)
    html = w._repr_html_()
    assert w.kind == kind and w.nbytes == len(html.encode())
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I), "the page must fetch nothing"
    js = E.JS_PATH.read_text()
    for forbidden in ["eval(", "new Function", "innerHTML", "import(", "fetch(", "XMLHttpRequest"]:
        assert forbidden not in js, f"explorer.js must not use {forbidden}"
    spec = _spec_from_html(html)
    assert spec["kind"] == kind and spec == json.loads(json.dumps(w.spec))
    assert html.count("<script") == 2  # the JSON block and the module, nothing else
    assert f'id="{w.element_id}"' in html
    # the decoder in the page is the model's, exactly (float16-rounded)
    dec0 = E.import_tensor(spec["model"]["decoder"][0]["weight"])
    assert dec0.equal(_vae().decoder[0][0].weight.detach().half().float())


def test_json_cannot_close_its_script_tag(digits):
    x, _ = digits
    w = E.browser_latent_explorer(_vae(), x, title="</script><script>alert(1)</script>")
    assert "</script><script>alert" not in w.html
    assert _spec_from_html(w.html)["title"] == "</script><script>alert(1)</script>"


def test_reparam_explorer_needs_no_model():
    w = E.browser_reparam_explorer(mu=(9, 0), sigma=(0.001, 5))
    spec = w.spec
    assert spec["model"] is None
    values = {c["name"]: c["value"] for c in spec["controls"]}
    assert values == {"mu1": 3.0, "mu2": 0.0, "sigma1": 0.05, "sigma2": 2.0}  # clamped into the slider ranges


def test_mnist_sized_pages_fit_the_budget():
    torch.manual_seed(0)
    m = vl.VAE(latent_dim=2, hidden=(256,)).eval()  # 784 -> 256 -> 4, 2 -> 256 -> 784
    x = torch.rand(2000, 1, 28, 28)
    y = torch.arange(2000) % 10
    sizes = {"latent": E.browser_latent_explorer(m, x, y).nbytes, "draw": E.browser_draw_digit(m, x, y).nbytes,
             "reparam": E.browser_reparam_explorer(m).nbytes}
    assert all(s <= E.PAGE_BUDGET_BYTES for s in sizes.values()), sizes
    assert E.browser_latent_explorer(m, x, y, dtype="float32").nbytes <= E.PAGE_BUDGET_BYTES
    big = vl.VAE(latent_dim=2, hidden=(400,))
    with pytest.raises(ValueError, match="budget"):
        E.browser_draw_digit(big, dtype="float32")


def test_save_writes_a_standalone_page(tmp_path, digits):
    x, y = digits
    path = E.browser_latent_explorer(_vae(), x, y).save(tmp_path / "latent.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "vlMountExplorer" in text and '<meta charset="utf-8">' in text


# ------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_wrong_latent_dimension_is_refused(kind):
    with pytest.raises(ValueError, match=r"latent_dim=2.*latent_dim=5"):
        FACTORIES[kind](_vae(latent_dim=5), None, None)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_conv_model_is_refused(kind):
    torch.manual_seed(0)
    conv = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), arch="conv")
    with pytest.raises(ValueError, match="arch='mlp'"):
        FACTORIES[kind](conv, None, None)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
@pytest.mark.parametrize("kind", ["draw", "reparam"])
def test_non_standard_prior_is_refused_where_the_page_draws_it(kind, prior):
    m = _vae(prior=prior, n_components=3)
    with pytest.raises(ValueError, match="prior='standard'"):
        FACTORIES[kind](m, None, None)


def test_latent_explorer_runs_any_prior_and_an_autoencoder(digits):
    x, y = digits
    assert E.browser_latent_explorer(_vae(prior="mog", n_components=3), x, y).kind == "latent"
    torch.manual_seed(0)
    ae = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
    assert E.browser_latent_explorer(ae, x, y).spec["model"]["latent_dim"] == 2


@pytest.mark.parametrize("kind", ["draw", "reparam"])
def test_autoencoder_is_refused_where_a_vae_is_needed(kind):
    torch.manual_seed(0)
    ae = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))
    with pytest.raises(TypeError, match="needs a vl.VAE"):
        FACTORIES[kind](ae, None, None)


def test_other_objects_and_bad_settings_are_refused(digits):
    x, y = digits
    with pytest.raises(TypeError, match="vl.VAE"):
        E.browser_latent_explorer(torch.nn.Linear(2, 64))
    with pytest.raises(ValueError, match="steps"):
        E.browser_latent_explorer(_vae(), steps=1)
    with pytest.raises(ValueError, match="n_samples"):
        E.browser_draw_digit(_vae(), n_samples=0)
    with pytest.raises(ValueError, match="extent"):
        E.browser_latent_explorer(_vae(), extent=(1, -1, 0, 1))
    with pytest.raises(ValueError, match="dtype"):
        E.browser_latent_explorer(_vae(), dtype="bfloat16")
    with pytest.raises(ValueError, match="sigma_range"):
        E.browser_reparam_explorer(sigma_range=(0, 1))


def test_draw_digit_examples_are_one_per_class(digits):
    x, y = digits
    spec = E.browser_draw_digit(_vae(), x, y, n_examples=4).spec
    assert spec["example_names"] == ["0", "1", "2", "3"]
    ex = E.import_tensor(spec["examples"])
    first = [int((y == k).nonzero()[0]) for k in range(4)]
    assert (ex - x[first]).abs().max() <= 0.5 / 255 + 1e-6
