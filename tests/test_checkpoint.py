"""Checkpoints round-trip, are written atomically, and refuse tampered or mismatched files."""
import pickle

import pytest
import torch

import vae_lib as vl


@pytest.fixture
def model():
    torch.manual_seed(0)
    return vl.VAE(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,), prior="mog", n_components=2)


def test_round_trip(model, tmp_path):
    path = vl.save_checkpoint(model, tmp_path / "m.pt", extra={"note": "hi"})
    loaded = vl.load_checkpoint(path)
    assert isinstance(loaded, vl.VAE) and loaded.config == model.config
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.encode(x), model.encode(x))
    assert list(tmp_path.iterdir()) == [tmp_path / "m.pt"]  # no temp files left


def test_autoencoder_round_trip(tmp_path):
    ae = vl.Autoencoder(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    assert isinstance(vl.load_checkpoint(vl.save_checkpoint(ae, tmp_path / "ae.pt")), vl.Autoencoder)


def test_missing_file(tmp_path):
    with pytest.raises(vl.CheckpointError, match="no checkpoint"):
        vl.load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(vl.CheckpointError, match="not a readable"):
        vl.load_checkpoint(p)


def test_tampered_weights(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["state_dict"]["encoder.1.0.weight"][0, 0] += 1.0
    torch.save(payload, p)
    with pytest.raises(vl.CheckpointError, match="modified"):
        vl.load_checkpoint(p)


def test_mismatched_config(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["config"]["latent_dim"] = 5
    from vae_lib.checkpoint import _digest
    payload["sha256"] = _digest(payload["config"], payload["state_dict"])  # consistent but wrong shape
    torch.save(payload, p)
    with pytest.raises(vl.CheckpointError, match="do not fit"):
        vl.load_checkpoint(p)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(vl.CheckpointError, match="not a readable"):
        vl.load_checkpoint(p)


def test_other_torch_file(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(vl.CheckpointError, match="not a vae_lib checkpoint"):
        vl.load_checkpoint(tmp_path / "other.pt")


def test_failed_write_keeps_the_old_file(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    before = p.read_bytes()

    def boom(tmp):
        open(tmp, "wb").write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        vl.checkpoint.atomic_write(p, boom)
    assert p.read_bytes() == before
    assert list(tmp_path.iterdir()) == [p]
