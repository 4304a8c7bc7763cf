"""Brand and keyword monitoring: how often each brand is mentioned per period, and in what tone."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cx360.errors import ConfigError
from cx360.text.sentiment import SIGN

PERIODS = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}


def _brand_patterns(brands: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, re.Pattern[str]]:
    """{brand: [aliases]} or a list of brands; an alias matches at the start of a word, any ending after
    (so 'Сбер' finds 'Сбербанка'); CJK aliases match anywhere."""
    items = brands.items() if isinstance(brands, Mapping) else ((b, [b]) for b in brands)
    out = {}
    for brand, aliases in items:
        parts = [
            re.escape(a.lower()) if re.search(r"[\u4e00-\u9fff]", a) else r"(?<!\w)" + re.escape(a.lower())
            for a in aliases
            if a.strip()
        ]
        if not parts:
            raise ConfigError(f"brand {brand!r}: no alias to look for")
        out[str(brand)] = re.compile("|".join(parts))
    return out


def brand_tone(
    texts: Sequence[str | None],
    timestamps: Sequence,
    brands: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    sentiments: Sequence[str | None] | None = None,
    period: str = "W",
    backend: str = "trained",
) -> pd.DataFrame:
    """Mentions per (period, brand) with mean tone in [-1, 1] (negative -1, neutral 0, positive +1).

    Columns: period (the period's start), brand, mentions, mean_sentiment, share_negative. Texts are
    scored with ``backend`` unless ``sentiments`` is given. Periods: D, W (weeks start on Monday), M, Q.
    """
    if period not in PERIODS:
        raise ConfigError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)}")
    if len(texts) != len(timestamps):
        raise ConfigError(f"{len(texts)} texts but {len(timestamps)} timestamps")
    if sentiments is None:
        from cx360.text.backends import get_backend
        from cx360.text.language import detect_languages

        clean = [t if isinstance(t, str) else None for t in texts]
        sentiments = get_backend(backend).score(clean, detect_languages(clean)).labels
    ts = pd.to_datetime(pd.Series(timestamps), errors="coerce", utc=True).dt.tz_localize(None)
    starts = ts.dt.to_period(period).dt.start_time
    lowered = [t.lower() if isinstance(t, str) else "" for t in texts]
    rows = []
    for brand, rx in _brand_patterns(brands).items():
        hit = np.array([bool(rx.search(t)) for t in lowered])
        for i in np.flatnonzero(hit & ts.notna().to_numpy()):
            rows.append((starts.iloc[i], brand, SIGN.get(sentiments[i], np.nan), sentiments[i] == "negative"))
    df = pd.DataFrame(rows, columns=["period", "brand", "tone", "negative"])
    if df.empty:
        return pd.DataFrame(columns=["period", "brand", "mentions", "mean_sentiment", "share_negative"])
    out = df.groupby(["period", "brand"], sort=True).agg(
        mentions=("tone", "size"), mean_sentiment=("tone", "mean"), share_negative=("negative", "mean")
    )
    return out.reset_index().round({"mean_sentiment": 4, "share_negative": 4})
