"""Plain CSV / Parquet tables for the standalone commands (clv, churn, sentiment): one reader, one
set of errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cx360.errors import SourceError


def require_file(path: Path) -> None:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")


def read_table(path: Path, *, text_columns: tuple[str | None, ...] = (), all_text: bool = False) -> pd.DataFrame:
    """A CSV (tab-separated for .tsv) or Parquet file as a DataFrame. CSV types are inferred, except
    `text_columns` (ids keep their leading zeros) or every column with `all_text` (empty cells as "")."""
    path = Path(path)
    require_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            dtype = str if all_text else ({c: str for c in text_columns if c} or None)
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=dtype, keep_default_na=not all_text)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise SourceError(f"{path}: cannot be read: {exc}") from exc
    raise SourceError(f"{path}: expected a .csv or .parquet file, got '{suffix or 'no extension'}'")
