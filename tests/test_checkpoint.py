"""Checkpoints round-trip, are written atomically, and refuse tampered or mismatched files."""
import os
import pickle
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib import atomic


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


# --- Gaussian models, NumPy metadata, honest error messages -------------------------------


@pytest.mark.parametrize("obs_std", [None, 0.2])  # learned obs_log_std (a 0-dim Parameter) or a fixed buffer
def test_gaussian_vae_round_trip(tmp_path, obs_std):
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), likelihood="gaussian", obs_std=obs_std)
    loaded = vl.load_checkpoint(vl.save_checkpoint(m, tmp_path / "g.pt"))
    assert loaded.likelihood == "gaussian" and loaded.obs_log_std.dim() == 0
    assert torch.equal(loaded.obs_log_std, m.obs_log_std)
    x = torch.rand(3, 1, 8, 8)
    z = torch.randn(3, 2)
    torch.testing.assert_close(loaded.log_likelihood(loaded.decode(z), x), m.log_likelihood(m.decode(z), x))


def test_digest_against_an_independent_reference():
    """sha256 over sorted JSON config, then per tensor: name, dtype, shape, raw bytes (numpy's)."""
    import hashlib
    import json

    from vae_lib.checkpoint import _digest

    state = {"b": torch.tensor(-2.3), "a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
             "e": torch.zeros(0, 4)}
    config = {"z": 1, "a": [2, 3]}
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in ("a", "b", "e"):
        t = state[name].contiguous()
        h.update(name.encode() + f"{t.dtype}{tuple(t.shape)}".encode() + t.numpy().tobytes())
    assert _digest(config, state) == h.hexdigest()


def test_numpy_values_in_extra_are_stored_as_python_values(model, tmp_path):
    extra = {"val_loss": np.float32(1.5), "n": np.int64(7), "f64": np.float64(2.5), "ok": np.bool_(True),
             "curve": np.array([1.0, 2.0], dtype=np.float32), "nested": {"k": (np.float16(0.5), "s")}}
    p = vl.save_checkpoint(model, tmp_path / "m.pt", extra=extra)
    assert isinstance(vl.load_checkpoint(p), vl.VAE)
    stored = torch.load(p, weights_only=True)["extra"]
    assert stored == {"val_loss": 1.5, "n": 7, "f64": 2.5, "ok": True, "curve": [1.0, 2.0], "nested": {"k": [0.5, "s"]}}
    assert type(stored["val_loss"]) is float and type(stored["n"]) is int and type(stored["f64"]) is float


def test_unstorable_extra_is_refused_before_writing(model, tmp_path):
    with pytest.raises(TypeError, match=r"extra\['obj'\].*cannot store"):
        vl.save_checkpoint(model, tmp_path / "m.pt", extra={"obj": object()})
    assert list(tmp_path.iterdir()) == []


def test_refused_objects_are_not_called_truncated(model, tmp_path):
    """A complete zip holding a NumPy scalar (what the old save wrote) is refused for what it is."""
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["extra"] = {"val_loss": np.float32(1.5)}
    torch.save(payload, p)
    with pytest.raises(vl.CheckpointError, match="refuses") as info:
        vl.load_checkpoint(p)
    assert "truncated" not in str(info.value)


def test_truncation_is_called_truncated(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    whole = p.read_bytes()
    for size in (0, 100, len(whole) - 30):  # empty, cut early, cut just before the end
        p.write_bytes(whole[:size])
        with pytest.raises(vl.CheckpointError, match="truncated or corrupt"):
            vl.load_checkpoint(p)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_map_location_on_a_cpu_machine_says_so(model, tmp_path):
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="CUDA is not available") as info:
        vl.load_checkpoint(p, map_location="cuda")
    assert not isinstance(info.value, vl.CheckpointError) and "truncated" not in str(info.value)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        vl.load_checkpoint(p, map_location="gpu0")
    assert isinstance(vl.load_checkpoint(p, map_location="cpu"), vl.VAE)  # the file itself is fine


# --- vae_lib.atomic: permissions, all-or-nothing, litter of killed writers ---------------------


@pytest.fixture
def umask():
    """Set the process umask for one test: ``umask(0o002)``; the old one is restored after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_the_permissions_open_would_give(model, tmp_path, umask, mask):
    umask(mask)
    p = vl.save_checkpoint(model, tmp_path / "m.pt")
    j = atomic.atomic_write(tmp_path / "a.json", lambda tmp: tmp.write_text("{}"))
    with open(tmp_path / "ref", "w"):  # what open() gives a new file under this umask
        pass
    want = stat.S_IMODE(os.stat(tmp_path / "ref").st_mode)
    assert want == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(p).st_mode) == want and stat.S_IMODE(os.stat(j).st_mode) == want


def test_failed_write_of_several_files_leaves_nothing_new(tmp_path):
    (tmp_path / "old.txt").write_text("old")

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    writes = {tmp_path / "a.txt": lambda t: t.write_text("a"), tmp_path / "old.txt": lambda t: t.write_text("new"),
              tmp_path / "b.png": boom}
    with pytest.raises(OSError, match="disk full"):
        atomic.atomic_write_all(writes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]
    assert (tmp_path / "old.txt").read_text() == "old"
    del writes[tmp_path / "b.png"]
    assert atomic.atomic_write_all(writes) == [tmp_path / "a.txt", tmp_path / "old.txt"]
    assert (tmp_path / "old.txt").read_text() == "new" and (tmp_path / "a.txt").read_text() == "a"


def test_a_folder_in_the_way_is_refused_before_writing(tmp_path):
    (tmp_path / "b.png").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        atomic.atomic_write_all({tmp_path / "a.txt": lambda t: t.write_text("a"), tmp_path / "b.png": lambda t: None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]


_KILLED_WRITER = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec); spec.loader.exec_module(atomic)
def write(tmp):
    tmp.write_bytes(b"half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write: no except or finally runs
atomic.atomic_write(sys.argv[2], write)
"""


def _kill_a_writer(target):
    """Run a process that SIGKILLs itself while writing ``target``; return the litter it leaves."""
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITER, atomic.__file__, str(target)], capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    return [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_litter_of_a_killed_save_is_removed_by_the_next_save_or_load(model, tmp_path):
    target = tmp_path / "m.pt"
    litter = _kill_a_writer(target)
    assert len(litter) == 1 and litter[0].name.endswith(".tmp") and not target.exists()
    vl.save_checkpoint(model, target)
    assert sorted(tmp_path.iterdir()) == [target]
    litter = _kill_a_writer(target)
    assert len(litter) == 1
    assert isinstance(vl.load_checkpoint(target), vl.VAE)
    assert sorted(tmp_path.iterdir()) == [target]


def test_temp_files_of_live_writers_and_other_targets_are_kept(tmp_path):
    target = tmp_path / "m.pt"
    host = atomic._HOST
    live = tmp_path / f".m.pt.{host}-{os.getppid()}-00ab.tmp"  # our parent process is alive
    other_target = tmp_path / f".n.pt.{host}-999999999-00ab.tmp"
    other_host_fresh = tmp_path / ".m.pt.otherhost-1-00ab.tmp"
    other_host_old = tmp_path / ".m.pt.otherhost-2-00ab.tmp"
    for p in (live, other_target, other_host_fresh, other_host_old):
        p.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(other_host_old, (two_days_ago, two_days_ago))
    assert atomic.remove_stale_temps(target) == [other_host_old]
    assert {p.name for p in tmp_path.iterdir()} == {live.name, other_target.name, other_host_fresh.name}


@pytest.mark.parametrize("kw", [dict(likelihood="logistic", n_mixtures=2, arch="conv", conv_channels=(4, 8)),
                                dict(likelihood="discretized_gaussian", obs_std=None),
                                dict(likelihood="categorical")])
def test_grey_level_vae_round_trip(tmp_path, kw):
    torch.manual_seed(0)
    m = vl.VAE(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), **kw)
    loaded = vl.load_checkpoint(vl.save_checkpoint(m, tmp_path / "grey.pt"))
    assert loaded.config == m.config and loaded.likelihood == kw["likelihood"]
    x = torch.randint(0, 256, (3, 1, 8, 8)).float() / 255
    z = torch.randn(3, 2)
    torch.testing.assert_close(loaded.log_likelihood(loaded.decode(z), x), m.log_likelihood(m.decode(z), x))
