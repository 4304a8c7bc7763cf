"""Read a source's input as Arrow chunks, numbering every row and setting aside rows that cannot be parsed.

CSV, JSON Lines and SQL rows arrive as text (the mapping parses them, so a bad
value becomes a per-row reason); Parquet keeps its own types. Each chunk has a
``_row`` column: the 1-based row number in the input, for lineage.
"""

from __future__ import annotations

import csv
import datetime as dt
from abc import ABC, abstractmethod
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cx360.config import CsvSource, JsonlSource, ParquetSource, SqlSource
from cx360.errors import ConfigError, SourceError, TransientSourceError

ROW = "_row"
CHUNK_ROWS = 250_000
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Malformed:
    row_number: int
    raw: str
    reason: str


@dataclass
class Chunk:
    data: pa.Table
    malformed: list[Malformed] = field(default_factory=list)


class Reader(ABC):
    """One input of a source: a file, or a database table or query."""

    schemaless = False  # True when rows may lack keys (JSON): a missing column then reads as NULL

    def __init__(self, label: str):
        self.label = label

    def fingerprint(self) -> str | None:
        """A hash of the content, or None when it cannot be had cheaply (a database)."""
        return None

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """The input's rows, numbered, in chunks of at most CHUNK_ROWS."""


class _FileReader(Reader):
    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with self._open_binary() as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def _open_binary(self):
        return self._open("rb")

    def _open(self, mode: str, **kwargs):
        try:
            return open(self.path, mode, **kwargs)
        except FileNotFoundError as exc:
            raise TransientSourceError(f"{self.path}: file vanished before it could be read") from exc


def _text_table(columns: list[str], rows: list[list[str | None]], numbers: list[int]) -> pa.Table:
    arrays = [pa.array([r[i] for r in rows], pa.string()) for i in range(len(columns))]
    return pa.Table.from_arrays([*arrays, pa.array(numbers, pa.int64())], names=[*columns, ROW])


class CsvReader(_FileReader):
    def __init__(self, path: Path, delimiter: str, encoding: str):
        super().__init__(path)
        self.delimiter = delimiter
        self.encoding = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding

    def chunks(self) -> Iterator[Chunk]:
        with self._open("r", encoding=self.encoding, newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise SourceError(f"{self.path}: file is empty (expected a header line)") from None
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise SourceError(f"{self.path}: repeated column names in the header: {dupes}")
            rows: list[list[str | None]] = []
            numbers: list[int] = []
            bad: list[Malformed] = []
            n = 0
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    n += 1
                    bad.append(Malformed(n, json.dumps({"line": reader.line_num}), f"malformed CSV: {exc}"))
                    continue
                except UnicodeDecodeError as exc:
                    raise SourceError(
                        f"{self.path}: not valid {self.encoding} text after line {reader.line_num} ({exc.reason}); "
                        "set `encoding` for this source"
                    ) from exc
                if not fields:
                    continue  # a blank line is not a row
                n += 1
                if len(fields) != len(header):
                    raw = json.dumps({"line": reader.line_num, "fields": fields}, ensure_ascii=False)
                    bad.append(Malformed(n, raw, f"malformed CSV line: expected {len(header)} fields, found {len(fields)}"))
                    continue
                rows.append(fields)
                numbers.append(n)
                if len(rows) >= CHUNK_ROWS:
                    yield Chunk(_text_table(header, rows, numbers), bad)
                    rows, numbers, bad = [], [], []
            yield Chunk(_text_table(header, rows, numbers), bad)


class JsonlReader(_FileReader):
    schemaless = True

    def __init__(self, path: Path, encoding: str):
        super().__init__(path)
        self.encoding = encoding

    def chunks(self) -> Iterator[Chunk]:
        rows: list[dict] = []
        numbers: list[int] = []
        bad: list[Malformed] = []
        n = 0
        with self._open_binary() as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                n += 1
                try:
                    obj = json.loads(line.decode(self.encoding))
                except (ValueError, UnicodeDecodeError) as exc:
                    text = line.decode(self.encoding, errors="replace").rstrip("\r\n")
                    bad.append(Malformed(n, json.dumps({"line": line_no, "text": text}, ensure_ascii=False), f"malformed JSON: {exc}"))
                    continue
                if not isinstance(obj, dict):
                    bad.append(Malformed(n, json.dumps({"line": line_no, "value": obj}, ensure_ascii=False), "a JSON line must be an object"))
                    continue
                rows.append(_flatten(obj))
                numbers.append(n)
                if len(rows) >= CHUNK_ROWS:
                    yield Chunk(_dict_table(rows, numbers), bad)
                    rows, numbers, bad = [], [], []
        if n == 0 and not bad:
            raise SourceError(f"{self.path}: file is empty (expected one JSON object per line)")
        yield Chunk(_dict_table(rows, numbers), bad)


def _flatten(obj: dict, prefix: str = "") -> dict[str, str | None]:
    """Nested objects become dotted keys (properties.path); other values become text."""
    out: dict[str, str | None] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = _text(value)
    return out


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _dict_table(rows: list[dict], numbers: list[int]) -> pa.Table:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return _text_table(columns, [[r.get(c) for c in columns] for r in rows], numbers)


class ParquetReader(_FileReader):
    def chunks(self) -> Iterator[Chunk]:
        with self._open_binary() as handle:
            try:
                file = pq.ParquetFile(handle)
            except pa.ArrowInvalid as exc:
                raise SourceError(f"{self.path}: not a readable Parquet file: {exc}") from exc
            start = 1
            for batch in file.iter_batches(batch_size=1_000_000):
                rows = pa.array(range(start, start + batch.num_rows), pa.int64())
                start += batch.num_rows
                yield Chunk(pa.Table.from_batches([batch]).append_column(ROW, rows))
            if start == 1:
                yield Chunk(file.schema_arrow.empty_table().append_column(ROW, pa.array([], pa.int64())))


class SqlReader(Reader):
    _TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")

    def __init__(self, url: str, query: str, chunk_size: int, label: str):
        super().__init__(label)
        self.url = url
        self.query = query
        self.chunk_size = chunk_size

    def chunks(self) -> Iterator[Chunk]:
        import sqlalchemy as sa

        try:
            engine = sa.create_engine(self.url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise SourceError(f"{self.label}: cannot use this database URL: {exc}") from exc
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(sa.text(self.query))
                columns = list(result.keys())
                n = 0
                while batch := result.fetchmany(self.chunk_size):
                    numbers = list(range(n + 1, n + len(batch) + 1))
                    n += len(batch)
                    yield Chunk(_text_table(columns, [[_sql_text(v) for v in row] for row in batch], numbers))
                if n == 0:
                    yield Chunk(_text_table(columns, [], []))
        except sa.exc.OperationalError as exc:
            raise TransientSourceError(f"{self.label}: database unreachable or query failed: {exc.orig}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"{self.label}: query failed: {getattr(exc, 'orig', exc)}") from exc
        finally:
            engine.dispose()


def _sql_text(value: object) -> str | None:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return _text(value)


def readers_for(source, root: Path) -> list[Reader]:
    """One reader per input of the source; missing inputs are a configuration error."""
    if isinstance(source, SqlSource):
        import os

        url = source.url or os.environ.get(source.url_env or "")
        if not url:
            raise ConfigError(f"source '{source.name}': environment variable {source.url_env} is not set (url_env)")
        if source.table is not None and not SqlReader._TABLE_NAME.match(source.table):
            raise ConfigError(f"source '{source.name}': table {source.table!r} is not a plain [schema.]table name")
        query = source.query or f"SELECT * FROM {source.table}"
        return [SqlReader(url, query, source.chunk_size, f"{source.name}: {source.table or 'query'}")]
    files = source.files(root)
    missing = [p for p in files if not p.is_file()]
    if not files or missing:
        where = missing[0] if missing else root / source.path
        raise ConfigError(f"source '{source.name}': path = {source.path!r}: no such file ({where})")
    if isinstance(source, CsvSource):
        return [CsvReader(p, source.delimiter, source.encoding) for p in files]
    if isinstance(source, JsonlSource):
        return [JsonlReader(p, source.encoding) for p in files]
    if isinstance(source, ParquetSource):
        return [ParquetReader(p) for p in files]
    raise ConfigError(f"source '{source.name}': unsupported kind {source.kind!r}")
