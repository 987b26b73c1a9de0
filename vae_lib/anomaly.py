"""Anomaly scores from a VAE's likelihood, AUROC, and out-of-distribution inputs made offline (Part II, chapter 8)."""
from __future__ import annotations

__all__: list = []
