"""Text -> feature matrix, per language. Stateless except for what the model file stores (idf, scaling).

Hashing keeps the shipped models small and free of a vocabulary; the Russian model adds averaged
navec word vectors (navec's news embeddings, shipped in cx360/text/data) and lexicon counts, since its
training set is small.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from cx360.text import lexicons

N_HASH = 2**17
_WORD = r"(?u)\b\w+\b|[!?]+|[:;]-?[()DPp]"


@cache
def _hashers(language: str) -> tuple[HashingVectorizer, ...]:
    common = {"n_features": N_HASH, "alternate_sign": False, "norm": None, "lowercase": True, "dtype": np.float32}
    if language == "zh":
        return (HashingVectorizer(analyzer="char", ngram_range=(1, 3), **common),)
    if language == "en":
        return (
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=_WORD, **common),
            HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
        )
    if language == "ru":
        return (
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=_WORD, **common),
            HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
        )
    raise ValueError(f"no features for language {language!r}; expected one of ru, en, zh")


_ANY_WORD = re.compile(r"\w+")


def is_short(language: str, texts: list[str]) -> np.ndarray:
    """At most two words (Chinese: at most four characters), per text."""
    if language == "zh":
        return np.array([len((t or "").strip()) <= 4 for t in texts], dtype=bool)
    return np.array([len(_ANY_WORD.findall(t or "")) <= 2 for t in texts], dtype=bool)


def counts(language: str, texts: list[str]) -> sp.csr_matrix:
    """Hashed n-gram counts, sublinear (1 + log tf), one block per hasher."""
    blocks = [h.transform(texts) for h in _hashers(language)]
    x = sp.hstack(blocks, format="csr", dtype=np.float32)
    x.data = 1.0 + np.log(x.data)
    return x


def tfidf(x: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Scale by idf, then L2-normalise each row."""
    x = x @ sp.diags(idf.astype(np.float32))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x, dtype=np.float32)


def fit_idf(x: sp.csr_matrix) -> np.ndarray:
    df = np.bincount(x.indices, minlength=x.shape[1])
    return (np.log((1 + x.shape[0]) / (1 + df)) + 1.0).astype(np.float32)


NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"


@lru_cache(maxsize=1)
def navec():
    """navec's Russian news word vectors (250k words, 300 dims), loaded once. The file ships with cx360
    (text/data, MIT-licensed by the navec authors): the navec package holds only the code that reads it."""
    from navec import Navec

    path = resources.files("cx360.text") / "data" / NAVEC_FILE
    with resources.as_file(path) as p:
        return Navec.load(str(p))


_RU_WORD = re.compile(r"[а-яё]+")


def navec_mean(texts: list[str]) -> np.ndarray:
    """Average navec vector of each text's known words (zeros when none is known)."""
    nv = navec()
    get = nv.vocab.get
    rows, cols = [], []
    for i, text in enumerate(texts):
        ids = [j for j in (get(w) for w in _RU_WORD.findall(text.lower().replace("ё", "е"))) if j is not None]
        rows.extend([i] * len(ids))
        cols.extend(ids)
    if not cols:
        return np.zeros((len(texts), nv.pq.dim), dtype=np.float32)
    uniq, inverse = np.unique(np.asarray(cols), return_inverse=True)
    # Decode only the words present: each of the qdim sub-vectors comes from its own codebook.
    idx = nv.pq.indexes[uniq]
    vectors = nv.pq.codes[np.arange(nv.pq.qdim)[None, :], idx].reshape(len(uniq), -1)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, inverse)), shape=(len(texts), len(uniq)))
    n = np.asarray(m.sum(axis=1)).ravel()
    n[n == 0] = 1.0
    return np.asarray(sp.diags(1.0 / n) @ m @ vectors, dtype=np.float32)


def lexicon_features(language: str, texts: list[str]) -> np.ndarray:
    """Positive hits, negative hits, their difference and whether there is a '?', per text."""
    count = lexicons.ru_counts if language == "ru" else lexicons.zh_counts
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for i, t in enumerate(texts):
        p, n = count(t)
        out[i] = (np.log1p(p), np.log1p(n), np.tanh(p - n), "?" in t)
    return out


def vader_features(texts: list[str]) -> np.ndarray:
    """VADER's compound, positive, negative and neutral scores per text."""
    v = lexicons.vader()
    return np.array(
        [[s["compound"], s["pos"], s["neg"], s["neu"]] for s in map(v.polarity_scores, texts)], dtype=np.float32
    ).reshape(-1, 4)


def dense(language: str, texts: list[str]) -> np.ndarray | None:
    """Dense features appended to the n-grams: navec + lexicon for Russian, VADER for English."""
    if language == "ru":
        return np.hstack([navec_mean(texts), lexicon_features("ru", texts)])
    if language == "en":
        return vader_features(texts)
    return None
