"""vae_lib.train against the data pipeline of the official PyTorch VAE example.

Baseline (https://github.com/pytorch/examples/blob/main/vae/main.py): a torchvision-style
Dataset that returns one PIL image per item, converted with ToTensor, batched by a
DataLoader (shuffle=True, batch 128), the same MLP 784-400-20 with sigmoid output, Adam
1e-3, summed BCE + KL, ``loss.item()`` every step. torchvision has no CPU wheel here, so
its two pieces (the MNIST Dataset's PIL path and ToTensor) are reproduced line for line.

Both run in this process on the same 4,500 mnist-5k training images, and both are scored
by the same function on the 500 held-out images: the negative ELBO in nats per image
(mean over 10 seeded posterior samples). Prints images/s, the ratio, and both losses.

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
                    help="alternating baseline/vae_lib runs (seeds 0..R-1): best throughput, mean loss")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    device = torch.device(args.device) if args.device else vl.default_device()
    x, _ = vl.load_dataset("mnist-5k", "train")
    xv, _ = vl.load_dataset("mnist-5k", "val")
    xv_d = xv.to(device)

    base_rates, ours_rates, base_losses, ours_losses = [], [], [], []
    for r in range(args.repeats):  # alternate, so a busy machine slows both alike
        base, rate_b = train_baseline(x, args.epochs, device, seed=r)
        torch.manual_seed(r)
        ours = vl.VAE(input_shape=(1, 28, 28), latent_dim=20, hidden=(400,))
        hist = vl.train(ours, x, epochs=args.epochs, batch_size=128, lr=1e-3, device=device, seed=r,
                        progress=False, amp=args.amp)
        base_rates.append(rate_b)
        ours_rates.append(4500 * args.epochs / sum(4500 / s for s in hist.samples_per_s))
        base.eval()
        base_losses.append(heldout_neg_elbo(lambda v: base.encode(v.view(-1, 784)),
                                            lambda z: base.decode_logits(z).view(-1, 1, 28, 28), xv_d))
        ours_losses.append(heldout_neg_elbo(ours.encode, ours.decode, xv_d))
    loss_b, loss_o = sum(base_losses) / len(base_losses), sum(ours_losses) / len(ours_losses)
    diffs = torch.tensor(ours_losses) - torch.tensor(base_losses)
    diff_se = float(diffs.std() / len(diffs) ** 0.5) if len(diffs) > 1 else float("nan")  # seed-to-seed noise
    res = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "epochs": args.epochs, "amp": args.amp,
           "baseline_images_per_s": max(base_rates), "vae_lib_images_per_s": max(ours_rates),
           "ratio": max(ours_rates) / max(base_rates),
           "baseline_heldout_neg_elbo": loss_b, "vae_lib_heldout_neg_elbo": loss_o,
           "loss_difference": loss_o - loss_b, "loss_difference_se": diff_se,
           "baseline_losses": base_losses, "vae_lib_losses": ours_losses}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs")
    print(f"  official-example pipeline : {res['baseline_images_per_s']:9.0f} images/s, held-out -ELBO {loss_b:.2f} nats (mean of {args.repeats} seeds)")
    print(f"  vae_lib.train             : {res['vae_lib_images_per_s']:9.0f} images/s, held-out -ELBO {loss_o:.2f} nats (mean of {args.repeats} seeds)")
    print(f"  speed-up                  : {res['ratio']:.2f}x")
    print(f"  held-out loss difference  : {loss_o - loss_b:+.2f} ± {diff_se:.2f} nats (vae_lib − baseline, ± s.e. over seeds)")
    if args.json:
        vl.checkpoint.atomic_write(args.json, lambda p: open(p, "w").write(json.dumps(res, indent=2)))


if __name__ == "__main__":
    main()
