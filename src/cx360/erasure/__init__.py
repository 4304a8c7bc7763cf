"""Erasure that leaves no trace, and subject access: they reach every store of a workspace."""
