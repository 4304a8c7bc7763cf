"""A user's table as model features, without preparation: types inferred once at fit, applied the same way
at scoring.

Strings become pandas categoricals with the training categories remembered (an unseen category at scoring
is missing, which the trees handle); dates become days before the table's latest date; identifiers, the
label, constant and all-null columns are left out, each with a note saying why.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from cx360.errors import DataError

# A string column with more distinct values than this (and mostly unique) reads as an identifier or free text.
MAX_CATEGORIES = 200
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass
class Feature:
    name: str  # the model's feature name
    column: str  # the input column it comes from
    kind: str  # "numeric", "category" or "days_ago"
    categories: list[str] = field(default_factory=list)


@dataclass
class TablePrep:
    """Learns at fit which columns are features and how to read them; transform applies that to any table."""

    features: list[Feature] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, df: pd.DataFrame, *, skip: dict[str, str]) -> TablePrep:
        """`skip` maps columns that are not features (id, label, time, excluded) to the reason."""
        prep = cls()
        for column in df.columns:
            column = str(column)
            if column in skip:
                prep.notes.append(f"{column}: not a feature ({skip[column]})")
                continue
            values = df[column]
            non_null = values.dropna()
            if non_null.empty:
                prep.notes.append(f"{column}: dropped (all values missing)")
                continue
            if non_null.nunique() == 1:
                prep.notes.append(f"{column}: dropped (one value only: {non_null.iloc[0]!r})")
                continue
            feature = _infer(column, values, non_null, prep.notes)
            if feature is not None:
                prep.features.append(feature)
        if not prep.features:
            raise DataError("no usable feature columns are left: " + "; ".join(prep.notes))
        return prep

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.features]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def transform(self, df: pd.DataFrame, *, what: str = "the table") -> pd.DataFrame:
        missing = [c for c in dict.fromkeys(self.columns) if c not in df.columns]
        if missing:
            raise DataError(f"{what} lacks {len(missing)} column(s) the model was trained on: {', '.join(missing)}")
        as_of = _latest_date(df, [f.column for f in self.features if f.kind == "days_ago"])
        out = {}
        for f in self.features:
            values = df[f.column]
            if f.kind == "category":
                # Unseen categories become missing, as the trees treat a missing value.
                text = values.astype("string").where(values.notna())
                text = text.where(text.isin(f.categories))
                out[f.name] = pd.Categorical(text, categories=f.categories)
            elif f.kind == "days_ago":
                out[f.name] = (as_of - _dates(values)).dt.total_seconds() / 86400.0
            else:
                out[f.name] = _numbers(values, f.column, what)
        return pd.DataFrame(out, index=df.index)

    def to_dict(self) -> dict:
        return {"features": [asdict(f) for f in self.features], "notes": self.notes}

    @classmethod
    def from_dict(cls, data: dict) -> TablePrep:
        return cls(features=[Feature(**f) for f in data["features"]], notes=list(data.get("notes", [])))


def _infer(column: str, values: pd.Series, non_null: pd.Series, notes: list[str]) -> Feature | None:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return Feature(column, column, "numeric")
    if pd.api.types.is_datetime64_any_dtype(values) or _looks_like_dates(non_null):
        notes.append(f"{column}: dates, used as days before the table's latest date ({column}_days_ago)")
        return Feature(f"{column}_days_ago", column, "days_ago")
    text = non_null.astype("string")
    distinct = text.nunique()
    if distinct > MAX_CATEGORIES and distinct > 0.5 * len(text):
        notes.append(f"{column}: dropped (text with {distinct:,} distinct values: an identifier or free text)")
        return None
    return Feature(column, column, "category", sorted(text.unique().tolist()))


def _looks_like_dates(non_null: pd.Series) -> bool:
    sample = non_null.astype("string").head(200)
    return bool(sample.str.match(_DATE_LIKE).all())


def _dates(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return dates


def _latest_date(df: pd.DataFrame, columns: list[str]) -> pd.Timestamp | None:
    latest = [_dates(df[c]).max() for c in columns]
    latest = [d for d in latest if pd.notna(d)]
    return max(latest) if latest else None


def _numbers(values: pd.Series, column: str, what: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].astype(str).unique()[:5])
        raise DataError(f"{what}: column '{column}' was numeric in training but holds {examples}")
    return numbers.astype("float64")


def describe_value(value: object) -> str:
    """A feature value as a reason shows it: 94, 0.35, basic, missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
    return str(value)
