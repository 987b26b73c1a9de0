"""python -m vae_lib train / evaluate / sample write what they promise."""
import json
import subprocess
import sys

import vae_lib as vl
from vae_lib.cli import main


def test_train_evaluate_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--latent-dim", "3", "--hidden", "32",
                 "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.pt", "history.json", "loss.png", "reconstructions.png",
                                               "samples.png"}
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]["val_loss"]) == 2
    assert isinstance(vl.load_checkpoint(out / "model.pt"), vl.VAE)
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "digits", "--checkpoint", str(out / "model.pt"), "--iwae-k", "10",
                 "--limit", "20", "--out", str(tmp_path / "ev.json")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 20 and res["neg_iwae_k10"] <= res["neg_elbo"] + 1.0
    assert json.loads((tmp_path / "ev.json").read_text()) == res
    assert main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_errors_are_messages_not_tracebacks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vae_lib", "train", "--dataset", "mnist", "--root", str(tmp_path),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "mnist-5k" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "vae_lib", "sample", "--checkpoint", str(tmp_path / "x.pt")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no checkpoint" in r.stderr
