"""Figures of Part II (conditional)."""
from __future__ import annotations

__all__: list = []
