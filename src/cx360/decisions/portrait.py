"""What the response models know of a person besides their answers to offers: how their card spend
splits over categories, and how much they spend.

A person answers only a handful of offers, too few to tell what they are interested in; where they
spend (fuel, travel) and how much says more, and changes which offer they take, contacted or not. The
propensity model weighs these features per offer, the control model per offer's control group.

They come from the profiles stage (`profile_breakdowns`' `spend_by_category`) at the decision's as_of:
one snapshot per person, also used for their earlier contacts. A person who does not consent to
profiling has none (zeros), as their other traits are withheld.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SPEND = "spend_by_category"  # the breakdown read
SHARE = "spend_share:"  # a column per category: its share of the person's card spend
TOTAL = "log_spend"
SCALE = 10.0  # log1p of the spend over 10: near 1 for a typical year's spend, as the shares and rates are


def frame(spend: pd.DataFrame) -> pd.DataFrame:
    """profile_id -> the features, from spend_by_category rows (profile_id, key, value); columns in order."""
    if spend.empty:
        return pd.DataFrame(index=pd.Index([], name="profile_id"))
    wide = spend.pivot_table(index="profile_id", columns="key", values="value", aggfunc="sum", fill_value=0.0)
    wide = wide.clip(lower=0.0)
    total = wide.sum(axis=1)
    out = wide.div(total.where(total > 0, 1.0), axis=0)
    out.columns = [SHARE + str(c) for c in out.columns]
    out[TOTAL] = np.log1p(total) / SCALE
    return out.sort_index(axis=1)


def row(spend: dict[str, float] | None, columns: list[str]) -> list[float]:
    """`frame` for one person, from their served profile's spend_by_category breakdown, in `columns`' order."""
    spend = {k: max(float(v), 0.0) for k, v in (spend or {}).items()}
    total = sum(spend.values())
    values = {SHARE + k: v / (total if total > 0 else 1.0) for k, v in spend.items()}
    values[TOTAL] = math.log1p(total) / SCALE
    return [values.get(c, 0.0) for c in columns]


def label(column: str) -> str:
    """A feature's name in a decision's reasons."""
    return "spends much" if column == TOTAL else f"spends on {column.removeprefix(SHARE)}"
