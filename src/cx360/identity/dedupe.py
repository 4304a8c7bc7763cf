"""Link and deduplicate plain CSV / Parquet files, without a workspace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from cx360.errors import ConfigError, SourceError
from cx360.files import CsvOptions, read_table
from cx360.identity.components import components
from cx360.identity.matching import FIELDS, MatchModel


def read_rows(path: Path, options: CsvOptions | None = None) -> pd.DataFrame:
    """Every column as text, empty cells as missing."""
    return read_table(path, all_text=True, options=options).astype("string").replace("", None)


def parse_map(pairs: list[str]) -> dict[str, str]:
    """`["dob=birth_date", ...]` -> {"dob": "birth_date"}, checking the canonical names."""
    out = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep or not column or field not in FIELDS:
            raise ConfigError(f"--map {pair!r}: expected SOURCE_COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}")
        out[column] = field
    return out


def dedupe_files(
    paths: list[Path], key: str, mapping: dict[str, str], *, threshold: float = 0.9, options: CsvOptions | None = None
) -> pd.DataFrame:
    """One row per input row: file, key, cluster_id (rows of one real entity share a cluster_id)."""
    frames = []
    for i, path in enumerate(paths):
        df = read_rows(path, options)
        if key not in df:
            raise SourceError(f"{path}: no key column {key!r}; it has {list(df.columns)}")
        if df[key].isna().any() or df[key].duplicated().any():
            raise SourceError(f"{path}: key column {key!r} must be unique and non-empty in each file")
        renamed = df.rename(columns=mapping)
        fields = [f for f in FIELDS if f in renamed.columns]
        if not fields:
            raise SourceError(
                f"{path}: no column names a person field ({', '.join(FIELDS)}); map them with --map COLUMN=FIELD"
            )
        part = renamed[fields].copy()
        part.insert(0, "unique_id", [f"{i}\x1f{k}" for k in df[key]])
        part["_file"], part["_key"] = str(path), df[key].values
        frames.append(part)
    records = pd.concat(frames, ignore_index=True)
    model = MatchModel(threshold=threshold).fit(records.drop(columns=["_file", "_key"]))
    pairs = model.predict(records.drop(columns=["_file", "_key"]))
    labels = components(pa.array(records.unique_id), pairs["left_id"], pairs["right_id"]).to_pandas()
    numbers = {label: n for n, label in enumerate(sorted(labels.component.unique()), start=1)}
    cluster = dict(zip(labels.node, labels.component.map(numbers), strict=True))
    return pd.DataFrame({"file": records._file, "key": records._key, "cluster_id": records.unique_id.map(cluster)})
