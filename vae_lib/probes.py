"""Representations that pay: classifiers trained on a model's codes with few labels (Part II, chapter 8)."""
from __future__ import annotations

__all__: list = []
