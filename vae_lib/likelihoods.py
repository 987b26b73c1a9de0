"""Likelihoods for 8-bit grey levels: discretized logistic (mixture), 256-way categorical, bits per dimension (Part II, chapter 9)."""
from __future__ import annotations

__all__: list = []
