"""Plain CSV / Parquet tables for the standalone commands (clv, churn, sentiment, identity dedupe): one
reader, one set of errors.

A CSV's encoding, delimiter and decimal mark are detected from its first bytes unless given: a BOM
(UTF-8 or UTF-16) names the encoding, otherwise UTF-8; the delimiter is the one of `, ; TAB |` that
splits the sample's lines most consistently; the decimal mark is a comma when the delimiter is not one
and numbers in the sample are written `12,50`. Excel in most of Europe and Russia writes exactly that.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cx360.errors import SourceError

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
_COMMA_NUMBER = re.compile(r"^-?\d+,\d+$")
_DOT_NUMBER = re.compile(r"^-?\d+\.\d+$")


@dataclass(frozen=True)
class CsvOptions:
    """What `--delimiter`, `--decimal` and `--encoding` say; None means "detect"."""

    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None


def require_file(path: Path) -> None:
    if not path.is_file():
        raise SourceError(f"{path}: no such file")


def read_table(
    path: Path, *, text_columns: tuple[str | None, ...] = (), all_text: bool = False, options: CsvOptions | None = None
) -> pd.DataFrame:
    """A CSV (or .tsv, .txt) or Parquet file as a DataFrame. CSV types are inferred, except
    `text_columns` (ids keep their leading zeros) or every column with `all_text` (empty cells as "")."""
    path = Path(path)
    require_file(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError) as exc:
            raise SourceError(f"{path}: cannot be read: {exc}") from exc
    if suffix not in (".csv", ".txt", ".tsv"):
        raise SourceError(f"{path}: expected a .csv or .parquet file, got '{suffix or 'no extension'}'")
    opts = detect(path, options or CsvOptions())
    dtype = str if all_text else ({c: str for c in text_columns if c} or None)
    try:
        return pd.read_csv(
            path,
            sep=opts.delimiter,
            decimal=opts.decimal,
            encoding=opts.encoding,
            dtype=dtype,
            keep_default_na=not all_text,
        )
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: not {opts.encoding} ({exc.reason} at byte {exc.start}); give the file's "
            "encoding with --encoding (e.g. cp1251, latin-1, utf-16)"
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise SourceError(
            f"{path}: cannot be read as CSV with delimiter {opts.delimiter!r}, decimal "
            f"{opts.decimal!r}, encoding {opts.encoding}: {exc}"
        ) from exc


def detect(path: Path, given: CsvOptions) -> CsvOptions:
    """Fill in what `given` leaves open from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    encoding = given.encoding or _encoding(head)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(f"{path}: unknown encoding {encoding!r} (try utf-8, cp1251, latin-1 or utf-16)") from None
    text = head.decode(encoding, errors="ignore")
    if len(head) == SAMPLE_BYTES:
        text = text[: text.rfind("\n") + 1] or text  # whole lines only
    delimiter = given.delimiter or ("\t" if path.suffix.lower() == ".tsv" else _delimiter(text))
    if len(delimiter) != 1:
        raise SourceError(f"--delimiter {delimiter!r}: expected one character (use '\\t' for a tab)")
    decimal = given.decimal or _decimal(text, delimiter)
    if decimal == delimiter:
        raise SourceError(f"--decimal {decimal!r} is also the delimiter; give another --delimiter")
    return CsvOptions(delimiter, decimal, encoding)


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _delimiter(text: str) -> str:
    """The candidate that gives the most columns on the header, the same number on every sampled line."""
    lines = text.splitlines()[:50]
    best, best_cols = ",", 1
    for d in DELIMITERS:
        try:
            widths = {len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=d) if row}
        except csv.Error:
            continue
        if len(widths) == 1 and (cols := widths.pop()) > best_cols:
            best, best_cols = d, cols
    return best


def _decimal(text: str, delimiter: str) -> str:
    if delimiter == ",":
        return "."
    cells = [c.strip() for row in csv.reader(io.StringIO(text), delimiter=delimiter) for c in row]
    comma = sum(1 for c in cells if _COMMA_NUMBER.match(c))
    dot = sum(1 for c in cells if _DOT_NUMBER.match(c))
    return "," if comma > dot else "."
