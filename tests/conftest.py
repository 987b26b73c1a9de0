"""Test-session settings.

Under pytest-xdist each worker runs one notebook kernel or test module at a time; with
torch's default of one thread per core, two workers on two cores oversubscribe the CPU
and OpenMP slows everything several-fold. One thread per worker (inherited by the nbval
kernels through the environment) keeps both cores busy without contention.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
