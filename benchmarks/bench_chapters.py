"""How long each chapter takes to execute, top to bottom, one after another.

Each notebook runs in a fresh kernel (nbclient, as nbval and `jupyter nbconvert --execute`
do), in the book's folder, sequentially; nothing is written back unless ``--write`` asks for
the executed notebooks to replace the committed ones (atomically, so that one run both
re-executes the book and measures it). The table gives each
notebook's wall time and the share spent in its slowest cells, checked against the book's
budget: at most 90 s per chapter and 12 minutes for the whole book (ten notebooks: six for
Part I and the appendix, six for Part II) on 2 CPU cores.

    python benchmarks/bench_chapters.py                  # every book/NN_*.ipynb
    python benchmarks/bench_chapters.py book/05_*.ipynb  # some of them
    python benchmarks/bench_chapters.py --json times.json
    python benchmarks/bench_chapters.py --write          # re-execute the book in place, timed

The CPU model, its core count and whether it has AVX-512 are printed with the table, since
matrix products on AVX2-only cores run about 2.5 times slower than on AVX-512 ones; the
budget is meant for the slow kind. The load average is printed too: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from vae_lib.atomic import atomic_write

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTER_BUDGET_S = 90.0
BOOK_BUDGET_S = 720.0


def cpu_description() -> str:
    """``'<model name>, N cores, AVX-512'`` (or ``AVX2 only``) from /proc/cpuinfo where there is one."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    isa = "AVX-512" if "avx512f" in flags else ("AVX2 only" if "avx2" in flags else "no AVX2")
    return f"{model}, {os.cpu_count()} cores, {isa}"


def run_notebook(path: Path, timeout: int = 900, write: bool = False) -> tuple[float, list[tuple[float, int]]]:
    """Execute ``path`` in a fresh kernel; ``(wall seconds, [(cell seconds, cell index)] slowest first)``.

    With ``write``, the executed notebook replaces ``path`` (written to a temporary file, then
    renamed, so a failed run leaves the committed notebook as it was)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    cell_times = []
    t0 = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            t = time.perf_counter()
            client.execute_cell(cell, i)
            cell_times.append((time.perf_counter() - t, i))
        wall = time.perf_counter() - t0
        client.set_widgets_metadata()  # the widgets' saved state, which the static book renders
    if write:
        atomic_write(path, lambda tmp: nbformat.write(nb, str(tmp)))
    return wall, sorted(cell_times, reverse=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every book/NN_*.ipynb")
    p.add_argument("--json", type=Path, help="also write the times to this file")
    p.add_argument("--write", action="store_true", help="save each executed notebook in place")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
    print(f"CPU: {cpu_description()}; load average before: {os.getloadavg()[0]:.2f}")
    rows, total = [], 0.0
    for path in paths:
        wall, cells = run_notebook(path, write=args.write)
        total += wall
        slow = ", ".join(f"c{i} {t:.1f}s" for t, i in cells[:3])
        rows.append({"notebook": path.name, "seconds": round(wall, 1), "slowest_cells": slow,
                     "within_budget": wall <= CHAPTER_BUDGET_S})
        print(f"{path.name:36s} {wall:6.1f} s  {'PASS' if wall <= CHAPTER_BUDGET_S else 'OVER'}  (slowest: {slow})",
              flush=True)
    print(f"{'whole book':36s} {total:6.1f} s  {'PASS' if total <= BOOK_BUDGET_S else 'OVER'}"
          f"  (budget {CHAPTER_BUDGET_S:.0f} s a chapter, {BOOK_BUDGET_S:.0f} s in all); "
          f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_description(), "chapters": rows, "total_s": round(total, 1)}, indent=1))
    return 0 if total <= BOOK_BUDGET_S and all(r["within_budget"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
