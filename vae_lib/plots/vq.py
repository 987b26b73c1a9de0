"""Figures of Part II (vq)."""
from __future__ import annotations

__all__: list = []
