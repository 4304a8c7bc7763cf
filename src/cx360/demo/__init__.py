"""The synthetic multi-source bank that `cx360 demo` builds, with its ground truth."""

from cx360.demo.world import WorldSummary, generate_world

__all__ = ["WorldSummary", "generate_world"]
