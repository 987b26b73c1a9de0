"""VQ-VAE: a codebook, the straight-through estimator, the commitment loss and codebook usage (Part II, chapter 10)."""
from __future__ import annotations

__all__: list = []
