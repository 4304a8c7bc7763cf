"""Accounting suite: seeded random CSV, JSON Lines and Parquet sources full of the ways inputs go wrong.

For every generated file the test knows what each row must become, and asserts that
read = loaded + quarantined + duplicates, that exactly the expected events are loaded and the
expected rows quarantined (nothing exists nowhere), and that nothing is ever loaded twice: a
re-ingest adds nothing and an overlapping export adds only its new rows.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx360.sources import readers
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace


def suite(examples: int) -> settings:
    """Seeded (derandomised) and bounded, so CI runs the same cases every time."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


CONFIG = """
[workspace]
name = "fuzz"
[engine]
kind = "duckdb"
[[sources]]
name = "fuzz"
kind = "{kind}"
path = "data/*.{kind}"
[sources.events]
event_id = "id"
timestamp = {{ column = "at", type = "timestamp" }}
name = {{ value = "card_payment" }}
amount = {{ column = "amount", type = "float" }}
identifiers = {{ customer_no = "who" }}
properties = {{ note = "note" }}
"""
HEADER = ["id", "at", "amount", "who", "note"]
# Notes hold any text but a quote: every quote in a file is then either a stray one or opens a field that
# csv writes, so a stray quote can never close into a row that parses (which would be valid CSV, not loss).
NOTES = st.text(st.characters(blacklist_characters='"\x00', blacklist_categories=("Cs",)), max_size=12).map(
    lambda s: "n" + s
)
ROW_KINDS = {
    "csv": ["good"] * 6 + ["dup", "conflict", "bad_value", "nan", "future", "fields", "stray", "blank", "bytes"],
    "jsonl": ["good"] * 6
    + [
        "dup",
        "conflict",
        "bad_value",
        "nan",
        "future",
        "broken",
        "array",
        "deep",
        "case",
        "anonymous",
        "blank",
        "bytes",
    ],
    "parquet": ["good"] * 4 + ["dup", "conflict", "bad_value", "nan", "anonymous"],
}
QUARANTINED = {
    "conflict",
    "bad_value",
    "nan",
    "future",
    "fields",
    "stray",
    "bytes",
    "broken",
    "array",
    "deep",
    "case",
    "anonymous",
}


@dataclass
class Expected:
    rows: int = 0
    loaded: set[str] = field(default_factory=set)
    quarantined: list[int] = field(default_factory=list)
    duplicates: int = 0


def plan(kinds: list[str], notes: list[str], start: int = 0) -> tuple[list[tuple[str, dict]], Expected]:
    """(kind, values) per row and what ingesting them must give; ids are unique per good row."""
    rows: list[tuple[str, dict]] = []
    good: list[dict] = []
    expected = Expected()
    for i, kind in enumerate(kinds):
        note = notes[i % len(notes)]
        values = {
            "id": f"e{start + i}",
            "at": "2025-03-01 10:00:00",
            "amount": str(i),
            "who": f"c{i % 5}",
            "note": note,
        }
        if kind in ("dup", "conflict") and not good:
            kind = "good"
        if kind == "dup":
            values = dict(good[i % len(good)])
        elif kind == "conflict":
            values = dict(good[i % len(good)], amount="-1")
        elif kind == "bad_value":
            values["at"] = "not a time"
        elif kind == "nan":
            values["amount"] = "NaN"
        elif kind == "future":
            values["at"] = "2999-01-01 00:00:00"
        elif kind == "anonymous":
            values["who"] = None
        rows.append((kind, values))
        if kind == "blank":
            continue
        expected.rows += 1
        if kind == "good":
            good.append(values)
            expected.loaded.add(values["id"])
        elif kind == "dup":
            expected.duplicates += 1
        else:
            expected.quarantined.append(expected.rows)
    return rows, expected


def csv_bytes(rows: list[tuple[str, dict]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    out = [buffer.getvalue().encode()]
    for kind, values in rows:
        buffer.seek(0)
        buffer.truncate()
        if kind == "blank":
            buffer.write(["\r\n", "   \r\n", "\n"][len(values["note"]) % 3])
        elif kind == "fields":
            writer.writerow([values["id"], values["at"]])
        else:
            writer.writerow([values[c] for c in HEADER])
        line = buffer.getvalue().encode()
        if kind == "stray":  # the note opens a quote that nothing closes
            line = (",".join(values[c] for c in HEADER[:4]) + ',"a stray quote\r\n').encode()
        elif kind == "bytes":
            line = line.replace(b"n", b"\xff\xfe", 1)
        out.append(line)
    return b"".join(out)


def jsonl_bytes(rows: list[tuple[str, dict]]) -> bytes:
    out = []
    for i, (kind, values) in enumerate(rows):
        obj = {k: v for k, v in values.items() if v is not None}
        if kind == "blank":
            line = " " * (i % 3)
        elif kind == "broken":
            line = json.dumps(obj)[:-3]
        elif kind == "array":
            line = json.dumps(list(obj.values()))
        elif kind == "deep":
            line = json.dumps(obj)[:-1] + ', "p": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
        elif kind == "case":
            obj["WHO"] = obj.pop("who")
            line = json.dumps(obj)
        elif kind == "nan":
            line = json.dumps({**obj, "amount": float("nan")})
        else:
            line = json.dumps(obj, ensure_ascii=i % 2 == 0)
        encoded = line.encode()
        if kind == "bytes":
            encoded = encoded.replace(b'"n', b'"\xc3\x28', 1)
        out.append(encoded + b"\n")
    return b"".join(out)


def parquet_bytes(rows: list[tuple[str, dict]]) -> bytes:
    table = pa.table({c: pa.array([v[c] for _, v in rows], pa.string()) for c in HEADER})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=5)
    return sink.getvalue()


WRITERS = {"csv": csv_bytes, "jsonl": jsonl_bytes, "parquet": parquet_bytes}


def check_files(kind: str, files: list[tuple[list[str], list[str]]], overlap: list[int], chunk_rows: int) -> None:
    """Ingest several generated files as one source; check every file's batch, then re-ingest and overlap."""
    plans = [plan(["good", *kinds], notes, start=1000 * n) for n, (kinds, notes) in enumerate(files)]
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "CHUNK_ROWS", chunk_rows)  # duplicates and conflicts across chunk boundaries too
        root = Path(tmp)
        (root / "cx360.toml").write_text(CONFIG.format(kind=kind), encoding="utf-8")
        (root / "data").mkdir()
        for n, (rows, _) in enumerate(plans):
            (root / "data" / f"f{n}.{kind}").write_bytes(WRITERS[kind](rows))
        with Workspace(root) as ws:
            [report] = ingest(ws)
            ledger = {
                Path(r["input"]).name: r
                for r in ws.engine.table("ingest_batches").to_pyarrow().to_pylist()
                if r["status"] == "committed"
            }
            quarantine = ws.engine.table("quarantine").to_pyarrow().to_pylist()
            for n, (_, expected) in enumerate(plans):
                batch = ledger[f"f{n}.{kind}"]
                counts = batch["rows_read"], batch["rows_loaded"], batch["rows_quarantined"], batch["rows_duplicate"]
                assert counts[0] == counts[1] + counts[2] + counts[3]
                assert counts == (expected.rows, len(expected.loaded), len(expected.quarantined), expected.duplicates)
                rows = sorted(q["row_number"] for q in quarantine if q["batch_id"] == batch["batch_id"])
                assert rows == expected.quarantined
            loaded = set().union(*(e.loaded for _, e in plans))
            events = ws.engine.table("events")
            assert set(events.event_id.to_pyarrow().to_pylist()) == loaded  # each expected event, and no other
            assert report.read == report.loaded + report.quarantined + report.duplicates
            [again] = ingest(ws)
            assert (again.unchanged, again.loaded, again.quarantined) == (len(plans), 0, 0)
            # an overlapping export: some rows of the first file again, and new ones
            good = [values for k, values in plans[0][0] if k == "good"]
            repeated = [("good", good[i % len(good)]) for i in overlap]
            fresh, _ = plan(["good"] * 3, files[0][1], start=100_000)
            (root / "data" / f"z.{kind}").write_bytes(WRITERS[kind](repeated + fresh))
            [third] = ingest(ws)
            assert (third.loaded, third.quarantined, third.duplicates) == (3, 0, report.read + len(repeated))
            assert events.count().execute() == len(loaded) + 3


def files(kind: str, count: int, max_rows: int):
    one = st.tuples(
        st.lists(st.sampled_from(ROW_KINDS[kind]), min_size=15, max_size=max_rows),
        st.lists(NOTES, min_size=1, max_size=6),
    )
    return st.lists(one, min_size=count, max_size=count)


OVERLAP = st.lists(st.integers(0, 50), max_size=5)
CHUNKS = st.sampled_from([4, 7, 1000])


@suite(4)
@given(files=files("csv", 4, 50), overlap=OVERLAP, chunk_rows=CHUNKS)
def test_csv_files_add_up(files, overlap, chunk_rows):
    check_files("csv", files, overlap, chunk_rows)


@suite(4)
@given(files=files("jsonl", 4, 50), overlap=OVERLAP, chunk_rows=CHUNKS)
def test_jsonl_files_add_up(files, overlap, chunk_rows):
    check_files("jsonl", files, overlap, chunk_rows)


@suite(2)
@given(files=files("parquet", 3, 40), overlap=OVERLAP)
def test_parquet_files_add_up(files, overlap):
    check_files("parquet", files, overlap, 1000)
