"""Open an input file for reading so that what was read is exactly what gets recorded.

The bytes are hashed as they are read, so the fingerprint a batch is committed
under is the content that was loaded, not a second look at the file. A file
whose size, modification time or inode moved while it was read, or whose bytes
hash differently from what the batch id was computed on, raises
``InputChanged``: the batch is discarded and read again.

Text is decoded with ``surrogateescape``, so a byte that is not valid in the
source's encoding spoils only its own line (quarantined), not the file. A byte
order mark decides the encoding (UTF-8, UTF-16 or UTF-32, either byte order).
A gzip-compressed file is read through gzip; the hash is of the bytes on disk.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from cx360.errors import ConfigError, SourceError, TransientSourceError

GZIP_MAGIC = b"\x1f\x8b"

_BOMS = [  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_ESCAPED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of an undecodable byte


class InputChanged(TransientSourceError):
    """The file changed while it was read; the batch must be discarded and read again."""


def check_encoding(name: str, source: str) -> str:
    """The codec's canonical name; an unknown one is an error for this source only."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"source '{source}': encoding = {name!r} is not an encoding Python knows "
            "(e.g. utf-8, cp1251, utf-16, latin-1)"
        ) from None


@dataclass(frozen=True)
class Stat:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> Stat:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise TransientSourceError(f"{path}: file vanished before it could be read") from exc
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


class _Hashing(io.RawIOBase):
    def __init__(self, raw):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.digest.update(memoryview(buffer)[:n])
            self.bytes += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Gunzipped(io.RawIOBase):
    """A gzip stream whose damage (a cut or corrupt file) is the source's error, naming the file."""

    def __init__(self, inner: gzip.GzipFile, path: Path):
        self.inner = inner
        self.path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self.inner.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{self.path}: not a readable gzip file ({exc}); nothing of it was loaded") from None


class TrackedFile:
    """A file opened for one batch: hashing what is read, and able to say whether it changed meanwhile."""

    def __init__(self, path: Path, expected_digest: str | None, expected_stat: Stat | None):
        self.path = path
        self.expected_digest = expected_digest
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError as exc:
            raise TransientSourceError(f"{path}: file vanished before it could be read") from exc
        st = os.fstat(raw.fileno())
        self.opened = Stat(st.st_size, st.st_mtime_ns, st.st_ino)
        if expected_stat is not None and expected_stat != self.opened:
            raw.close()
            raise InputChanged(f"{path}: changed between fingerprint and read")
        self._hashing = _Hashing(raw)
        self.binary = io.BufferedReader(self._hashing, 1 << 20)

    def content(self, encoding: str) -> io.BufferedReader:
        """The content as bytes, gzip undone (an export as Segment or RudderStack writes it); sets
        `encoding`: a byte order mark overrides the configured one."""
        stream: io.BufferedReader = self.binary
        if stream.peek(2)[:2] == GZIP_MAGIC:
            stream = io.BufferedReader(_Gunzipped(gzip.GzipFile(fileobj=self.binary, mode="rb"), self.path), 1 << 20)
        head = stream.peek(4)[:4]
        for bom, codec in _BOMS:
            if head.startswith(bom):
                encoding = codec
                break
        else:
            if codecs.lookup(encoding).name == "utf-8":
                encoding = "utf-8-sig"
        self.encoding = encoding
        return stream

    def text(self, encoding: str, newline: str) -> io.TextIOWrapper:
        """The content as text lines (see `content`)."""
        stream = self.content(encoding)
        return io.TextIOWrapper(stream, encoding=self.encoding, errors="surrogateescape", newline=newline)

    def verify(self) -> None:
        """After the last byte: raise InputChanged unless what was read is the whole, unchanged file."""
        self.binary.read()  # normally already at the end; anything left still belongs to the fingerprint
        now = Stat.of(self.path)
        digest = self._hashing.digest.hexdigest()
        if (
            now != self.opened
            or self._hashing.bytes != self.opened.size
            or (self.expected_digest is not None and digest != self.expected_digest)
        ):
            raise InputChanged(f"{self.path}: changed while it was read")

    def close(self) -> None:
        self.binary.close()


def undecodable(text: str, encoding: str) -> str | None:
    """Why `text` (decoded with surrogateescape) is not valid in `encoding`, or None."""
    found = _ESCAPED.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    return f"not valid {encoding} text (byte 0x{byte:02x}); set `encoding` for this source"


def shown(text: str) -> str:
    """Text fit to store: undecodable bytes become U+FFFD."""
    return _ESCAPED.sub("\ufffd", text)
