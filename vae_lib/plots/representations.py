"""Figures of Part II (representations)."""
from __future__ import annotations

__all__: list = []
