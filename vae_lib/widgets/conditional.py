"""Chapter 7 widget: one style code z decoded with every label, and its kernel-free twin."""
from __future__ import annotations

__all__: list = []
