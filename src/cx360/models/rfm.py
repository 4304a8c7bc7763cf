"""Transactions to the per-customer summary the CLV models read (frequency, recency, T, monetary value).

As in Fader, Hardie & Lee (2005): purchases on the same day are one purchase (their amounts summed),
the first purchase starts the customer's clock and is not counted, and monetary value is the mean
amount of the repeat purchases only.
"""

from __future__ import annotations

import pandas as pd

from cx360.errors import SourceError

UNIT_DAYS = {"D": 1.0, "W": 7.0}


def rfm_summary(
    transactions: pd.DataFrame,
    customer: str,
    date: str,
    amount: str | None,
    calibration_end,
    holdout_end=None,
    freq: str = "W",
) -> pd.DataFrame:
    """One row per customer whose first purchase is on or before ``calibration_end``.

    Columns: ``frequency`` (repeat purchase days), ``recency`` (first to last purchase), ``T`` (first
    purchase to ``calibration_end``), ``monetary_value`` (mean repeat amount, 0 without repeats); with
    ``holdout_end``: ``frequency_holdout``, ``spend_holdout`` and ``duration_holdout`` for purchases
    after ``calibration_end`` up to and including ``holdout_end``. Times are in days or weeks (``freq``).
    """
    if freq not in UNIT_DAYS:
        raise SourceError(f"freq must be one of {sorted(UNIT_DAYS)}, got {freq!r}")
    unit = UNIT_DAYS[freq]
    missing = [c for c in (customer, date, amount) if c is not None and c not in transactions.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}; the table has {list(transactions.columns)}")
    cal_end = _day(calibration_end, "calibration_end")
    hold_end = _day(holdout_end, "holdout_end") if holdout_end is not None else None
    if hold_end is not None and hold_end <= cal_end:
        raise SourceError(f"holdout_end {hold_end.date()} must be after calibration_end {cal_end.date()}")

    tx = pd.DataFrame({"customer": transactions[customer], "day": _dates(transactions[date], date)})
    tx["amount"] = _amounts(transactions[amount], amount) if amount is not None else 0.0
    if tx["customer"].isna().any():
        raise SourceError(f"column {customer!r}: {int(tx['customer'].isna().sum())} row(s) without a customer")
    days = tx.groupby(["customer", "day"], sort=True, as_index=False)["amount"].sum()

    cal = days[days["day"] <= cal_end]
    if cal.empty:
        raise SourceError(f"no transactions on or before calibration_end {cal_end.date()}")
    g = cal.groupby("customer", sort=True)
    first, last = g["day"].min(), g["day"].max()
    n = g.size()
    total, first_amount = g["amount"].sum(), g["amount"].first()
    out = pd.DataFrame(
        {
            "frequency": (n - 1).astype(int),
            "recency": (last - first).dt.days / unit,
            "T": (cal_end - first).dt.days / unit,
        }
    )
    repeats = out["frequency"]
    out["monetary_value"] = ((total - first_amount) / repeats.where(repeats > 0)).fillna(0.0)
    if hold_end is not None:
        hold = days[(days["day"] > cal_end) & (days["day"] <= hold_end)]
        hg = hold[hold["customer"].isin(out.index)].groupby("customer")
        out["frequency_holdout"] = hg.size().reindex(out.index, fill_value=0).astype(int)
        out["spend_holdout"] = hg["amount"].sum().reindex(out.index, fill_value=0.0)
        out["duration_holdout"] = (hold_end - cal_end).days / unit
    out.index.name = customer
    return out.reset_index()


def _day(value, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{name}: expected a date like 1997-09-30, got {value!r}") from exc
    if pd.isna(ts):
        raise SourceError(f"{name}: expected a date like 1997-09-30, got {value!r}")
    return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()


def _dates(col: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        text = col.astype("string").str.strip()
        # Compact yyyymmdd (CDNOW and many exports) is read as a date, not a number.
        fmt = "%Y%m%d" if text.dropna().str.fullmatch(r"\d{8}").all() else None
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        bad = parsed.isna() & text.notna()
        if bad.any() or text.isna().any():
            sample = text[bad].head(3).tolist() if bad.any() else ["<empty>"]
            raise SourceError(
                f"column {name!r}: {int(bad.sum() + text.isna().sum())} value(s) are not dates, "
                f"e.g. {sample}; expected dates like 1997-01-31 or 19970131"
            )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize().astype("datetime64[ns]")


def _amounts(col: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna()
    if bad.any():
        raise SourceError(
            f"column {name!r}: {int(bad.sum())} value(s) are not numbers, e.g. "
            f"{col[bad].head(3).tolist()}; expected amounts like 29.33"
        )
    if (values < 0).any():
        raise SourceError(
            f"column {name!r}: {int((values < 0).sum())} negative amount(s), e.g. "
            f"{values[values < 0].head(3).tolist()}; expected amounts >= 0 (book refunds separately)"
        )
    return values.astype(float)
