"""The suppression list: keyed hashes of the identifiers and names of erased people, so that ingesting
the same sources again does not bring them back.

A value is kept as HMAC-SHA256 over `kind:value` (the value normalised as cx360.identifiers does) with
a secret of the workspace, `privacy/suppression.key`, created on first use and readable by its owner
only: without the secret a hash cannot be tested against a guessed phone number. The list lives in
`privacy/suppressed.jsonl`, beside the warehouse and not in it, so that rebuilding the warehouse
from the sources keeps it.

Ingest consults it twice: a row holding a suppressed identifier is not loaded and counted as
`suppressed`; and in the free text of everyone else's rows (a post that tags `@handle`, a call
summary that names the person) a suppressed e-mail, phone, handle or full name is replaced by
`[erased]`, the same replacement that erasure made in the rows it kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cx360.identifiers import normalise_value
from cx360.privacy.keyfile import secret_at
from cx360.schema import IDENTIFIER_KINDS

FOLDER = "privacy"
KEY_FILE = "suppression.key"
LIST_FILE = "suppressed.jsonl"
NAME = "name"  # the kind of a full name: "first last", lower-cased, single spaces
ERASED = "[erased]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HANDLE = re.compile(r"(?<![\w@])@([\w.]+\w)")
_PHONE = re.compile(r"\+?\d[\d ()-]{8,}\d")
_WORD = re.compile(r"\w+")


def _leaves(value) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


def normal_name(*parts: str | None) -> str | None:
    """A full name as the list keeps it: its words lower-cased, joined by one space."""
    words = [w for p in parts if p for w in _WORD.findall(p.lower())]
    return " ".join(words) if len(words) >= 2 else None


def key_path(root: Path) -> Path:
    return root / FOLDER / KEY_FILE


def list_path(root: Path) -> Path:
    return root / FOLDER / LIST_FILE


def workspace_secret(root: Path) -> bytes:
    """The workspace's suppression secret, created (owner-only) on first use."""
    return secret_at(key_path(root))


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Suppression:
    """The suppressed hashes of a workspace, and the tests ingest and erasure make against them."""

    root: Path
    hashes: set[str] = field(default_factory=set)
    region: str | None = None
    _secret: bytes | None = None

    @classmethod
    def load(cls, root: Path, region: str | None = None) -> Suppression:
        found = cls(root, region=region)
        path = list_path(root)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    found.hashes.add(json.loads(line)["hash"])
                except (ValueError, KeyError, TypeError):  # a line torn by a crash: its erasure is redone
                    continue
        return found

    def __bool__(self) -> bool:
        return bool(self.hashes)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = workspace_secret(self.root)
        return self._secret

    def hash(self, kind: str, value: str) -> str:
        return keyed_hash(self.secret, kind, value)

    def holds(self, kind: str, value: str | None) -> bool:
        """Whether the normalised `value` of `kind` (an identifier kind, or "name") is suppressed."""
        return bool(self.hashes) and value is not None and value != "" and self.hash(kind, value) in self.hashes

    def add(self, entries: Iterable[tuple[str, str]], erasure: str) -> int:
        """Suppress (kind, normalised value) pairs; the list is appended to and fsync'd. Returns how
        many hashes were new."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        lines = []
        for kind, value in entries:
            h = self.hash(kind, value)
            if h not in self.hashes:
                self.hashes.add(h)
                lines.append(json.dumps({"hash": h, "kind": kind, "erasure": erasure, "at": now}) + "\n")
        if lines:
            path = list_path(self.root)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, "".join(lines).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return len(lines)

    def touches(self, raw: str, source: str | None = None) -> bool:
        """Whether a raw row (its JSON, or a line that never parsed) holds a suppressed identifier in any
        value, a suppressed record id of `source`, or a suppressed value in its text."""
        if not self.hashes:
            return False
        try:
            leaves = list(_leaves(json.loads(raw)))
        except ValueError:
            leaves = []
        for leaf in leaves:
            text = leaf.strip()
            if not text:
                continue
            if source and self.holds("record", f"{source}:{text}"):
                return True
            for kind in IDENTIFIER_KINDS:
                if kind == "phone" and sum(c.isdigit() for c in text) < 7:
                    continue
                if self.holds(kind, normalise_value(kind, text, self.region)):
                    return True
        return self.redact(raw) != raw

    # -- text ---------------------------------------------------------------------------------
    def redact(self, text: str | None) -> str | None:
        """`text` with every suppressed e-mail, @handle, phone number and full name replaced by
        `[erased]`; the same text when nothing in it is suppressed."""
        if not self.hashes or not text:
            return text
        spans: list[tuple[int, int]] = []
        for m in _EMAIL.finditer(text):
            if self.holds("email", m.group(0).lower()):
                spans.append(m.span())
        for m in _HANDLE.finditer(text):
            if self.holds("social_handle", m.group(1).lower()):
                spans.append(m.span(1))
        for m in _PHONE.finditer(text):
            if self.holds("phone", normalise_value("phone", m.group(0), self.region)):
                spans.append(m.span())
        words = list(_WORD.finditer(text))
        for a, b in itertools.pairwise(words):
            if self.holds(NAME, f"{a.group(0).lower()} {b.group(0).lower()}"):
                spans.append((a.start(), b.end()))
        if not spans:
            return text
        out, last = [], 0
        for start, end in sorted(spans):
            if start < last:  # overlaps a span already replaced
                last = max(last, end)
                continue
            out += [text[last:start], ERASED]
            last = end
        out.append(text[last:])
        return "".join(out)
