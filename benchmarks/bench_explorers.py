"""The browser explorers in headless Chromium: page weight, update time and accuracy.

A 784-256-2 MLP VAE is trained for ``--epochs`` on the 4,500 mnist-5k training digits
(binarized, seeded), then each explorer of :mod:`vae_lib.widgets.explorers` is written to a
standalone page and opened from file:// with no network. The page is driven exactly as in
``tests/test_browser.py`` (same drivers: pointer moves, clicks, strokes, slider input) and
the table gives, per explorer:

- page weight: bytes of the cell's HTML output (weights, points, script);
- update: the median over 50 moves of one update's time, measured in the page with
  ``performance.now()`` (the model, the canvases; 16 ms is one frame at 60 Hz);
- error vs PyTorch: max |p_page − p_torch| over every image shown, PyTorch run on the same
  weights the page carries;
- error vs model: the same pixels against the float32 model (what float16 rounding costs).

    python benchmarks/bench_explorers.py            # ~1 minute on 2 CPU cores
    python benchmarks/bench_explorers.py --epochs 5

Needs /usr/bin/chromium and playwright (see tests/test_browser.py). Times depend on the CPU
(printed first) and on the load of the machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import vae_lib as vl
from vae_lib.widgets import explorers as E

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the page drivers of tests/test_browser.py
from bench_widgets import cpu_description  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, STATE_JS, _max_err, check_explorer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="training epochs of the 2-D VAE")
    ap.add_argument("--hidden", type=int, default=256, help="hidden width of encoder and decoder")
    args = ap.parse_args()

    print(f"CPU: {cpu_description()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    x, y = vl.load_dataset("mnist-5k", split="train", progress=False)
    torch.manual_seed(0)
    model = vl.VAE(latent_dim=2, hidden=(args.hidden,))
    t0 = time.perf_counter()
    vl.train(model, x, epochs=args.epochs, binarize=True, progress=False, seed=0, device="cpu")
    model.eval()
    print(f"model: 784-{args.hidden}-2 MLP VAE, {args.epochs} epochs in {time.perf_counter() - t0:.1f} s")

    explorers = {
        "latent (float16)": E.browser_latent_explorer(model, x, y),
        "latent (float32)": E.browser_latent_explorer(model, x, y, dtype="float32"),
        "draw-a-digit (float16)": E.browser_draw_digit(model, x, y),
        "reparam (float16)": E.browser_reparam_explorer(model),
    }
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        print(f"browser: Chromium {browser.version}")
        for name, w in explorers.items():
            path = w.save(Path(tmp) / f"{w.kind}.html")
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", lambda route: route.abort() if route.request.url.startswith(("http", "ws"))
                          else route.continue_())
            page = context.new_page()
            page.goto(path.as_uri())
            problems, err, ms = check_explorer(page, w.element_id, w.kind)
            z = torch.tensor(page.evaluate(STATE_JS, w.element_id)["z"]).reshape(-1, 2)
            shown = page.evaluate("([id, z]) => z.map(zi => document.getElementById(id).vlExplorer.decode(zi))",
                                  [w.element_id, z.tolist()])
            err_model = _max_err(shown, model.decode_mean(z))
            rows.append((name, w.nbytes, ms, err, err_model, "; ".join(problems) or "ok"))
            context.close()
        browser.close()

    print(f"\n{'explorer':24} {'page weight':>12} {'update (median of 50)':>22} {'err vs PyTorch':>15} "
          f"{'err vs model':>13}  checks")
    for name, nbytes, ms, err, err_model, status in rows:
        print(f"{name:24} {nbytes / 1e6:>9.3f} MB {ms:>19.2f} ms {err:>15.1e} {err_model:>13.1e}  {status}")
    print(f"\nbudgets: page <= {E.PAGE_BUDGET_BYTES / 1e6:.1f} MB, update <= 16 ms (one 60 Hz frame)")


if __name__ == "__main__":
    main()
