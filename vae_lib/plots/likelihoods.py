"""Figures of Part II (likelihoods)."""
from __future__ import annotations

__all__: list = []
