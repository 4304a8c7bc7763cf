"""cx360: one explainable 3D profile per customer, and the decisions it drives."""

from __future__ import annotations

__version__ = "0.1.0"
