"""Temperature scaling (one scalar that divides the logits), and the figures that judge calibration.

A temperature keeps every argmax, so labels do not change; it only makes confidences honest. It is
fitted on predictions for texts the model did not train on (cross-validation folds of the training part).
"""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the log-loss of ``softmax(logits / t)``;
    ``truth`` holds column indices. A grid in log space is enough for one well-behaved scalar."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))
    rows = np.arange(len(truth))
    losses = [-np.log(softmax(logits / t)[rows, truth] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(losses))])


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the mean gap between confidence and accuracy over equal-width bins,
    weighted by how many predictions fall in each."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            gap += m.mean() * abs(confidence[m].mean() - correct[m].mean())
    return float(gap)


def brier(proba: np.ndarray, truth: np.ndarray) -> float:
    """Multi-class Brier score: mean squared distance between the probabilities and the one-hot truth."""
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(truth)), truth] = 1.0
    return float(((proba - onehot) ** 2).sum(axis=1).mean())
