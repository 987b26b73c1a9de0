"""Command line: ``python -m vae_lib {train, evaluate, sample}``.

    python -m vae_lib train --dataset mnist-5k --epochs 20 --out runs/mnist5k
    python -m vae_lib evaluate --checkpoint runs/mnist5k/model.pt --iwae-k 1000
    python -m vae_lib sample --checkpoint runs/mnist5k/model.pt --n 64 --out samples.png

``train`` writes ``model.pt`` (checkpoint), ``history.json`` and PNG figures (loss
curves, reconstructions, prior samples) into ``--out``. Every file is written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import torch

from .checkpoint import atomic_write, load_checkpoint, save_checkpoint
from .data import DATASETS, load_dataset
from .metrics import active_units, iwae_log_likelihood
from .model import VAE
from .plots import plot_loss_curves, plot_prior_samples, plot_reconstructions
from .train import evaluate, train

__all__ = ["main", "build_parser"]


def _save_fig(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _save_json(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2)))


def _held_out_split(name: str) -> str:
    return "val" if name in ("mnist-5k", "digits") else "test"


def cmd_train(a) -> int:
    x, _ = load_dataset(a.dataset, "train", root=a.root, download=a.download)
    xv, _ = load_dataset(a.dataset, _held_out_split(a.dataset), root=a.root, download=a.download)
    if a.binarize:  # held-out data binarized once (seeded), as the numbers to report are
        xv = torch.bernoulli(xv, generator=torch.Generator().manual_seed(a.seed))
    torch.manual_seed(a.seed)
    model = VAE(input_shape=tuple(x.shape[1:]), latent_dim=a.latent_dim, hidden=tuple(a.hidden), arch=a.arch,
                likelihood=a.likelihood, prior=a.prior)
    hist = train(model, x, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, beta=a.beta,
                 kl_warmup_epochs=a.kl_warmup_epochs, free_bits=a.free_bits, val_data=xv, device=a.device,
                 seed=a.seed, binarize=a.binarize, progress=not a.no_progress, amp=a.amp)
    out = Path(a.out)
    save_checkpoint(model, out / "model.pt", extra={"dataset": a.dataset, "history": hist.to_dict()})
    args = {k: v for k, v in vars(a).items() if k != "func"}
    _save_json({"args": args, "history": hist.to_dict()}, out / "history.json")
    _save_fig(plot_loss_curves(hist), out / "loss.png")
    _save_fig(plot_reconstructions(model, xv), out / "reconstructions.png")
    _save_fig(plot_prior_samples(model, seed=a.seed), out / "samples.png")
    print(json.dumps({"out": str(out), "val_loss": hist.val_loss[-1], "images_per_s": hist.samples_per_s[-1]}))
    return 0


def cmd_evaluate(a) -> int:
    model = load_checkpoint(a.checkpoint, map_location=a.device or "cpu")
    xv, _ = load_dataset(a.dataset, a.split or _held_out_split(a.dataset), root=a.root, download=a.download)
    if a.limit:
        xv = xv[:a.limit]
    if a.binarize:
        xv = torch.bernoulli(xv, generator=torch.Generator().manual_seed(a.seed))
    ev = evaluate(model, xv, seed=a.seed)
    res = {"n": int(xv.shape[0]), "neg_elbo": ev["loss"], "recon": ev["recon"], "kl": ev["kl"],
           "active_units": active_units(model, xv)}
    if a.iwae_k:
        res[f"neg_iwae_k{a.iwae_k}"] = float(-iwae_log_likelihood(model, xv, k=a.iwae_k, seed=a.seed).mean())
    print(json.dumps(res, indent=2))
    if a.out:
        _save_json(res, Path(a.out))
    return 0


def cmd_sample(a) -> int:
    model = load_checkpoint(a.checkpoint, map_location=a.device or "cpu")
    _save_fig(plot_prior_samples(model, n=a.n, seed=a.seed), Path(a.out))
    print(json.dumps({"out": a.out}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae_lib", description="Train, evaluate and sample VAEs.")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(s):
        s.add_argument("--dataset", default="mnist-5k", choices=DATASETS)
        s.add_argument("--root", default=None, help="folder of the IDX files (mnist, fashion-mnist)")
        s.add_argument("--download", action="store_true", help="fetch mnist/fashion-mnist (needs internet)")
        s.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
        s.add_argument("--seed", type=int, default=0)

    t = sub.add_parser("train", help="train a VAE; writes model.pt, history.json and PNG figures")
    data_args(t)
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--beta", type=float, default=1.0)
    t.add_argument("--latent-dim", type=int, default=20)
    t.add_argument("--hidden", type=int, nargs="+", default=[400])
    t.add_argument("--arch", default="mlp", choices=("mlp", "conv"))
    t.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"))
    t.add_argument("--prior", default="standard", choices=("standard", "mog", "vamp"))
    t.add_argument("--kl-warmup-epochs", type=float, default=0)
    t.add_argument("--free-bits", type=float, default=0.0)
    t.add_argument("--binarize", action="store_true", help="dynamic binarization")
    t.add_argument("--amp", action="store_true", help="bf16 autocast")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="negative ELBO, IWAE bound and active units of a checkpoint")
    data_args(e)
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--split", default=None, help="default: val (bundled sets) or test")
    e.add_argument("--iwae-k", type=int, default=0, help="importance samples; 0 skips the IWAE bound")
    e.add_argument("--limit", type=int, default=0, help="evaluate only the first N images")
    e.add_argument("--binarize", action="store_true", help="binarize the images once (seeded)")
    e.add_argument("--out", default=None, help="also write the results as JSON here")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="decode prior samples to a PNG grid")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--device", default=None)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_sample)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
