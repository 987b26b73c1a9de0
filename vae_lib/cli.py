"""Command line: ``python -m vae_lib {train, evaluate, sample}``.

    python -m vae_lib train --dataset mnist-5k --epochs 20 --out runs/mnist5k
    python -m vae_lib evaluate --checkpoint runs/mnist5k/model.pt --iwae-k 1000
    python -m vae_lib sample --checkpoint runs/mnist5k/model.pt --n 64 --out samples.png
    python -m vae_lib train --dataset fashion-mnist --download --arch conv --likelihood logistic \
        --n-mixtures 5 --epochs 50 --out runs/fashion_logistic      # 8-bit grey levels, bits/dim

``train`` writes ``model.pt`` (checkpoint), ``history.json`` and PNG figures (loss
curves, reconstructions, prior samples) into ``--out``. Every argument, the device and the
output paths are checked before any work starts; a failure is one ``error: ...`` line on
stderr and exit status 2 (as argparse does), not a traceback. Outputs are written with
:func:`vae_lib.atomic.atomic_write_all`: a run leaves either all of its files or no new
file, and ``model.pt``, which marks a complete run, is moved into place last.

Validation during ``train`` never uses a test split: the bundled sets use their fixed
``val`` split; ``mnist`` and ``fashion-mnist`` hold out a fixed, class-stratified 400 of
their training images (as Burda et al., 2016 did) and train on the rest. The ``test``
split is for ``evaluate`` and the final number only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import torch

from .atomic import atomic_write, atomic_write_all, check_target, check_writable_dir, check_writable_file
from .checkpoint import load_checkpoint, save_checkpoint
from .device import resolve_device
from .data import DATASETS, IDX_VAL_SIZE, binarize, held_out_split, load_dataset, train_val_split
from .metrics import active_units, iwae_log_likelihood
from .likelihoods import bits_per_dim
from .model import ARCHS, GREY_LIKELIHOODS, LIKELIHOODS, VAE
from .plots import plot_loss_curves, plot_prior_samples, plot_reconstructions
from .priors import PRIORS
from .metrics import evaluate
from .train import train

__all__ = ["main", "build_parser", "TRAIN_OUTPUTS"]

# What train writes into --out, in the order the files are moved into place (the checkpoint last).
TRAIN_OUTPUTS = ("history.json", "loss.png", "reconstructions.png", "samples.png", "model.pt")


# --- argument types: each rejects a bad value with argparse's "error: argument --x: ..." ----------


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"
    return parse


def _float_in(low: float, high: float = math.inf, low_open: bool = False, hint: str = "") -> Callable[[str], float]:
    """A finite number ``>= low`` (``> low`` when ``low_open``) and ``<= high``."""
    rule = (f"in {'(' if low_open else '['}{low:g}, {high:g}]" if math.isfinite(high)
            else f"{'>' if low_open else '>='} {low:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and (value > low if low_open else value >= low) and value <= high):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}{hint}")
        return value
    parse.__name__ = "number"
    return parse


def _obs_std(text: str):
    """``--obs-std``: a positive number, or ``learn`` (``None``: σ is a trained parameter)."""
    if text == "learn":
        return "learn"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'learn', got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0 (or 'learn'), got {text}")
    return value


def _device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --- writing outputs -------------------------------------------------------------------------


def _png(make_figure: Callable[[], object]) -> Callable[[Path], None]:
    """A writer for :func:`atomic_write_all`: draw the figure, save it as PNG, close it."""
    def write(tmp: Path) -> None:
        import matplotlib.pyplot as plt

        fig = make_figure()
        try:
            fig.savefig(tmp, format="png", dpi=100)
        finally:
            plt.close(fig)
    return write


def _json(obj) -> Callable[[Path], None]:
    text = json.dumps(obj, indent=2)  # serialised now, so a bad value fails before any file is written
    return lambda tmp: tmp.write_text(text + "\n")


# --- the commands ----------------------------------------------------------------------------


def cmd_train(a) -> int:
    out = Path(a.out)
    new_folder = not out.exists()
    check_writable_dir(out)  # before the data and the training: a bad --out fails in the first second
    for name in TRAIN_OUTPUTS:
        check_target(out / name)
    try:
        return _train_into(a, out)
    except BaseException:
        if new_folder:  # leave nothing new behind, not even the folder
            try:
                out.rmdir()
            except OSError:
                pass
        raise


def _train_into(a, out: Path) -> int:
    device = a.device if a.device is not None else resolve_device(None)
    (x, _), (xv, _) = train_val_split(a.dataset, root=a.root, download=a.download, progress=not a.no_progress)
    if a.binarize:  # held-out images binarized once (seeded), as the numbers to report are
        xv = binarize(xv, seed=a.seed)
    source = "val" if held_out_split(a.dataset) == "val" else f"{IDX_VAL_SIZE} images held out of 'train'"
    validation = {"source": source, "n": int(xv.shape[0]), "binarized_seed": a.seed if a.binarize else None}
    torch.manual_seed(a.seed)
    model = VAE(input_shape=tuple(x.shape[1:]), latent_dim=a.latent_dim, hidden=tuple(a.hidden), arch=a.arch,
                likelihood=a.likelihood, prior=a.prior, n_components=a.n_components,
                obs_std=None if a.obs_std == "learn" else a.obs_std, n_mixtures=a.n_mixtures,
                conv_channels=tuple(a.conv_channels))
    hist = train(model, x, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, beta=a.beta,
                 kl_warmup_epochs=a.kl_warmup_epochs, free_bits=a.free_bits, val_data=xv, device=device,
                 seed=a.seed, binarize=a.binarize, progress=not a.no_progress, amp=a.amp)
    args = {k: str(v) if isinstance(v, torch.device) else v for k, v in vars(a).items() if k != "func"}
    history = hist.to_dict()
    writers = {
        "history.json": _json({"args": args, "validation": validation, "history": history}),
        "loss.png": _png(lambda: plot_loss_curves(hist)),
        "reconstructions.png": _png(lambda: plot_reconstructions(model, xv)),
        "samples.png": _png(lambda: plot_prior_samples(model, seed=a.seed)),
        "model.pt": lambda tmp: save_checkpoint(model, tmp, extra={"dataset": a.dataset, "validation": validation,
                                                                   "history": history}),
    }
    atomic_write_all({out / name: writers[name] for name in TRAIN_OUTPUTS})
    print(json.dumps({"out": str(out), "val_loss": hist.val_loss[-1], "images_per_s": hist.samples_per_s[-1]}))
    return 0


def cmd_evaluate(a) -> int:
    if a.out:
        check_writable_file(a.out)  # before a long IWAE run
    model = load_checkpoint(a.checkpoint, map_location=a.device or "cpu")
    xv, _ = load_dataset(a.dataset, a.split or held_out_split(a.dataset), root=a.root, download=a.download,
                         progress=True)
    if a.limit is not None:
        xv = xv[:a.limit]
    if a.binarize:
        xv = binarize(xv, seed=a.seed)
    ev = evaluate(model, xv, seed=a.seed)
    res = {"n": int(xv.shape[0]), "neg_elbo": ev["loss"], "recon": ev["recon"], "kl": ev["kl"],
           "active_units": active_units(model, xv)}
    if a.iwae_k:
        res[f"neg_iwae_k{a.iwae_k}"] = float(-iwae_log_likelihood(model, xv, k=a.iwae_k, seed=a.seed).mean())
    if model.likelihood in GREY_LIKELIHOODS:  # a probability of 8-bit images: also in the literature's unit
        n_dims = math.prod(model.input_shape)
        res["bits_per_dim_elbo"] = bits_per_dim(ev["loss"], n_dims)
        if a.iwae_k:
            res[f"bits_per_dim_iwae_k{a.iwae_k}"] = bits_per_dim(res[f"neg_iwae_k{a.iwae_k}"], n_dims)
    print(json.dumps(res, indent=2))
    if a.out:
        atomic_write(a.out, _json(res))
    return 0


def cmd_sample(a) -> int:
    check_writable_file(a.out)
    model = load_checkpoint(a.checkpoint, map_location=a.device or "cpu")
    atomic_write(a.out, _png(lambda: plot_prior_samples(model, n=a.n, seed=a.seed)))
    print(json.dumps({"out": a.out}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae_lib", description="Train, evaluate and sample VAEs.")
    sub = p.add_subparsers(dest="command", required=True)
    positive, count = _int_at_least(1), _int_at_least(0)
    device_help = "cpu, cuda, cuda:N or mps (default: {})"

    def common(s, device_default: str):
        s.add_argument("--device", type=_device, default=None, help=device_help.format(device_default))
        s.add_argument("--seed", type=count, default=0, help="seeds initialisation, shuffling and every draw")

    def data_args(s):
        s.add_argument("--dataset", default="mnist-5k", choices=DATASETS)
        s.add_argument("--root", default=None, help="folder of the IDX files (mnist, fashion-mnist)")
        s.add_argument("--download", action="store_true", help="fetch mnist/fashion-mnist (needs internet)")

    t = sub.add_parser(
        "train", help="train a VAE; writes model.pt, history.json and PNG figures",
        description="Train a VAE. The per-epoch val_loss is measured on data held out of the training set: "
                    "the fixed 'val' split of mnist-5k and digits, or a fixed, class-stratified "
                    f"{IDX_VAL_SIZE} of the training images of mnist and fashion-mnist (as Burda et al., "
                    "2016), which then train on the rest. The test split is never seen here: report the "
                    "final number with 'evaluate --split test'.")
    data_args(t)
    common(t, "the best available")
    t.add_argument("--out", required=True, help="output folder (created; checked before training)")
    t.add_argument("--epochs", type=positive, default=10)
    t.add_argument("--batch-size", type=positive, default=128)
    t.add_argument("--lr", type=_float_in(0, 1, low_open=True, hint=" (Adam; 1e-4 to 1e-2 are typical)"),
                   default=1e-3, help="Adam learning rate, in (0, 1]")
    t.add_argument("--beta", type=_float_in(0), default=1.0, help="weight of the KL term (1: the ELBO)")
    t.add_argument("--latent-dim", type=positive, default=20)
    t.add_argument("--hidden", type=positive, nargs="+", default=[400], help="hidden layer widths")
    t.add_argument("--arch", default="mlp", choices=ARCHS)
    t.add_argument("--likelihood", default="bernoulli", choices=LIKELIHOODS,
                   help="bernoulli, gaussian (a density), or a probability of 8-bit grey levels: logistic "
                        "(discretized logistic mixture), categorical (256-way) or discretized_gaussian")
    t.add_argument("--n-mixtures", type=positive, default=5, help="logistic components per pixel (logistic)")
    t.add_argument("--obs-std", type=_obs_std, default=0.1,
                   help="pixel noise σ of gaussian and discretized_gaussian, or 'learn' (the σ-VAE)")
    t.add_argument("--conv-channels", type=positive, nargs=2, default=[32, 64], metavar=("C1", "C2"),
                   help="channels of the two convolutions of --arch conv")
    t.add_argument("--prior", default="standard", choices=PRIORS)
    t.add_argument("--n-components", type=positive, default=10,
                   help="mixture components (mog) or pseudo-inputs (vamp)")
    t.add_argument("--kl-warmup-epochs", type=_float_in(0), default=0.0)
    t.add_argument("--free-bits", type=_float_in(0), default=0.0, help="nats of KL per latent unit that are free")
    t.add_argument("--binarize", action="store_true",
                   help="dynamic binarization of the training images (fresh Bernoulli draws every epoch); "
                        "the held-out validation images are binarized once, with vl.binarize(x, seed)")
    t.add_argument("--amp", action="store_true", help="bf16 autocast")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="negative ELBO, IWAE bound and active units of a checkpoint")
    data_args(e)
    common(e, "cpu")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--split", default=None, help="default: val (mnist-5k, digits) or test (mnist, fashion-mnist)")
    e.add_argument("--iwae-k", type=count, default=0, help="importance samples; 0 skips the IWAE bound")
    e.add_argument("--limit", type=positive, default=None, help="evaluate only the first N images")
    e.add_argument("--binarize", action="store_true", help="binarize the images once, with vl.binarize(x, seed)")
    e.add_argument("--out", default=None, help="also write the results as JSON here")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="decode prior samples to a PNG grid")
    common(s, "cpu")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=positive, default=64)
    s.add_argument("--out", default="samples.png")
    s.set_defaults(func=cmd_sample)
    return p


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
        text = f"{text}: {e.filename}"
    return text or type(e).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns the exit status (0 success, 2 a usage or input error, 130 interrupted).

    Set ``VAE_LIB_TRACEBACK=1`` to see the full traceback of an error instead of its one line.
    """
    args = build_parser().parse_args(argv)  # a bad argument: usage and "error: ...", exit 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("VAE_LIB_TRACEBACK"):
            raise
        expected = isinstance(e, (ValueError, TypeError, OSError, FloatingPointError, RuntimeError))
        hint = "" if expected else " (unexpected: rerun with VAE_LIB_TRACEBACK=1 and report the traceback)"
        print(f"error: {_one_line(e)}{hint}", file=sys.stderr)
        return 2
