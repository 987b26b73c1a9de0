"""python -m vae_lib train / evaluate / sample: write what they promise, check every input first, fail in one line."""
import gzip
import json
import os
import stat
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib import cli
from vae_lib.cli import TRAIN_OUTPUTS, main

TINY = ["--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "16", "--no-progress",
        "--device", "cpu"]


def run_cli(argv, capsys):
    """``main(argv)`` in this process: (exit status, stdout, stderr); argparse's exits included."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the command gets as far as training."""
    def train(*args, **kwargs):
        raise AssertionError("training started although the input was bad")
    monkeypatch.setattr(cli, "train", train)


def test_train_evaluate_sample(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", *TINY, "--epochs", "2", "--out", str(out)], capsys)
    assert rc == 0, err
    assert {p.name for p in out.iterdir()} == set(TRAIN_OUTPUTS)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]["val_loss"]) == 2
    assert hist["validation"] == {"source": "val", "n": len(vl.load_dataset("digits", "val")[0]),
                                  "binarized_seed": None}
    assert isinstance(vl.load_checkpoint(out / "model.pt"), vl.VAE)
    rc, stdout, err = run_cli(["evaluate", "--dataset", "digits", "--checkpoint", str(out / "model.pt"),
                               "--iwae-k", "10", "--limit", "20", "--out", str(tmp_path / "ev.json")], capsys)
    assert rc == 0, err
    res = json.loads(stdout)
    assert res["n"] == 20 and res["neg_iwae_k10"] <= res["neg_elbo"] + 1.0
    assert json.loads((tmp_path / "ev.json").read_text()) == res
    rc, _, err = run_cli(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.png")], capsys)
    assert rc == 0, err
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_gaussian_likelihood_trains_and_saves(tmp_path, capsys):
    out = tmp_path / "g"
    rc, _, err = run_cli(["train", *TINY, "--likelihood", "gaussian", "--out", str(out)], capsys)
    assert rc == 0, err
    assert {p.name for p in out.iterdir()} == set(TRAIN_OUTPUTS)
    model = vl.load_checkpoint(out / "model.pt")
    assert model.likelihood == "gaussian"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_outputs_get_the_permissions_open_would_give(tmp_path, capsys):
    old = os.umask(0o002)
    try:
        rc, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    finally:
        os.umask(old)
    assert rc == 0, err
    for name in TRAIN_OUTPUTS:
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o664, name


def test_choices_come_from_the_library_constants():
    from vae_lib.model import ARCHS, LIKELIHOODS
    from vae_lib.priors import PRIORS

    train_parser = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train_parser._actions if a.choices}
    assert choices == {"dataset": vl.DATASETS, "arch": ARCHS, "likelihood": LIKELIHOODS, "prior": PRIORS}
    assert all(choices[k] is v for k, v in [("dataset", vl.DATASETS), ("arch", ARCHS), ("prior", PRIORS)])


# --- every bad input: one "error:" line, exit 2, before any work --------------------------------

BAD_ARGS = [  # (command line, words the error must contain)
    (["train", "--lr", "1e6"], "argument --lr: must be in (0, 1]"),
    (["train", "--lr", "0"], "argument --lr"),
    (["train", "--lr", "nan"], "argument --lr"),
    (["train", "--lr", "fast"], "expected a number"),
    (["train", "--epochs", "0"], "argument --epochs: must be >= 1"),
    (["train", "--batch-size", "-3"], "argument --batch-size"),
    (["train", "--latent-dim", "0"], "argument --latent-dim"),
    (["train", "--hidden", "16", "0"], "argument --hidden"),
    (["train", "--beta", "-1"], "argument --beta: must be >= 0"),
    (["train", "--free-bits", "-0.5"], "argument --free-bits"),
    (["train", "--kl-warmup-epochs", "-2"], "argument --kl-warmup-epochs"),
    (["train", "--n-components", "0"], "argument --n-components"),
    (["train", "--seed", "-1"], "argument --seed"),
    (["train", "--device", "gpu"], "unknown device 'gpu'"),
    (["train", "--arch", "resnet"], "invalid choice: 'resnet'"),
    (["evaluate", "--checkpoint", "m.pt", "--limit", "-5"], "argument --limit: must be >= 1, got -5"),
    (["evaluate", "--checkpoint", "m.pt", "--limit", "0"], "argument --limit"),
    (["evaluate", "--checkpoint", "m.pt", "--iwae-k", "-1"], "argument --iwae-k"),
    (["sample", "--checkpoint", "m.pt", "--n", "0"], "argument --n"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, no_training, argv, words):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and words in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m vae_lib ") and ": error: " in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [["train", "--out", "run"], ["evaluate", "--checkpoint", "m.pt"],
                                     ["sample", "--checkpoint", "m.pt"]])
def test_cuda_on_a_cpu_machine_is_refused_up_front(tmp_path, capsys, monkeypatch, no_training, command):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli([*command, "--device", "cuda"], capsys)
    assert rc == 2 and "CUDA is not available" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_out_that_is_a_file_is_refused_before_training(tmp_path, capsys, no_training):
    (tmp_path / "f").write_text("keep me")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        rc, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
        assert rc == 2 and "is a file" in one_error_line(err)
    assert (tmp_path / "f").read_text() == "keep me"


def test_unwritable_out_is_refused_before_training(tmp_path, capsys, no_training, monkeypatch):
    from vae_lib import atomic

    def refuse(target):
        raise PermissionError(13, "Permission denied", str(target))
    monkeypatch.setattr(atomic, "_new_temp", refuse)  # as a read-only folder would (the tests may run as root)
    rc, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and "cannot write files in" in one_error_line(err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_out_is_refused_before_training(tmp_path, capsys, no_training):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, _, err = run_cli(["train", *TINY, "--out", str(ro)], capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 2 and "cannot write files in" in one_error_line(err)


def test_a_blocked_png_path_is_refused_before_training(tmp_path, capsys, no_training):
    out = tmp_path / "run"
    (out / "loss.png").mkdir(parents=True)
    rc, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
    assert rc == 2 and "loss.png" in one_error_line(err)
    assert [p.name for p in out.iterdir()] == ["loss.png"]


def test_a_failure_while_writing_leaves_no_half_run(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated plotting failure")
    monkeypatch.setattr(cli, "plot_prior_samples", broken)
    rc, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "new")], capsys)
    assert rc == 2 and "simulated plotting failure" in one_error_line(err)
    assert not (tmp_path / "new").exists()  # a new folder is removed again
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    rc, _, err = run_cli(["train", *TINY, "--out", str(old)], capsys)
    assert rc == 2
    assert [p.name for p in old.iterdir()] == ["notes.txt"]  # nothing new, no temp files


def test_divergence_and_unexpected_errors_are_one_line(tmp_path, capsys, monkeypatch):
    def diverge(*args, **kwargs):
        raise FloatingPointError("training diverged: the loss became nan at epoch 1")
    monkeypatch.setattr(cli, "train", diverge)
    rc, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and "diverged" in one_error_line(err)

    def bug(*args, **kwargs):
        raise KeyError("oops")
    monkeypatch.setattr(cli, "train", bug)
    rc, _, err = run_cli(["train", *TINY, "--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and "VAE_LIB_TRACEBACK=1" in one_error_line(err)


def test_evaluate_out_that_is_a_folder_is_refused_before_loading(tmp_path, capsys):
    (tmp_path / "ev.json").mkdir()
    rc, _, err = run_cli(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--out",
                          str(tmp_path / "ev.json")], capsys)
    assert rc == 2 and "it is a folder" in one_error_line(err)  # not "no checkpoint": checked first


def test_missing_data_and_checkpoint_are_messages_not_tracebacks(tmp_path, capsys):
    r = subprocess.run([sys.executable, "-m", "vae_lib", "train", "--dataset", "mnist", "--root", str(tmp_path),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "mnist-5k" in one_error_line(r.stderr)
    assert not (tmp_path / "o").exists()
    rc, _, err = run_cli(["sample", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "s.png")],
                         capsys)
    assert rc == 2 and "no checkpoint" in one_error_line(err)


# --- validation on full MNIST: held out of the training set, never the test split ---------------------


def write_idx_train(folder, n=460):
    """An IDX 'train' split of ``n`` random 28x28 images (labels cycle 0..9); no test files."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for name, magic, arr in (("train-images-idx3-ubyte.gz", 2051, images), ("train-labels-idx1-ubyte.gz", 2049, labels)):
        header = struct.pack(f">{1 + arr.ndim}i", magic, *arr.shape)
        (folder / name).write_bytes(gzip.compress(header + arr.tobytes()))


def test_binarized_training_on_mnist_validates_on_held_out_training_images(tmp_path, capsys, monkeypatch):
    root = tmp_path / "mnist"
    root.mkdir()
    write_idx_train(root)  # only the training files exist: reading the test split would fail
    seen = {}
    real_train = cli.train

    def spy(model, x, **kwargs):
        seen["x"], seen["val"] = x, kwargs["val_data"]
        return real_train(model, x, **kwargs)
    monkeypatch.setattr(cli, "train", spy)
    rc, _, err = run_cli(["train", "--dataset", "mnist", "--root", str(root), "--binarize", "--seed", "3",
                          "--epochs", "1", "--latent-dim", "2", "--hidden", "16", "--no-progress", "--device", "cpu",
                          "--out", str(tmp_path / "run")], capsys)
    assert rc == 0, err
    (x_tr, _), (x_va, _) = vl.data.train_val_split("mnist", root=root)
    assert len(seen["val"]) == 400 and torch.equal(seen["x"], x_tr)
    assert torch.equal(seen["val"], vl.binarize(x_va, seed=3))  # binarized once, with vl.binarize
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist["validation"] == {"source": "400 images held out of 'train'", "n": 400, "binarized_seed": 3}


def test_train_help_says_where_validation_comes_from(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "400 of the training images" in text and "test split is never seen" in text


def test_grey_level_likelihood_recipe_runs_offline(tmp_path, capsys):
    """The chapter 9 recipe (--arch conv --likelihood logistic ...) on the bundled mnist-5k, no download."""
    out = tmp_path / "grey"
    rc, _, err = run_cli(["train", "--dataset", "mnist-5k", "--arch", "conv", "--likelihood", "logistic",
                          "--n-mixtures", "2", "--conv-channels", "4", "8", "--epochs", "1", "--latent-dim", "2",
                          "--hidden", "16", "--no-progress", "--device", "cpu", "--out", str(out)], capsys)
    assert rc == 0, err
    model = vl.load_checkpoint(out / "model.pt")
    assert model.likelihood == "logistic" and model.config["n_mixtures"] == 2
    assert model.config["conv_channels"] == [4, 8]
    rc, stdout, err = run_cli(["evaluate", "--checkpoint", str(out / "model.pt"), "--limit", "20",
                               "--iwae-k", "2"], capsys)
    assert rc == 0, err
    res = json.loads(stdout)
    assert res["bits_per_dim_elbo"] == pytest.approx(res["neg_elbo"] / (784 * np.log(2)))
    assert 0 < res["bits_per_dim_iwae_k2"] <= 8 + 1


def test_obs_std_learn_and_bad_values(tmp_path, capsys):
    rc, _, err = run_cli(["train", *TINY, "--likelihood", "gaussian", "--obs-std", "learn",
                          "--out", str(tmp_path / "s")], capsys)
    assert rc == 0, err
    assert vl.load_checkpoint(tmp_path / "s" / "model.pt").config["obs_std"] is None
    rc, _, err = run_cli(["train", *TINY, "--obs-std", "0", "--out", str(tmp_path / "t")], capsys)
    assert rc == 2 and "--obs-std" in err


def test_grey_level_likelihood_on_off_grid_data_fails_in_one_line(tmp_path, capsys):
    rc, _, err = run_cli(["train", *TINY, "--likelihood", "categorical", "--out", str(tmp_path / "d")], capsys)
    assert rc == 2 and "quantize" in err and "Traceback" not in err
