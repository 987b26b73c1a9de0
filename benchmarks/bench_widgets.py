"""How long one widget update takes: set a control's value -> the new picture is ready.

Setting ``control.value`` from Python runs the widget's callback synchronously, exactly as a
slider move does in a kernel, so the time measured is everything a reader waits for (the
model call, the matplotlib draw, the PNG encoding) except the browser's transfer.

Models are trained for 1 epoch on the 4,500 mnist-5k training digits: a 784-400-2 MLP VAE
for the posterior and latent explorers, and a 3-point β sweep (784-400-20, 1 epoch each)
for the β explorer. For each control of each explorer: 3 warm-up updates, then ``--updates``
updates over values spread across the control's range; the table gives the median and the
maximum wall time in ms, the median CPU time of this process, and PASS when the maximum is
within the budget (200 ms). A second table gives each scrubber's frames, size and build time.

    python benchmarks/bench_widgets.py                 # ~1 minute on 2 CPU cores
    python benchmarks/bench_widgets.py --updates 50 --budget-ms 200

Wall times depend on the CPU (its model and whether it has AVX-512 are printed first) and on
what else the machine runs (the load average is printed with the table).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import ipywidgets
import numpy as np
import torch

import vae_lib as vl
from vae_lib import widgets as W


def cpu_description() -> str:
    """The CPU's model name and whether it has AVX-512 (``avx512f``), from ``/proc/cpuinfo`` (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        import platform

        return f"{platform.processor() or platform.machine()} (no /proc/cpuinfo: AVX-512 unknown)"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    simd = "AVX-512" if "avx512f" in flags else ("AVX2, no AVX-512" if "avx2" in flags else "no AVX2")
    return f"{model} ({simd})"


def _values(c: ipywidgets.Widget, n: int) -> list:
    """``n`` values spread over the control's range, never the same twice in a row."""
    if isinstance(c, (ipywidgets.SelectionSlider, ipywidgets.Dropdown)):
        opts = [o[1] if isinstance(o, tuple) else o for o in c.options]
        return [opts[i % len(opts)] for i in range(1, n + 1)] if len(opts) > 1 else []
    lo, hi = c.min, c.max
    vals = np.linspace(lo, hi, n + 1)[1:]
    vals = vals[::2].tolist() + vals[1::2].tolist()[::-1]  # jump around rather than creep along
    return [int(round(v)) for v in vals] if isinstance(c, ipywidgets.IntSlider) else [float(v) for v in vals]


def time_control(w, name: str, n: int, warmup: int = 3):
    c = w.controls[name]
    vals = _values(c, n + warmup)
    walls, cpus = [], []
    prev = c.value
    for k, v in enumerate(vals):
        if v == prev:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        c.value = v  # the callback redraws synchronously: when this returns the new PNG is in w.images
        t1, c1 = time.perf_counter(), time.process_time()
        prev = v
        if k >= warmup:
            walls.append(1e3 * (t1 - t0))
            cpus.append(1e3 * (c1 - c0))
    return walls, cpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--updates", type=int, default=20, help="timed updates per control")
    ap.add_argument("--budget-ms", type=float, default=200.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_description()}, {os.cpu_count()} cores")

    t = time.perf_counter()
    x, y = vl.load_dataset("mnist-5k", split="train")
    x_val, _ = vl.load_dataset("mnist-5k", split="val")
    torch.manual_seed(0)
    model = vl.VAE(input_shape=(1, 28, 28), latent_dim=2)
    vl.train(model, x, epochs=1, progress=False, device="cpu")
    points = vl.beta_sweep((0.1, 1.0, 4.0), x, x_val, epochs=1, progress=False, device="cpu")
    print(f"setup (data, 1-epoch latent-2 model, 3-point β sweep): {time.perf_counter() - t:.1f} s; "
          f"torch threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}")

    builders = {
        "mu_sigma_explorer": lambda: W.mu_sigma_explorer(),
        "posterior_prior_explorer": lambda: W.posterior_prior_explorer(model, x, y),
        "reparam_explorer": lambda: W.reparam_explorer(),
        "beta_explorer": lambda: W.beta_explorer(points, x_val),
        "latent_explorer": lambda: W.latent_explorer(model, x, y),
    }
    load0 = os.getloadavg()[0]
    rows, ok = [], True
    for name, build in builders.items():
        t = time.perf_counter()
        w = build()
        built = time.perf_counter() - t
        for control in w.controls:
            walls, cpus = time_control(w, control, args.updates)
            med, mx = statistics.median(walls), max(walls)
            passed = mx <= args.budget_ms
            ok &= passed
            rows.append((name, control, len(walls), med, mx, statistics.median(cpus), built,
                         "PASS" if passed else "FAIL"))
    load1 = os.getloadavg()[0]

    head = f"{'widget':<26}{'control':<11}{'n':>4}{'median ms':>11}{'max ms':>9}{'CPU ms':>8}{'build s':>9}  result"
    print(f"\none update = set control.value -> new PNG ready; budget {args.budget_ms:.0f} ms (max)")
    print(head)
    print("-" * len(head))
    for name, control, n, med, mx, cpu, built, res in rows:
        print(f"{name:<26}{control:<11}{n:>4}{med:>11.1f}{mx:>9.1f}{cpu:>8.1f}{built:>9.2f}  {res}")
    print(f"load average (1 min) before/after: {load0:.1f} / {load1:.1f} on {os.cpu_count()} cores")

    x_val_y = vl.load_dataset("mnist-5k", split="val")
    scrubbers = {
        "mu_sigma_scrubber": lambda: W.mu_sigma_scrubber(),
        "posterior_prior_scrubber": lambda: W.posterior_prior_scrubber(model, *x_val_y),
        "reparam_scrubber": lambda: W.reparam_scrubber(),
        "beta_scrubber": lambda: W.beta_scrubber(points, x_val),
        "latent_scrubber (move)": lambda: W.latent_scrubber(model, *x_val_y),
        "latent_scrubber (interp.)": lambda: W.latent_scrubber(model, *x_val_y, mode="interpolate"),
    }
    print(f"\n{'scrubber':<27}{'frames':>7}{'KB':>7}{'build s':>9}")
    for name, make in scrubbers.items():
        t = time.perf_counter()
        html = make().data
        frames = html.count("data:image/png;base64,")
        print(f"{name:<27}{frames:>7}{len(html) / 1024:>7.0f}{time.perf_counter() - t:>9.1f}")
    print("\nALL PASS" if ok else "\nSOME FAIL (see the load average: wall times include waiting for the CPU)")


if __name__ == "__main__":
    main()
