"""The CSV reader's block path against its line-by-line loop: on random files full of what real
exports hold (quotes, doubled quotes, delimiters and line breaks in quoted fields, stray and unclosed
quotes, blank and whitespace lines, rows of the wrong width, CRLF and lone CR, NUL and undecodable
bytes, a byte order mark, no final newline, overlong fields) both give the same rows with the same
numbers, and the same quarantined rows with the same reasons, whatever the block size."""

from __future__ import annotations

import random

import pytest

from cx360.sources.readers import CsvReader, Limits

PIECES = [
    "plain",
    "",
    "with space",
    '"quoted"',
    '"has, comma"',
    '"dou""bled"',
    '"line\nbreak"',
    '"four\nlines\nin\none"',
    'mid"quote',
    '"closed"after',
    '"unclosed',
    "Иван Петров",
    '""',
    " lead",
    "x" * 40,
]
ENDINGS = ["\n"] * 12 + ["\r\n"] * 3 + ["\r"]


CLEAN = [p for p in PIECES if "\n" not in p and '"unclosed' not in p and "after" not in p and len(p) < 30]


def random_file(rng: random.Random, delimiter: str) -> bytes:
    clean = rng.random() < 0.5  # what the block path takes whole; the other half is anything
    width = rng.randint(1, 4)
    lines = [delimiter.join(f"c{i}" for i in range(width))]
    for _ in range(rng.randint(0, 40)):
        roll = rng.random()
        if roll < 0.05:
            lines.append("")
        elif roll < 0.08 and not clean:
            lines.append("   ")
        else:
            n = width if clean or rng.random() < 0.9 else rng.randint(1, width + 2)
            lines.append(delimiter.join(rng.choice(CLEAN if clean else PIECES) for _ in range(n)))
    text = "".join(line + rng.choice(ENDINGS[:-1] if clean else ENDINGS) for line in lines)
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")
    data = text.encode("utf-8")
    if not clean and rng.random() < 0.2:
        data = data.replace(b"plain", b"pl\xffin", 1)
    if not clean and rng.random() < 0.1:
        data = data.replace(b"plain", b"pl\x00in", 1)
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    return data


def read(path, delimiter: str, block_bytes: int):
    reader = CsvReader(path, delimiter, "utf-8", Limits(max_field_chars=30, max_row_lines=3), block_bytes=block_bytes)
    reader.fingerprint()
    rows, bad = [], []
    for chunk in reader.chunks():
        rows += chunk.data.to_pylist()
        bad += [(m.row_number, m.raw, m.reason) for m in chunk.malformed]
    return rows, sorted(bad)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_blocks_read_exactly_what_the_line_loop_reads(tmp_path, monkeypatch, delimiter):
    parsed = []
    parse = CsvReader._parse_block
    monkeypatch.setattr(CsvReader, "_parse_block", lambda self, *a: parsed.append(table := parse(self, *a)) or table)
    rng = random.Random(f"csv-blocks-{delimiter}")
    path = tmp_path / "input.csv"
    for case in range(80):
        path.write_bytes(random_file(rng, delimiter))
        expected = read(path, delimiter, 0)
        for block_bytes in (1, 23, 1 << 20):
            assert read(path, delimiter, block_bytes) == expected, (case, block_bytes, path.read_bytes())
    taken = [t for t in parsed if t is not None and t.num_rows]
    assert len(taken) > 100 and len(taken) < len(parsed)  # blocks were parsed whole, and others were not


def test_a_clean_file_is_read_in_blocks_with_its_row_numbers(tmp_path):
    path = tmp_path / "clean.csv"
    lines = ["id,name"] + [f"{i},name {i}" if i % 7 else f'{i},"name, {i}"' for i in range(1, 2001)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = CsvReader(path, ",", "utf-8", block_bytes=4096)
    reader.fingerprint()
    chunks = list(reader.chunks())
    rows = [r for c in chunks for r in c.data.to_pylist()]
    assert len(chunks) > 5 and not any(c.malformed for c in chunks)
    assert [r["_cx360_row"] for r in rows] == list(range(1, 2001))
    assert rows[6] == {"id": "7", "name": "name, 7", "_cx360_row": 7}
