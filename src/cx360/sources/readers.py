"""Read a source's input as Arrow chunks, numbering every row and setting aside rows that cannot be parsed.

CSV, JSON Lines and SQL rows arrive as text (the mapping parses them, so a bad
value becomes a per-row reason); Parquet keeps its own types. Each chunk has a
``_cx360_row`` column: the 1-based row number in the input, for lineage. A
blank line is not a row: it is neither numbered nor counted as read.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cx360.config import CsvSource, IngestSettings, JsonlSource, ParquetSource, SqlSource
from cx360.errors import ConfigError, SourceError, TransientSourceError
from cx360.sources.textfile import InputChanged, Stat, TrackedFile, check_encoding, shown, undecodable

INTERNAL = "_cx360_"  # prefix of the columns cx360 adds; an input may not use it
ROW = INTERNAL + "row"
ENTITY = INTERNAL + "entity"  # set by a reader whose rows go to both tables: 'records' or 'events' per row
CHUNK_ROWS = 250_000
FAST_BLOCK_BYTES = 16 << 20  # a UTF-8 CSV is read in blocks of whole lines this size (see CsvReader)
_BLANKISH = re.compile(rb"(?m)^[ \t\f\v\r]+$")  # a line of spaces only: not a row, for the loop to skip
MAX_DEPTH = 32  # JSON objects nested deeper than this are quarantined, not flattened
MALFORMED = "malformed "  # every reason a reader gives starts so: the row never parsed into fields


@dataclass(frozen=True)
class Limits:
    """How far one CSV row may reach: a quoted field past these is a stray quote, not data."""

    max_field_chars: int = 1 << 20
    max_row_lines: int = 100


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
    rejected_only = False  # True when every row was rejected before it was stored (the collector's)

    def __init__(self, label: str):
        self.label = label

    def fingerprint(self) -> str | None:
        """A hash of the content, or None when it cannot be had cheaply (a database)."""
        return None

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """The input's rows, numbered, in chunks of at most CHUNK_ROWS; raises InputChanged when the input
        changed while it was read."""


class _FileReader(Reader):
    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path
        self._digest: str | None = None
        self._stat: Stat | None = None

    def fingerprint(self) -> str:
        """The content hash the batch id is made of; the read that follows must see the same bytes."""
        digest = hashlib.sha256()
        try:
            f = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError as exc:
            raise TransientSourceError(f"{self.path}: file vanished before it could be read") from exc
        with f:
            st = os.fstat(f.fileno())
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        self._digest, self._stat = digest.hexdigest(), Stat(st.st_size, st.st_mtime_ns, st.st_ino)
        return self._digest

    def _track(self) -> TrackedFile:
        return TrackedFile(self.path, self._digest, self._stat)


def _check_columns(where: object, names: list[str]) -> None:
    """Column names must be usable on every engine: present, distinct ignoring case, not cx360's own."""
    empty = [i + 1 for i, n in enumerate(names) if not n]
    if empty:
        raise SourceError(f"{where}: column(s) {empty} of the header have no name; name every column")
    seen: dict[str, str] = {}
    clashes = []
    for n in names:
        if n.lower() in seen:
            clashes.append(f"{seen[n.lower()]!r} and {n!r}" if seen[n.lower()] != n else repr(n))
        seen.setdefault(n.lower(), n)
    if clashes:
        raise SourceError(
            f"{where}: repeated column names (names differing only in case count as the same): " + ", ".join(clashes)
        )
    reserved = [n for n in names if n.lower().startswith(INTERNAL)]
    if reserved:
        raise SourceError(f"{where}: column names starting with {INTERNAL!r} are reserved by cx360: {reserved}")


def _text_table(columns: list[str], rows: list[list[str | None]], numbers: list[int]) -> pa.Table:
    arrays = [pa.array([r[i] for r in rows], pa.string()) for i in range(len(columns))]
    return pa.Table.from_arrays([*arrays, pa.array(numbers, pa.int64())], names=[*columns, ROW])


class _TooLong(Exception):
    pass


class _Lines:
    """Physical lines fed to the csv parser: it remembers the lines of the current row and takes lines
    back, so that after a stray quote the parser re-syncs on the next physical line."""

    def __init__(self, text: Iterator[str], max_lines: int):
        self.text = text
        self.max_lines = max_lines
        self.back: list[str] = []  # a stack: the next line to read is last
        self.taken: list[str] = []
        self.consumed = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.taken) >= self.max_lines:
            raise _TooLong
        line = self.back.pop() if self.back else next(self.text)
        self.consumed += 1
        self.taken.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self.back.extend(reversed(lines))
        self.consumed -= len(lines)


def _line(number: int, text: str, **more: object) -> str:
    return json.dumps({"line": number, "text": shown(text.rstrip("\r\n")), **more}, ensure_ascii=False)


class _TextLines:
    """Lines as a TextIOWrapper decodes them, all for the csv module: the way for encodings other
    than UTF-8."""

    def __init__(self, text: Iterator[str]):
        self.text = text

    def __iter__(self) -> Iterator[str]:
        return self.text

    def at_block_end(self) -> bool:
        return False

    def take_block(self) -> bytes | None:
        return None


class _Utf8Blocks:
    """A UTF-8 file in blocks of whole lines (a newline byte is never inside a character). The header
    line is the first block. A block taken at a row boundary (`take_block`) may be parsed whole; one
    given back (`give`) is decoded into lines for the csv module, which also reads on into the next
    block when a quoted field runs past its end."""

    def __init__(self, stream, block_bytes: int, size: int | None):
        self.stream, self.block_bytes = stream, block_bytes
        self.left = size  # the bytes the file had when opened: what grows meanwhile is verify()'s to find
        self.rest = b""
        self.lines: list[str] = []
        self.at = 0
        self.header = True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while self.at >= len(self.lines):
            block = self._read()
            if block is None:
                raise StopIteration
            self.give(block)
        self.at += 1
        return self.lines[self.at - 1]

    def at_block_end(self) -> bool:
        return self.at >= len(self.lines)

    def take_block(self) -> bytes | None:
        return self._read()

    def give(self, block: bytes) -> None:
        codec = "utf-8-sig" if self.header else "utf-8"
        self.header = False
        self.lines = list(io.StringIO(block.decode(codec, "surrogateescape"), newline=""))
        self.at = 0

    def _read(self) -> bytes | None:
        if self.header:
            return self._taken(self.stream.readline(-1 if self.left is None else self.left)) or None
        while True:
            more = self._taken(
                self.stream.read(self.block_bytes if self.left is None else min(self.block_bytes, self.left))
            )
            data = self.rest + more
            if not more:
                self.rest = b""
                return data or None
            cut = data.rfind(b"\n") + 1
            if cut:
                self.rest = data[cut:]
                return data[:cut]
            self.rest = data  # no line ends in it yet: read on

    def _taken(self, data: bytes) -> bytes:
        if self.left is not None:
            self.left -= len(data)
        return data


class CsvReader(_FileReader):
    """Every physical line is accounted for: a blank line is not a row; any other line starts a row (a
    quoted field may continue it over more lines); a row that does not parse is quarantined.

    The csv module, line by line, is the reference. A UTF-8 file is read in blocks of whole lines, and
    a block where that loop would quarantine nothing and read every row from one line (no NUL, lone
    carriage return, whitespace-only or overlong line, undecodable byte or quoted line break, every
    row the header's width) is parsed at once by pyarrow; a block with quotes is first read by the csv
    module over the whole block, in C, which must accept it with one record per line. The rows and
    their numbers are the loop's; any other block goes through the loop."""

    def __init__(
        self,
        path: Path,
        delimiter: str,
        encoding: str,
        limits: Limits | None = None,
        *,
        block_bytes: int = FAST_BLOCK_BYTES,
    ):
        super().__init__(path)
        self.delimiter = delimiter
        self.encoding = encoding
        self.limits = limits or Limits()
        self.block_bytes = block_bytes  # 0: every line through the csv module

    def chunks(self) -> Iterator[Chunk]:
        tracked = self._track()
        try:
            content = tracked.content(self.encoding)
            encoding = tracked.encoding.removesuffix("-sig")
            if encoding == "utf-8" and self.block_bytes:
                size = tracked.opened.size if content is tracked.binary else None  # None: gzip undone
                source: _TextLines | _Utf8Blocks = _Utf8Blocks(content, self.block_bytes, size)
            else:
                wrapper = io.TextIOWrapper(content, encoding=tracked.encoding, errors="surrogateescape", newline="")
                source = _TextLines(wrapper)
            lines = _Lines(iter(source), self.limits.max_row_lines)
            csv.field_size_limit(self.limits.max_field_chars)
            reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
            header = self._header(reader, lines, encoding)
            rows: list[list[str | None]] = []
            numbers: list[int] = []
            bad: list[Malformed] = []
            n = 0
            while True:
                if not lines.back and source.at_block_end():
                    block = source.take_block()
                    if block is None:
                        break
                    parsed = self._parse_block(block, header)
                    if parsed is None:
                        source.give(block)
                    else:
                        if rows or bad:
                            yield Chunk(_text_table(header, rows, numbers), bad)
                            rows, numbers, bad = [], [], []
                        rows_in = parsed.num_rows
                        parsed = parsed.append_column(ROW, pa.array(range(n + 1, n + rows_in + 1), pa.int64()))
                        for at in range(0, rows_in, CHUNK_ROWS):
                            yield Chunk(parsed.slice(at, CHUNK_ROWS))
                        n += rows_in
                        lines.consumed += block.count(b"\n") + (not block.endswith(b"\n"))
                        continue
                lines.taken = []
                first = lines.consumed + 1
                problem = None
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    problem = str(exc)
                except _TooLong:
                    problem = f"a row spans more than {self.limits.max_row_lines} lines (max_row_lines)"
                taken = lines.taken
                if problem is None and len(taken) == 1 and not taken[0].strip():
                    continue  # a blank line is not a row
                n += 1
                if problem is None:
                    why = undecodable("".join(taken), encoding)
                    if why:
                        bad.append(Malformed(n, _line(first, "".join(taken)), f"malformed text: {why}"))
                        continue
                    if len(fields) == len(header):
                        rows.append(fields)
                        numbers.append(n)
                        if len(rows) >= CHUNK_ROWS:
                            yield Chunk(_text_table(header, rows, numbers), bad)
                            rows, numbers, bad = [], [], []
                        continue
                    problem = f"expected {len(header)} fields, found {len(fields)}"
                    if len(taken) == 1:
                        raw = json.dumps({"line": first, "fields": fields}, ensure_ascii=False)
                        bad.append(Malformed(n, raw, f"malformed CSV line: {problem}"))
                        continue
                if len(taken) > 1:  # most likely a stray quote: keep only its line, re-read the rest
                    lines.give_back(taken[1:])
                    reason = (
                        f'malformed CSV line: an unclosed quote (") on line {first} runs over the lines after '
                        f"it ({problem}); only this line is quarantined, reading resumes on the next"
                    )
                else:
                    reason = f"malformed CSV line: {problem}"
                bad.append(Malformed(n, _line(first, taken[0] if taken else ""), reason))
            tracked.verify()
            yield Chunk(_text_table(header, rows, numbers), bad)
        finally:
            tracked.close()

    def _parse_block(self, block: bytes, header: list[str]) -> pa.Table | None:
        """The block's rows as text columns, when the line-by-line loop would quarantine nothing in it
        and read each row from one line; else None."""
        if b"\0" in block or block.count(b"\r") != block.count(b"\r\n") or _BLANKISH.search(block):
            return None
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(1, np.int64)
        lengths = (ends if len(ends) else np.array([len(block)])) - starts
        if block and not block.endswith(b"\n"):
            lengths = np.append(lengths, len(block) - int(ends[-1]) - 1) if len(ends) else lengths
        if int(lengths.max(initial=0)) > self.limits.max_field_chars:
            return None
        quoted = b'"' in block
        if quoted:  # the csv module, in C over the whole block, must accept it with one record per line
            text = block.decode("utf-8", "surrogateescape")
            if undecodable(text, "utf-8"):
                return None
            try:
                records = sum(
                    1 for _ in csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter, strict=True)
                )
            except csv.Error:
                return None
            if records != len(lengths):  # a quoted field ran over lines: the loop counts those
                return None
        try:
            return pacsv.read_csv(
                pa.py_buffer(block),
                read_options=pacsv.ReadOptions(column_names=header, block_size=len(block) + 1, use_threads=False),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter, quote_char='"' if quoted else False, ignore_empty_lines=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False, check_utf8=True
                ),
            )
        except pa.ArrowInvalid:  # a row of another width, or bytes that are not UTF-8: the loop says which
            return None

    def _header(self, reader, lines: _Lines, encoding: str) -> list[str]:
        try:
            fields = next(reader)
        except StopIteration:
            raise SourceError(f"{self.path}: file is empty (expected a header line)") from None
        except (csv.Error, _TooLong) as exc:
            raise SourceError(f"{self.path}: the header line is not valid CSV: {exc or 'too long'}") from None
        why = undecodable("".join(lines.taken), encoding)
        if why:
            raise SourceError(f"{self.path}: the header line is {why}")
        header = [h.strip() for h in fields]
        if not header:
            raise SourceError(f"{self.path}: the first line is empty (expected a header line)")
        _check_columns(self.path, header)
        return header


class Unfit(ValueError):
    """A JSON line that cannot become a row; its message is the reason, starting with MALFORMED."""


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
        spelling: dict[str, str] = {}  # lower-cased key -> the spelling first seen in this file
        tracked = self._track()
        try:
            text = tracked.text(self.encoding, newline="\n")
            encoding = tracked.encoding.removesuffix("-sig")
            for line_no, line in enumerate(text, start=1):
                if not line.strip():
                    continue  # a blank line is not a row
                n += 1
                try:
                    why = undecodable(line, encoding)
                    if why:
                        raise Unfit(f"malformed text: {why}")
                    try:
                        obj = json.loads(line)
                    except ValueError as exc:
                        raise Unfit(f"malformed JSON: {exc}") from None
                    if not isinstance(obj, dict):
                        raise Unfit("malformed JSON: a JSON line must be an object")
                    flat = self.rows(obj, spelling)
                except RecursionError:
                    bad.append(
                        Malformed(n, _line(line_no, line), f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
                    )
                    continue
                except Unfit as exc:
                    bad.append(Malformed(n, _line(line_no, line), str(exc)))
                    continue
                rows += flat
                numbers += [n] * len(flat)
                if len(rows) >= CHUNK_ROWS:
                    yield Chunk(dict_table(rows, numbers), bad)
                    rows, numbers, bad = [], [], []
            tracked.verify()
        finally:
            tracked.close()
        if n == 0:
            raise SourceError(f"{self.path}: file is empty (expected one JSON object per line)")
        yield Chunk(dict_table(rows, numbers), bad)

    def row(self, obj: dict, spelling: dict[str, str]) -> dict[str, str | None]:
        """One JSON object as a row: nested keys flattened, each key a column (raises Unfit)."""
        return flat_row(obj, spelling)

    def rows(self, obj: dict, spelling: dict[str, str]) -> list[dict[str, str | None]]:
        """The rows one JSON object gives: itself, and for a preset the facts it carries (a Segment message's
        consents), which share its row number."""
        return [self.row(obj, spelling)]


def flat_row(obj: dict, spelling: dict[str, str]) -> dict[str, str | None]:
    """`obj` flattened to dotted keys with text values; `spelling` holds the keys seen so far in the input,
    for the check that keys differing only in case do not become two columns (raises Unfit)."""
    flat = _flatten(obj)
    _check_keys(flat, spelling)
    return flat


def _check_keys(flat: dict[str, str | None], spelling: dict[str, str]) -> None:
    """Keys become columns: they must not be empty, reserved, or another key's spelling in other case."""
    new = []
    for key in flat:
        low = key.lower()
        first = spelling.get(low)
        if first == key:
            continue
        if not key:
            raise Unfit("malformed JSON: an empty key")
        if low.startswith(INTERNAL):
            raise Unfit(f"malformed JSON: key {key!r}: names starting with {INTERNAL!r} are reserved by cx360")
        if first is not None:
            raise Unfit(
                f"malformed JSON: key {key!r} differs only in case from key {first!r} seen before; "
                "keys differing only in case are the same column"
            )
        new.append((low, key))
    seen_here: dict[str, str] = {}
    for low, key in new:
        if low in seen_here:
            raise Unfit(f"malformed JSON: keys {seen_here[low]!r} and {key!r} differ only in case")
        seen_here[low] = key
    spelling.update(seen_here)


def _flatten(obj: dict, prefix: str = "", depth: int = 1, out: dict | None = None) -> dict[str, str | None]:
    """Nested objects become dotted keys (properties.path); other values become text."""
    if depth > MAX_DEPTH:
        raise Unfit(f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
    out = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            _flatten(value, name + ".", depth + 1, out)
        elif name in out:
            raise Unfit(f"malformed JSON: key {name!r} appears twice once nested objects are flattened")
        else:
            out[name] = as_text(value)
    return out


def as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def dict_table(rows: list[dict], numbers: list[int]) -> pa.Table:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return _text_table(columns, [[r.get(c) for c in columns] for r in rows], numbers)


class ParquetReader(_FileReader):
    """Parquet is read by seeking, so a change while it is read is seen in the file's size, time and inode."""

    def chunks(self) -> Iterator[Chunk]:
        before = self._stat or Stat.of(self.path)
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError as exc:
            raise TransientSourceError(f"{self.path}: file vanished before it could be read") from exc
        with handle:
            st = os.fstat(handle.fileno())
            if Stat(st.st_size, st.st_mtime_ns, st.st_ino) != before:
                raise InputChanged(f"{self.path}: changed between fingerprint and read")
            try:
                file = pq.ParquetFile(handle)
            except pa.ArrowInvalid as exc:
                raise SourceError(f"{self.path}: not a readable Parquet file: {exc}") from exc
            _check_columns(self.path, file.schema_arrow.names)
            batches = [] if file.metadata.num_rows == 0 else file.iter_batches(batch_size=1_000_000)
            start = 1
            for batch in batches:
                rows = pa.array(range(start, start + batch.num_rows), pa.int64())
                start += batch.num_rows
                if start > file.metadata.num_rows:
                    self._verify(before)
                yield Chunk(pa.Table.from_batches([batch]).append_column(ROW, rows))
            if start == 1:
                self._verify(before)
                yield Chunk(file.schema_arrow.empty_table().append_column(ROW, pa.array([], pa.int64())))

    def _verify(self, before: Stat) -> None:
        if Stat.of(self.path) != before:
            raise InputChanged(f"{self.path}: changed while it was read")


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
                _check_columns(self.label, columns)
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
    return as_text(value)


def readers_for(source, root: Path, settings: IngestSettings | None = None) -> list[Reader]:
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
    files = input_files(source, root)
    settings = settings or IngestSettings()
    limits = Limits(settings.max_field_chars, settings.max_row_lines)
    if isinstance(source, CsvSource):
        encoding = check_encoding(source.encoding, source.name)
        return [CsvReader(p, source.delimiter, encoding, limits) for p in files]
    if isinstance(source, JsonlSource):
        encoding = check_encoding(source.encoding, source.name)
        return [JsonlReader(p, encoding) for p in files]
    if isinstance(source, ParquetSource):
        return [ParquetReader(p) for p in files]
    raise ConfigError(f"source '{source.name}': unsupported kind {source.kind!r}")


def input_files(source, root: Path) -> list[Path]:
    """The files of a file source; none, or a missing one, is a configuration error."""
    files = source.files(root)
    missing = [p for p in files if not p.is_file()]
    if not files or missing:
        where = missing[0] if missing else root / source.path
        raise ConfigError(f"source '{source.name}': path = {source.path!r}: no such file ({where})")
    return files
