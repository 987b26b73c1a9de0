"""Conditional VAEs: q(z|x, y) and p(x|z, y) (Part II, chapter 7). Filled in by its chapter's work."""
from __future__ import annotations

__all__: list = []
