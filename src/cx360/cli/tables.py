"""The options every standalone command (clv, churn, sentiment, identity dedupe) takes to read its
CSV: `--delimiter`, `--decimal` and `--encoding`, each detected when left out (see cx360.files)."""

from __future__ import annotations

from typing import Annotated

import typer

from cx360.files import CsvOptions

DelimiterOpt = Annotated[
    str | None,
    typer.Option("--delimiter", help="CSV field separator, e.g. ';' or '\\t' (default: detected among , ; tab |)."),
]
DecimalOpt = Annotated[
    str | None, typer.Option("--decimal", help="Decimal mark of the CSV's numbers, '.' or ',' (default: detected).")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", help="CSV text encoding, e.g. cp1251 (default: from a byte-order mark, else UTF-8)."),
]


def csv_options(delimiter: str | None, decimal: str | None, encoding: str | None) -> CsvOptions:
    tab = {"\\t": "\t", "tab": "\t", "TAB": "\t"}
    return CsvOptions(tab.get(delimiter, delimiter) if delimiter else None, decimal, encoding)
