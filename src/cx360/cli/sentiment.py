"""`cx360 sentiment FILE`: tone, complaints, topics and purchase intent of a text column, without a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, emit, out
from cx360.cli.tables import DecimalOpt, DelimiterOpt, EncodingOpt, csv_options


def register(root: typer.Typer) -> None:
    root.command("sentiment")(sentiment_cmd)


def sentiment_cmd(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file with one text per row.")],
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write, one row per input row.")],
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="trained (shipped classifiers), lexicon, e5 (multilingual-e5-small), or transformer."
        ),
    ] = "trained",
    id_column: Annotated[
        list[str] | None,
        typer.Option(
            "--id-column",
            help="Column to copy to the output (repeatable; "
            "default: every column named id, *_id or id_*, else the row number).",
        ),
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="transformer: a local sentence-transformers model folder.")
    ] = None,
    head: Annotated[
        Path | None,
        typer.Option(
            "--head", help="transformer: the trained head (.npz) from scripts/train_sentiment.py --transformer."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Language, sentiment (with confidence), complaint, topics and purchase intent of each text."""
    import time

    from cx360.text.analyze import analyze_file
    from cx360.text.backends import get_backend

    options = {}
    if backend == "transformer":
        options = {"model_dir": model_dir, "head": head}
    scorer = get_backend(backend, **options)
    t0 = time.perf_counter()
    with out.status(f"Scoring {file.name} ({backend})..."):
        result = analyze_file(
            file, text_column, id_columns=id_column, backend=scorer, options=csv_options(delimiter, decimal, encoding)
        )
    seconds = time.perf_counter() - t0
    output.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(output, index=False)

    n = len(result)
    by_lang = result["language"].value_counts()
    by_tone = result["sentiment"].value_counts()
    emit(
        fmt,
        "Sentiment",
        ["what", "count"],
        [
            ("rows", n),
            *((f"language {k}", int(by_lang.get(k, 0))) for k in ("ru", "en", "zh", "other", "unknown")),
            *((k, int(by_tone.get(k, 0))) for k in ("negative", "neutral", "positive")),
            ("complaints", int(result["complaint"].sum())),
            ("with purchase intent", int((result["intent"] > 0).sum())),
            ("seconds (with model loading)", round(seconds, 1)),
            ("written to", str(output)),
        ],
    )
