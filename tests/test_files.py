"""One auto-detecting reader behind the standalone commands: delimiter, decimal mark and encoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cx360.errors import SourceError
from cx360.files import CsvOptions, detect, read_table

SRC = str(Path(__file__).resolve().parents[1] / "src")
TABLE = pd.DataFrame(
    {"client": ["007", "008", "009"], "paid": [12.5, 3.25, 1000.0], "city": ["Москва", "Тверь", "Омск"]}
)


def cx360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": SRC},
    )


@pytest.mark.parametrize(
    "sep, decimal, encoding",
    [
        (",", ".", "utf-8"),
        (";", ",", "cp1251"),
        (";", ".", "utf-8"),
        ("\t", ",", "utf-8-sig"),
        ("|", ".", "utf-16"),
    ],
)
def test_delimiter_decimal_and_encoding_are_detected(tmp_path, sep, decimal, encoding):
    path = tmp_path / "t.csv"
    TABLE.to_csv(path, sep=sep, decimal=decimal, encoding=encoding, index=False)
    found = detect(path, CsvOptions())
    assert (found.delimiter, found.decimal) == (sep, decimal)
    if encoding != "cp1251":  # cp1251 has no mark: it is read when given (below)
        assert found.encoding == encoding
        pd.testing.assert_frame_equal(read_table(path, text_columns=("client",)), TABLE)


def test_a_legacy_encoding_is_named_by_the_error_and_read_when_given(tmp_path):
    path = tmp_path / "t.csv"
    TABLE.to_csv(path, sep=";", decimal=",", encoding="cp1251", index=False)
    with pytest.raises(SourceError, match=r"not utf-8 .*give the file.s encoding with --encoding"):
        read_table(path)
    got = read_table(path, text_columns=("client",), options=CsvOptions(encoding="cp1251"))
    pd.testing.assert_frame_equal(got, TABLE)
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        read_table(path, options=CsvOptions(encoding="klingon"))
    with pytest.raises(SourceError, match="also the delimiter"):
        read_table(path, options=CsvOptions(delimiter=";", decimal=";", encoding="cp1251"))


def test_given_options_win_over_detection(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1,5;2\n", encoding="utf-8")
    assert read_table(path).to_dict("list") == {"a": [1.5], "b": [2]}
    assert read_table(path, options=CsvOptions(decimal=".")).to_dict("list") == {"a": ["1,5"], "b": [2]}
    assert read_table(path, options=CsvOptions(delimiter="|")).columns.tolist() == ["a;b"]


def test_clv_reads_a_semicolon_file_with_decimal_commas_as_it_reads_a_plain_one(tmp_path):
    rows = [
        (f"c{c:02d}", (pd.Timestamp("2024-01-01") + pd.Timedelta(days=3 * c + 11 * k)).date(), 10.5 + c + k)
        for c in range(30)
        for k in range(1 + c % 4)
    ]
    tx = pd.DataFrame(rows, columns=["client", "when", "paid"])
    tx.to_csv(tmp_path / "plain.csv", index=False)
    tx.to_csv(tmp_path / "excel.csv", index=False, sep=";", decimal=",", encoding="utf-8-sig")
    reports = []
    for name in ("plain", "excel"):
        result = cx360(
            "clv",
            str(tmp_path / f"{name}.csv"),
            "--customer",
            "client",
            "--date",
            "when",
            "--amount",
            "paid",
            "--calibration-end",
            "2024-04-30",
            "-o",
            str(tmp_path / f"{name}.out.csv"),
            "--format",
            "json",
        )
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert reports[0]["bgnbd"] == reports[1]["bgnbd"] and reports[0]["customers"] == 30


def test_sentiment_keeps_the_id_columns_and_dedupe_reads_semicolons(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text(
        "review_id;client_id;text\nr1;007;Отличный сервис, спасибо\nr2;008;Ужасно, верните деньги\n", encoding="utf-8"
    )
    result = cx360(
        "sentiment",
        str(src),
        "--text-column",
        "text",
        "--backend",
        "lexicon",
        "-o",
        str(tmp_path / "o.csv"),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert {"what": "rows", "count": 2} in json.loads(result.stdout)
    out = pd.read_csv(tmp_path / "o.csv", dtype=str)
    assert out.columns[:3].tolist() == ["review_id", "client_id", "language"]
    assert out["client_id"].tolist() == ["007", "008"]  # leading zeros kept
    chosen = cx360(
        "sentiment",
        str(src),
        "--text-column",
        "text",
        "--backend",
        "lexicon",
        "--id-column",
        "client_id",
        "-o",
        str(tmp_path / "o2.csv"),
    )
    assert chosen.returncode == 0 and pd.read_csv(tmp_path / "o2.csv").columns[0] == "client_id"


def test_dedupe_reads_through_the_same_reader(tmp_path):
    from cx360.identity.dedupe import read_rows

    people = tmp_path / "people.csv"
    people.write_text("id;first_name;phone\n01;Иван;+79161234567\n02;Anna;\n", encoding="cp1251")
    rows = read_rows(people, CsvOptions(encoding="cp1251"))
    assert rows.columns.tolist() == ["id", "first_name", "phone"]
    assert rows["id"].tolist() == ["01", "02"] and rows["first_name"][0] == "Иван" and pd.isna(rows["phone"][1])
