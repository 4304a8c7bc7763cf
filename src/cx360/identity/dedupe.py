"""Link and deduplicate plain CSV / Parquet files, without a workspace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from cx360 import documents
from cx360.errors import ConfigError, SourceError
from cx360.files import CsvOptions, read_table
from cx360.identity.components import components
from cx360.identity.matching import FIELDS, MatchModel


def read_rows(path: Path, options: CsvOptions | None = None) -> pd.DataFrame:
    """Every column as text, empty cells as missing."""
    return read_table(path, all_text=True, options=options).astype("string").replace("", None)


DOCUMENT = "document"


def parse_map(pairs: list[str]) -> dict[str, str]:
    """`["dob=birth_date", "inn=document:ru.inn", ...]` -> {"dob": "birth_date", ...}, checking the names.

    A document column (`document`, or `document:SCHEME` to validate it) is matched exactly; one column
    per scheme, so that an INN is never compared with a passport number."""
    out = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        kind, _, scheme = field.partition(":")
        if kind == DOCUMENT and sep and column:
            out[column] = f"{DOCUMENT}:{documents.check_scheme(scheme)}" if scheme else DOCUMENT
            continue
        if not sep or not column or field not in FIELDS:
            raise ConfigError(
                f"--map {pair!r}: expected SOURCE_COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}, "
                f"{DOCUMENT} or {DOCUMENT}:SCHEME (ru.inn, us.ssn, ru.snils, ru.passport, ...)"
            )
        out[column] = field
    return out


def _document_columns(df: pd.DataFrame, mapping: dict[str, str], notes: list[str], path: Path) -> pd.DataFrame:
    """Each document column normalised into a feature column of its scheme; invalid numbers left out
    (the row stays, matched on its other fields) and counted in `notes`."""
    out = pd.DataFrame(index=df.index)
    for column, field in mapping.items():
        if not field.startswith(DOCUMENT) or column not in df:
            continue
        scheme = field.partition(":")[2] or None
        feature = DOCUMENT if scheme is None else f"{DOCUMENT}_{scheme.replace('.', '_')}"
        pairs = [documents.normalise(scheme, v) for v in df[column].astype(object).where(df[column].notna(), None)]
        bad = [why for value, why in pairs if why is not None]
        if bad:
            notes.append(f"{path}: {len(bad):,} value(s) of {column} left out ({bad[0]})")
        out[feature] = pd.array([value for value, _ in pairs], dtype="string")
    return out


def dedupe_files(
    paths: list[Path], key: str, mapping: dict[str, str], *, threshold: float = 0.9, options: CsvOptions | None = None
) -> pd.DataFrame:
    """One row per input row: file, key, cluster_id (rows of one real entity share a cluster_id);
    `attrs["notes"]` says which document numbers were invalid and left out."""
    frames, notes = [], []
    for i, path in enumerate(paths):
        df = read_rows(path, options)
        if key not in df:
            raise SourceError(f"{path}: no key column {key!r}; it has {list(df.columns)}")
        if df[key].isna().any() or df[key].duplicated().any():
            raise SourceError(f"{path}: key column {key!r} must be unique and non-empty in each file")
        docs = _document_columns(df, mapping, notes, path)
        renamed = df.drop(columns=[c for c in mapping if mapping[c].startswith(DOCUMENT)]).rename(columns=mapping)
        fields = [f for f in FIELDS if f in renamed.columns]
        if not fields and docs.empty:
            raise SourceError(
                f"{path}: no column names a person field ({', '.join(FIELDS)}); map them with --map COLUMN=FIELD"
            )
        part = pd.concat([renamed[fields], docs], axis=1)
        part.insert(0, "unique_id", [f"{i}\x1f{k}" for k in df[key]])
        part["_file"], part["_key"] = str(path), df[key].values
        frames.append(part)
    records = pd.concat(frames, ignore_index=True)
    exact = tuple(c for c in records.columns if c.startswith(DOCUMENT))
    model = MatchModel(threshold=threshold, exact_columns=exact).fit(records.drop(columns=["_file", "_key"]))
    pairs = model.predict(records.drop(columns=["_file", "_key"]))
    labels = components(pa.array(records.unique_id), pairs["left_id"], pairs["right_id"]).to_pandas()
    numbers = {label: n for n, label in enumerate(sorted(labels.component.unique()), start=1)}
    cluster = dict(zip(labels.node, labels.component.map(numbers), strict=True))
    result = pd.DataFrame({"file": records._file, "key": records._key, "cluster_id": records.unique_id.map(cluster)})
    result.attrs["notes"] = notes  # what was left out of the matching, for the caller to show
    return result
