"""Score a batch of texts: language, sentiment, confidence, complaint, topics, purchase intent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cx360.errors import SourceError
from cx360.files import CsvOptions, read_table
from cx360.text.backends import get_backend
from cx360.text.intent import purchase_intent
from cx360.text.language import detect_languages
from cx360.text.sentiment import SentimentBackend
from cx360.text.topics import is_complaint, topic_lexicon

COLUMNS = ("language", "sentiment", "confidence", "complaint", "topics", "intent", "intent_product")


def analyze_texts(
    texts: Sequence[str | None],
    *,
    backend: str | SentimentBackend = "trained",
    extra_topics: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per text with the columns in ``COLUMNS``; empty or null texts get language 'unknown'.

    ``topics`` is a ';'-joined list (empty when none); ``intent`` is the purchase-intent score.
    """
    clean = [t if isinstance(t, str) and t.strip() else None for t in texts]
    languages = detect_languages(clean)
    scorer = get_backend(backend) if isinstance(backend, str) else backend
    scores = scorer.score(clean, languages)
    lexicon = topic_lexicon(extra_topics)
    topics = [lexicon.find(t) for t in clean]
    intents = [purchase_intent(t) for t in clean]
    return pd.DataFrame(
        {
            "language": languages,
            "sentiment": pd.array(scores.labels, dtype="object"),
            "confidence": np.round(scores.confidence, 4),
            "complaint": [is_complaint(t, s, tp) for t, s, tp in zip(clean, scores.labels, topics, strict=True)],
            "topics": [";".join(tp) for tp in topics],
            "intent": [i.score for i in intents],
            "intent_product": [i.product for i in intents],
        }
    )


def read_texts(
    path: Path, text_column: str, id_columns: Sequence[str] | None = None, options: CsvOptions | None = None
) -> tuple[pd.Series, pd.DataFrame]:
    """The text column of a CSV or Parquet file, and the columns that identify its rows: `id_columns`,
    or else every column named like an id (`id`, `*_id`, `id_*`), or else 1-based row numbers."""
    df = read_table(path, all_text=True, options=options)
    for col in (text_column, *(id_columns or ())):
        if col not in df.columns:
            raise SourceError(f"{path}: no column {col!r}; the columns are: {', '.join(map(str, df.columns))}")
    texts = df[text_column].astype("object").where(df[text_column].notna(), None)
    texts = texts.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    ids = list(id_columns) if id_columns else [c for c in df.columns if c != text_column and _looks_like_id(str(c))]
    clash = sorted(set(ids) & set(COLUMNS))
    if clash:
        raise SourceError(f"{path}: id column(s) {clash} have the names of output columns; rename them")
    if not ids:
        return texts, pd.DataFrame({"row": np.arange(1, len(df) + 1)})
    return texts, df[ids].reset_index(drop=True)


def _looks_like_id(name: str) -> bool:
    n = name.strip().lower()
    return n == "id" or n.endswith(("_id", " id")) or n.startswith("id_")


def analyze_file(
    path: Path,
    text_column: str,
    *,
    id_columns: Sequence[str] | None = None,
    backend: str | SentimentBackend = "trained",
    extra_topics: Mapping[str, Sequence[str]] | None = None,
    options: CsvOptions | None = None,
) -> pd.DataFrame:
    """:func:`analyze_texts` on a file's column, with the rows' id column(s) (or row number) first."""
    texts, ids = read_texts(path, text_column, id_columns, options)
    result = analyze_texts(texts.tolist(), backend=backend, extra_topics=extra_topics)
    return pd.concat([ids, result], axis=1)
