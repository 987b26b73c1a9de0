"""vae_lib.train against the data pipeline of the official PyTorch VAE example.

Baseline (https://github.com/pytorch/examples/blob/main/vae/main.py): a torchvision-style
Dataset that returns one PIL image per item, converted with ToTensor, batched by a
DataLoader (shuffle=True, batch 128), the same MLP 784-400-20 with sigmoid output, Adam
1e-3, summed BCE + KL, ``loss.item()`` every step. torchvision has no CPU wheel here, so
its two pieces (the MNIST Dataset's PIL path and ToTensor) are reproduced line for line.

All run in this process on the same 4,500 mnist-5k training images: the baseline,
``vl.train(fused=False)`` (autograd) and ``vl.train`` as shipped (the hand-written step of
vae_lib.fused). All are scored by the same function on the 500 held-out images: the
negative ELBO in nats per image (mean over 10 seeded posterior samples). Prints images/s,
the ratios, and the losses with their paired difference to the baseline.

    python benchmarks/bench_train.py              # CPU, 10 epochs
    python benchmarks/bench_train.py --device cuda --amp
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

import vae_lib as vl


class PILDigits(Dataset):
    """torchvision.datasets.MNIST's item path: uint8 array -> PIL image -> ToTensor."""

    def __init__(self, x: torch.Tensor):
        self.data = (x[:, 0] * 255).round().to(torch.uint8)  # [N, 28, 28] as torchvision stores it

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i].numpy(), mode="L")  # as torchvision.datasets.MNIST
        t = torch.from_numpy(np.array(img, np.uint8, copy=True))  # ToTensor: HWC uint8 ...
        t = t.view(img.size[1], img.size[0], 1).permute(2, 0, 1).contiguous()
        return t.float().div(255), 0  # ... -> CHW float in [0, 1]


class ExampleVAE(nn.Module):
    """The model of the official example, verbatim in structure."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode_logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def decode(self, z):
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def example_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_baseline(x, epochs, device, seed):
    torch.manual_seed(seed)
    model = ExampleVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PILDigits(x), batch_size=128, shuffle=True,
                        **({"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}))
    seen, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for data, _ in loader:
            data = data.to(device)
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = example_loss(recon, data, mu, logvar)
            loss.backward()
            opt.step()
            _ = loss.item()  # the example logs train_loss += loss.item() every step
            seen += data.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, seen / (time.perf_counter() - t0)


@torch.no_grad()
def heldout_neg_elbo(encode, decode_logits, x, n_samples=10, seed=123):
    """Negative ELBO, nats per image, averaged over n_samples seeded posterior samples."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    mu, logvar = encode(x)
    kl = vl.kl_standard_normal(mu, logvar)
    recon = 0.0
    for _ in range(n_samples):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, device=x.device)
        recon = recon - vl.bernoulli_log_likelihood(decode_logits(z), x) / n_samples
    return float((recon + kl).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--device", default=None, help="cpu / cuda / mps (default: vae_lib.default_device())")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for vae_lib.train")
    ap.add_argument("--repeats", type=int, default=20,
                    help="alternating runs of each trainer, one seed each: best throughput, mean loss")
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (seeds offset..offset+R-1)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    device = torch.device(args.device) if args.device else vl.default_device()
    x, _ = vl.load_dataset("mnist-5k", "train")
    xv, _ = vl.load_dataset("mnist-5k", "val")
    xv_d = xv.to(device)

    # Three trainers per seed, alternating so a busy machine slows them alike: the example's
    # pipeline, vl.train with autograd (fused=False), and vl.train as shipped (the fused step).
    rates = {"baseline": [], "autograd": [], "vae_lib": []}
    losses = {k: [] for k in rates}
    seeds = range(args.seed_offset, args.seed_offset + args.repeats)
    for r in seeds:
        base, rate_b = train_baseline(x, args.epochs, device, seed=r)
        base.eval()
        rates["baseline"].append(rate_b)
        losses["baseline"].append(heldout_neg_elbo(lambda v: base.encode(v.view(-1, 784)),
                                                   lambda z: base.decode_logits(z).view(-1, 1, 28, 28), xv_d))
        for name, fused in (("autograd", False), ("vae_lib", None)):
            torch.manual_seed(r)
            ours = vl.VAE(input_shape=(1, 28, 28), latent_dim=20, hidden=(400,))
            hist = vl.train(ours, x, epochs=args.epochs, batch_size=128, lr=1e-3, device=device, seed=r,
                            progress=False, amp=args.amp, fused=fused)
            rates[name].append(4500 * args.epochs / sum(4500 / s for s in hist.samples_per_s))
            losses[name].append(heldout_neg_elbo(ours.encode, ours.decode, xv_d))
    mean = {k: sum(v) / len(v) for k, v in losses.items()}
    best = {k: max(v) for k, v in rates.items()}

    def diff(name):  # mean paired difference to the baseline, and its standard error over seeds
        d = torch.tensor(losses[name]) - torch.tensor(losses["baseline"])
        return float(d.mean()), float(d.std() / len(d) ** 0.5) if len(d) > 1 else float("nan")

    res = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "epochs": args.epochs, "amp": args.amp, "seeds": list(seeds),
           "baseline_images_per_s": best["baseline"], "vae_lib_images_per_s": best["vae_lib"],
           "autograd_images_per_s": best["autograd"],
           "ratio": best["vae_lib"] / best["baseline"], "autograd_ratio": best["autograd"] / best["baseline"],
           "baseline_heldout_neg_elbo": mean["baseline"], "vae_lib_heldout_neg_elbo": mean["vae_lib"],
           "autograd_heldout_neg_elbo": mean["autograd"],
           "loss_difference": diff("vae_lib")[0], "loss_difference_se": diff("vae_lib")[1],
           "rates": rates, "losses": losses}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs, "
          f"seeds {seeds.start}..{seeds.stop - 1} (best throughput, mean held-out -ELBO)")
    labels = {"baseline": "official-example pipeline", "autograd": "vae_lib.train(fused=False)",
              "vae_lib": "vae_lib.train"}
    for k, label in labels.items():
        extra = "" if k == "baseline" else f"  {best[k] / best['baseline']:.2f}x, loss {diff(k)[0]:+.2f} ± {diff(k)[1]:.2f}"
        print(f"  {label:27s}: {best[k]:9.0f} images/s, held-out -ELBO {mean[k]:.2f} nats{extra}")
    print(f"  speed-up                   : {res['ratio']:.2f}x")
    print(f"  held-out loss difference   : {res['loss_difference']:+.2f} ± {res['loss_difference_se']:.2f} nats "
          f"(vae_lib − baseline, paired by seed, ± s.e.)")
    if args.json:
        vl.checkpoint.atomic_write(args.json, lambda p: open(p, "w").write(json.dumps(res, indent=2)))


if __name__ == "__main__":
    main()
